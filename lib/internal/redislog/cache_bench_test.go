package redislog

import (
	"testing"

	"github.com/tl-sh/tl/lib/internal/tlog"
)

// benchLog returns a tenant log fed by hand, as the follower feeds it,
// without Redis: what the benchmarks below measure is its cache.
func benchLog() *Log {
	b := &Broker{maxEvents: tlog.DefaultMaxEvents, maxBytes: tlog.DefaultMaxBytes}
	l := &Log{b: b, tenant: "acme", notify: make(chan struct{}), cache: tlog.NewRing(1), epoch: "e", following: true}
	l.followOnce.Do(func() {}) // no follower: the benchmark feeds it
	return l
}

// feed gives l the lines of seqs after+1.. through apply, one update.
func feed(l *Log, after uint64, lines [][]byte) {
	u := Update{Tenant: l.tenant, Epoch: l.epoch, After: after}
	for i, line := range lines {
		u.Entries = append(u.Entries, Entry{Seq: after + uint64(i) + 1, Line: line})
	}
	l.apply(u)
}

// BenchmarkCacheApply measures the follower's delivery of 100-line updates
// into a tenant's cache (a copy of each line, the ring, the bounds).
func BenchmarkCacheApply(b *testing.B) {
	l := benchLog()
	lines := bodies(0, 100)
	var after uint64
	b.ReportAllocs()
	for b.Loop() {
		feed(l, after, lines)
		after += 100
	}
}

// BenchmarkCacheRead measures a reader taking 256 lines at a time from a
// full cache.
func BenchmarkCacheRead(b *testing.B) {
	l := benchLog()
	var after uint64
	for i := 0; i < 1000; i++ {
		feed(l, after, bodies(0, 100))
		after += 100
	}
	buf := make([][]byte, 0, 256)
	b.ReportAllocs()
	cursor := after - 50_000
	for b.Loop() {
		lines, next, _, _ := l.Read(cursor, buf[:0], 256, 64<<10)
		if len(lines) == 0 {
			next = after - 50_000
		}
		cursor = next
	}
}
