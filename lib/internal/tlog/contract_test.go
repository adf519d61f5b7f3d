package tlog_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/tl-sh/tl/lib/internal/disklog"
	"github.com/tl-sh/tl/lib/internal/redislog"
	"github.com/tl-sh/tl/lib/internal/redistest"
	"github.com/tl-sh/tl/lib/internal/tlog"
)

// backing is one kind of Log under the contract: open returns a fresh
// tenant's log; shared says the keys live in a store that every relay
// shares (Redis), which must load a batch's bodies before it knows whether
// its key is new.
type backing struct {
	name   string
	shared bool
	open   func(t *testing.T, tenant string) tlog.Log
}

// forEachBacking runs f against the memory log, a data directory
// (lib/internal/disklog) and a real Redis (lib/internal/redistest), each on
// its own store.
func forEachBacking(t *testing.T, f func(t *testing.T, b backing)) {
	t.Run("memory", func(t *testing.T) {
		f(t, backing{name: "memory", open: func(t *testing.T, _ string) tlog.Log {
			m := tlog.NewMemory(0, 0)
			t.Cleanup(func() { m.Close() })
			return m
		}})
	})
	t.Run("disk", func(t *testing.T) {
		s, err := disklog.OpenTL(t.TempDir(), disklog.TLOptions{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		f(t, backing{name: "disk", open: func(t *testing.T, tenant string) tlog.Log {
			l, err := s.Log(tenant)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { l.Close() })
			return l
		}})
	})
	t.Run("redis", func(t *testing.T) {
		srv := redistest.New(t, redistest.Options{})
		br, err := redislog.NewBroker(redislog.Options{URL: srv.URL()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { br.Close() })
		f(t, backing{name: "redis", shared: true, open: func(t *testing.T, tenant string) tlog.Log {
			l, err := br.Open(tenant)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { l.Close() })
			return l
		}})
	})
}

// events returns n bodies.
func events(n int) [][]byte {
	bs := make([][]byte, n)
	for i := range bs {
		bs[i] = []byte(`"tenant_id":"t","timestamp":1,"type":"click","path":"/` + strconv.Itoa(i) + `","metadata":{}}` + "\n")
	}
	return bs
}

// step is one Append of a contract case and what it must answer.
type step struct {
	key     string
	n       int   // events in the batch
	loadErr error // Load fails with it
	other   bool  // to another tenant's log
	// want: the seqs (0: no check), Replayed, the error.
	first, last uint64
	replayed    bool
	err         error
}

var errLoad = errors.New("the request body was refused")

// TestAppendContract: the Idempotency-Key semantics of tl-protocol(7), the
// same on every backing.
func TestAppendContract(t *testing.T) {
	cases := []struct {
		name  string
		steps []step
	}{
		{"no key publishes every time", []step{
			{n: 2, first: 1, last: 2}, {n: 2, first: 3, last: 4}}},
		{"a repeated key replays the first answer and publishes nothing", []step{
			{key: "k", n: 3, first: 1, last: 3},
			{key: "k", n: 3, first: 1, last: 3, replayed: true},
			{key: "k", n: 5, first: 1, last: 3, replayed: true}, // the first answer, whatever the batch
			{n: 1, first: 4, last: 4}}},
		{"keys are the log's own", []step{
			{key: "k", n: 2, first: 1, last: 2},
			{key: "k", n: 1, other: true, first: 1, last: 1},
			{key: "k", n: 2, first: 1, last: 2, replayed: true}}},
		{"a failed batch gives its key up", []step{
			{key: "k", n: 2, loadErr: errLoad, err: errLoad},
			{key: "k", n: 2, first: 1, last: 2},
			{key: "k", n: 2, first: 1, last: 2, replayed: true}}},
		{"distinct keys publish", []step{
			{key: "a", n: 1, first: 1, last: 1}, {key: "b", n: 1, first: 2, last: 2},
			{key: "a", n: 1, first: 1, last: 1, replayed: true}}},
	}
	forEachBacking(t, func(t *testing.T, bk backing) {
		for ci, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				tenant := fmt.Sprintf("c%d", ci)
				l, other := bk.open(t, tenant), bk.open(t, tenant+"-other")
				for i, s := range tc.steps {
					log := l
					if s.other {
						log = other
					}
					loads := 0
					a, err := log.Append(context.Background(), tlog.Batch{Key: s.key, Load: func() ([][]byte, error) {
						loads++
						return events(s.n), s.loadErr
					}})
					if !errors.Is(err, s.err) {
						t.Fatalf("step %d: error %v, want %v", i, err, s.err)
					}
					if err != nil {
						continue
					}
					if a.First != s.first || a.Last != s.last || a.Replayed != s.replayed {
						t.Fatalf("step %d: %+v, want seqs %d..%d replayed %v", i, a, s.first, s.last, s.replayed)
					}
					if a.Epoch == "" || a.Epoch != log.Epoch() {
						t.Fatalf("step %d: epoch %q, the log's is %q", i, a.Epoch, log.Epoch())
					}
					if s.replayed && loads != 0 && !bk.shared {
						t.Fatalf("step %d: a repeated key read its batch", i)
					}
				}
			})
		}
	})
}

