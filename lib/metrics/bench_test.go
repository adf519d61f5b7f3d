package metrics

import (
	"fmt"
	"io"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// TestConcurrentUse runs the hot path from many goroutines while scrapes
// run (the race detector watches), then checks the totals by value.
func TestConcurrentUse(t *testing.T) {
	m := New(Options{TopTenants: 2})
	const workers, rounds = 8, 200
	var wg sync.WaitGroup
	stop := make(chan struct{})
	scrapes := make(chan int)
	go func() { // the scraper: ends when stop closes
		n := 0
		defer func() { scrapes <- n }()
		for {
			select {
			case <-stop:
				return
			default:
			}
			rec := httptest.NewRecorder()
			m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
			n++
		}
	}()
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tn := m.Tenant(fmt.Sprintf("w%d", w%4)) // two workers per tenant
			for i := range rounds {
				tn.Accepted(1, uint64(i+1))
				s := tn.Subscribe(uint64(i))
				s.Wrote(1, uint64(i+1), time.Now())
				s.Gap(GapEvicted, 1, 2)
				s.Close()
			}
		}()
	}
	wg.Wait()
	close(stop)
	if n := <-scrapes; n == 0 {
		t.Error("no scrape ran")
	}
	fams := scrape(t, metricsOnly(m))
	total := float64(workers * rounds)
	for _, tt := range []struct {
		name string
		want float64
	}{
		{"tl_relay_events_accepted_total", total},
		{"tl_relay_deliveries_total", total},
		{"tl_relay_events_dropped_total", 2 * total},
		{"tl_relay_subscribers", 0},
	} {
		if got := sumOver(fams, tt.name); got != tt.want {
			t.Errorf("sum of %s = %v, want %v", tt.name, got, tt.want)
		}
	}
}

// BenchmarkWrote is the per-delivery cost a subscriber's writer pays: one
// call per message written.
func BenchmarkWrote(b *testing.B) {
	m := New(Options{})
	s := m.Tenant("acme").Subscribe(0)
	accepted := time.Now()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		s.Wrote(1, uint64(i), accepted)
	}
}

// BenchmarkWroteNoLatency is the same without the latency observation.
func BenchmarkWroteNoLatency(b *testing.B) {
	m := New(Options{})
	s := m.Tenant("acme").Subscribe(0)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		s.Wrote(1, uint64(i), time.Time{})
	}
}

// BenchmarkWroteParallel: many subscribers of one tenant writing at once,
// sharing the latency histogram.
func BenchmarkWroteParallel(b *testing.B) {
	m := New(Options{})
	tn := m.Tenant("acme")
	accepted := time.Now()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		s := tn.Subscribe(0)
		defer s.Close()
		var i uint64
		for pb.Next() {
			i++
			s.Wrote(1, i, accepted)
		}
	})
}

// BenchmarkAccepted is ingest's cost per append.
func BenchmarkAccepted(b *testing.B) {
	tn := New(Options{}).Tenant("acme")
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		tn.Accepted(1, uint64(i))
	}
}

// BenchmarkScrape100k is one scrape of a relay holding 100,000 tenants.
func BenchmarkScrape100k(b *testing.B) {
	m := New(Options{})
	for i := range 100_000 {
		tn := m.Tenant(fmt.Sprintf("t%06d", i))
		tn.Accepted(1+i%13, 1)
		if i%100 == 0 {
			tn.Subscribe(0)
		}
	}
	h := m.Handler()
	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
		io.Copy(io.Discard, rec.Body)
	}
}
