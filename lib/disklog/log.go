package disklog

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
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

// readChunk is how much a read fetches from a segment at a time.
const readChunk = 64 << 10

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
	err        error // a failed write or fsync: the log takes no more appends
	keys       []Key // Idempotency-Keys found at start-up, until TakeKeys
}

// maxKeys bounds the Idempotency-Keys kept from start-up per tenant: the
// newest ones, as many as PROTOCOL.md promises to remember.
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

type metaFile struct {
	Epoch string `json:"epoch"`
}

// recover loads a tenant's log from its directory, cutting away damage.
func (s *Store) recover(tenant string) (*Log, error) {
	l := newLog(s, tenant)
	l.onDisk = true
	b, err := os.ReadFile(filepath.Join(l.dir, "meta.json"))
	var m metaFile
	if err == nil {
		err = json.Unmarshal(b, &m)
	}
	bases, lerr := listSegments(l.dir)
	if lerr != nil {
		return nil, lerr
	}
	if err != nil || m.Epoch == "" {
		// Without the epoch, a client cannot tell this history from the
		// one it knew: start a new epoch (the seqs still continue).
		m.Epoch = s.opts.NewEpoch()
		if len(bases) > 0 {
			s.log.Warn("tenant meta file missing or damaged: new epoch", "tenant", tenant, "epoch", m.Epoch, "err", err)
		}
		if err := writeFileAtomic(filepath.Join(l.dir, "meta.json"), metaJSON(m.Epoch)); err != nil {
			return nil, err
		}
	}
	l.epoch = m.Epoch
	var buf []byte
	var reserve, lastSeq uint64
	for i, base := range bases {
		seg := &segment{base: base, path: filepath.Join(l.dir, segName(base))}
		buf, err = readAll(seg.path, buf)
		if err != nil {
			l.closeFiles()
			return nil, err
		}
		sc := scanSegment(buf, base, i == len(bases)-1)
		for _, d := range sc.damage {
			s.log.Warn("data directory: damaged segment repaired", "tenant", tenant, "segment", seg.path, "damage", d)
		}
		f, err := os.OpenFile(seg.path, os.O_RDWR, 0)
		if err != nil {
			l.closeFiles()
			return nil, err
		}
		seg.f = f
		if sc.end < int64(len(buf)) {
			if err := f.Truncate(sc.end); err == nil {
				err = f.Sync()
			}
			if err != nil {
				f.Close()
				l.closeFiles()
				return nil, fmt.Errorf("cutting damaged tail of %s: %w", seg.path, err)
			}
		}
		st, _ := f.Stat()
		seg.count, seg.first, seg.last, seg.index, seg.size = sc.count, sc.first, sc.last, sc.index, sc.end
		seg.written, seg.wcount, seg.wLastIdx = sc.end, sc.count, -indexInterval
		seg.finalSize = -1 // open until sealed below
		if n := len(sc.index); n > 0 {
			seg.wLastIdx = sc.index[n-1].off
		}
		if st != nil {
			seg.modTime = st.ModTime()
		}
		reserve = max(reserve, sc.reserve)
		l.keys = append(l.keys, sc.keys...)
		if len(l.keys) > 2*maxKeys {
			l.keys = append(l.keys[:0:0], l.keys[len(l.keys)-maxKeys:]...)
		}
		if sc.count > 0 {
			lastSeq = sc.last
		}
		l.segs = append(l.segs, seg)
		l.bytes += seg.size
	}
	l.next = max(lastSeq+1, reserve+1, 1)
	if n := len(l.segs); n > 0 {
		l.next = max(l.next, l.segs[n-1].base)
	}
	if n := len(l.segs); n > 0 && l.next > l.segs[n-1].base && l.next > lastSeq+1 {
		// Seqs were reserved past the last record: an empty segment
		// named after the next seq keeps them reserved across restarts.
		if err := l.newSegment(l.next); err != nil {
			l.closeFiles()
			return nil, err
		}
	}
	if len(l.keys) > maxKeys {
		l.keys = append(l.keys[:0:0], l.keys[len(l.keys)-maxKeys:]...)
	}
	for _, seg := range l.segs[:max(len(l.segs)-1, 0)] {
		seg.finalSize, seg.sealed = seg.size, true // only the newest takes more records
	}
	l.durable = l.next - 1
	if s.opts.MaxEvents > 0 && l.durable >= uint64(s.opts.MaxEvents) {
		l.floor = l.durable - uint64(s.opts.MaxEvents) + 1
	}
	s.total.Add(l.bytes)
	return l, nil
}

func metaJSON(epoch string) []byte {
	b, _ := json.Marshal(metaFile{Epoch: epoch})
	return append(b, '\n')
}

