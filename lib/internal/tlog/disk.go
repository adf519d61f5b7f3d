package tlog

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/tl-sh/tl/lib/event"
	"github.com/tl-sh/tl/lib/internal/disklog"
)

// The hot cache of a disk-backed log: the newest lines of each tenant stay
// in a Memory ring, so live subscribers (the common case) share the lines in
// memory and never touch the disk; a reader further behind reads from disk.
// Sized to hold a few seconds of a busy tenant.
const (
	hotEvents = 16 << 10
	hotBytes  = 8 << 20
	// diskRecordHeader is disklog's record header: the buffers the hot
	// cache shares with the files hold one before each line.
	diskRecordHeader = 16
)

// DiskOptions tune a data directory (see disklog.Options).
type DiskOptions struct {
	MaxEvents     int   // per tenant (<= 0: DefaultMaxEvents)
	MaxBytes      int64 // per tenant (<= 0: DefaultMaxBytes)
	MaxTotalBytes int64 // the whole directory (0: no cap)
	// Budget, when set, bounds the hot caches with the relay's other
	// holders: an evicted line is read from the files again.
	Budget       *Budget
	MaxOpenFiles int // segment and acked files kept open across tenants (0: sized from RLIMIT_NOFILE)
	Logger       *slog.Logger
}

// DiskStore is a data directory holding every tenant's log, so that history
// and seq numbering survive restarts and crashes.
type DiskStore struct {
	store     *disklog.Store
	hotEvents int
	hotBytes  int
	budget    *Budget

	mu      sync.RWMutex // guards tenants and each diskTenant's refs
	tenants map[string]*diskTenant
}

// diskTenant is what the open handles of one tenant share.
type diskTenant struct {
	disk *disklog.Log
	hot  *Memory // the newest lines, fed in seq order after each fsync
	keys *keys   // recent Idempotency-Keys, starting with those on disk
	refs int     // open handles; the cache and keys go with the last
}

