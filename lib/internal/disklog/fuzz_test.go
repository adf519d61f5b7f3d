package disklog

import (
	"bytes"
	"testing"
)

// FuzzScanSegment feeds arbitrary segment contents to recovery: it never
// panics, keeps only records that verify, in increasing seq order, and
// never keeps more bytes than it was given.
func FuzzScanSegment(f *testing.F) {
	var good []byte
	for i := uint64(1); i <= 5; i++ {
		good = appendRecord(good, i, body("acme", int(i)), i%2 == 1)
	}
	f.Add(good, true)
	keyed := appendKeyRecord(nil, "idem-1", 1, 2)
	keyed = appendRecord(keyed, 1, body("acme", 1), false)
	keyed = appendRecord(keyed, 2, body("acme", 2), true)
	f.Add(keyed, true)
	f.Add(keyed[:len(keyed)-1], true)
	f.Add(good[:len(good)-3], true)
	f.Add(good[:len(good)-3], false)
	flipped := append([]byte(nil), good...)
	flipped[40] ^= 4
	f.Add(flipped, true)
	f.Add([]byte{}, true)
	f.Add(bytes.Repeat([]byte{0}, 64), false)
	f.Fuzz(func(t *testing.T, b []byte, newest bool) {
		sc := scanSegment(b, 1, newest)
		if sc.end < 0 || sc.end > int64(len(b)) {
			t.Fatalf("end %d of %d bytes", sc.end, len(b))
		}
		// Walk what was kept through the index: every indexed record
		// verifies and seqs increase.
		prev := uint64(0)
		for _, e := range sc.index {
			if e.off >= sc.end {
				t.Fatalf("index entry %v past end %d", e, sc.end)
			}
			h, _, st := parseRecord(b[e.off:sc.end])
			if st != recOK || h.seq != e.seq || h.seq <= prev {
				t.Fatalf("index entry %v: status %d seq %d (prev %d)", e, st, h.seq, prev)
			}
			prev = h.seq
		}
		if sc.count > 0 && (sc.first > sc.last || sc.last < prev) {
			t.Fatalf("count %d first %d last %d", sc.count, sc.first, sc.last)
		}
	})
}
