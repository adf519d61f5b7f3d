// Package limit owns the relay's per-tenant publish rate (a token bucket per
// tenant) and its budget of memory for request bodies in flight (bytes, in
// all and per tenant); both are safe for concurrent use and hold no lock
// while their callers do I/O.
// (The subscriber limits live with the relay's tenant registry, which
// already counts them.)
package limit

import (
	"math"
	"sync"
	"time"
)

// sweepAt is the number of buckets above which Take drops the buckets that
// have refilled completely (a full bucket is the same as no bucket), so a
// flood of tenant names cannot grow the map without bound. The threshold
// doubles when a sweep frees too little, so sweeping stays amortised O(1).
const sweepAt = 4096

// Rate limits events per second per key (the tenant), as a token bucket:
// each key's bucket holds up to burst tokens and refills at perSec tokens a
// second; an event costs one token, and a batch of n events takes n at once
// or nothing. A batch larger than the burst can never pass (Burst says how
// large a batch may be): letting it through into debt would let one POST
// of 50,000 events through a limit of 10 a second.
//
// A nil *Rate allows everything.
type Rate struct {
	perSec float64
	burst  float64
	now    func() time.Time

	mu      sync.Mutex         // guards buckets and sweep
	buckets map[string]*bucket // by key
	sweep   int                // len(buckets) that triggers the next sweep
}

type bucket struct {
	tokens float64 // 0 to burst
	last   time.Time
}

// NewRate returns a limiter of perSec events a second with bursts of burst
// events (burst < 1 means perSec, at least 1).
func NewRate(perSec float64, burst int) *Rate {
	b := float64(burst)
	if b < 1 {
		b = math.Max(1, math.Ceil(perSec))
	}
	return &Rate{perSec: perSec, burst: b, now: time.Now, buckets: map[string]*bucket{}, sweep: sweepAt}
}

// Burst returns the largest batch Take can ever allow (0 for a nil Rate:
// no limit).
func (r *Rate) Burst() int {
	if r == nil {
		return 0
	}
	return int(r.burst)
}

// PerSec returns the rate, in events a second (0 for a nil Rate).
func (r *Rate) PerSec() float64 {
	if r == nil {
		return 0
	}
	return r.perSec
}

// Take spends n tokens of key's bucket. It returns true if the n events may
// go, else false and how long to wait before the bucket holds enough (at
// least one second, as Retry-After counts whole seconds). A batch over the
// burst is always refused, with the time the bucket takes to fill: callers
// tell its sender to split it (see Burst).
func (r *Rate) Take(key string, n int) (ok bool, retryAfter time.Duration) {
	if r == nil || n <= 0 {
		return true, 0
	}
	now := r.now()
	r.mu.Lock()
	defer r.mu.Unlock()
	b := r.buckets[key]
	if b == nil {
		if len(r.buckets) >= r.sweep {
			r.sweepLocked(now)
		}
		b = &bucket{tokens: r.burst, last: now}
		r.buckets[key] = b
	}
	r.refill(b, now)
	need := math.Min(float64(n), r.burst)
	if float64(n) <= r.burst && b.tokens >= need {
		b.tokens -= need
		return true, 0
	}
	wait := time.Duration((need - b.tokens) / r.perSec * float64(time.Second))
	return false, RoundUpSecond(wait)
}

// Wait returns how long key must wait before one event may go (0: now),
// without spending anything: a cheap refusal before a request's body is
// read. A key with no bucket has a full one.
func (r *Rate) Wait(key string) time.Duration {
	if r == nil {
		return 0
	}
	now := r.now()
	r.mu.Lock()
	defer r.mu.Unlock()
	b := r.buckets[key]
	if b == nil {
		return 0
	}
	r.refill(b, now)
	if b.tokens >= 1 {
		return 0
	}
	return RoundUpSecond(time.Duration((1 - b.tokens) / r.perSec * float64(time.Second)))
}

func (r *Rate) refill(b *bucket, now time.Time) {
	if el := now.Sub(b.last); el > 0 {
		b.tokens = math.Min(r.burst, b.tokens+el.Seconds()*r.perSec)
		b.last = now
	}
}

// sweepLocked drops every full bucket; r.mu is held.
func (r *Rate) sweepLocked(now time.Time) {
	for k, b := range r.buckets {
		r.refill(b, now)
		if b.tokens >= r.burst {
			delete(r.buckets, k)
		}
	}
	r.sweep = sweepAt
	if n := 2 * len(r.buckets); n > r.sweep {
		r.sweep = n
	}
}

// Len returns the number of buckets held (for tests and metrics).
func (r *Rate) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.buckets)
}

// RoundUpSecond rounds d up to whole seconds, at least one: the unit of a
// Retry-After header.
func RoundUpSecond(d time.Duration) time.Duration {
	s := (d + time.Second - 1) / time.Second
	if s < 1 {
		s = 1
	}
	return s * time.Second
}
