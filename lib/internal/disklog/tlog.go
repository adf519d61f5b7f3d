package disklog

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/tl-sh/tl/lib/event"
	"github.com/tl-sh/tl/lib/internal/tlog"
)

// This file is the data directory as a relay backing: OpenTL opens a
// TLStore whose tenants are tlog.Logs (TLog), as lib/internal/redislog's
// Broker does for Redis. Each tenant's newest lines stay in a hot cache in memory
// (a tlog.NewCache), so live subscribers (the common case) share the lines
// in memory and never touch the disk; a reader further behind reads the
// files. The Idempotency-Keys of its batches are a tlog.Keys, filled at
// start-up with those written on disk.

// The hot cache is sized to hold a few seconds of a busy tenant.
const (
	hotEvents = 16 << 10
	hotBytes  = 8 << 20
)

// TLOptions tune a data directory opened by OpenTL (see Options).
type TLOptions struct {
	MaxEvents     int   // per tenant (<= 0: tlog.DefaultMaxEvents)
	MaxBytes      int64 // per tenant (<= 0: tlog.DefaultMaxBytes)
	MaxTotalBytes int64 // the whole directory (0: no cap)
	// Budget, when set, bounds the hot caches with the relay's other
	// holders: an evicted line is read from the files again.
	Budget       *tlog.Budget
	MaxOpenFiles int // segment and acked files kept open across tenants (0: sized from RLIMIT_NOFILE)
	Logger       *slog.Logger
}

// TLStore is a data directory holding every tenant's history as a
// tlog.Log, so that history and seq numbering survive restarts and
// crashes.
type TLStore struct {
	store     *Store
	hotEvents int
	hotBytes  int
	budget    *tlog.Budget

	mu      sync.RWMutex // guards tenants and each tlTenant's refs
	tenants map[string]*tlTenant
}

// tlTenant is what the open handles of one tenant share.
type tlTenant struct {
	disk *Log
	hot  *tlog.Memory // the newest lines, fed in seq order after each fsync
	keys *tlog.Keys   // recent Idempotency-Keys, starting with those on disk
	refs int          // open handles; the cache and keys go with the last
}

// OpenTL opens (or creates) the data directory dir, recovering every
// tenant's log in it, for a relay: see TLStore.
func OpenTL(dir string, o TLOptions) (*TLStore, error) {
	if o.MaxEvents <= 0 {
		o.MaxEvents = tlog.DefaultMaxEvents
	}
	if o.MaxBytes <= 0 {
		o.MaxBytes = tlog.DefaultMaxBytes
	}
	s := &TLStore{
		hotEvents: min(o.MaxEvents, hotEvents),
		hotBytes:  int(min(o.MaxBytes, hotBytes)),
		budget:    o.Budget,
		tenants:   map[string]*tlTenant{},
	}
	st, err := Open(dir, Options{
		MaxEvents:     o.MaxEvents,
		MaxBytes:      o.MaxBytes,
		MaxTotalBytes: o.MaxTotalBytes,
		MaxOpenFiles:  o.MaxOpenFiles,
		OnCommit:      s.onCommit,
		Logger:        o.Logger,
	})
	if err != nil {
		return nil, err
	}
	s.store = st
	return s, nil
}

// Failed returns the tenants stopped by a failed write or fsync (they take
// no more events until a restart), each with what failed.
func (s *TLStore) Failed() map[string]string { return s.store.Failed() }

// OpenFiles returns how many segment and acked files are open across tenants.
func (s *TLStore) OpenFiles() int { return s.store.OpenFiles() }

// Tenants returns the tenants with a history on disk.
func (s *TLStore) Tenants() []string { return s.store.Tenants() }

// Log opens a handle on the tenant's log. Handles of one tenant share its
// history and hot cache; each is closed on its own.
func (s *TLStore) Log(tenant string) (*TLog, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.tenants[tenant]
	if t == nil {
		dl, err := s.store.Log(tenant)
		if err != nil {
			if errors.Is(err, ErrClosed) {
				return nil, tlog.ErrClosed
			}
			return nil, err
		}
		_, newest := dl.Bounds()
		t = &tlTenant{disk: dl, hot: tlog.NewCache(s.budget, s.hotEvents, s.hotBytes, dl.Epoch(), newest+1),
			keys: tlog.NewKeys(s.budget)}
		// The keys written with the batches found on disk answer
		// retries across a restart.
		for _, k := range dl.TakeKeys() {
			t.keys.Complete(k.Key, tlog.Appended{First: k.First, Last: k.Last, Epoch: dl.Epoch()})
		}
		s.tenants[tenant] = t
	}
	t.refs++
	return &TLog{store: s, tenant: tenant, t: t}, nil
}

// onCommit feeds each durable batch to its tenant's hot cache, in seq
// order; only then do subscribers see it, so nothing a crash could still
// take away is ever delivered. The lines are the records just written
// (delivery lines, seq included), shared without a copy. A tenant without
// open handles has no cache (the next TLStore.Log starts one where the disk
// is).
func (s *TLStore) onCommit(tenant string, first uint64, lines [][]byte) {
	s.mu.RLock()
	t := s.tenants[tenant]
	s.mu.RUnlock()
	if t == nil {
		return
	}
	// The lines alias the request's buffer of records: charge it all
	// (headers and the encoder's margin included).
	size := 0
	for _, line := range lines {
		size += len(line) + tlog.SeqOverhead + headerSize
	}
	t.hot.Feed(first, lines, size)
}

