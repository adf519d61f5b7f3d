package auth

import (
	"fmt"
	"os"
	"sync"
	"sync/atomic"
)

// Store is the relay's live token table: read from a file, swapped whole by
// Reload (the relay calls it on SIGHUP), read without locks by every request.
//
// A nil *Store means authentication is off: it allows everything. The relay
// can then call the same methods whether or not --tokens was given.
type Store struct {
	path  string
	table atomic.Pointer[Table]

	// mu serialises Reload and guards changed.
	mu      sync.Mutex
	changed chan struct{} // closed (and replaced) by each successful Reload
}

// Open reads the token file at path.
func Open(path string) (*Store, error) {
	s := &Store{path: path, changed: make(chan struct{})}
	t, err := readFile(path)
	if err != nil {
		return nil, err
	}
	s.table.Store(t)
	return s, nil
}

// NewStore returns a Store serving t, with no file behind it (Reload keeps t).
func NewStore(t *Table) *Store {
	s := &Store{changed: make(chan struct{})}
	s.table.Store(t)
	return s
}

func readFile(path string) (*Table, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("token file: %w", err)
	}
	return Parse(path, data)
}

// Reload reads the file again and swaps the new table in atomically: a
// request sees the old table or the new one, never a mix. On any error the
// old table stays in force (a typo in the file must not lock everyone out or
// let everyone in). After a successful swap the channel last returned by
// Changed is closed, so live subscribers re-check themselves with Allowed.
// It returns the number of tokens now in force.
func (s *Store) Reload() (int, error) {
	if s == nil {
		return 0, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.table.Load()
	if s.path != "" {
		nt, err := readFile(s.path)
		if err != nil {
			return t.Len(), err
		}
		t = nt
	}
	s.table.Store(t)
	close(s.changed)
	s.changed = make(chan struct{})
	return t.Len(), nil
}

// Replace swaps in t (as Reload does with the file's contents).
func (s *Store) Replace(t *Table) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.table.Store(t)
	close(s.changed)
	s.changed = make(chan struct{})
}

// Changed returns a channel closed at the next successful reload. A
// subscriber's goroutine waits on it beside its other work, then calls
// Allowed and, if no longer allowed, closes its connection (WebSocket 1008).
// A nil Store never changes.
func (s *Store) Changed() <-chan struct{} {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.changed
}

// Authorize checks token against the current table (see Table.Authorize).
// A nil Store allows everything and returns a zero ID.
func (s *Store) Authorize(token, tenant string, scope Scope) (ID, error) {
	if s == nil {
		return ID{}, nil
	}
	return s.table.Load().Authorize(token, tenant, scope)
}

// Allowed reports whether id may still use scope on tenant under the current
// table. A nil Store allows everything.
func (s *Store) Allowed(id ID, tenant string, scope Scope) bool {
	if s == nil {
		return true
	}
	return s.table.Load().Allowed(id, tenant, scope)
}

// Len returns the number of tokens in force (0 for a nil Store).
func (s *Store) Len() int {
	if s == nil {
		return 0
	}
	return s.table.Load().Len()
}
