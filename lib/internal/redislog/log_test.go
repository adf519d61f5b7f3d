package redislog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/tl-sh/tl/lib/internal/redistest"
	"github.com/tl-sh/tl/lib/internal/testkit"
	"github.com/tl-sh/tl/lib/internal/tlog"
)

func newBroker(t *testing.T, srv *redistest.Server, opts Options) *Broker {
	t.Helper()
	opts.URL = srv.URL()
	b, err := NewBroker(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func openLog(t *testing.T, b *Broker, tenant string) *Log {
	t.Helper()
	l, err := b.Open(tenant)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// readUntil reads l from seq from as a subscriber's writer does (Notify,
// Read, wait) until it has read seq last, and returns the lines and gaps.
func readUntil(t *testing.T, l *Log, from, last uint64) (lines [][]byte, gaps []tlog.Gap) {
	t.Helper()
	deadline := time.After(testTimeout)
	for from <= last {
		notify := l.Notify()
		got, next, gap, err := l.Read(from, nil, 256, 64<<10)
		if err != nil {
			t.Fatal(err)
		}
		if !gap.Empty() {
			gaps = append(gaps, gap)
		}
		lines = append(lines, got...)
		from = next
		if len(got) > 0 || !gap.Empty() {
			continue
		}
		select {
		case <-notify:
		case <-deadline:
			t.Fatalf("read stuck at seq %d, want up to %d", from, last)
		}
	}
	return lines, gaps
}

func checkLines(t *testing.T, lines [][]byte, first uint64) {
	t.Helper()
	for i, l := range lines {
		prefix := fmt.Sprintf(`{"seq":%d,`, first+uint64(i))
		if !bytes.HasPrefix(l, []byte(prefix)) || !bytes.HasSuffix(l, []byte("}\n")) {
			t.Fatalf("line %d: %q, want a delivery starting %s", i, l, prefix)
		}
	}
}

// One relay appends, another reads: live lines through the follower, and
// history older than its cache from Redis, with exact gaps.
func TestLogAcrossRelays(t *testing.T) {
	srv := redistest.New(t, redistest.Options{})
	a := newBroker(t, srv, Options{MaxEvents: 200})
	b := newBroker(t, srv, Options{MaxEvents: 200})
	la := openLog(t, a, "acme")
	// Some history before relay b reads.
	for i := 0; i < 3; i++ {
		if _, _, _, err := appendShared(la, bodies(i*10, 10), ""); err != nil {
			t.Fatal(err)
		}
	}
	lb := openLog(t, b, "acme")
	oldest, newest := lb.Bounds()
	if oldest != 1 || newest != 30 || lb.Epoch() != la.Epoch() || lb.Epoch() == "" {
		t.Fatalf("relay b sees %d..%d in %q; want 1..30 in %q", oldest, newest, lb.Epoch(), la.Epoch())
	}
	var last uint64
	for i := 0; i < 20; i++ {
		_, l, e, err := appendShared(la, bodies(i, 7), "")
		if err != nil {
			t.Fatal(err)
		}
		if e != lb.Epoch() {
			t.Fatalf("append in epoch %s, relay b has %s", e, lb.Epoch())
		}
		last = l
	}
	tests := []struct {
		name     string
		from     uint64
		wantGaps []tlog.Gap
	}{
		{"live from the head", 31, nil},
		{"history from Redis", 1, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lines, gaps := readUntil(t, lb, tt.from, last)
			checkLines(t, lines, tt.from)
			if uint64(len(lines)) != last-tt.from+1 || len(gaps) != len(tt.wantGaps) {
				t.Errorf("%d lines, gaps %v; want %d and %v", len(lines), gaps, last-tt.from+1, tt.wantGaps)
			}
		})
	}
	// Past the history: the exact gap, then the oldest line held.
	for i := 0; i < 10; i++ {
		if _, last, _, _ = appendShared(la, bodies(i, 100), ""); last == 0 {
			t.Fatal("append failed")
		}
	}
	lines, gaps := readUntil(t, lb, 1, last)
	first, err := la.b.s.Read(t.Context(), "acme", 1, 1)
	if err != nil {
		t.Fatal(err)
	}
	oldestHeld := first.Entries[0].Seq
	if len(gaps) != 1 || gaps[0] != (tlog.Gap{From: 1, To: oldestHeld - 1}) {
		t.Errorf("gaps %v, want [{1 %d}]", gaps, oldestHeld-1)
	}
	checkLines(t, lines, oldestHeld)
}

// Many subscribers arriving at once at a tenant the relay has not read
// yet all get the same epoch and bounds.
func TestLogConcurrentFirstReaders(t *testing.T) {
	srv := redistest.New(t, redistest.Options{})
	a := newBroker(t, srv, Options{})
	b := newBroker(t, srv, Options{})
	if _, _, _, err := appendShared(openLog(t, a, "acme"), bodies(0, 5), ""); err != nil {
		t.Fatal(err)
	}
	l := openLog(t, b, "acme")
	var wg sync.WaitGroup
	type view struct {
		epoch          string
		oldest, newest uint64
		lines          int
	}
	views := make([]view, 50)
	for i := range views {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var v view
			switch i % 3 {
			case 0:
				v.epoch = l.Epoch()
				v.oldest, v.newest = l.Bounds()
			case 1:
				v.oldest, v.newest = l.Bounds()
				v.epoch = l.Epoch()
			case 2:
				lines, _, _, err := l.Read(1, nil, 100, 1<<20)
				if err != nil {
					t.Error(err)
				}
				v.lines = len(lines)
				v.epoch = l.Epoch()
				v.oldest, v.newest = l.Bounds()
			}
			views[i] = v
		}()
	}
	wg.Wait()
	for i, v := range views {
		if v.epoch == "" || v.epoch != views[0].epoch || v.oldest != 1 || v.newest != 5 || (i%3 == 2 && v.lines != 5) {
			t.Errorf("reader %d saw %+v; want epoch %s, 1..5 (5 lines when reading)", i, v, views[0].epoch)
		}
	}
}

// Redis away: reads return nothing and no error (subscribers stay), new
// tenants cannot open, appends fail with ErrUnavailable; back with lost
// data: the epoch changes and readers are woken.
func TestLogOutage(t *testing.T) {
	srv := redistest.New(t, redistest.Options{})
	a := newBroker(t, srv, Options{})
	b := newBroker(t, srv, Options{})
	la := openLog(t, a, "acme")
	lb := openLog(t, b, "acme")
	if _, _, _, err := appendShared(la, bodies(0, 5), ""); err != nil {
		t.Fatal(err)
	}
	readUntil(t, lb, 1, 5) // from Redis: older than b's cache
	testkit.WaitFor(t, "relay b to follow acme", func() bool { return synced(b.f, "acme") })
	if _, _, _, err := appendShared(la, bodies(5, 5), ""); err != nil {
		t.Fatal(err)
	}
	readUntil(t, lb, 6, 10) // through b's follower into its cache
	// Reads of 1..5 go to Redis (a writer reads them apart); 6.. are cached.
	if !tlog.IsCold(lb, 1) || !tlog.IsCold(lb, 5) || tlog.IsCold(lb, 6) || tlog.IsCold(lb, 11) {
		t.Errorf("Cold 1, 5, 6, 11: %v %v %v %v; want true true false false",
			tlog.IsCold(lb, 1), tlog.IsCold(lb, 5), tlog.IsCold(lb, 6), tlog.IsCold(lb, 11))
	}
	epoch1 := lb.Epoch()
	srv.Stop()
	testkit.WaitFor(t, "readiness to drop", func() bool { return !a.Ready() && !b.Ready() })
	if _, err := a.Open("other"); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Open while Redis is away: %v, want ErrUnavailable", err)
	}
	if _, _, _, err := appendShared(la, bodies(0, 1), ""); !errors.Is(err, ErrUnavailable) {
		t.Errorf("append while Redis is away: %v, want ErrUnavailable", err)
	}
	notify := lb.Notify()
	// The cache still serves 6..10; older lines need Redis: nothing yet,
	// and no error.
	if lines, _, _, err := lb.Read(6, nil, 10, 1<<20); err != nil || len(lines) != 5 {
		t.Fatalf("read 6.. while Redis is away: %d lines, %v; want the 5 cached", len(lines), err)
	}
	if lines, next, gap, err := lb.Read(1, nil, 10, 1<<20); err != nil || len(lines) != 0 || next != 1 || !gap.Empty() {
		t.Fatalf("read 1.. while Redis is away: %d lines, next %d, gap %v, %v; want nothing", len(lines), next, gap, err)
	}
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, "readiness to return", func() bool { return a.Ready() && b.Ready() })
	var epoch2 string
	testkit.WaitFor(t, "an append to succeed", func() bool {
		var err error
		_, _, epoch2, err = appendShared(la, bodies(0, 3), "")
		return err == nil
	})
	select {
	case <-notify:
	case <-time.After(testTimeout):
		t.Fatal("the reader was not woken after the outage")
	}
	testkit.WaitFor(t, "the new epoch", func() bool { return lb.Epoch() == epoch2 })
	if epoch2 == epoch1 {
		t.Fatalf("epoch unchanged (%s) after Redis lost its data", epoch1)
	}
	lines, gaps := readUntil(t, lb, 1, 3)
	checkLines(t, lines, 1)
	if len(lines) != 3 || len(gaps) != 0 {
		t.Errorf("new epoch: %d lines, gaps %v; want 3, none", len(lines), gaps)
	}
}

