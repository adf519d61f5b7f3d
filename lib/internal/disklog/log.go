package disklog

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// segmentEventsPerBound: with an event bound, a segment rolls after
// MaxEvents/segmentEventsPerBound records, so whole segments fall below the
// bound and can be dropped; minSegmentEvents keeps tiny bounds from making a
// file per event.
const (
	segmentEventsPerBound = 8
	minSegmentEvents      = 256
)

// Record is one stored line.
type Record struct {
	Seq  uint64
	Body []byte
}

// request is one Append waiting for the committer.
type request struct {
	first     uint64
	n         int
	buf       []byte        // the encoded records, written as they are
	ready     chan struct{} // closed once buf is encoded (encodeErr set or not)
	encodeErr error
	err       error
	done      chan struct{}
}

// Log is one tenant's log. Its methods are safe for concurrent use.
type Log struct {
	store  *Store
	tenant string
	dir    string
	wg     sync.WaitGroup // the committer and the fsync goroutines
	// Committer state: only the committer touches these (one committer at
	// a time; handovers are ordered by mu).
	onDisk bool          // the tenant directory and meta file exist
	tail   *group        // the newest group written: the next one acks after it
	syncs  chan struct{} // a slot per fsync in flight (maxSyncs)

	mu         sync.Mutex // guards the fields below (never held during I/O)
	epoch      string
	segs       []*segment // oldest first; the last is the open one
	next       uint64     // seq of the next record appended
	durable    uint64     // newest durable seq (0: none yet)
	floor      uint64     // the event bound: seqs below it are no longer served
	bytes      int64      // bytes in segs
	pending    []*request
	committing bool // the committer goroutine runs
	closed     bool
	err        error  // a failed write or fsync: the log takes no more appends
	keys       []Key  // Idempotency-Keys found at start-up, until TakeKeys
	synced     uint64 // every seq up to it is fsync'd in its segment (see acked.go)

	// ackFile is the acked file (see acked.go), held through the store's
	// file cache as a segment is (only its path counts), so that the mark
	// costs no descriptor while the tenant is idle. The first write of the
	// process makes it: a tenant only recovered costs no memory for it.
	ackFile *segment

	ackMu     sync.Mutex // serialises writes of the acked mark; guards the two below
	ackedMark uint64     // the mark on disk
	ackWrites uint64     // writes of the mark since it was created: picks the slot
}

// maxKeys bounds the Idempotency-Keys kept from start-up per tenant: the
// newest ones, as many as tl-protocol(7) promises to remember.
const maxKeys = 10_000

// TakeKeys returns the Idempotency-Keys found on disk at start-up with the
// batches they published (the newest maxKeys), oldest first, and forgets
// them.
func (l *Log) TakeKeys() []Key {
	l.mu.Lock()
	defer l.mu.Unlock()
	k := l.keys
	l.keys = nil
	return k
}

func newLog(s *Store, tenant string) *Log {
	return &Log{store: s, tenant: tenant, dir: filepath.Join(s.dir, "tenants", tenant),
		syncs: make(chan struct{}, maxSyncs)}
}

// Epoch returns the tenant's epoch, which stays the same across restarts
// on the same directory.
func (l *Log) Epoch() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.epoch
}

// Bounds returns the oldest seq still served and the newest durable seq.
// An empty log has oldest == newest+1.
func (l *Log) Bounds() (oldest, newest uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.oldestLocked(), l.durable
}

func (l *Log) oldestLocked() uint64 {
	o := l.durable + 1
	for _, s := range l.segs {
		if s.count > 0 {
			o = s.first
			break
		}
	}
	return max(o, l.floor)
}

// newSegment creates an empty segment for seqs from base on, makes its
// creation durable, and appends it to segs. Called by recovery and the
// committer only.
func (l *Log) newSegment(base uint64) error {
	p := filepath.Join(l.dir, segName(base))
	f, err := l.store.files.openFile(p, os.O_CREATE|os.O_RDWR|os.O_TRUNC, 0o644)
	if isShortage(err) {
		l.store.files.shrink()
		f, err = l.store.files.openFile(p, os.O_CREATE|os.O_RDWR|os.O_TRUNC, 0o644)
	}
	if err != nil {
		return err
	}
	if err := syncDir(l.dir); err != nil {
		f.Close()
		return err
	}
	seg := &segment{base: base, path: p, modTime: time.Now(), wLastIdx: -indexInterval, finalSize: -1}
	l.store.files.add(seg, f) // the write that follows will want it
	l.mu.Lock()
	l.segs = append(l.segs, seg)
	l.mu.Unlock()
	return nil
}

