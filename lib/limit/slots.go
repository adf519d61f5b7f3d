package limit

import (
	"fmt"
	"sync"
)

// Slots counts live subscribers, per key (the tenant) and in total, and
// refuses one over either limit. A limit of 0 is no limit; a nil *Slots
// refuses nothing.
type Slots struct {
	perKey, total int

	mu    sync.Mutex     // guards n and byKey
	n     int            // slots held in total
	byKey map[string]int // slots held per key (no entry when 0)
}

// NewSlots returns slots for at most perKey subscribers per key and total
// in all (0: unlimited).
func NewSlots(perKey, total int) *Slots {
	return &Slots{perKey: perKey, total: total, byKey: map[string]int{}}
}

// Acquire takes a slot for key, or says which limit is reached. The caller
// must call release exactly once; extra calls do nothing.
func (s *Slots) Acquire(key string) (release func(), err error) {
	if s == nil {
		return func() {}, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.total > 0 && s.n >= s.total {
		return nil, fmt.Errorf("the relay already serves %d subscribers (its limit)", s.total)
	}
	if s.perKey > 0 && s.byKey[key] >= s.perKey {
		return nil, fmt.Errorf("tenant %q already has %d subscribers (its limit)", key, s.perKey)
	}
	s.n++
	s.byKey[key]++
	var once sync.Once
	return func() { once.Do(func() { s.release(key) }) }, nil
}

func (s *Slots) release(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.n--
	if s.byKey[key]--; s.byKey[key] == 0 {
		delete(s.byKey, key)
	}
}

// InUse returns the slots held in total and for key.
func (s *Slots) InUse(key string) (total, forKey int) {
	if s == nil {
		return 0, 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n, s.byKey[key]
}
