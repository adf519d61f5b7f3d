package limit

import "sync"

// Refusal says why Budget.Reserve refused.
type Refusal int

// The answers of Budget.Reserve.
const (
	Granted   Refusal = iota
	OverTotal         // the whole budget is taken: wait for others to finish
	OverKey           // the key's share is taken: wait for the key's others
)

// Budget bounds bytes held at once, in all and per key (the tenant): the
// relay's memory of request bodies in flight. Reservations are all or
// nothing, and every reservation must be released exactly once. Safe for
// concurrent use; holds its lock only for a few additions.
//
// A nil *Budget grants everything.
type Budget struct {
	total, perKey int64

	mu    sync.Mutex       // guards used and byKey
	used  int64            // bytes reserved in all
	byKey map[string]int64 // bytes reserved by key; a key at 0 is deleted
}

// NewBudget returns a budget of total bytes, of which one key may hold at
// most perKey (perKey <= 0 or above total means total).
func NewBudget(total, perKey int64) *Budget {
	if perKey <= 0 || perKey > total {
		perKey = total
	}
	return &Budget{total: total, perKey: perKey, byKey: map[string]int64{}}
}

// Limits returns the budget's bounds: in all, and per key.
func (b *Budget) Limits() (total, perKey int64) {
	if b == nil {
		return 0, 0
	}
	return b.total, b.perKey
}

// Reserve takes n more bytes for key, if both the whole budget and key's
// share have room for them; else it takes nothing and says which was full.
func (b *Budget) Reserve(key string, n int64) Refusal {
	if b == nil || n <= 0 {
		return Granted
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	k := b.byKey[key]
	switch {
	case k+n > b.perKey:
		return OverKey
	case b.used+n > b.total:
		return OverTotal
	}
	b.byKey[key] = k + n
	b.used += n
	return Granted
}

// Release gives back n bytes that key reserved.
func (b *Budget) Release(key string, n int64) {
	if b == nil || n <= 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	k := b.byKey[key] - n
	if k <= 0 {
		// Never below zero, even if a caller released too much: a
		// bookkeeping slip must not grow the budget.
		delete(b.byKey, key)
	} else {
		b.byKey[key] = k
	}
	b.used = max(0, b.used-n)
}

// Used returns the bytes reserved in all and by key (for tests and metrics).
func (b *Budget) Used(key string) (total, byKey int64) {
	if b == nil {
		return 0, 0
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used, b.byKey[key]
}

// Keys returns the number of keys holding a reservation (for tests: a key
// that released everything holds no memory in the budget either).
func (b *Budget) Keys() int {
	if b == nil {
		return 0
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.byKey)
}
