package tlog

import (
	"slices"
	"sync"
	"sync/atomic"
)

// Budget is one bound, shared by every tenant of a relay, on the bytes that
// histories (memory logs, the hot caches of a data directory) and
// Idempotency-Keys hold in memory. Each holder joins it as an Account and
// charges what it allocates; when the total passes the limit, the holders
// holding the most give back their oldest bytes first, until the total is
// a little under the limit again (so that the next appends do not each
// have to evict).
//
// The hot path costs two atomic adds and a load: an append takes no lock of
// the budget unless it finds the total over the limit, and then only the
// budget's own, while it evicts.
type Budget struct {
	limit int64
	// slack is how far under the limit a reclaim brings the total, so
	// that a budget at its limit reclaims once per slack bytes appended,
	// not at every append.
	slack int64

	used    atomic.Int64 // sum of the accounts' held bytes
	evicted atomic.Int64 // bytes reclaimed since the start, for metrics
	// retryAt is the total under which a reclaim that found nothing to
	// evict is not tried again (0: none pending), so that a budget full
	// of what cannot be evicted costs a scan per slack bytes charged, not
	// one per append.
	retryAt atomic.Int64

	// mu guards accounts and scratch, and serialises reclaims. A reclaim
	// takes holders' locks under it: a holder never takes it while
	// holding its own lock.
	mu       sync.Mutex
	accounts map[*Account]struct{}
	scratch  []sized
}

// budgetSlackDiv sets the slack to 1/32 of the limit: a full budget then
// reclaims about every 3% of its size appended, which keeps the scan of
// the accounts rare, and leaves at least 97% of it in use.
const budgetSlackDiv = 32

// NewBudget returns a budget of limit bytes (limit > 0).
func NewBudget(limit int64) *Budget {
	return &Budget{limit: limit, slack: limit / budgetSlackDiv, accounts: map[*Account]struct{}{}}
}

// Limit returns the budget's bound in bytes.
func (b *Budget) Limit() int64 { return b.limit }

// Used returns the bytes charged now. It may exceed the limit while
// appends are in flight: each evicts before it returns.
func (b *Budget) Used() int64 { return b.used.Load() }

// Evicted returns the bytes reclaimed since the budget was made.
func (b *Budget) Evicted() int64 { return b.evicted.Load() }

// Account is one holder's share of a budget. A nil *Account (no budget)
// does nothing.
type Account struct {
	b     *Budget
	held  atomic.Int64
	fixed int64 // charged for as long as the holder lives: never evictable
	evict func(want int64) (freed int64)
}

// Join adds a holder and charges it fixed bytes for itself (its structs),
// which only Leave gives back. evict must give back at least want bytes if it can,
// oldest first, under the holder's own lock, uncharge them (Charge) and
// return how many it freed; it must not reclaim, join or leave. A nil
// budget returns a nil Account.
func (b *Budget) Join(fixed int64, evict func(want int64) (freed int64)) *Account {
	if b == nil {
		return nil
	}
	a := &Account{b: b, fixed: fixed, evict: evict}
	b.mu.Lock()
	b.accounts[a] = struct{}{}
	b.mu.Unlock()
	a.Charge(fixed)
	return a
}

// Charge charges delta bytes (negative: gives them back). The holder calls
// it under its own lock, so that held is exact for the holder.
func (a *Account) Charge(delta int64) {
	if a == nil || delta == 0 {
		return
	}
	a.held.Add(delta)
	a.b.used.Add(delta)
}

// Settle reclaims when the budget is over its limit. The holder calls it
// after releasing its lock.
func (a *Account) Settle() {
	if a == nil {
		return
	}
	if u := a.b.used.Load(); u <= a.b.limit || u < a.b.retryAt.Load() {
		return
	}
	a.b.reclaim()
}

// Leave takes the holder out of the budget, giving back anything it still
// holds (a closing holder uncharges all it held first, under its lock).
// Called once, without the holder's lock.
func (a *Account) Leave() {
	if a == nil {
		return
	}
	a.b.mu.Lock()
	delete(a.b.accounts, a)
	a.b.mu.Unlock()
	a.b.used.Add(-a.held.Swap(0))
}

// sized is an account and what it held beyond its fixed charge when a
// reclaim looked.
type sized struct {
	a    *Account
	held int64
}

// reclaim evicts until the total is under the limit by the slack: from the
// accounts holding the most first, bringing the largest down to a common
// level (water-filling), so that a small holder loses nothing while a
// larger one has more than it.
func (b *Budget) reclaim() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for b.used.Load() > b.limit {
		need := b.used.Load() - (b.limit - b.slack)
		if b.evictTop(need) == 0 {
			// Nothing evictable (tenants' fixed charges, keys of
			// requests in flight): try again once more is charged.
			b.retryAt.Store(b.used.Load() + b.slack)
			return
		}
	}
	b.retryAt.Store(0)
}

// evictTop frees about need bytes from the largest accounts; b.mu is held.
func (b *Budget) evictTop(need int64) (freed int64) {
	s := b.scratch[:0]
	for a := range b.accounts {
		if h := a.held.Load() - a.fixed; h > 0 {
			s = append(s, sized{a, h})
		}
	}
	slices.SortFunc(s, func(x, y sized) int {
		switch {
		case x.held > y.held:
			return -1
		case x.held < y.held:
			return 1
		}
		return 0
	})
	// The level: the k largest brought down to it free need bytes.
	var sum, level int64
	k := 0
	for k < len(s) {
		sum += s[k].held
		k++
		next := int64(0)
		if k < len(s) {
			next = s[k].held
		}
		if sum-int64(k)*next >= need {
			level = max((sum-need)/int64(k), next)
			break
		}
	}
	for i := 0; i < k && freed < need; i++ {
		want := min(s[i].held-level, need-freed)
		if want <= 0 {
			continue
		}
		f := s[i].a.evict(want)
		freed += f
	}
	clear(s)
	b.scratch = s[:0]
	b.evicted.Add(freed)
	return freed
}