// release drops a handle on t; the last one takes the hot cache and keys
// with it.
func (s *TLStore) release(tenant string, t *tlTenant) {
	s.mu.Lock()
	last := false
	if s.tenants[tenant] == t {
		t.refs--
		if t.refs == 0 {
			delete(s.tenants, tenant)
			// A tenant that only ever had readers leaves nothing behind
			// (so a spray of made-up tenant names costs no memory); one
			// with a history keeps no file open.
			s.store.Forget(tenant)
			last = true
		}
	}
	s.mu.Unlock()
	if last {
		t.close()
	}
}

// close gives back the memory of the tenant's hot cache and keys.
func (t *tlTenant) close() {
	t.hot.Close()
	t.keys.Close()
}

// Close closes every log and the directory. Safe to call more than once.
func (s *TLStore) Close() error {
	s.mu.Lock()
	tenants := s.tenants
	s.tenants = map[string]*tlTenant{}
	s.mu.Unlock()
	for _, t := range tenants {
		t.close()
	}
	return s.store.Close()
}

// TLog is a handle on a tenant's tlog.Log kept in a data directory: Append
// returns once the batch is on disk (fsync'd, shared with concurrent
// appends), the newest lines are served from memory and older ones from
// disk.
type TLog struct {
	store  *TLStore
	tenant string
	t      *tlTenant
	closed atomic.Bool
}

// Append implements tlog.Log: it returns once the bodies are durable. The
// key is written with the batch, atomically, so it outlives a restart
// exactly when the batch does (TLStore.Log reads it back).
func (d *TLog) Append(ctx context.Context, b tlog.Batch) (tlog.Appended, error) {
	return d.t.keys.Append(ctx, b, func(bodies [][]byte) (tlog.Appended, error) {
		return d.append(bodies, b.Key)
	})
}

// append writes bodies and key, as Append does.
func (d *TLog) append(bodies [][]byte, key string) (tlog.Appended, error) {
	if len(bodies) == 0 {
		return tlog.Appended{Epoch: d.t.disk.Epoch()}, nil
	}
	if d.closed.Load() {
		return tlog.Appended{}, tlog.ErrClosed
	}
	size := 0
	for _, b := range bodies {
		size += len(b) + tlog.SeqOverhead
	}
	// Records hold delivery lines, seq included: encoded once, by this
	// goroutine, then written, cached and served as they are.
	first, err := d.t.disk.AppendFunc(key, len(bodies), size, func(dst []byte, seq uint64, i int) []byte {
		return event.AppendDelivery(dst, seq, bodies[i])
	})
	if err != nil {
		if errors.Is(err, ErrClosed) {
			err = tlog.ErrClosed
		}
		return tlog.Appended{}, err
	}
	return tlog.Appended{First: first, Last: first + uint64(len(bodies)) - 1, Epoch: d.t.disk.Epoch()}, nil
}

// Read implements tlog.Log. Lines from the hot cache are shared; lines
// read from disk are this reader's. Seqs lost to damage on disk are
// reported as a gap like evicted ones.
func (d *TLog) Read(from uint64, dst [][]byte, maxLines, maxBytes int) ([][]byte, uint64, tlog.Gap, error) {
	if from == 0 {
		from = 1
	}
	if d.closed.Load() {
		return dst, from, tlog.Gap{}, tlog.ErrClosed
	}
	var gap tlog.Gap
	lose := func(a, b uint64) { // extend the gap by a..b, contiguous with it
		if gap.Empty() {
			gap.From = a
		}
		gap.To = b
	}
	// The disk decides what the history holds (retention and the total cap
	// remove from it), even while the hot cache still has the lines.
	oldest, _ := d.t.disk.Bounds()
	if from < oldest {
		lose(from, oldest-1)
		from = oldest
	}
	hotOldest, _ := d.t.hot.Bounds()
	if from < hotOldest {
		recs, err := d.t.disk.Read(nil, from, maxLines, maxBytes)
		if err != nil {
			if errors.Is(err, ErrClosed) {
				err = tlog.ErrClosed
			}
			return dst, from, gap, err
		}
		if len(recs) > 0 {
			if recs[0].Seq > from {
				lose(from, recs[0].Seq-1)
			}
			next := recs[0].Seq
			for _, r := range recs {
				if r.Seq != next {
					break // a hole: the next Read reports it
				}
				dst = append(dst, r.Body)
				next++
			}
			return dst, next, gap, nil
		}
		// Nothing left on disk before the cache: damaged or just evicted.
		lose(from, hotOldest-1)
		from = hotOldest
	}
	lines, next, g, err := d.t.hot.Read(from, dst, maxLines, maxBytes)
	if !g.Empty() {
		lose(g.From, g.To)
	}
	return lines, next, gap, err
}

// Cold implements tlog.ColdReader: lines older than the hot cache are read
// from the files.
func (d *TLog) Cold(from uint64) bool {
	hotOldest, _ := d.t.hot.Bounds()
	_, newest := d.t.disk.Bounds()
	return max(from, 1) < hotOldest && from <= newest
}

// Notify implements tlog.Log.
func (d *TLog) Notify() <-chan struct{} { return d.t.hot.Notify() }

// Bounds implements tlog.Log.
func (d *TLog) Bounds() (oldest, newest uint64) { return d.t.disk.Bounds() }

// Epoch implements tlog.Log: it is kept on disk, so it survives restarts.
func (d *TLog) Epoch() string { return d.t.disk.Epoch() }

// Close implements tlog.Log. The history stays on disk for the next
// TLStore.Log; the hot cache goes with the tenant's last handle (which
// wakes its waiters).
func (d *TLog) Close() error {
	if d.closed.Swap(true) {
		return nil
	}
	d.store.release(d.tenant, d.t)
	return nil
}
