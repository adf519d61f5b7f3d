package redislog

import (
	"testing"
	"time"

	"github.com/tl-sh/tl/lib/internal/redistest"
	"github.com/tl-sh/tl/lib/internal/tlog"
)

// TestCacheBudget: the local caches of a broker count against the relay's
// memory budget; over it, the largest cache gives back its oldest lines,
// which are read from Redis again, without a gap.
func TestCacheBudget(t *testing.T) {
	const limit = 128 << 10
	srv := redistest.New(t, redistest.Options{})
	budget := tlog.NewBudget(limit)
	a := newBroker(t, srv, Options{})
	b := newBroker(t, srv, Options{Budget: budget})
	la := openLog(t, a, "acme")
	lb := openLog(t, b, "acme")
	lb.Bounds() // follow from now on
	var last uint64
	for i := 0; i < 40; i++ {
		_, l, _, err := appendShared(la, bodies(i*100, 100), "")
		if err != nil {
			t.Fatal(err)
		}
		last = l
		readUntil(t, lb, l, l) // the follower has brought it: the cache holds it
		// A reader may see the lines between the follower's append to
		// the cache and its reclaim, which follows at once.
		deadline := time.Now().Add(testTimeout)
		for budget.Used() > limit && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		if u := budget.Used(); u > limit {
			t.Fatalf("after %d lines the budget holds %d, over %d", l, u, limit)
		}
	}
	if budget.Evicted() == 0 {
		t.Fatal("the cache never went over the budget: the test missed its point")
	}
	if !lb.Cold(1) {
		t.Fatal("the cache still holds seq 1")
	}
	lines, gaps := readUntil(t, lb, 1, last)
	checkLines(t, lines, 1)
	if uint64(len(lines)) != last || len(gaps) != 0 {
		t.Fatalf("read %d lines with gaps %v, want 1..%d from Redis and the cache", len(lines), gaps, last)
	}
	lb.Close()
	deadline := time.Now().Add(testTimeout)
	for budget.Used() != 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if u := budget.Used(); u != 0 {
		t.Fatalf("after Close the budget holds %d", u)
	}
}
