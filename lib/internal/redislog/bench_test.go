package redislog

import (
	"context"
	"fmt"
	"testing"

	"github.com/tl-sh/tl/lib/internal/redistest"
)

func BenchmarkAppend(b *testing.B) {
	for _, size := range []int{1, 100} {
		b.Run(fmt.Sprintf("batch=%d", size), func(b *testing.B) {
			srv := redistest.New(b, redistest.Options{})
			s, err := Open(Options{URL: srv.URL()})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			bs := bodies(0, size)
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := s.Append(ctx, "acme", "", bs); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*size)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// BenchmarkFollowerLatency measures publish-to-delivery through the
// follower, one event at a time, while it also follows many idle tenants:
// the cost of one multiplexed XREAD over many keys.
func BenchmarkFollowerLatency(b *testing.B) {
	for _, idle := range []int{0, 1000, 5000} {
		b.Run(fmt.Sprintf("idle=%d", idle), func(b *testing.B) {
			srv := redistest.New(b, redistest.Options{})
			s, err := Open(Options{URL: srv.URL()})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			got := make(chan uint64, 16)
			f := s.NewFollower(func(u Update) {
				if u.Tenant == "hot" {
					for _, e := range u.Entries {
						got <- e.Seq
					}
					if u.Reset {
						got <- u.After
					}
				}
			})
			defer f.Close()
			for i := 0; i < idle; i++ {
				f.Follow(fmt.Sprintf("idle%d", i))
			}
			f.Follow("hot")
			<-got
			ctx := context.Background()
			bs := bodies(0, 1)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := s.Append(ctx, "hot", "", bs); err != nil {
					b.Fatal(err)
				}
				<-got
			}
		})
	}
}

// BenchmarkAppendParallel: single-event appends from 16 goroutines, as
// concurrent POSTs through one relay make them.
func BenchmarkAppendParallel(b *testing.B) {
	srv := redistest.New(b, redistest.Options{})
	s, err := Open(Options{URL: srv.URL()})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	bs := bodies(0, 1)
	b.ReportAllocs()
	b.SetParallelism(8)
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		for pb.Next() {
			if _, err := s.Append(ctx, "acme", "", bs); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}
