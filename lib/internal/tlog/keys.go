package tlog

import (
	"context"
	"sync"
	"time"
)

// Defaults for a key store: tl-protocol(7) promises at least the last 10,000
// keys or 10 minutes; HardMaxKeys bounds memory when a tenant sends more
// than that many keys in 10 minutes.
const (
	DefaultKeepKeys = 10_000
	DefaultKeyTTL   = 10 * time.Minute
	HardMaxKeys     = 100_000
)

// keyOverhead is what a key costs besides its bytes: its map entry, its
// keyEntry (the answer included), its place in the FIFO and the
// allocator's rounding (measured: TestBudgetChargeCoversHeap).
const keyOverhead = 256

// keysOverhead is the store itself: keys, its map and Account.
const keysOverhead = 512

// Keys remembers one tenant's recent Idempotency-Keys and the answer the
// first batch with each got (tl-protocol(7), Idempotency): the memory log
// and a data directory (lib/internal/disklog) keep theirs in one. A batch claims its key before
// publishing, so two concurrent batches with the same key publish once. A
// key is forgotten once it is both outside the last keep keys and older
// than ttl, or beyond hardMax, or when the relay's memory budget takes it
// back (oldest first). Safe for concurrent use.
type Keys struct {
	keep, hardMax int
	ttl           time.Duration
	now           func() time.Time
	acct          *Account // nil without a budget

	mu     sync.Mutex // guards m, fifo, head, held and closed
	m      map[string]*keyEntry
	fifo   []keyRef // answered keys, oldest first, from fifo[head]
	head   int
	held   int64 // bytes charged to acct
	closed bool
}

type keyEntry struct {
	answer Appended
	done   chan struct{} // closed when answered or released; nil once answered
}

// keyCost is what a key with its answer is charged.
func keyCost(key string) int64 { return int64(len(key) + keyOverhead) }

type keyRef struct {
	key string
	at  time.Time
}

// NewKeys returns an empty key store with the default bounds, charging
// budget b (nil: none) for the keys and answers held. Call Close when the
// tenant goes.
func NewKeys(b *Budget) *Keys {
	k := &Keys{keep: DefaultKeepKeys, hardMax: HardMaxKeys, ttl: DefaultKeyTTL,
		now: time.Now, m: map[string]*keyEntry{}}
	k.acct = b.Join(keysOverhead, k.evict)
	k.held = keysOverhead
	return k
}

// Append publishes batch b through publish, unless its key is held: then
// it returns the first answer (Replayed), after waiting for it (or ctx)
// while the first batch is in flight. A failed publish gives the key up.
// A nil store keeps no key: every batch is published.
func (k *Keys) Append(ctx context.Context, b Batch, publish func([][]byte) (Appended, error)) (Appended, error) {
	if k == nil {
		b.Key = ""
	}
	for b.Key != "" {
		answer, wait, claimed := k.claim(b.Key)
		if claimed {
			break
		}
		if wait == nil {
			answer.Replayed = true
			return answer, nil
		}
		select {
		case <-wait:
		case <-ctx.Done():
			return Appended{}, ctx.Err()
		}
	}
	bodies, err := b.Events()
	var a Appended
	if err == nil {
		a, err = publish(bodies)
	}
	if b.Key != "" {
		if err != nil {
			k.release(b.Key)
		} else {
			k.Complete(b.Key, a)
		}
	}
	return a, err
}

// claim looks key up. It returns the stored answer when the key was
// answered; else, when another batch holds the key, a channel closed when
// that batch completes or releases it (claim again then); else it claims
// the key for the caller (claimed true), who must call complete or
// release.
func (k *Keys) claim(key string) (answer Appended, wait <-chan struct{}, claimed bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if e, ok := k.m[key]; ok {
		return e.answer, e.done, false
	}
	k.m[key] = &keyEntry{done: make(chan struct{})}
	k.charge(keyCost(key))
	return Appended{}, nil, true
}

// charge adds delta to what the keys hold (nothing once closed). k.mu is
// held.
func (k *Keys) charge(delta int64) {
	if k.closed {
		return
	}
	k.held += delta
	k.acct.Charge(delta)
}

// Complete stores the answer for a claimed key. A key may also be given
// with its answer unclaimed: a backing that keeps keys with its batches
// reads them back so at start-up.
func (k *Keys) Complete(key string, answer Appended) {
	k.mu.Lock()
	e, ok := k.m[key]
	if !ok {
		e = &keyEntry{}
		k.m[key] = e
		k.charge(keyCost(key))
	} else if e.done == nil {
		k.mu.Unlock()
		return
	} else {
		close(e.done)
	}
	e.answer = answer
	e.done = nil // waiters hold it; answered, the key needs it no more
	now := k.now()
	k.fifo = append(k.fifo, keyRef{key, now})
	for n := len(k.fifo) - k.head; n > k.keep; n-- {
		old := k.fifo[k.head]
		if n <= k.hardMax && now.Sub(old.at) < k.ttl {
			break
		}
		k.forgetOldest()
	}
	k.compact()
	k.mu.Unlock()
	k.acct.Settle()
}

// forgetOldest forgets the oldest answered key. k.mu is held.
func (k *Keys) forgetOldest() {
	old := k.fifo[k.head]
	if _, ok := k.m[old.key]; ok {
		k.charge(-keyCost(old.key))
		delete(k.m, old.key)
	}
	k.fifo[k.head] = keyRef{}
	k.head++
}

// compact lets go of the FIFO's forgotten front. k.mu is held.
func (k *Keys) compact() {
	if k.head > len(k.fifo)/2 && k.head > 64 {
		k.fifo = append(k.fifo[:0:0], k.fifo[k.head:]...)
		k.head = 0
	}
}

// evict gives the budget back at least want bytes if it can, forgetting
// the oldest answered keys (a key being claimed belongs to a request in
// flight and stays).
func (k *Keys) evict(want int64) int64 {
	k.mu.Lock()
	defer k.mu.Unlock()
	before := k.held
	for before-k.held < want && k.head < len(k.fifo) {
		k.forgetOldest()
	}
	if k.head == len(k.fifo) {
		k.fifo, k.head = nil, 0
	} else {
		k.compact()
	}
	return before - k.held
}

// release gives up a claimed key without an answer (the batch failed, so
// a retry must publish).
func (k *Keys) release(key string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if e, ok := k.m[key]; ok && e.done != nil {
		delete(k.m, key)
		close(e.done)
		k.charge(-keyCost(key))
	}
}

// Close gives back to the budget all the keys held; the store must not be
// used after it. Safe to call more than once.
func (k *Keys) Close() {
	k.mu.Lock()
	if k.closed {
		k.mu.Unlock()
		return
	}
	k.m, k.fifo, k.head = map[string]*keyEntry{}, nil, 0
	k.charge(keysOverhead - k.held) // Leave gives back the fixed part
	k.closed = true
	k.mu.Unlock()
	k.acct.Leave()
}

// len returns the number of keys held (answered or claimed).
func (k *Keys) len() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.m)
}
