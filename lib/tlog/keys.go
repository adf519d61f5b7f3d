package tlog

import (
	"sync"
	"time"
)

// Keys remembers one tenant's recent Idempotency-Keys and the answer the
// first request with each key got (tl-protocol(7), Publish). A request claims
// its key before publishing, so two concurrent requests with the same key
// publish once. Safe for concurrent use.
type Keys interface {
	// Claim looks key up. It returns the stored answer when the key was
	// answered; else, when another request holds the key, a channel closed
	// when that request completes or releases it (claim again then); else
	// it claims the key for the caller (claimed true), who must call
	// Complete or Release.
	Claim(key string) (answer []byte, wait <-chan struct{}, claimed bool)
	// Complete stores the answer for a claimed key.
	Complete(key string, answer []byte)
	// Release gives up a claimed key without an answer (the request
	// failed, so a retry must publish).
	Release(key string)
}

// Defaults for MemoryKeys: tl-protocol(7) promises at least the last 10,000
// keys or 10 minutes; HardMaxKeys bounds memory when a tenant sends more
// than that many keys in 10 minutes.
const (
	DefaultKeepKeys = 10_000
	DefaultKeyTTL   = 10 * time.Minute
	HardMaxKeys     = 100_000
)

// keyOverhead is what a key costs besides its bytes and its answer's: its
// map entry, its keyEntry, its place in the FIFO and the allocator's
// rounding (measured: TestKeysChargeCoversHeap).
const keyOverhead = 256

// keysOverhead is the store itself: MemoryKeys, its map and Account.
const keysOverhead = 512

// MemoryKeys is the in-memory Keys. A key is forgotten once it is both
// outside the last Keep keys and older than TTL, or beyond HardMax, or
// when the relay's memory budget takes it back (oldest first).
type MemoryKeys struct {
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
	answer []byte
	done   chan struct{} // closed when answered or released; then nil
}

// keyCost is what a key with its answer is charged.
func keyCost(key string, answer []byte) int64 {
	return int64(len(key) + len(answer) + keyOverhead)
}

type keyRef struct {
	key string
	at  time.Time
}

// NewMemoryKeys returns an empty key store with the default bounds.
func NewMemoryKeys() *MemoryKeys { return NewMemoryKeysIn(nil) }

// NewMemoryKeysIn is NewMemoryKeys charging budget b (nil: none) for the
// keys and answers held. Call Close when the tenant goes.
func NewMemoryKeysIn(b *Budget) *MemoryKeys {
	k := &MemoryKeys{keep: DefaultKeepKeys, hardMax: HardMaxKeys, ttl: DefaultKeyTTL,
		now: time.Now, m: map[string]*keyEntry{}}
	k.acct = b.Join(keysOverhead, k.evict)
	k.held = keysOverhead
	return k
}

// Claim implements Keys.
func (k *MemoryKeys) Claim(key string) ([]byte, <-chan struct{}, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if e, ok := k.m[key]; ok {
		if e.answer != nil {
			return e.answer, nil, false
		}
		return nil, e.done, false
	}
	k.m[key] = &keyEntry{done: make(chan struct{})}
	k.charge(keyCost(key, nil))
	return nil, nil, true
}

// charge adds delta to what the keys hold (nothing once closed). k.mu is
// held.
func (k *MemoryKeys) charge(delta int64) {
	if k.closed {
		return
	}
	k.held += delta
	k.acct.Charge(delta)
}

// Complete implements Keys.
func (k *MemoryKeys) Complete(key string, answer []byte) {
	k.mu.Lock()
	e, ok := k.m[key]
	if !ok || e.answer != nil {
		k.mu.Unlock()
		return
	}
	e.answer = answer
	close(e.done)
	e.done = nil // waiters hold it; answered, the key needs it no more
	k.charge(int64(len(answer)))
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
func (k *MemoryKeys) forgetOldest() {
	old := k.fifo[k.head]
	if e, ok := k.m[old.key]; ok {
		k.charge(-keyCost(old.key, e.answer))
		delete(k.m, old.key)
	}
	k.fifo[k.head] = keyRef{}
	k.head++
}

// compact lets go of the FIFO's forgotten front. k.mu is held.
func (k *MemoryKeys) compact() {
	if k.head > len(k.fifo)/2 && k.head > 64 {
		k.fifo = append(k.fifo[:0:0], k.fifo[k.head:]...)
		k.head = 0
	}
}

// evict gives the budget back at least want bytes if it can, forgetting
// the oldest answered keys (a key being claimed belongs to a request in
// flight and stays).
func (k *MemoryKeys) evict(want int64) int64 {
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

// Release implements Keys.
func (k *MemoryKeys) Release(key string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if e, ok := k.m[key]; ok && e.answer == nil {
		delete(k.m, key)
		close(e.done)
		k.charge(-keyCost(key, nil))
	}
}

// Close gives back to the budget all the keys held; the store must not be
// used after it. Safe to call more than once.
func (k *MemoryKeys) Close() error {
	k.mu.Lock()
	if k.closed {
		k.mu.Unlock()
		return nil
	}
	k.m, k.fifo, k.head = map[string]*keyEntry{}, nil, 0
	k.charge(keysOverhead - k.held) // Leave gives back the fixed part
	k.closed = true
	k.mu.Unlock()
	k.acct.Leave()
	return nil
}

// Len returns the number of keys held (answered or claimed).
func (k *MemoryKeys) Len() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.m)
}
