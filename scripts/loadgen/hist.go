package main

import (
	"math/bits"
	"time"
)

// hist is a log-linear latency histogram in microseconds: 16 sub-buckets per
// power of two, so a quantile is exact to within 1/16 (6%). One per
// goroutine, merged at the end, so recording takes no lock.
type hist struct {
	counts [64 * histSub]uint64
	n      uint64
	max    int64 // microseconds
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
	h.counts[bucketOf(us)]++
	h.n++
	if us > h.max {
		h.max = us
	}
}

func (h *hist) merge(o *hist) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.max = max(h.max, o.max)
}

// quantile returns the q-quantile (0 < q <= 1), as the upper end of its bucket.
func (h *hist) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	want := uint64(q*float64(h.n) + 0.5)
	want = max(want, 1)
	var seen uint64
	for b, c := range h.counts {
		seen += c
		if seen >= want {
			hi := lowOf(b+1) - 1
			return time.Duration(min(hi, h.max)) * time.Microsecond
		}
	}
	return time.Duration(h.max) * time.Microsecond
}
