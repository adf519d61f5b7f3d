package tlog

import (
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestKeysClaimCompleteRelease(t *testing.T) {
	k := NewMemoryKeys()
	ans, wait, claimed := k.Claim("a")
	if ans != nil || wait != nil || !claimed {
		t.Fatalf("first Claim = %q %v %v", ans, wait, claimed)
	}
	_, wait, claimed = k.Claim("a")
	if wait == nil || claimed {
		t.Fatalf("second Claim while pending: wait %v claimed %v", wait, claimed)
	}
	k.Complete("a", []byte("202"))
	<-wait
	if ans, _, claimed = k.Claim("a"); string(ans) != "202" || claimed {
		t.Errorf("Claim after Complete = %q %v", ans, claimed)
	}
	k.Claim("b")
	_, wait, _ = k.Claim("b")
	k.Release("b")
	<-wait
	if _, _, claimed = k.Claim("b"); !claimed {
		t.Error("a released key cannot be claimed again")
	}
	k.Release("b")
	k.Release("nope")
	k.Complete("nope", []byte("x"))
	if k.Len() != 1 {
		t.Errorf("Len = %d, want 1", k.Len())
	}
}

// TestKeysRetention: keys go only when outside the last keep AND older than
// the TTL, or beyond the hard maximum.
func TestKeysRetention(t *testing.T) {
	now := time.Unix(1000, 0)
	k := NewMemoryKeys()
	k.keep, k.hardMax, k.ttl = 3, 6, time.Minute
	k.now = func() time.Time { return now }
	add := func(name string) {
		if _, _, ok := k.Claim(name); !ok {
			t.Fatalf("cannot claim %s", name)
		}
		k.Complete(name, []byte(name))
	}
	for i := 0; i < 5; i++ {
		add(strconv.Itoa(i))
	}
	if k.Len() != 5 {
		t.Fatalf("young keys evicted: Len %d, want 5", k.Len())
	}
	now = now.Add(2 * time.Minute)
	add("5")
	if k.Len() != 3 {
		t.Fatalf("old keys beyond keep kept: Len %d, want 3", k.Len())
	}
	for _, gone := range []string{"0", "1", "2"} {
		if ans, _, _ := k.Claim(gone); ans != nil {
			t.Errorf("key %s still answered", gone)
		}
		k.Release(gone)
	}
	for i := 6; i < 12; i++ {
		add(strconv.Itoa(i))
	}
	if k.Len() != 6 {
		t.Errorf("hard maximum not kept: Len %d, want 6", k.Len())
	}
	if ans, _, _ := k.Claim("11"); string(ans) != "11" {
		t.Errorf("newest key lost: %q", ans)
	}
}

// TestKeysConcurrent: of many concurrent requests with one key, exactly one
// publishes; the others get its answer.
func TestKeysConcurrent(t *testing.T) {
	k := NewMemoryKeys()
	var published atomic.Int32
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				ans, wait, claimed := k.Claim("k")
				switch {
				case ans != nil:
					if string(ans) != "first" {
						t.Errorf("answer %q", ans)
					}
					return
				case claimed:
					published.Add(1)
					k.Complete("k", []byte("first"))
					return
				default:
					<-wait
				}
			}
		}()
	}
	wg.Wait()
	if published.Load() != 1 {
		t.Errorf("published %d times, want 1", published.Load())
	}
}
