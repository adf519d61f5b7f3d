package disklog

import (
	"fmt"
	"testing"
)

// BenchmarkAppend measures durable appends from concurrent callers, by
// batch size: group commit lets them share fsyncs.
func BenchmarkAppend(b *testing.B) {
	for _, batch := range []int{1, 100, 1000} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			s := mustOpen(b, b.TempDir(), Options{})
			l := mustLog(b, s, "acme")
			bodies := make([][]byte, batch)
			for i := range bodies {
				bodies[i] = body("acme", i)
			}
			b.ReportAllocs()
			b.SetBytes(int64(batch * len(bodies[0])))
			b.SetParallelism(4)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, _, err := l.Append(bodies); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// BenchmarkRead measures resuming reads of 256 records from random seqs.
func BenchmarkRead(b *testing.B) {
	s := mustOpen(b, b.TempDir(), Options{})
	l := mustLog(b, s, "acme")
	bodies := make([][]byte, 1000)
	for i := range bodies {
		bodies[i] = body("acme", i)
	}
	for i := 0; i < 100; i++ {
		l.Append(bodies)
	}
	_, newest := l.Bounds()
	b.ReportAllocs()
	b.ResetTimer()
	var dst []Record
	for i := 0; i < b.N; i++ {
		from := uint64(i*7919)%newest + 1
		dst, _ = l.Read(dst[:0], from, 256, 64<<10)
		if len(dst) == 0 {
			b.Fatal("nothing read")
		}
	}
}

// BenchmarkRecover measures start-up: Open reads and verifies every
// record of a 32 MiB directory (b.SetBytes: MB/s of recovery).
func BenchmarkRecover(b *testing.B) {
	dir := b.TempDir()
	s := mustOpen(b, dir, Options{SegmentBytes: 4 << 20})
	l := mustLog(b, s, "acme")
	bodies := make([][]byte, 1000)
	for i := range bodies {
		bodies[i] = body("acme", i)
	}
	for s.TotalBytes() < 32<<20 {
		l.Append(bodies)
	}
	total := s.TotalBytes()
	s.Close()
	b.ReportAllocs()
	b.SetBytes(total)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s, err := Open(dir, Options{SegmentBytes: 4 << 20})
		if err != nil {
			b.Fatal(err)
		}
		s.Close()
	}
}
