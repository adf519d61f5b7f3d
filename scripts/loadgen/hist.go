package main

import (
	"math/bits"
	"time"
)

// hist is a log-linear latency histogram in microseconds: 16 sub-buckets per
// power of two, so a quantile is exact to within 1/16 (6%). One per
// goroutine, merged at the end, so recording takes no lock.
type hist struct {
	Counts [64 * histSub]uint64
	N      uint64
	Max    int64 // microseconds
}

const histSub = 16 // sub-buckets per power of two

func bucketOf(us int64) int {
	if us < histSub {
		if us < 0 {
			return 0
		}
		return int(us)
	}
	e := bits.Len64(uint64(us)) - 5 // us >> e is in [16, 32)
	return (e+1)*histSub + int(uint64(us)>>e) - histSub
}

// lowOf is the smallest value of bucket b.
func lowOf(b int) int64 {
	if b < histSub {
		return int64(b)
	}
	e := b/histSub - 1
	return int64(b%histSub+histSub) << e
}

func (h *hist) add(d time.Duration) {
	us := d.Microseconds()
	h.Counts[bucketOf(us)]++
	h.N++
	if us > h.Max {
		h.Max = us
	}
}

func (h *hist) merge(o *hist) {
	for i, c := range o.Counts {
		h.Counts[i] += c
	}
	h.N += o.N
	h.Max = max(h.Max, o.Max)
}

// quantile returns the q-quantile (0 < q <= 1), as the upper end of its bucket.
func (h *hist) quantile(q float64) time.Duration {
	if h.N == 0 {
		return 0
	}
	want := uint64(q*float64(h.N) + 0.5)
	want = max(want, 1)
	var seen uint64
	for b, c := range h.Counts {
		seen += c
		if seen >= want {
			hi := lowOf(b+1) - 1
			return time.Duration(min(hi, h.Max)) * time.Microsecond
		}
	}
	return time.Duration(h.Max) * time.Microsecond
}