func TestLogClose(t *testing.T) {
	srv := redistest.New(t, redistest.Options{})
	b := newBroker(t, srv, Options{})
	l, err := b.Open("acme")
	if err != nil {
		t.Fatal(err)
	}
	notify := l.Notify()
	if b.f.Len() != 1 {
		t.Errorf("following %d tenants after a read, want 1", b.f.Len())
	}
	l.Close()
	l.Close()
	<-notify
	if _, _, _, err := appendShared(l, bodies(0, 1), ""); !errors.Is(err, tlog.ErrClosed) {
		t.Errorf("append after close: %v", err)
	}
	if _, _, _, err := l.Read(1, nil, 1, 1); !errors.Is(err, tlog.ErrClosed) {
		t.Errorf("read after close: %v", err)
	}
	if b.f.Len() != 0 {
		t.Errorf("following %d tenants after close, want 0", b.f.Len())
	}
}

// synced reports whether f follows tenant live (subscribed, caught up).
func synced(f *Follower, tenant string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	st, ok := f.tenants[tenant]
	return ok && st.synced
}

// Redis goes away between a tenant's opening and its first read: the log
// has no epoch to give (the relay answers 503) until Redis is back, and
// then its readers are woken with the epoch.
func TestLogFirstReadWhileAway(t *testing.T) {
	srv := redistest.New(t, redistest.Options{})
	b := newBroker(t, srv, Options{})
	l := openLog(t, b, "acme")
	srv.Stop()
	notify := l.Notify() // the first read: learning the epoch fails
	if e := l.Epoch(); e != "" {
		t.Fatalf("epoch %q while Redis is away, want none", e)
	}
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-notify:
	case <-time.After(testTimeout):
		t.Fatal("not woken when Redis came back")
	}
	testkit.WaitFor(t, "the epoch", func() bool { return l.Epoch() != "" })
	if oldest, newest := l.Bounds(); oldest != 1 || newest != 0 {
		t.Errorf("bounds %d..%d, want 1..0 (empty)", oldest, newest)
	}
}

