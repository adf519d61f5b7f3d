package metrics

import (
	"fmt"
	"io"
	"net/http/httptest"
	"sync"
	"testing"
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
				s.Wrote(1, uint64(i+1), uint64(i+1))
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
// call per message written, here by a subscriber that keeps up (its message
// starts at the newest append).
func BenchmarkWrote(b *testing.B) { benchWrote(b, 2*acceptSlots) }

// BenchmarkWroteLagging is the same for a subscriber more than a ring behind:
// the look-up walks every slot.
func BenchmarkWroteLagging(b *testing.B) { benchWrote(b, 1) }

func benchWrote(b *testing.B, first uint64) {
	m := New(Options{})
	tn := m.Tenant("acme")
	s := tn.Subscribe(0)
	for i := range 2 * acceptSlots {
		tn.Accepted(1, uint64(i+1))
	}
	b.ReportAllocs()
	for b.Loop() {
		s.Wrote(1, first, first)
	}
}

// BenchmarkClock is what the latency observation's clock read costs here,
// for comparison.
func BenchmarkClock(b *testing.B) {
	var sink int64
	for b.Loop() {
		sink += nowNano()
	}
	_ = sink
}

// BenchmarkWroteNoLatency is the same without the latency observation.
func BenchmarkWroteNoLatency(b *testing.B) {
	m := New(Options{})
	s := m.Tenant("acme").Subscribe(0)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		s.Wrote(1, 0, uint64(i))
	}
}

// BenchmarkWroteParallel: many subscribers of one tenant writing at once,
// sharing the latency histogram.
func BenchmarkWroteParallel(b *testing.B) {
	m := New(Options{})
	tn := m.Tenant("acme")
	tn.Subscribe(0).Close()
	for i := range 2 * acceptSlots {
		tn.Accepted(1, uint64(i+1))
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		s := tn.Subscribe(0)
		s.live = 1 // count what follows as live
		defer s.Close()
		for pb.Next() {
			s.Wrote(1, 2*acceptSlots, 2*acceptSlots)
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

func TestAcceptRing(t *testing.T) {
	var r acceptRing
	if _, ok := r.acceptedAt(1); ok {
		t.Fatal("an empty ring knows a time")
	}
	// Appends of seqs 1-3 at 100, 4 at 200, 5-9 at 300.
	r.record(3, 100)
	r.record(4, 200)
	r.record(9, 300)
	tests := []struct {
		seq    uint64
		want   int64
		wantOK bool
	}{
		{1, 100, true},
		{3, 100, true},
		{4, 200, true},
		{5, 300, true},
		{9, 300, true},
		{10, 0, false}, // not accepted yet
	}
	for _, tt := range tests {
		got, ok := r.acceptedAt(tt.seq)
		if got != tt.want || ok != tt.wantOK {
			t.Errorf("acceptedAt(%d) = %d, %v; want %d, %v", tt.seq, got, ok, tt.want, tt.wantOK)
		}
	}
	// After more appends than slots, an old seq gets the oldest time held.
	for i := range acceptSlots {
		r.record(uint64(100+i), int64(1000+i))
	}
	if got, ok := r.acceptedAt(2); !ok || got != 1000 {
		t.Errorf("acceptedAt(2) after wrap = %d, %v; want 1000 (a lower bound), true", got, ok)
	}
}
