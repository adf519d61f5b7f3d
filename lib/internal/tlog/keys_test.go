package tlog

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestKeysClaimCompleteRelease(t *testing.T) {
	k := NewKeys(nil)
	ans, wait, claimed := k.claim("a")
	if ans != (Appended{}) || wait != nil || !claimed {
		t.Fatalf("first claim = %v %v %v", ans, wait, claimed)
	}
	_, wait, claimed = k.claim("a")
	if wait == nil || claimed {
		t.Fatalf("second Claim while pending: wait %v claimed %v", wait, claimed)
	}
	k.Complete("a", Appended{First: 202, Last: 202})
	<-wait
	if ans, wait, claimed = k.claim("a"); ans.First != 202 || wait != nil || claimed {
		t.Errorf("claim after complete = %v %v %v", ans, wait, claimed)
	}
	k.claim("b")
	_, wait, _ = k.claim("b")
	k.release("b")
	<-wait
	if _, _, claimed = k.claim("b"); !claimed {
		t.Error("a released key cannot be claimed again")
	}
	k.release("b")
	k.release("nope")
	if k.len() != 1 {
		t.Errorf("len = %d, want 1", k.len())
	}
}

// TestKeysRetention: keys go only when outside the last keep AND older than
// the TTL, or beyond the hard maximum.
func TestKeysRetention(t *testing.T) {
	now := time.Unix(1000, 0)
	k := NewKeys(nil)
	k.keep, k.hardMax, k.ttl = 3, 6, time.Minute
	k.now = func() time.Time { return now }
	add := func(name string) {
		if _, _, ok := k.claim(name); !ok {
			t.Fatalf("cannot claim %s", name)
		}
		n, _ := strconv.Atoi(name)
		k.Complete(name, Appended{First: uint64(n) + 1})
	}
	for i := 0; i < 5; i++ {
		add(strconv.Itoa(i))
	}
	if k.len() != 5 {
		t.Fatalf("young keys evicted: Len %d, want 5", k.len())
	}
	now = now.Add(2 * time.Minute)
	add("5")
	if k.len() != 3 {
		t.Fatalf("old keys beyond keep kept: Len %d, want 3", k.len())
	}
	for _, gone := range []string{"0", "1", "2"} {
		if _, _, claimed := k.claim(gone); !claimed {
			t.Errorf("key %s still answered", gone)
		}
		k.release(gone)
	}
	for i := 6; i < 12; i++ {
		add(strconv.Itoa(i))
	}
	if k.len() != 6 {
		t.Errorf("hard maximum not kept: Len %d, want 6", k.len())
	}
	if ans, _, _ := k.claim("11"); ans.First != 12 {
		t.Errorf("newest key lost: %v", ans)
	}
}

// TestKeysConcurrent: of many concurrent batches with one key, exactly one
// publishes (and loads its bodies); the others get its answer, Replayed.
func TestKeysConcurrent(t *testing.T) {
	k := NewKeys(nil)
	var published, loaded atomic.Int32
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b := Batch{Key: "k", Load: func() ([][]byte, error) { loaded.Add(1); return bodies(1, 1), nil }}
			a, err := k.Append(context.Background(), b, func([][]byte) (Appended, error) {
				published.Add(1)
				return Appended{First: 7, Last: 7, Epoch: "e"}, nil
			})
			if err != nil || a.First != 7 || a.Epoch != "e" {
				t.Errorf("append = %v, %v", a, err)
			}
		}()
	}
	wg.Wait()
	if published.Load() != 1 || loaded.Load() != 1 {
		t.Errorf("published %d times, loaded %d, want 1", published.Load(), loaded.Load())
	}
}

// TestKeysAppendFailure: a batch that fails (to load or to publish) gives
// its key up, and a waiter gives up with its context.
func TestKeysAppendFailure(t *testing.T) {
	k := NewKeys(nil)
	ctx := context.Background()
	boom := errors.New("boom")
	fail := func([][]byte) (Appended, error) { return Appended{}, boom }
	ok := func([][]byte) (Appended, error) { return Appended{First: 1, Last: 1}, nil }
	if _, err := k.Append(ctx, Batch{Key: "k", Load: func() ([][]byte, error) { return nil, boom }}, ok); err != boom {
		t.Fatalf("a failed load: %v", err)
	}
	if _, err := k.Append(ctx, Batch{Key: "k"}, fail); err != boom {
		t.Fatalf("a failed publish: %v", err)
	}
	if a, err := k.Append(ctx, Batch{Key: "k"}, ok); err != nil || a.Replayed {
		t.Fatalf("the key after failures: %v %v, want a publish", a, err)
	}
	if a, _ := k.Append(ctx, Batch{Key: "k"}, fail); !a.Replayed || a.First != 1 {
		t.Fatalf("the repeat: %v, want the first answer", a)
	}
	// A repeat waiting on a batch in flight gives up with its context.
	if _, _, claimed := k.claim("busy"); !claimed {
		t.Fatal("claim failed")
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := k.Append(cctx, Batch{Key: "busy"}, ok); !errors.Is(err, context.Canceled) {
		t.Fatalf("a waiter whose context ended: %v", err)
	}
	k.release("busy")
}