// appendShared appends bs with key through l.Append, in the shape of the
// answer the tests check.
func appendShared(l *Log, bs [][]byte, key string) (first, last uint64, epoch string, err error) {
	a, err := l.Append(context.Background(), tlog.Batch{Bodies: bs, Key: key})
	return a.First, a.Last, a.Epoch, err
}

// TestResumeUnknownEpoch: a subscriber resuming on relay b from an epoch
// that relay a started after Redis lost its data (FLUSHALL) makes b take
// that epoch and its newest seq from Redis, whether or not b's follower
// has brought them yet (the relay asks before its hello); with Redis
// down, Resume fails.
func TestResumeUnknownEpoch(t *testing.T) {
	srv := redistest.New(t, redistest.Options{})
	a := newBroker(t, srv, Options{MaxEvents: 200})
	b := newBroker(t, srv, Options{MaxEvents: 200})
	la := openLog(t, a, "acme")
	if _, _, _, err := appendShared(la, bodies(0, 10), ""); err != nil {
		t.Fatal(err)
	}
	lb := openLog(t, b, "acme")
	old := lb.Epoch()
	if old != la.Epoch() {
		t.Fatalf("relay b in %q, a in %q", old, la.Epoch())
	}
	if err := la.b.s.rdb.FlushAll(t.Context()).Err(); err != nil {
		t.Fatal(err)
	}
	_, last, epoch, err := appendShared(la, bodies(0, 4), "")
	if err != nil {
		t.Fatal(err)
	}
	if epoch == old || last != 4 {
		t.Fatalf("after FLUSHALL relay a appended up to %d in %s, want 4 in a new epoch", last, epoch)
	}
	if err := lb.Resume(epoch, 3); err != nil {
		t.Fatal(err)
	}
	if _, newest := lb.Bounds(); lb.Epoch() != epoch || newest != 4 {
		t.Errorf("after Resume relay b is at %d in %s, want 4 in %s", newest, lb.Epoch(), epoch)
	}
	// With Redis down there is no answer, and Resume says so.
	srv.Stop()
	if err := lb.Resume("elsewhere", 3); err == nil {
		t.Error("Resume with Redis down: no error")
	}
}