// Append adds bodies as one batch of records and returns their seqs once
// they are durable. A batch is atomic: after a crash it is on disk whole or
// not at all.
func (l *Log) Append(bodies [][]byte) (first, last uint64, err error) {
	size := 0
	for _, b := range bodies {
		if len(b) > MaxBody {
			return 0, 0, fmt.Errorf("disklog: record of %d bytes is over %d", len(b), MaxBody)
		}
		size += len(b)
	}
	first, err = l.AppendFunc("", len(bodies), size, func(dst []byte, _ uint64, i int) []byte {
		return append(dst, bodies[i]...)
	})
	if err != nil {
		return 0, 0, err
	}
	return first, first + uint64(len(bodies)) - 1, nil
}

// AppendFunc adds n records as one batch, like Append, and returns the
// first seq once they are durable. A non-empty key (an Idempotency-Key) is
// written with the batch, atomically, and comes back from TakeKeys after a
// restart. Record i's body is what body appends to
// dst, given its seq: seqs are reserved first, then the bodies are encoded
// by the caller's goroutine (concurrently with other appends), so a body may
// hold its own seq. size is a hint: the bodies' total length. A body must
// not exceed MaxBody bytes.
func (l *Log) AppendFunc(key string, n, size int, body func(dst []byte, seq uint64, i int) []byte) (uint64, error) {
	if n <= 0 {
		return 0, errors.New("disklog: empty batch")
	}
	r := &request{n: n, ready: make(chan struct{}), done: make(chan struct{})}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return 0, ErrClosed
	}
	if l.err != nil {
		err := l.err
		l.mu.Unlock()
		return 0, err
	}
	r.first = l.next
	l.next += uint64(n)
	l.pending = append(l.pending, r)
	if !l.committing {
		l.committing = true
		l.wg.Add(1)
		go l.commitLoop()
	}
	l.mu.Unlock()

	// The seqs are taken: the committer waits for this encoding, whatever
	// happens to it.
	func() {
		defer close(r.ready)
		defer func() {
			if p := recover(); p != nil {
				r.encodeErr = fmt.Errorf("disklog: encoding a batch: %v", p)
			}
		}()
		buf := make([]byte, 0, size+n*headerSize+len(key)+headerSize+8)
		if key != "" {
			buf = appendKeyRecord(buf, key, r.first, r.first+uint64(n)-1)
		}
		for i := 0; i < n; i++ {
			start := len(buf)
			buf = append(buf, make([]byte, headerSize)...)
			buf = body(buf, r.first+uint64(i), i)
			if len(buf)-start-headerSize > MaxBody {
				r.encodeErr = fmt.Errorf("disklog: record of %d bytes is over %d", len(buf)-start-headerSize, MaxBody)
				return
			}
			sealRecord(buf[start:], r.first+uint64(i), i == n-1)
		}
		r.buf = buf
	}()
	<-r.done
	if r.err != nil {
		return 0, r.err
	}
	return r.first, nil
}

// create makes the tenant's directory and meta file on its first append.
func (l *Log) create() error {
	if err := os.MkdirAll(l.dir, 0o755); err != nil {
		return err
	}
	l.mu.Lock()
	epoch := l.epoch
	l.mu.Unlock()
	if err := writeFileAtomic(filepath.Join(l.dir, "meta.json"), metaJSON(epoch)); err != nil {
		return err
	}
	if err := writeAcked(l.dir, 0); err != nil {
		return err
	}
	if err := syncDir(filepath.Dir(l.dir)); err != nil {
		return err
	}
	l.onDisk = true
	return nil
}

// retainLocked applies the tenant's bounds and returns the segments it
// dropped (their files are removed by the caller, outside the lock).
func (l *Log) retainLocked() []*segment {
	o := l.store.opts
	if o.MaxEvents > 0 && l.durable >= uint64(o.MaxEvents) {
		l.floor = l.durable - uint64(o.MaxEvents) + 1
	}
	var removed []*segment
	for len(l.segs) > 1 {
		s := l.segs[0]
		if !(s.count == 0 || s.last < l.floor || (o.MaxBytes > 0 && l.bytes > o.MaxBytes)) {
			break
		}
		removed = append(removed, l.dropFirstLocked())
	}
	return removed
}

