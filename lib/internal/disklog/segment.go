package disklog

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// indexInterval is how many bytes of a segment may lie between two entries of
// its sparse index: a read from any seq parses at most this much before the
// first record it returns, and the index costs 16 bytes per 4 KiB of data.
const indexInterval = 4096

// segExt names segment files: DIR/tenants/TENANT/<base seq, 20 digits>.seg.
const segExt = ".seg"

// indexEntry locates one record: seq starts at byte off of its segment.
type indexEntry struct {
	seq uint64
	off int64
}

// segment is one file of a tenant's log. Every record in it has a seq of at
// least base, and below the next segment's base. Its file is opened on
// demand through the Store's file cache (files.go), never held for good.
// Fields other than base, path and gone are guarded by the owning Log's mu.
type segment struct {
	base uint64
	path string
	gone bool // dropped from its log: never opened again (guarded by the file cache's mu)

	count       int    // records held
	first, last uint64 // seqs of the first and last records (when count > 0)
	size        int64  // committed bytes: readers never look past it
	index       []indexEntry
	modTime     time.Time // last commit; the store-wide cap removes the least recently written first

	// Written by the committer ahead of fsync: bytes, records, and the
	// offset of the last index entry. Only the committer touches them.
	written  int64
	wcount   int
	wLastIdx int64

	// A segment is sealed once no record will ever be added to it: it was
	// rolled over and every group written to it is acknowledged. Only then
	// may a reader that reached its end go on to the next segment (a group
	// still in its fsync would otherwise be skipped). finalSize is its
	// written size when rolled over (-1 while it is open).
	sealed    bool
	finalSize int64

	removed bool // dropped from the log (its file is closed by the file cache)

	skips map[int64]skip // damage found by reads, by offset (see Log.skipDamage)
}

func segName(base uint64) string { return fmt.Sprintf("%020d%s", base, segExt) }

// parseSegName returns the base seq of a segment file name.
func parseSegName(name string) (uint64, bool) {
	s, ok := strings.CutSuffix(name, segExt)
	if !ok || len(s) != 20 {
		return 0, false
	}
	n, err := strconv.ParseUint(s, 10, 64)
	return n, err == nil && n > 0
}

// listSegments returns the bases of the segments in dir, oldest first.
func listSegments(dir string) ([]uint64, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var bases []uint64
	for _, e := range ents {
		if b, ok := parseSegName(e.Name()); ok && e.Type().IsRegular() {
			bases = append(bases, b)
		} else if strings.HasSuffix(e.Name(), ".tmp") {
			// A meta file whose rename never happened: the old one stands.
			os.Remove(filepath.Join(dir, e.Name()))
		}
	}
	sort.Slice(bases, func(i, j int) bool { return bases[i] < bases[j] })
	return bases, nil
}

// locate returns the offset of the index entry with the greatest seq <= seq
// (0 when seq precedes them all). Callers hold the Log's mu.
func (s *segment) locate(seq uint64) int64 {
	i := sort.Search(len(s.index), func(i int) bool { return s.index[i].seq > seq })
	if i == 0 {
		return 0
	}
	return s.index[i-1].off
}

// scan is what recovery learned about one segment's bytes.
type scan struct {
	count       int
	first, last uint64
	index       []indexEntry
	end         int64    // keep [0, end); cut the rest
	damage      []string // one description per damaged stretch, for the log
	reserve     uint64   // the seq a damaged but fully written tail record held: never reuse it
	keys        []Key    // Idempotency-Keys of the batches kept
}