// newSegment creates an empty segment for seqs from base on, makes its
// creation durable, and appends it to segs. Called by recovery and the
// committer only.
func (l *Log) newSegment(base uint64) error {
	p := filepath.Join(l.dir, segName(base))
	f, err := os.OpenFile(p, os.O_CREATE|os.O_RDWR|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if err := syncDir(l.dir); err != nil {
		f.Close()
		return err
	}
	l.mu.Lock()
	l.segs = append(l.segs, &segment{base: base, path: p, f: f, modTime: time.Now(), wLastIdx: -indexInterval, finalSize: -1})
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
	if s.refs == 0 {
		s.f.Close()
		s.f = nil
	}
	return s
}

// oldestRemovable returns the last write time of the log's oldest segment
// when the total cap may remove it (it is not the open segment).
func (l *Log) oldestRemovable() (time.Time, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.segs) < 2 {
		return time.Time{}, false
	}
	return l.segs[0].modTime, true
}

// dropOldest removes the oldest segment (for the total cap).
func (l *Log) dropOldest(why string) {
	l.mu.Lock()
	if len(l.segs) < 2 {
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

// Read appends to dst the durable records with seq >= from, oldest first,
// until it holds maxRecords records or maxBytes of bodies (always at least
// one record when one is there), and returns dst. Seqs below the oldest are
// skipped; seqs missing between returned records (or before the first) were
// lost, and a caller reports them as a gap. The bodies are the caller's.
func (l *Log) Read(dst []Record, from uint64, maxRecords, maxBytes int) ([]Record, error) {
	lim := limits{maxRecords: maxRecords, maxBytes: maxBytes}
	for lim.more() {
		l.mu.Lock()
		if l.closed {
			l.mu.Unlock()
			return dst, ErrClosed
		}
		from = max(from, l.oldestLocked())
		if from > l.durable || len(l.segs) == 0 {
			l.mu.Unlock()
			return dst, nil
		}
		i := max(sort.Search(len(l.segs), func(i int) bool { return l.segs[i].base > from })-1, 0)
		seg := l.segs[i]
		nextBase := l.durable + 1
		if i+1 < len(l.segs) {
			nextBase = l.segs[i+1].base
		}
		off, end, sealed := seg.locate(from), seg.size, seg.sealed
		seg.refs++
		l.mu.Unlock()

		n0 := len(dst)
		var err error
		dst, err = l.readSegment(seg, dst, off, end, from, &lim)

		l.mu.Lock()
		seg.refs--
		if (seg.removed || l.closed) && seg.refs == 0 && seg.f != nil {
			seg.f.Close()
			seg.f = nil
		}
		l.mu.Unlock()
		if err != nil {
			return dst, err
		}
		if len(dst) > n0 {
			from = dst[len(dst)-1].Seq + 1
		}
		if lim.more() {
			if !sealed {
				return dst, nil // the rest is not durable yet
			}
			// The segment is exhausted: go on with the next one.
			from = max(from, nextBase)
		}
	}
	return dst, nil
}

// limits tracks what a Read may still return.
type limits struct {
	maxRecords, maxBytes int
	got, bytes           int
}

func (m *limits) more() bool { return m.got < m.maxRecords && (m.got == 0 || m.bytes < m.maxBytes) }

// readSegment appends records with seq >= from found in seg's bytes
// [off, end) to dst, within lim.
func (l *Log) readSegment(seg *segment, dst []Record, off, end int64, from uint64, lim *limits) ([]Record, error) {
	for off < end && lim.more() {
		chunk := make([]byte, min(end-off, readChunk))
		if _, err := seg.f.ReadAt(chunk, off); err != nil {
			return dst, fmt.Errorf("reading %s: %w", seg.path, err)
		}
		p := 0
		for p < len(chunk) && lim.more() {
			h, size, st := parseRecord(chunk[p:])
			if st == recShort && p > 0 {
				break // the record continues past this chunk: fetch it next
			}
			if st == recShort && h.n <= MaxBody && int64(headerSize+h.n) <= end-off {
				// One record bigger than a chunk.
				chunk = make([]byte, headerSize+h.n)
				if _, err := seg.f.ReadAt(chunk, off); err != nil {
					return dst, fmt.Errorf("reading %s: %w", seg.path, err)
				}
				continue
			}
			if st != recOK || h.seq < seg.base {
				// Damage that appeared after start-up: never serve it;
				// step to the next indexed record (the seqs in between
				// become a gap for the reader).
				at := off + int64(p)
				l.store.log.Error("data directory: damaged record skipped", "tenant", l.tenant, "segment", seg.path, "offset", at)
				l.mu.Lock()
				next, ok := seg.nextIndexAfter(at)
				l.mu.Unlock()
				if !ok {
					return dst, nil
				}
				off, p = next, 0
				break
			}
			if h.key {
				p += size // an Idempotency-Key, not an event
				continue
			}
			if h.seq >= from {
				dst = append(dst, Record{Seq: h.seq, Body: chunk[p+headerSize : p+size : p+size]})
				lim.got++
				lim.bytes += h.n
			}
			p += size
		}
		off += int64(p)
	}
	return dst, nil
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

func (l *Log) closeFiles() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closeFilesLocked()
}

func (l *Log) closeFilesLocked() error {
	var errs []error
	for _, s := range l.segs {
		if s.f != nil && s.refs == 0 {
			errs = append(errs, s.f.Close())
			s.f = nil
		}
	}
	return errors.Join(errs...)
}
