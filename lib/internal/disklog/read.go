package disklog

import (
	"fmt"
	"io"
	"os"
	"sort"
)

// readChunk is how much a read fetches from a segment at a time.
const readChunk = 64 << 10

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
		prev, last := prevSeqAt(seg, off), seg.last
		l.mu.Unlock()

		file, err := l.store.files.get(seg)
		if err != nil {
			l.mu.Lock()
			removed := seg.removed
			l.mu.Unlock()
			if removed {
				continue // retention took it meanwhile: start again from the oldest
			}
			return dst, fmt.Errorf("reading %s: %w", seg.path, err)
		}
		n0 := len(dst)
		dst, err = l.readSegment(file.f, seg, dst, off, end, from, prev, last, &lim)
		l.store.files.put(file)
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

// prevSeqAt returns the seq before the record at off, an index entry of
// seg (or 0). Callers hold the Log's mu.
func prevSeqAt(seg *segment, off int64) uint64 {
	i := sort.Search(len(seg.index), func(i int) bool { return seg.index[i].off >= off })
	if i < len(seg.index) && seg.index[i].off == off {
		return seg.index[i].seq - 1
	}
	return seg.base - 1
}

// readSegment appends records with seq >= from found in seg's bytes
// [off, end) of f to dst, within lim. prev is the seq before the record at
// off, last the seq of the segment's last committed record.
func (l *Log) readSegment(f *os.File, seg *segment, dst []Record, off, end int64, from, prev, last uint64, lim *limits) ([]Record, error) {
	for off < end && lim.more() {
		chunk := make([]byte, min(end-off, readChunk))
		if _, err := f.ReadAt(chunk, off); err != nil {
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
				if _, err := f.ReadAt(chunk, off); err != nil {
					return dst, fmt.Errorf("reading %s: %w", seg.path, err)
				}
				continue
			}
			if st != recOK || h.seq <= prev || h.seq > last {
				// Damage that appeared after start-up: never serve it.
				// Step to the next valid record, byte by byte, as
				// recovery does, so that the seqs lost (a gap for the
				// reader) are exactly those of the damaged records,
				// the same now as after a restart.
				next, err := l.skipDamage(f, seg, off+int64(p), end, prev, last)
				if err != nil || next < 0 {
					return dst, err
				}
				off, p = next, 0
				break
			}
			if h.key {
				p += size // an Idempotency-Key (its seq is its batch's first), not an event
				continue
			}
			prev = h.seq
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

// skipDamage returns the offset of the first valid record of seg (read
// from f) after the damaged one at off, below end, whose seq lies in (prev, last], or -1 when
// there is none. What it finds is kept in seg.skips (and logged once), so
// readers crossing the same damage later step over it at once.
func (l *Log) skipDamage(f *os.File, seg *segment, off, end int64, prev, last uint64) (int64, error) {
	l.mu.Lock()
	sk, ok := seg.skips[off]
	l.mu.Unlock()
	if ok && (sk.next >= 0 || sk.upTo == end) {
		return sk.next, nil
	}
	next, err := findRecord(f, off+1, end, prev, last)
	if err != nil {
		return -1, fmt.Errorf("reading %s: %w", seg.path, err)
	}
	l.mu.Lock()
	if seg.skips == nil {
		seg.skips = map[int64]skip{}
	}
	seg.skips[off] = skip{next: next, upTo: end}
	l.mu.Unlock()
	if next >= 0 {
		l.store.log.Error("data directory: damaged record skipped", "tenant", l.tenant, "segment", seg.path,
			"damage", fmt.Sprintf("bytes %d-%d", off, next-1))
	} else if !ok {
		l.store.log.Error("data directory: damaged record skipped", "tenant", l.tenant, "segment", seg.path,
			"damage", fmt.Sprintf("bytes %d-%d, the rest of the segment", off, end-1))
	}
	return next, nil
}

// skip is a damaged stretch found by a read: the next valid record (-1:
// none below upTo, the committed size then).
type skip struct{ next, upTo int64 }

// findRecord returns the offset of the first valid record in f's bytes
// [from, end) whose seq lies in (prev, last], or -1.
func findRecord(f io.ReaderAt, from, end int64, prev, last uint64) (int64, error) {
	buf := make([]byte, readChunk+headerSize)
	for q := from; q+headerSize <= end; {
		n := min(int64(len(buf)), end-q)
		b := buf[:n]
		if _, err := f.ReadAt(b, q); err != nil {
			return -1, err
		}
		for i := 0; i+headerSize <= len(b); i++ {
			h := readHeader(b[i:])
			if h.seq <= prev || h.seq > last || h.n > MaxBody || q+int64(i+headerSize+h.n) > end {
				continue
			}
			rec := b[i:]
			if i+headerSize+h.n > len(b) {
				rec = make([]byte, headerSize+h.n)
				if _, err := f.ReadAt(rec, q+int64(i)); err != nil {
					return -1, err
				}
			}
			if _, _, st := parseRecord(rec); st == recOK {
				return q + int64(i), nil
			}
		}
		if q+n >= end {
			break
		}
		q += n - headerSize + 1 // the next window overlaps by a header less one byte
	}
	return -1, nil
}
