package redislog

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/tl-sh/tl/lib/internal/redistest"
	"github.com/tl-sh/tl/lib/internal/testkit"
	"github.com/tl-sh/tl/lib/internal/tlog"
)

// ledger is the invariant every test here checks on every acknowledged
// append: no (epoch, seq) ever names two different events.
type ledger struct {
	mu    sync.Mutex // guards names
	names map[string]string
}

func newLedger() *ledger { return &ledger{names: map[string]string{}} }

// ack records that r acknowledged the batch bs (their bodies identify the
// events) and reports every (epoch, seq) already given to another event.
func (l *ledger) ack(t *testing.T, who string, r Result, bs [][]byte) {
	t.Helper()
	if int(r.Last-r.First+1) != len(bs) {
		t.Fatalf("%s: %+v for %d events", who, r, len(bs))
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for i, b := range bs {
		name := fmt.Sprintf("%s/%d", r.Epoch, r.First+uint64(i))
		if prev, ok := l.names[name]; ok && prev != string(b) {
			t.Errorf("%s: (epoch, seq) %s names two events:\n  %s  %s", who, name, prev, b)
		}
		l.names[name] = string(b)
	}
}

// appendUntil retries an append (with an Idempotency-Key, so that a lost
// answer cannot publish twice) until Redis takes it.
func appendUntil(t *testing.T, s *Store, tenant, key string, bs [][]byte) Result {
	t.Helper()
	var r Result
	testkit.WaitFor(t, "an append to succeed", func() bool {
		var err error
		r, err = s.Append(context.Background(), tenant, key, bs)
		return err == nil
	})
	return r
}

// Redis restarts from an older RDB snapshot or append-only file: the
// relay that saw the lost seqs starts a new epoch before giving any seq
// again, so no (epoch, seq) names two events, and the new epoch holds
// exactly what was published since.
func TestRollbackStartsNewEpoch(t *testing.T) {
	for _, tt := range []struct {
		name    string
		persist bool
	}{{"rdb", false}, {"aof", true}} {
		t.Run(tt.name, func(t *testing.T) {
			srv := redistest.New(t, redistest.Options{Persist: tt.persist})
			s := openStore(t, srv, Options{})
			led := newLedger()
			ctx := context.Background()
			for i := 0; i < 2; i++ {
				bs := bodies(i*50, 50)
				r, err := s.Append(ctx, "acme", "", bs)
				if err != nil {
					t.Fatal(err)
				}
				led.ack(t, "before", r, bs)
			}
			if err := srv.Snapshot("old"); err != nil {
				t.Fatal(err)
			}
			bs := bodies(100, 100)
			r1, err := s.Append(ctx, "acme", "", bs)
			if err != nil {
				t.Fatal(err)
			}
			led.ack(t, "after the snapshot", r1, bs)
			if err := srv.RestartFrom("old"); err != nil {
				t.Fatal(err)
			}
			bs = bodies(200, 100)
			r2 := appendUntil(t, s, "acme", "k-after", bs)
			led.ack(t, "after the restore", r2, bs)
			if r2.Epoch == r1.Epoch || r2.First != 1 {
				t.Fatalf("after the restore: %+v; want a new epoch from seq 1 (was %s up to %d)", r2, r1.Epoch, r1.Last)
			}
			b, err := s.Read(ctx, "acme", 1, 1000)
			if err != nil {
				t.Fatal(err)
			}
			if b.Epoch != r2.Epoch || b.Last != 100 || len(b.Entries) != 100 || b.Entries[0].Seq != 1 {
				t.Errorf("the new epoch holds %s last %d, %d entries; want %s with 1..100", b.Epoch, b.Last, len(b.Entries), r2.Epoch)
			}
		})
	}
}

// A relay that knows nothing (started after the restore) cannot tell the
// restored state from the newest and gives the lost seqs again; a relay
// that saw them finds it out from the tenant's list of Redis processes,
// even once the counter has passed what it saw, and starts a new epoch.
func TestRollbackFoundByRunList(t *testing.T) {
	srv := redistest.New(t, redistest.Options{})
	seen := openStore(t, srv, Options{})
	ctx := context.Background()
	r0, err := seen.Append(ctx, "acme", "", bodies(0, 100))
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Snapshot("old"); err != nil {
		t.Fatal(err)
	}
	r1, err := seen.Append(ctx, "acme", "", bodies(100, 100))
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.RestartFrom("old"); err != nil {
		t.Fatal(err)
	}
	fresh := openStore(t, srv, Options{})
	r2, err := fresh.Append(ctx, "acme", "", bodies(1000, 150))
	if err != nil {
		t.Fatal(err)
	}
	if r2.Epoch != r0.Epoch || r2.First != 101 {
		t.Fatalf("a relay without memory: %+v, want seqs from 101 in %s (it cannot know)", r2, r0.Epoch)
	}
	testkit.WaitFor(t, "the relay that saw seq 200 to read again", func() bool {
		_, err := seen.Read(ctx, "acme", 1, 0)
		return err == nil
	})
	b, err := seen.Read(ctx, "acme", 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	if b.Epoch == r1.Epoch || b.Last != 0 {
		t.Fatalf("the relay that saw seq %d in %s now reads %s up to %d; want a new epoch", r1.Last, r1.Epoch, b.Epoch, b.Last)
	}
	// The memoryless relay follows the new epoch from then on.
	r3, err := fresh.Append(ctx, "acme", "", bodies(2000, 1))
	if err != nil {
		t.Fatal(err)
	}
	if r3.Epoch != b.Epoch || r3.First != 1 {
		t.Errorf("next append: %+v, want seq 1 in %s", r3, b.Epoch)
	}
}

// A snapshot older than an epoch change: its epoch is not one the
// relay's epoch descends from, so a new one starts.
func TestRollbackBeforeEpochChange(t *testing.T) {
	srv := redistest.New(t, redistest.Options{})
	s := openStore(t, srv, Options{})
	ctx := context.Background()
	r0, err := s.Append(ctx, "acme", "", bodies(0, 50))
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Snapshot("old"); err != nil {
		t.Fatal(err)
	}
	if err := s.rdb.FlushAll(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	r1, err := s.Append(ctx, "acme", "", bodies(50, 10))
	if err != nil {
		t.Fatal(err)
	}
	if r1.Epoch == r0.Epoch || r1.First != 1 {
		t.Fatalf("after FLUSHALL: %+v", r1)
	}
	if err := srv.RestartFrom("old"); err != nil {
		t.Fatal(err)
	}
	r2 := appendUntil(t, s, "acme", "k", bodies(60, 5))
	if r2.Epoch == r0.Epoch || r2.Epoch == r1.Epoch || r2.First != 1 {
		t.Errorf("after restoring a snapshot of %s (the relay was in %s): %+v; want a third epoch from 1", r0.Epoch, r1.Epoch, r2)
	}
}

// A restart that loses nothing (append-only file, fsync always) keeps the
// epoch: the run list shows the new process found every seq seen.
func TestCleanRestartKeepsEpoch(t *testing.T) {
	srv := redistest.New(t, redistest.Options{Persist: true})
	s := openStore(t, srv, Options{})
	ctx := context.Background()
	r1, err := s.Append(ctx, "acme", "", bodies(0, 10))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		if err := srv.Restart(); err != nil {
			t.Fatal(err)
		}
		r := appendUntil(t, s, "acme", fmt.Sprint("k", i), bodies(10+i, 1))
		if r.Epoch != r1.Epoch || r.First != r1.Last+1+uint64(i) {
			t.Fatalf("after restart %d: %+v, want seq %d in %s", i+1, r, r1.Last+1+uint64(i), r1.Epoch)
		}
	}
}

// A subscriber resuming from a seq Redis no longer holds in the same epoch
// is evidence of a rollback no relay saw: the tenant starts a new epoch.
func TestVerifyClientEvidence(t *testing.T) {
	srv := redistest.New(t, redistest.Options{})
	s := openStore(t, srv, Options{})
	ctx := context.Background()
	r0, err := s.Append(ctx, "acme", "", bodies(0, 10))
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Snapshot("old"); err != nil {
		t.Fatal(err)
	}
	r1, err := s.Append(ctx, "acme", "", bodies(10, 10))
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.RestartFrom("old"); err != nil {
		t.Fatal(err)
	}
	other := openStore(t, srv, Options{}) // knows nothing
	b, err := other.Verify(ctx, "acme", r0.Epoch, r0.Last)
	if err != nil {
		t.Fatal(err)
	}
	if b.Epoch != r0.Epoch || b.Last != r0.Last {
		t.Fatalf("a claim Redis holds changed it: %+v", b)
	}
	b, err = other.Verify(ctx, "acme", r1.Epoch, r1.Last)
	if err != nil {
		t.Fatal(err)
	}
	if b.Epoch == r1.Epoch || b.Last != 0 {
		t.Fatalf("a claim of seq %d where Redis holds %d: %+v; want a new epoch", r1.Last, r0.Last, b)
	}
	// A made-up seq where Redis never restarted below it is no evidence.
	r2, err := other.Append(ctx, "acme", "", bodies(30, 5))
	if err != nil || r2.Epoch != b.Epoch {
		t.Fatalf("append: %+v %v", r2, err)
	}
	if b3, err := openStore(t, srv, Options{}).Verify(ctx, "acme", r2.Epoch, r2.Last+1000); err != nil || b3.Epoch != r2.Epoch || b3.Last != r2.Last {
		t.Fatalf("a claim of seq %d in an epoch Redis served whole from its start: %+v %v; want nothing changed", r2.Last+1000, b3, err)
	}
	// An epoch the tenant never had is no evidence of anything.
	b2, err := other.Verify(ctx, "acme", "0123456789abcdef", 1e6)
	if err != nil {
		t.Fatal(err)
	}
	if b2.Epoch != b.Epoch {
		t.Errorf("a claim in a foreign epoch changed the epoch: %s then %s", b.Epoch, b2.Epoch)
	}
}

// A hung Redis (SIGSTOP) during an append: the answer must not say "not
// published", since the script runs when Redis wakes up. It says the
// outcome is unknown; a retry with the same Idempotency-Key then settles
// it, and the stream holds the batch once.
func TestHungAppendOutcomeUnknown(t *testing.T) {
	srv := redistest.New(t, redistest.Options{})
	s := openStore(t, srv, Options{})
	ctx := context.Background()
	if _, err := s.Append(ctx, "acme", "", bodies(0, 1)); err != nil {
		t.Fatal(err)
	}
	if err := srv.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	stopped := true
	defer func() {
		if stopped {
			srv.Signal(syscall.SIGCONT)
		}
	}()
	bs := bodies(1, 5)
	_, err := s.Append(ctx, "acme", "key-1", bs)
	if err == nil {
		t.Fatal("an append to a stopped Redis succeeded")
	}
	unknown := errors.Is(err, tlog.ErrOutcomeUnknown)
	if !unknown && !errors.Is(err, ErrUnavailable) {
		t.Fatalf("append to a hung Redis: %v; want outcome unknown or unavailable", err)
	}
	srv.Signal(syscall.SIGCONT)
	stopped = false
	check := openStore(t, srv, Options{})
	var held int64
	testkit.WaitFor(t, "Redis to answer", func() bool {
		n, err := check.rdb.XLen(ctx, check.streamKey("acme")).Result()
		held = n
		return err == nil
	})
	if !unknown && held != 1 {
		t.Fatalf("an append answered 'not published' (%v) was published: the stream holds %d", err, held)
	}
	t.Logf("hung append: %v; the stream then held %d events", err, held)
	r := appendUntil(t, s, "acme", "key-1", bs)
	if r.First != 2 || r.Last != 6 {
		t.Errorf("the retry: %+v, want seqs 2..6", r)
	}
	if unknown && held == 6 && !r.Duplicate {
		t.Errorf("the hung append ran, yet the retry was not answered as a duplicate: %+v", r)
	}
	n, err := check.rdb.XLen(ctx, check.streamKey("acme")).Result()
	if err != nil || n != 6 {
		t.Errorf("the stream holds %d events (%v), want 6: the batch exactly once", n, err)
	}
}

// A relay that only followed (its marks come from Pub/Sub) catches a
// restore too: after Redis restarts from a snapshot and a relay without
// memory appends past what the follower saw, the follower's catch-up read
// starts a new epoch instead of delivering the reused seqs.
func TestFollowerCatchesRollback(t *testing.T) {
	srv := redistest.New(t, redistest.Options{})
	pub := openStore(t, srv, Options{})
	sub := openStore(t, srv, Options{})
	ctx := context.Background()
	c := newCollector()
	f := newFollower(t, sub, c)
	f.Follow("acme")
	c.waitResets(t, "acme", 1)
	r0, err := pub.Append(ctx, "acme", "", bodies(0, 100))
	if err != nil {
		t.Fatal(err)
	}
	c.waitLast(t, "acme", r0.Epoch, 100)
	if err := srv.Snapshot("old"); err != nil {
		t.Fatal(err)
	}
	if _, err := pub.Append(ctx, "acme", "", bodies(100, 100)); err != nil {
		t.Fatal(err)
	}
	c.waitLast(t, "acme", r0.Epoch, 200)
	if err := srv.RestartFrom("old"); err != nil {
		t.Fatal(err)
	}
	fresh := openStore(t, srv, Options{})
	if _, err := fresh.Append(ctx, "acme", "", bodies(1000, 150)); err != nil {
		t.Fatal(err)
	}
	v := c.waitResets(t, "acme", 2)
	if v.epoch == r0.Epoch {
		t.Fatalf("after the restore the follower is still in %s", v.epoch)
	}
	// Seqs 151..200 were delivered once, before the restore, with the
	// events first given them; nothing past 200 of the old numbering was.
	lines := c.view("acme").lines
	for seq := uint64(151); seq <= 200; seq++ {
		if want := fmt.Sprintf(`"/p/%d"`, seq-1); !strings.Contains(lines[seq], want) {
			t.Errorf("seq %d: %s, want the event with path %s", seq, lines[seq], want)
		}
	}
	for seq := range lines {
		if seq > 200 {
			t.Errorf("delivered seq %d of the old numbering after the restore: %s", seq, lines[seq])
		}
	}
	c.check(t)
}