// scanSegment verifies every record of a segment's contents b. A record that
// fails its checksum, or is cut short, is never kept:
//   - when a valid record follows it (found by a byte-by-byte search), the
//     damaged stretch is skipped: the records in it are lost and readers
//     see a gap there; the index gets an entry after the stretch;
//   - otherwise the segment is cut at the damaged record. A tail record
//     that was written in full (it fails its checksum, or only its length
//     field is damaged: see lengthDamaged) may have been acknowledged, so
//     its seq is reserved, never given out again, and readers see a gap.
//     In the newest segment (newest is true), any other cut-short tail is a
//     crash in the middle of a write, so the batch it belongs to was never
//     acknowledged: the cut goes back to the end of the last complete
//     batch, and the batch's seqs are given out again.
func scanSegment(b []byte, base uint64, newest bool) scan {
	var sc scan
	prev := base - 1 // seq of the last good record
	var off, lastIdx int64 = 0, -indexInterval
	reindex := true
	// The state at the end of the last complete batch, for a torn tail.
	type mark struct {
		count int
		last  uint64
		end   int64
		idx   int
		keys  int
	}
	committed := mark{last: prev}
	var torn int64 // bytes of an unreadable tail
	for off < int64(len(b)) {
		h, size, st := parseRecord(b[off:])
		if st == recOK && h.key && h.seq > prev {
			// The Idempotency-Key of the batch that starts here: it
			// takes no seq of its own.
			if k, ok := decodeKey(h.seq, b[off+headerSize:off+int64(size)]); ok {
				sc.keys = append(sc.keys, k)
			}
			off += int64(size)
			continue
		}
		if st == recOK && h.seq > prev {
			if sc.count == 0 {
				sc.first = h.seq
			}
			if reindex || off-lastIdx >= indexInterval {
				sc.index = append(sc.index, indexEntry{h.seq, off})
				lastIdx, reindex = off, false
			}
			sc.count++
			sc.last, prev = h.seq, h.seq
			off += int64(size)
			if h.last {
				committed = mark{sc.count, sc.last, off, len(sc.index), len(sc.keys)}
			}
			continue
		}
		if next := resync(b, off+1, prev); next >= 0 {
			nh := readHeader(b[next:])
			sc.damage = append(sc.damage, fmt.Sprintf("bytes %d-%d damaged, seqs %d-%d lost", off, next-1, prev+1, nh.seq-1))
			off, reindex = next, true
			// The records before the damage stand on their own.
			committed = mark{sc.count, sc.last, off, len(sc.index), len(sc.keys)}
			continue
		}
		// Nothing valid follows: this is the tail.
		if st == recCorrupt || (st == recShort && lengthDamaged(b[off:])) {
			// A record written in full whose bits then flipped (a
			// checksum failure, a garbage length, or a length that
			// only runs past the end of the file because it was
			// damaged) may have been acknowledged and delivered: its
			// seq is never given out again in this epoch, whatever its
			// own seq field now reads. Records of a segment are
			// numbered one after the other, so it held prev+1 (or the
			// seq it names, if that reads as a later one).
			seq := prev + 1
			if plausible(h.seq, prev, len(b)) {
				seq = max(seq, h.seq)
			}
			sc.reserve = seq
			sc.damage = append(sc.damage, fmt.Sprintf("damaged record at byte %d (seq %d) and the %d bytes after it cut", off, seq, int64(len(b))-off))
			sc.end = off
			return sc
		}
		torn = int64(len(b)) - off
		break
	}
	if newest && committed.end < off {
		// Records of a batch whose end never reached the disk: the write
		// stopped in the middle (a crash), so it was never acknowledged.
		off = committed.end
		sc.count, sc.last, sc.index = committed.count, committed.last, sc.index[:committed.idx]
		sc.keys = sc.keys[:committed.keys]
	}
	if cut := int64(len(b)) - off; cut > 0 {
		if torn > 0 && !newest {
			sc.damage = append(sc.damage, fmt.Sprintf("damaged tail at byte %d cut (%d bytes)", off, cut))
		} else {
			sc.damage = append(sc.damage, fmt.Sprintf("torn tail at byte %d cut (%d bytes, never acknowledged)", off, cut))
		}
	}
	if sc.count == 0 {
		sc.first = 0
	}
	sc.end = off
	return sc
}

// lengthDamaged reports whether b, a tail that parseRecord found cut short
// (its length runs past the end of b), is in fact one whole record whose
// length field alone was damaged: with the length it must have had (b ends
// where the record does), under any flags, the checksum verifies. The
// checksum covers the length, so this tells a damaged, fully written (so
// possibly acknowledged) record from a write cut short by a crash (never
// acknowledged), whose checksum cannot verify over a prefix of its body.
func lengthDamaged(b []byte) bool {
	n := len(b) - headerSize
	if n < 0 || n > MaxBody {
		return false
	}
	want := binary.LittleEndian.Uint32(b)
	for _, flags := range []uint32{batchEnd, 0, keyRecord, batchEnd | keyRecord} {
		var lf [4]byte
		binary.LittleEndian.PutUint32(lf[:], uint32(n)|flags)
		if crc32.Update(crc32.Checksum(lf[:], castagnoli), castagnoli, b[8:]) == want {
			return true
		}
	}
	return false
}

// plausible reports whether seq could follow prev within a segment of n bytes.
func plausible(seq, prev uint64, n int) bool {
	return seq > prev && seq-prev <= uint64(n/headerSize)+1
}

// resync returns the offset of the first valid record at or after from whose
// seq could follow prev, or -1.
func resync(b []byte, from int64, prev uint64) int64 {
	for p := from; p+headerSize <= int64(len(b)); p++ {
		h := readHeader(b[p:])
		if !plausible(h.seq, prev, len(b)) {
			continue
		}
		if _, _, st := parseRecord(b[p:]); st == recOK {
			return p
		}
	}
	return -1
}