// dropFirstLocked takes the oldest segment out of the log.
func (l *Log) dropFirstLocked() *segment {
	s := l.segs[0]
	l.segs[0] = nil
	l.segs = l.segs[1:]
	l.bytes -= s.size
	l.store.total.Add(-s.size)
	s.removed = true
	l.store.files.drop([]*segment{s}, true)
	return s
}

// capCandidate returns the last write time of the log's oldest segment
// when the total cap may remove it: it is not the open segment, or (when
// open is allowed) it is the open segment of an idle log, holding data,
// all of it acknowledged, which sealIdle can roll over first.
func (l *Log) capCandidate(open bool) (modTime time.Time, isOpen, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.closed:
		// Closing (the store is): its files are no longer the cap's.
	case len(l.segs) >= 2:
		return l.segs[0].modTime, false, true
	case open && len(l.segs) == 1 && l.idleLocked():
		return l.segs[0].modTime, true, true
	}
	return time.Time{}, false, false
}

// idleLocked reports whether the log's open segment holds data and nothing
// is being written or awaits its fsync: no committer runs (so the
// committer-only fields are at rest) and every byte written is durable.
func (l *Log) idleLocked() bool {
	if l.committing || l.closed || l.err != nil || len(l.segs) == 0 {
		return false
	}
	seg := l.segs[len(l.segs)-1]
	return seg.size > 0 && seg.size == seg.written
}

// sealIdle rolls an idle log's open segment over (a new, empty open segment
// named after the next seq), so that the total cap may remove the old one
// like any other. It takes the committer's part meanwhile: an Append that
// comes in waits in pending, and a committer is started for it after. It
// reports whether the segment was rolled over.
func (l *Log) sealIdle() bool {
	l.mu.Lock()
	if !l.idleLocked() {
		l.mu.Unlock()
		return false
	}
	l.committing = true
	l.wg.Add(1) // close waits for this, as for a committer
	old, next := l.segs[len(l.segs)-1], l.next
	l.mu.Unlock()
	err := l.roll(old, next)
	if err != nil {
		l.store.log.Warn("data directory: rolling over a segment", "tenant", l.tenant, "err", err)
	}
	l.mu.Lock()
	if len(l.pending) > 0 {
		l.wg.Add(1)
		go l.commitLoop()
	} else {
		l.committing = false
	}
	l.mu.Unlock()
	l.wg.Done()
	return err == nil
}

// dropOldest removes the oldest segment (for the total cap).
func (l *Log) dropOldest(why string) {
	l.mu.Lock()
	if len(l.segs) < 2 || l.closed {
		l.mu.Unlock()
		return
	}
	s := l.dropFirstLocked()
	l.mu.Unlock()
	l.removeFiles([]*segment{s}, why)
}

// removeFiles deletes dropped segments' files and makes that durable.
func (l *Log) removeFiles(segs []*segment, why string) {
	if len(segs) == 0 {
		return
	}
	for _, s := range segs {
		if err := os.Remove(s.path); err != nil {
			l.store.log.Error("data directory: removing segment", "tenant", l.tenant, "segment", s.path, "err", err)
		}
	}
	if err := syncDir(l.dir); err != nil {
		l.store.log.Error("data directory: fsync", "dir", l.dir, "err", err)
	}
	l.store.log.Debug("data directory: segments removed", "tenant", l.tenant, "why", why, "count", len(segs))
}

// close waits for pending appends and closes the log's files.
func (l *Log) close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	l.mu.Unlock()
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.closeFilesLocked()
}

// closeFilesLocked closes the log's files (each once nothing uses it).
func (l *Log) closeFilesLocked() error {
	l.store.files.drop(l.filesLocked(), false)
	return nil
}

// filesLocked returns what the log may hold open in the file cache: its
// segments and its acked file.
func (l *Log) filesLocked() []*segment {
	files := append([]*segment(nil), l.segs...)
	if l.ackFile != nil {
		files = append(files, l.ackFile)
	}
	return files
}
