package disklog

import (
	"fmt"
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
		dst, err = l.readSegment(file.f, seg, dst, off, end, from, &lim)
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

// readSegment appends records with seq >= from found in seg's bytes
// [off, end) to dst, within lim.
func (l *Log) readSegment(f *os.File, seg *segment, dst []Record, off, end int64, from uint64, lim *limits) ([]Record, error) {
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
