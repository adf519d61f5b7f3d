// Package disklog keeps tenant logs in a data directory, so that a relay's
// history survives restarts and crashes.
//
// Each tenant owns a small segmented append-only log: a directory of segment
// files, each holding records (length, CRC32C checksum, seq, body; see
// record.go) for a range of seqs, plus a meta file with the tenant's epoch.
// Each Append reserves its seqs and encodes its own records; one committer
// goroutine per tenant then writes every pending batch as one group and
// covers the group with a single fsync (group commit), with up to maxSyncs
// groups' fsyncs in flight at once and acknowledged in seq order (see
// commit.go): Append returns only once its records are durable. A batch may
// carry an Idempotency-Key, kept on disk with it. Reads from any seq go
// through a sparse per-segment index. Retention drops whole old segments:
// per tenant by the event and byte bounds, and across tenants by a total
// disk cap, least recently written first.
//
// At Open every segment is read and every record verified. Damage is cut
// away with a log line and never served: a torn tail (a crash in the middle
// of a write, so never acknowledged) is truncated back to the last complete
// batch and its seqs are given out again; a damaged record is cut out and
// its seqs become a gap for readers, never given out again, even when it is
// the newest and its damage makes it look torn (see scanSegment). Reads
// verify checksums again, so damage that appears later is not served either,
// and step over it record by record as recovery does. A log that ends before
// its acknowledged mark lost acknowledged events to something other than a
// crash: it starts a new epoch (see acked.go).
//
// OpenTL (tlog.go) serves the directory to the relay: each tenant as a
// tlog.Log, its newest lines in a hot cache in memory and its
// Idempotency-Keys kept with its batches.
//
// Layout:
//
//	DIR/FORMAT                     "tl disklog 1"
//	DIR/LOCK                       locked by the process using DIR (flock, LockFileEx)
//	DIR/tenants/TENANT/meta.json   {"epoch":"..."}, replaced atomically
//	DIR/tenants/TENANT/acked       the newest seq acknowledged (see acked.go)
//	DIR/tenants/TENANT/<seq>.seg   records from seq on
package disklog

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tl-sh/tl/lib/event"
)

const formatLine = "tl disklog 1\n"

// Segment sizing: a segment is rolled once it holds this much, so retention
// (which drops whole segments) overshoots a byte bound by at most a segment.
const (
	defaultSegmentBytes = 16 << 20 // large enough that rolling is rare
	minSegmentBytes     = 64 << 10 // small bounds still get a sane file size
	segmentsPerBound    = 8        // a byte bound spans at least this many segments
)

// ErrClosed is returned by operations on a closed Store or Log.
var ErrClosed = errors.New("disklog: closed")

// Options tune a Store. The zero value keeps everything forever.
type Options struct {
	// MaxEvents bounds each tenant's history in events (0: no bound).
	// Readers never see more than the newest MaxEvents.
	MaxEvents int
	// MaxBytes bounds each tenant's history in bytes on disk (0: no
	// bound). Whole segments are dropped, so a tenant keeps between
	// MaxBytes minus one segment and MaxBytes (plus its open segment).
	MaxBytes int64
	// MaxTotalBytes caps the whole directory (0: no cap): as new data
	// arrives, the least recently written segments of any tenant go, open
	// ones of idle tenants included; the directory may exceed it by the
	// open segments of the tenants writing at that moment (see enforceCap).
	MaxTotalBytes int64
	// SegmentBytes overrides the segment size (0: derived from the bounds).
	SegmentBytes int64
	// MaxOpenFiles bounds the segment and acked files kept open across tenants
	// beyond those being read, written or fsync'd at the moment (0: a
	// quarter of the soft RLIMIT_NOFILE, at most 4096; see files.go).
	MaxOpenFiles int
	// OnCommit, when set, is called by a tenant's committer after each
	// durable batch, in seq order, before Append returns to its caller.
	// bodies alias the committed records, which are never reused: the
	// callee may keep them (but not modify them). It must not call back
	// into the Log's Append.
	OnCommit func(tenant string, first uint64, bodies [][]byte)
	// NewEpoch returns a fresh epoch for a tenant without one (default:
	// 16 random hex digits).
	NewEpoch func() string
	// Logger receives recovery and error reports (default: discarded).
	Logger *slog.Logger

	faults *faults // tests: failing file operations
}

