package main

import (
	"testing"
	"time"
)

func TestBuckets(t *testing.T) {
	prev := -1
	for us := int64(0); us < 1<<22; us += 1 + us/64 {
		b := bucketOf(us)
		if b < prev {
			t.Fatalf("bucketOf(%d) = %d < %d", us, b, prev)
		}
		if lo := lowOf(b); lo > us || lowOf(b+1) <= us {
			t.Fatalf("us %d in bucket %d [%d, %d)", us, b, lo, lowOf(b+1))
		}
		prev = b
	}
}

func TestQuantile(t *testing.T) {
	var h hist
	for i := 1; i <= 1000; i++ {
		h.add(time.Duration(i) * time.Millisecond)
	}
	for _, c := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 500 * time.Millisecond}, {0.99, 990 * time.Millisecond}, {1, time.Second}} {
		got := h.quantile(c.q)
		if got < c.want || float64(got) > float64(c.want)*1.07 {
			t.Errorf("quantile(%v) = %v, want %v within 7%%", c.q, got, c.want)
		}
	}
}
