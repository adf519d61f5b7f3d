package metrics

import (
	"sync/atomic"
	"time"
)

// acceptSlots is how many recent appends a tenant remembers the time of, to
// measure the delivery latency of the lines they hold. A subscriber further
// behind than that many appends gets a lower bound (the oldest time held),
// which still lands it in the slow buckets where it belongs. 64 slots are
// 1 KiB per tenant, and only tenants that have had a subscriber pay it.
const acceptSlots = 64

// acceptRing maps recent seqs to when they were accepted: slot i holds the
// last seq of one append and its time. Ingest writes it and writers read it
// without a lock; a slot read while it is rewritten gives a time off by one
// append, an error a latency histogram cannot see.
type acceptRing struct {
	next  atomic.Uint64 // appends recorded so far; the next slot is next % acceptSlots
	slots [acceptSlots]struct {
		last atomic.Uint64 // last seq of the append (0: unused)
		at   atomic.Int64  // when it was accepted, Unix nanoseconds
	}
}

func (r *acceptRing) record(last uint64, at int64) {
	s := &r.slots[(r.next.Add(1)-1)%acceptSlots]
	s.last.Store(0) // readers skip the slot while it changes
	s.at.Store(at)
	s.last.Store(last)
}

// acceptedAt returns when seq was accepted: the time of the earliest
// recorded append whose last seq is seq or later; if seq is older than every
// append recorded, the oldest time held (a lower bound of its latency). ok
// is false when nothing covers seq.
//
// It walks back from the newest append and stops at the first one before
// seq, so a subscriber that keeps up pays one or two slots, and only one
// that lags pays for the whole ring. (Concurrent appends may record a little
// out of order; that errs by one append's time at most.)
func (r *acceptRing) acceptedAt(seq uint64) (at int64, ok bool) {
	n := r.next.Load()
	for i := uint64(0); i < acceptSlots && i < n; i++ {
		s := &r.slots[(n-1-i)%acceptSlots]
		last := s.last.Load()
		if last == 0 {
			continue // being rewritten
		}
		if last < seq {
			break
		}
		at, ok = s.at.Load(), true
	}
	return at, ok
}

// nowNano is the clock, in one place.
func nowNano() int64 { return time.Now().UnixNano() }
