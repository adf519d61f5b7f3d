package limit

import (
	"fmt"
	"testing"
	"time"
)

// clock is a fake time source the tests move by hand.
type clock struct{ t time.Time }

func (c *clock) now() time.Time          { return c.t }
func (c *clock) advance(d time.Duration) { c.t = c.t.Add(d) }

func newTestRate(perSec float64, burst int) (*Rate, *clock) {
	c := &clock{t: time.Unix(1700000000, 0)}
	r := NewRate(perSec, burst)
	r.now = c.now
	return r, c
}

func TestRateSteps(t *testing.T) {
	// 10 events/s, burst 20.
	type step struct {
		advance time.Duration
		key     string
		n       int
		ok      bool
		retry   time.Duration
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"burst then refused", []step{
			{0, "a", 20, true, 0},
			{0, "a", 1, false, time.Second},
			{100 * time.Millisecond, "a", 1, true, 0},
			{0, "a", 1, false, time.Second},
		}},
		{"tenants are independent", []step{
			{0, "a", 20, true, 0},
			{0, "a", 1, false, time.Second},
			{0, "b", 20, true, 0},
			{0, "c", 1, true, 0},
		}},
		{"refill caps at burst", []step{
			{time.Hour, "a", 20, true, 0},
			{0, "a", 1, false, time.Second},
		}},
		{"retry-after says how long", []step{
			{0, "a", 20, true, 0},
			{0, "a", 15, false, 2 * time.Second}, // 15 tokens at 10/s: 1.5s, rounded up
		}},
		{"oversized batch passes when full and leaves debt", []step{
			{0, "a", 50, true, 0},                         // 20 - 50 = -30
			{0, "a", 1, false, 4 * time.Second},           // needs 31 tokens: 3.1s
			{3 * time.Second, "a", 1, false, time.Second}, // -30 + 30 = 0
			{100 * time.Millisecond, "a", 1, true, 0},
			{10 * time.Second, "a", 50, true, 0},
		}},
		{"oversized batch refused when not full", []step{
			{0, "a", 1, true, 0},
			{0, "a", 50, false, time.Second},
		}},
		{"zero events always pass", []step{
			{0, "a", 20, true, 0},
			{0, "a", 0, true, 0},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, c := newTestRate(10, 20)
			for i, s := range tt.steps {
				c.advance(s.advance)
				ok, retry := r.Take(s.key, s.n)
				if ok != s.ok || retry != s.retry {
					t.Fatalf("step %d: Take(%q, %d) = %v, %v; want %v, %v", i, s.key, s.n, ok, retry, s.ok, s.retry)
				}
			}
		})
	}
}

// TestRateLongRun checks the long-run rate: over 100 simulated seconds of a
// publisher trying every 10 ms, about perSec*100 + burst events pass.
func TestRateLongRun(t *testing.T) {
	r, c := newTestRate(50, 10)
	passed := 0
	for i := 0; i < 10000; i++ {
		if ok, _ := r.Take("a", 1); ok {
			passed++
		}
		c.advance(10 * time.Millisecond)
	}
	if want := 50*100 + 10; passed < want-1 || passed > want {
		t.Errorf("passed %d events in 100 s at 50/s burst 10, want %d", passed, want)
	}
}

func TestRateSweep(t *testing.T) {
	r, c := newTestRate(1, 1)
	for i := 0; i < 3*sweepAt; i++ {
		r.Take(fmt.Sprint("tenant-", i), 1)
		if i%sweepAt == 0 {
			c.advance(2 * time.Second) // the buckets made so far refill
		}
	}
	if n := r.Len(); n > 2*sweepAt {
		t.Errorf("%d buckets held after %d tenants, want at most %d", n, 3*sweepAt, 2*sweepAt)
	}
	// A bucket in use is never swept: "busy" stays empty.
	r.Take("busy", 1)
	for i := 0; i < 2*sweepAt; i++ {
		r.Take(fmt.Sprint("other-", i), 1)
	}
	if ok, _ := r.Take("busy", 1); ok {
		t.Error("an empty bucket was swept (its tenant got a fresh burst)")
	}
}

func TestNilRate(t *testing.T) {
	var r *Rate
	if ok, _ := r.Take("a", 1e6); !ok {
		t.Error("nil Rate refused")
	}
}

func TestRoundUpSecond(t *testing.T) {
	for _, tt := range []struct{ in, want time.Duration }{
		{0, time.Second}, {time.Millisecond, time.Second}, {time.Second, time.Second},
		{1001 * time.Millisecond, 2 * time.Second}, {-time.Second, time.Second},
	} {
		if got := RoundUpSecond(tt.in); got != tt.want {
			t.Errorf("RoundUpSecond(%v) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestRateWait(t *testing.T) {
	r, c := newTestRate(10, 5)
	if w := r.Wait("a"); w != 0 {
		t.Fatalf("Wait on a new key = %v", w)
	}
	r.Take("a", 5)
	if w := r.Wait("a"); w != time.Second {
		t.Fatalf("Wait on an empty bucket = %v, want 1s", w)
	}
	if w := r.Wait("a"); w != time.Second {
		t.Fatalf("Wait spent something: %v", w)
	}
	c.advance(100 * time.Millisecond)
	if w := r.Wait("a"); w != 0 {
		t.Fatalf("Wait after a refill of one = %v", w)
	}
	r.Take("a", 30) // not full: refused, nothing spent
	if ok, _ := r.Take("a", 1); !ok {
		t.Fatal("Wait or a refused Take spent the token")
	}
	var nilRate *Rate
	if nilRate.Wait("a") != 0 {
		t.Fatal("nil Rate waits")
	}
}
