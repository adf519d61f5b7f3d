package tlog

import (
	"sync"
	"time"
)

// Keys remembers one tenant's recent Idempotency-Keys and the answer the
// first request with each key got (PROTOCOL.md, Publish). A request claims
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

// Defaults for MemoryKeys: PROTOCOL.md promises at least the last 10,000
// keys or 10 minutes; HardMaxKeys bounds memory when a tenant sends more
// than that many keys in 10 minutes.
const (
	DefaultKeepKeys = 10_000
	DefaultKeyTTL   = 10 * time.Minute
	HardMaxKeys     = 100_000
)

// MemoryKeys is the in-memory Keys. A key is forgotten once it is both
// outside the last Keep keys and older than TTL, or beyond HardMax.
type MemoryKeys struct {
	keep, hardMax int
	ttl           time.Duration
	now           func() time.Time

	mu   sync.Mutex // guards m and fifo
	m    map[string]*keyEntry
	fifo []keyRef // answered keys, oldest first, from fifo[head]
	head int
}

type keyEntry struct {
	answer []byte
	done   chan struct{} // closed when answered or released
}

type keyRef struct {
	key string
	at  time.Time
}

// NewMemoryKeys returns an empty key store with the default bounds.
func NewMemoryKeys() *MemoryKeys {
	return &MemoryKeys{keep: DefaultKeepKeys, hardMax: HardMaxKeys, ttl: DefaultKeyTTL,
		now: time.Now, m: map[string]*keyEntry{}}
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
	return nil, nil, true
}

// Complete implements Keys.
func (k *MemoryKeys) Complete(key string, answer []byte) {
	k.mu.Lock()
	defer k.mu.Unlock()
	e, ok := k.m[key]
	if !ok || e.answer != nil {
		return
	}
	e.answer = answer
	close(e.done)
	now := k.now()
	k.fifo = append(k.fifo, keyRef{key, now})
	for n := len(k.fifo) - k.head; n > k.keep; n-- {
		old := k.fifo[k.head]
		if n <= k.hardMax && now.Sub(old.at) < k.ttl {
			break
		}
		delete(k.m, old.key)
		k.fifo[k.head] = keyRef{}
		k.head++
	}
	if k.head > len(k.fifo)/2 && k.head > 64 {
		k.fifo = append(k.fifo[:0:0], k.fifo[k.head:]...)
		k.head = 0
	}
}

// Release implements Keys.
func (k *MemoryKeys) Release(key string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if e, ok := k.m[key]; ok && e.answer == nil {
		delete(k.m, key)
		close(e.done)
	}
}

// Len returns the number of keys held (answered or claimed).
func (k *MemoryKeys) Len() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.m)
}
