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
		{"a batch over the burst never passes, and spends nothing", []step{
			{time.Hour, "a", 21, false, time.Second}, // full bucket: retry-after is never 0
			{0, "a", 50_000, false, time.Second},
			{0, "a", 20, true, 0}, // the refusals spent nothing
		}},
		{"a batch over the burst, bucket not full", []step{
			{0, "a", 5, true, 0},
			{0, "a", 50, false, time.Second}, // 5 tokens short of full at 10/s
		}},
		{"exactly the burst passes", []step{
			{0, "a", 20, true, 0},
			{2 * time.Second, "a", 20, true, 0},
			{time.Second, "a", 20, false, time.Second}, // 10 tokens: 10 more at 10/s
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
	if r.Burst() != 0 || r.PerSec() != 0 {
		t.Error("nil Rate has a burst or a rate")
	}
}

// TestRateNoDebt is issue 15's attack: 50,000 events at a limit of 10/s
// burst 10, sent as one batch, then again and again: nothing passes, and
// the bucket is left as it was, so batches within the burst still go.
func TestRateNoDebt(t *testing.T) {
	r, c := newTestRate(10, 10)
	if r.Burst() != 10 {
		t.Fatalf("Burst() = %d, want 10", r.Burst())
	}
	for i := 0; i < 100; i++ {
		if ok, _ := r.Take("a", 50_000); ok {
			t.Fatalf("attempt %d: a batch of 50,000 passed a burst of 10", i)
		}
		c.advance(time.Second)
	}
	passed := 0
	for i := 0; i < 100; i++ { // 10 s of batches of 10, one every 100 ms
		if ok, _ := r.Take("a", 10); ok {
			passed += 10
		}
		c.advance(100 * time.Millisecond)
	}
	if want := 10 + 10*10; passed < want-10 || passed > want {
		t.Errorf("%d events passed in 10 s at 10/s burst 10, want about %d", passed, want)
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