// OpenDisk opens (or creates) the data directory dir, recovering every
// tenant's log in it.
func OpenDisk(dir string, o DiskOptions) (*DiskStore, error) {
	if o.MaxEvents <= 0 {
		o.MaxEvents = DefaultMaxEvents
	}
	if o.MaxBytes <= 0 {
		o.MaxBytes = DefaultMaxBytes
	}
	s := &DiskStore{
		hotEvents: min(o.MaxEvents, hotEvents),
		hotBytes:  int(min(o.MaxBytes, hotBytes)),
		budget:    o.Budget,
		tenants:   map[string]*diskTenant{},
	}
	st, err := disklog.Open(dir, disklog.Options{
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
func (s *DiskStore) Failed() map[string]string { return s.store.Failed() }

// OpenFiles returns how many segment and acked files are open across tenants.
func (s *DiskStore) OpenFiles() int { return s.store.OpenFiles() }

// Tenants returns the tenants with a history on disk.
func (s *DiskStore) Tenants() []string { return s.store.Tenants() }

// Log opens a handle on the tenant's log. Handles of one tenant share its
// history and hot cache; each is closed on its own.
func (s *DiskStore) Log(tenant string) (*Disk, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.tenants[tenant]
	if t == nil {
		dl, err := s.store.Log(tenant)
		if err != nil {
			if errors.Is(err, disklog.ErrClosed) {
				return nil, ErrClosed
			}
			return nil, err
		}
		_, newest := dl.Bounds()
		t = &diskTenant{disk: dl, hot: newHot(s.budget, s.hotEvents, s.hotBytes, dl.Epoch(), newest+1),
			keys: newKeys(s.budget)}
		// The keys written with the batches found on disk answer
		// retries across a restart.
		for _, k := range dl.TakeKeys() {
			t.keys.complete(k.Key, Appended{First: k.First, Last: k.Last, Epoch: dl.Epoch()})
		}
		s.tenants[tenant] = t
	}
	t.refs++
	return &Disk{store: s, tenant: tenant, t: t}, nil
}

// onCommit feeds each durable batch to its tenant's hot cache, in seq
// order; only then do subscribers see it, so nothing a crash could still
// take away is ever delivered. The lines are the records just written
// (delivery lines, seq included), shared without a copy. A tenant without
// open handles has no cache (the next Log starts one where the disk is).
func (s *DiskStore) onCommit(tenant string, first uint64, lines [][]byte) {
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
		size += len(line) + seqOverhead + diskRecordHeader
	}
	t.hot.feed(first, lines, size)
}

// release drops a handle on t; the last one takes the hot cache and keys
// with it.
func (s *DiskStore) release(tenant string, t *diskTenant) {
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
func (t *diskTenant) close() {
	t.hot.Close()
	t.keys.close()
}

// Close closes every log and the directory. Safe to call more than once.
func (s *DiskStore) Close() error {
	s.mu.Lock()
	tenants := s.tenants
	s.tenants = map[string]*diskTenant{}
	s.mu.Unlock()
	for _, t := range tenants {
		t.close()
	}
	return s.store.Close()
}

// Disk is a handle on a tenant's Log kept in a data directory: Append
// returns once the batch is on disk (fsync'd, shared with concurrent
// appends), the newest lines are served from memory and older ones from
// disk.
type Disk struct {
	store  *DiskStore
	tenant string
	t      *diskTenant
	closed atomic.Bool
}

// Append implements Log: it returns once the bodies are durable. The key
// is written with the batch, atomically, so it outlives a restart exactly
// when the batch does (DiskStore.Log reads it back).
func (d *Disk) Append(ctx context.Context, b Batch) (Appended, error) {
	return d.t.keys.append(ctx, b, func(bodies [][]byte) (Appended, error) {
		return d.append(bodies, b.Key)
	})
}

// append writes bodies and key, as Append does.
func (d *Disk) append(bodies [][]byte, key string) (Appended, error) {
	if len(bodies) == 0 {
		return Appended{Epoch: d.t.disk.Epoch()}, nil
	}
	if d.closed.Load() {
		return Appended{}, ErrClosed
	}
	size := 0
	for _, b := range bodies {
		size += len(b) + seqOverhead
	}
	// Records hold delivery lines, seq included: encoded once, by this
	// goroutine, then written, cached and served as they are.
	first, err := d.t.disk.AppendFunc(key, len(bodies), size, func(dst []byte, seq uint64, i int) []byte {
		return event.AppendDelivery(dst, seq, bodies[i])
	})
	if err != nil {
		if errors.Is(err, disklog.ErrClosed) {
			err = ErrClosed
		}
		return Appended{}, err
	}
	return Appended{First: first, Last: first + uint64(len(bodies)) - 1, Epoch: d.t.disk.Epoch()}, nil
}

// Read implements Log. Lines from the hot cache are shared; lines read from
// disk are this reader's. Seqs lost to damage on disk are reported
// as a gap like evicted ones.
func (d *Disk) Read(from uint64, dst [][]byte, maxLines, maxBytes int) ([][]byte, uint64, Gap, error) {
	if from == 0 {
		from = 1
	}
	if d.closed.Load() {
		return dst, from, Gap{}, ErrClosed
	}
	var gap Gap
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
			if errors.Is(err, disklog.ErrClosed) {
				err = ErrClosed
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

// Cold implements ColdReader: lines older than the hot cache are read from
// the files.
func (d *Disk) Cold(from uint64) bool {
	hotOldest, _ := d.t.hot.Bounds()
	_, newest := d.t.disk.Bounds()
	return max(from, 1) < hotOldest && from <= newest
}

// Notify implements Log.
func (d *Disk) Notify() <-chan struct{} { return d.t.hot.Notify() }

// Bounds implements Log.
func (d *Disk) Bounds() (oldest, newest uint64) { return d.t.disk.Bounds() }

// Epoch implements Log: it is kept on disk, so it survives restarts.
func (d *Disk) Epoch() string { return d.t.disk.Epoch() }

// Close implements Log. The history stays on disk for the next
// DiskStore.Log; the hot cache goes with the tenant's last handle (which
// wakes its waiters).
func (d *Disk) Close() error {
	if d.closed.Swap(true) {
		return nil
	}
	d.store.release(d.tenant, d.t)
	return nil
}