// TestAppendConcurrentKey: of many concurrent batches with one key, one
// publishes and the others get its answer.
func TestAppendConcurrentKey(t *testing.T) {
	forEachBacking(t, func(t *testing.T, bk backing) {
		l := bk.open(t, "acme")
		var replayed atomic.Int32
		answers := make([]tlog.Appended, 16)
		var wg sync.WaitGroup
		for i := range answers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				a, err := l.Append(context.Background(), tlog.Batch{Key: "k", Bodies: events(3)})
				if err != nil {
					t.Error(err)
				}
				if a.Replayed {
					replayed.Add(1)
				}
				a.Replayed = false
				answers[i] = a
			}()
		}
		wg.Wait()
		if replayed.Load() != int32(len(answers)-1) {
			t.Fatalf("%d of %d replayed, want all but one", replayed.Load(), len(answers))
		}
		for _, a := range answers {
			if a != answers[0] || a.First != 1 || a.Last != 3 {
				t.Fatalf("answers differ: %+v", answers)
			}
		}
		if a, err := l.Append(context.Background(), tlog.Batch{Bodies: events(1)}); err != nil || a.First != 4 {
			t.Fatalf("the next batch: %+v %v, want seq 4: a repeat was published", a, err)
		}
	})
}

// TestAppendWaitsForKeyInFlight: a repeat of a batch still being published
// waits for its answer, or gives up with its context, publishing nothing.
// Redis decides in one script, so no repeat waits there: a batch whose
// context ended before it was sent publishes nothing and keeps no key.
func TestAppendWaitsForKeyInFlight(t *testing.T) {
	forEachBacking(t, func(t *testing.T, bk backing) {
		l := bk.open(t, "acme")
		if bk.shared {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			if _, err := l.Append(ctx, tlog.Batch{Key: "k", Bodies: events(2)}); !errors.Is(err, context.Canceled) {
				t.Fatalf("a batch whose context ended: %v, want context.Canceled", err)
			}
			if a, err := l.Append(context.Background(), tlog.Batch{Key: "k", Bodies: events(2)}); err != nil || a.Replayed || a.First != 1 {
				t.Fatalf("the key after a cancelled batch: %+v %v, want seqs 1..2 published", a, err)
			}
			return
		}
		loading, release := make(chan struct{}), make(chan struct{})
		firstDone := make(chan tlog.Appended)
		go func() {
			a, err := l.Append(context.Background(), tlog.Batch{Key: "k", Load: func() ([][]byte, error) {
				close(loading)
				<-release
				return events(2), nil
			}})
			if err != nil {
				t.Error(err)
			}
			firstDone <- a
		}()
		<-loading
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := l.Append(ctx, tlog.Batch{Key: "k", Bodies: events(2)}); !errors.Is(err, context.Canceled) {
			t.Fatalf("a repeat whose context ended: %v, want context.Canceled", err)
		}
		waiter := make(chan tlog.Appended)
		go func() {
			a, err := l.Append(context.Background(), tlog.Batch{Key: "k", Bodies: events(2)})
			if err != nil {
				t.Error(err)
			}
			waiter <- a
		}()
		close(release)
		first, repeat := <-firstDone, <-waiter
		if first.Replayed || !repeat.Replayed || first.First != repeat.First || first.Last != repeat.Last {
			t.Fatalf("first %+v, repeat %+v: want the repeat to replay the first", first, repeat)
		}
		if _, newest := l.Bounds(); newest != 2 {
			t.Fatalf("newest seq %d, want 2", newest)
		}
	})
}

// TestAppendClosed: a closed log refuses with ErrClosed.
func TestAppendClosed(t *testing.T) {
	forEachBacking(t, func(t *testing.T, bk backing) {
		l := bk.open(t, "acme")
		l.Close()
		if _, err := l.Append(context.Background(), tlog.Batch{Key: "k", Bodies: events(1)}); !errors.Is(err, tlog.ErrClosed) {
			t.Fatalf("append to a closed log: %v, want ErrClosed", err)
		}
	})
}

// TestBudgetLogKeys: the keys a memory log and a data directory keep with
// their batches are charged to the budget, forgotten oldest first when it
// is full (a retry then publishes again), and given back with the log.
func TestBudgetLogKeys(t *testing.T) {
	const limit = 256 << 10
	for _, bk := range []struct {
		name string
		open func(t *testing.T, b *tlog.Budget) tlog.Log
	}{
		{"memory", func(_ *testing.T, b *tlog.Budget) tlog.Log { return tlog.NewMemoryIn(b, 10, 1<<20) }},
		{"disk", func(t *testing.T, b *tlog.Budget) tlog.Log {
			s, err := disklog.OpenTL(t.TempDir(), disklog.TLOptions{Budget: b})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			l, err := s.Log("acme")
			if err != nil {
				t.Fatal(err)
			}
			return l
		}},
	} {
		t.Run(bk.name, func(t *testing.T) {
			b := tlog.NewBudget(limit)
			l := bk.open(t, b)
			ctx := context.Background()
			n := 0
			for ; b.Evicted() == 0; n++ {
				if _, err := l.Append(ctx, tlog.Batch{Key: "key-" + strconv.Itoa(n), Bodies: events(1)}); err != nil {
					t.Fatal(err)
				}
				if u := b.Used(); u > limit {
					t.Fatalf("after %d keys the budget holds %d, over %d", n, u, limit)
				}
			}
			if a, err := l.Append(ctx, tlog.Batch{Key: "key-0", Bodies: events(1)}); err != nil || a.Replayed {
				t.Fatalf("the oldest key after an eviction: %+v %v, want a publish", a, err)
			}
			if a, err := l.Append(ctx, tlog.Batch{Key: "key-" + strconv.Itoa(n-1), Bodies: events(1)}); err != nil || !a.Replayed {
				t.Fatalf("the newest key: %+v %v, want a replay", a, err)
			}
			l.Close()
			if u := b.Used(); u != 0 {
				t.Fatalf("after Close the budget holds %d", u)
			}
		})
	}
}