// Store is an open data directory.
type Store struct {
	dir      string
	opts     Options
	segBytes int64
	log      *slog.Logger
	lock     *os.File

	total   atomic.Int64 // bytes of all segments
	evictMu sync.Mutex   // serialises evictions for the total cap; guards capWarned
	// capWarned is when the log last said the cap could not be met (at
	// most once per capWarnEvery).
	capWarned time.Time
	now       func() time.Time // tests: replaces time.Now for the cap warning
	mu        sync.Mutex       // guards logs and closed
	logs      map[string]*Log
	closed    bool
	files     *fileCache // the open segment and acked files of every tenant

	failMu sync.Mutex        // guards failed (a leaf: taken under a Log's mu)
	failed map[string]string // tenants stopped by a failed write or fsync, with why
}

// Open opens (creating it if needed) the data directory dir and recovers
// every tenant's log in it.
func Open(dir string, opts Options) (*Store, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.NewEpoch == nil {
		opts.NewEpoch = event.NewEpoch
	}
	s := &Store{dir: dir, opts: opts, log: opts.Logger, logs: map[string]*Log{}, now: time.Now,
		files: newFileCache(opts.MaxOpenFiles), failed: map[string]string{}}
	s.segBytes = opts.SegmentBytes
	if s.segBytes <= 0 {
		s.segBytes = defaultSegmentBytes
		if b := opts.MaxBytes / segmentsPerBound; opts.MaxBytes > 0 && b < s.segBytes {
			s.segBytes = b
		}
		if b := opts.MaxTotalBytes / (4 * segmentsPerBound); opts.MaxTotalBytes > 0 && b < s.segBytes {
			s.segBytes = b
		}
		s.segBytes = max(s.segBytes, minSegmentBytes)
	}
	if err := os.MkdirAll(filepath.Join(dir, "tenants"), 0o755); err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	if err := s.checkFormat(); err != nil {
		return nil, err
	}
	lf, err := os.OpenFile(filepath.Join(dir, "LOCK"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	if err := lockFile(lf); err != nil {
		lf.Close()
		return nil, fmt.Errorf("data directory %s is in use by another process: %w", dir, err)
	}
	s.lock = lf
	ents, err := os.ReadDir(filepath.Join(dir, "tenants"))
	if err != nil {
		s.lock.Close()
		return nil, fmt.Errorf("data directory: %w", err)
	}
	for _, e := range ents {
		if !e.IsDir() || event.CheckTenant(e.Name()) != nil {
			continue
		}
		l, err := s.recover(e.Name())
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("recovering tenant %s: %w", e.Name(), err)
		}
		s.logs[e.Name()] = l
	}
	return s, nil
}

// checkFormat writes DIR/FORMAT in a new directory and checks it otherwise.
func (s *Store) checkFormat() error {
	p := filepath.Join(s.dir, "FORMAT")
	b, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		if err := writeFileAtomic(p, []byte(formatLine)); err != nil {
			return fmt.Errorf("data directory: %w", err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	if !bytes.Equal(b, []byte(formatLine)) {
		return fmt.Errorf("data directory %s: unknown format %q", s.dir, bytes.TrimSpace(b))
	}
	return nil
}

// Dir returns the data directory.
func (s *Store) Dir() string { return s.dir }

// Tenants returns the tenants with a log on disk, sorted.
func (s *Store) Tenants() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	names := make([]string, 0, len(s.logs))
	for n := range s.logs {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Log returns the tenant's log. A tenant without one gets an empty log,
// written to disk only by its first Append (so readers alone create no
// files).
func (s *Store) Log(tenant string) (*Log, error) {
	if err := event.CheckTenant(tenant); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	if l := s.logs[tenant]; l != nil {
		return l, nil
	}
	l := newLog(s, tenant)
	l.epoch = s.opts.NewEpoch()
	l.next = 1
	s.logs[tenant] = l
	return l, nil
}

// Forget says the tenant is idle (its user has no handle on it any more).
// Its open files are closed (a file still being read or fsync'd, once that
// is done); a later read or write opens them again. A log to which nothing
// was ever appended (it has no directory) is dropped from memory as well,
// so a reader alone leaves no trace: it is closed, and a later Log call
// starts afresh, with a new epoch.
func (s *Store) Forget(tenant string) {
	s.mu.Lock()
	l := s.logs[tenant]
	if l == nil {
		s.mu.Unlock()
		return
	}
	l.mu.Lock()
	if l.next == 1 && len(l.segs) == 0 && !l.committing {
		l.closed = true
		delete(s.logs, tenant)
	}
	files := l.filesLocked()
	l.mu.Unlock()
	s.mu.Unlock()
	s.files.drop(files, false)
}

// OpenFiles returns how many segment and acked files the store holds open.
func (s *Store) OpenFiles() int { return s.files.count() }

// Failed returns the tenants stopped by a failed write or fsync (they take
// no more events until a restart), each with what failed. A failure before
// anything was written (creating a directory or a file, opening one) stops
// nothing: the next append tries again.
func (s *Store) Failed() map[string]string {
	s.failMu.Lock()
	defer s.failMu.Unlock()
	m := make(map[string]string, len(s.failed))
	for t, why := range s.failed {
		m[t] = why
	}
	return m
}

// TotalBytes returns the bytes held in segments across tenants.
func (s *Store) TotalBytes() int64 { return s.total.Load() }

// Close waits for pending appends, then closes every log and the directory.
// It is safe to call more than once.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	logs := make([]*Log, 0, len(s.logs))
	for _, l := range s.logs {
		logs = append(logs, l)
	}
	s.mu.Unlock()
	var errs []error
	for _, l := range logs {
		errs = append(errs, l.close())
	}
	s.files.close()
	if s.lock != nil {
		errs = append(errs, s.lock.Close())
	}
	return errors.Join(errs...)
}

// capWarnEvery is how often, at most, the log says that the total cap
// cannot be met right now (every commit over it would say so otherwise).
const capWarnEvery = time.Minute

// enforceCap removes segments, least recently written first, until the
// directory fits MaxTotalBytes. It runs after each commit of the tenant
// self, whose open segment (holding what it just wrote) is never removed.
// Another tenant's open segment is removed too when its turn comes and the
// tenant is idle: it is rolled over first (see Log.sealIdle), so an empty
// segment named after the tenant's next seq keeps its numbering across
// restarts. So the directory exceeds the cap by at most the open segments
// of the tenants writing at that moment (one segment each).
func (s *Store) enforceCap(self *Log) {
	limit := s.opts.MaxTotalBytes
	if limit <= 0 || s.total.Load() <= limit {
		return
	}
	s.evictMu.Lock()
	defer s.evictMu.Unlock()
	var skip map[*Log]bool // logs whose open segment could not be rolled over
	for s.total.Load() > limit {
		s.mu.Lock()
		var victim *Log
		var oldest time.Time
		victimOpen := false
		for _, l := range s.logs {
			if skip[l] {
				continue
			}
			t, open, ok := l.capCandidate(l != self)
			if ok && (victim == nil || t.Before(oldest)) {
				victim, oldest, victimOpen = l, t, open
			}
		}
		s.mu.Unlock()
		if victim == nil {
			if now := s.now(); now.Sub(s.capWarned) >= capWarnEvery {
				s.capWarned = now
				s.log.Warn("data directory over its cap: only segments being written are left", "bytes", s.total.Load(), "cap", limit)
			}
			return
		}
		if victimOpen && !victim.sealIdle() {
			if skip == nil {
				skip = map[*Log]bool{}
			}
			skip[victim] = true
			continue
		}
		victim.dropOldest("disk cap")
	}
}

// writeFileAtomic replaces path with data: a temporary file, fsync'd, renamed
// over path, then the directory fsync'd so the rename itself is durable.
func writeFileAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	return syncDir(filepath.Dir(path))
}

// syncDir fsyncs a directory, making file creations, renames and removals in
// it durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// readAll reads a whole file into buf's storage.
func readAll(path string, buf []byte) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if int64(cap(buf)) < st.Size() {
		buf = make([]byte, st.Size())
	}
	buf = buf[:st.Size()]
	n, err := io.ReadFull(f, buf)
	return buf[:n], err
}
