package disklog

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/tl-sh/tl/lib/event"
	"github.com/tl-sh/tl/lib/internal/tlog"
)

// segRecord is one record of a segment file, as the test finds it.
type segRecord struct {
	off, end int64
	seq      uint64
	key      bool
}

// segRecords lists the records of a segment file (format: record.go).
func segRecords(t *testing.T, b []byte) []segRecord {
	t.Helper()
	var out []segRecord
	for off := int64(0); off < int64(len(b)); {
		lf := binary.LittleEndian.Uint32(b[off+4:])
		end := off + headerSize + int64(lf&lenMask)
		out = append(out, segRecord{off, end, binary.LittleEndian.Uint64(b[off+8:]), lf&keyRecord != 0})
		off = end
	}
	return out
}

// readGaps reads l from seq 1 and returns the seqs served (checking each
// against want) and the gaps announced.
func readGaps(t *testing.T, l tlog.Log, want map[uint64][]byte) ([]uint64, []tlog.Gap) {
	t.Helper()
	var got []uint64
	var gaps []tlog.Gap
	from := uint64(1)
	for i := 0; i < 100000; i++ {
		lines, next, gap, err := l.Read(from, nil, 7, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		if !gap.Empty() {
			gaps = append(gaps, gap)
		}
		for _, line := range lines {
			s, ok := event.LineSeq(line)
			if !ok {
				t.Fatalf("line without seq: %s", line)
			}
			if !bytes.Equal(line, want[s]) {
				t.Fatalf("seq %d serves %q, acknowledged as %q", s, line, want[s])
			}
			got = append(got, s)
		}
		if len(lines) == 0 && gap.Empty() {
			return got, gaps
		}
		from = next
	}
	t.Fatal("Read never reached the end")
	return nil, nil
}

// runs returns the runs of consecutive seqs in s (sorted) as gaps.
func runs(s []uint64) []tlog.Gap {
	var out []tlog.Gap
	for _, x := range s {
		if n := len(out); n > 0 && out[n-1].To+1 == x {
			out[n-1].To = x
			continue
		}
		out = append(out, tlog.Gap{From: x, To: x})
	}
	return out
}

// TestDiskDamageGapIsExact flips bytes at many places of a real segment
// file while the relay's store is open (damage found by reads) and reads
// the tenant through the Log: the gaps announced are exactly the seqs of
// the records damaged (a 2-byte flip in one record loses one seq, not the
// rest of a 4 KiB index interval), every other event is served as it was
// acknowledged, and after a restart (recovery) the same seqs are served and
// the same gaps announced, in the same epoch, and the numbering goes on.
func TestDiskDamageGapIsExact(t *testing.T) {
	base := t.TempDir()
	s := openTL(t, base, TLOptions{}, 0)
	l := tlLog(t, s, "acme")
	want := map[uint64][]byte{}
	var newest uint64
	for i := 0; newest < 1500; i++ {
		bs := tlBodies(int(newest)+1, 1+i%5)
		var first, last uint64
		var err error
		if i%7 == 3 {
			var a tlog.Appended
			a, err = l.Append(context.Background(), tlog.Batch{Bodies: bs, Key: fmt.Sprintf("key-%d", i)})
			first, last = a.First, a.Last
		} else {
			first, last, err = tlAdd(l, bs)
		}
		if err != nil {
			t.Fatal(err)
		}
		for j, b := range bs {
			want[first+uint64(j)] = fmt.Appendf(nil, `{"seq":%d,%s`, first+uint64(j), b)
		}
		newest = last
	}
	epoch := l.Epoch()
	s.Close()
	segs, _ := filepath.Glob(filepath.Join(base, "tenants", "acme", "*.seg"))
	if len(segs) != 1 {
		t.Fatalf("segments %v, want one", segs)
	}
	orig, err := os.ReadFile(segs[0])
	if err != nil {
		t.Fatal(err)
	}
	recs := segRecords(t, orig)
	at := func(off int64) int { // the record holding byte off
		return recordAt(recs, off)
	}
	var keyRec, chunkRec, indexRec int
	for i, r := range recs {
		if r.key && keyRec == 0 && i > 10 {
			keyRec = i
		}
		if r.off < 64<<10 && r.end > 64<<10 {
			chunkRec = i
		}
	}
	indexRec = at(3*4096 + 1)
	for indexRec < len(recs) && recs[indexRec].key {
		indexRec++
	}
	rec := func(i int, byteAt int64) int64 { return recs[i].off + byteAt }
	n := len(recs)
	cases := []struct {
		name  string
		flips []int64
	}{
		{"one body byte", []int64{rec(40, 30)}},
		{"two bytes of one record", []int64{rec(40, 20), rec(40, 21)}},
		{"checksum", []int64{rec(41, 0)}},
		{"length", []int64{rec(42, 4)}},
		{"length high bits", []int64{rec(42, 6)}},
		{"flags", []int64{rec(43, 7)}},
		{"seq", []int64{rec(44, 8)}},
		{"seq high byte", []int64{rec(44, 15)}},
		{"two adjacent records", []int64{recs[50].end - 1, recs[51].off + 20}},
		{"three records in a row", []int64{rec(60, 9), rec(61, 30), rec(62, 2)}},
		{"two places apart", []int64{rec(70, 30), rec(300, 30)}},
		{"first record", []int64{rec(0, 25)}},
		{"an index entry's record", []int64{rec(indexRec, 25)}},
		{"a key record", []int64{rec(keyRec, 20)}},
		{"across the read chunk", []int64{rec(chunkRec, 5)}},
		{"last record", []int64{rec(n-1, 25)}},
		{"last record's length", []int64{rec(n-1, 5)}},
		{"last two records", []int64{rec(n-2, 25), rec(n-1, 25)}},
	}
	rnd := rand.New(rand.NewPCG(16, 4))
	for i := 0; i < 24; i++ {
		var flips []int64
		for j := 0; j <= i%3; j++ {
			flips = append(flips, rnd.Int64N(int64(len(orig))))
		}
		cases = append(cases, struct {
			name  string
			flips []int64
		}{fmt.Sprintf("random %d", i), flips})
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// The records damaged, and the seqs they held.
			var lost []uint64
			for _, f := range tc.flips {
				if r := recs[at(f)]; !r.key && !slices.Contains(lost, r.seq) {
					lost = append(lost, r.seq)
				}
			}
			slices.Sort(lost)
			var served []uint64
			for seq := uint64(1); seq <= newest; seq++ {
				if !slices.Contains(lost, seq) {
					served = append(served, seq)
				}
			}
			dir := t.TempDir()
			if err := os.CopyFS(dir, os.DirFS(base)); err != nil {
				t.Fatal(err)
			}
			p := filepath.Join(dir, "tenants", "acme", filepath.Base(segs[0]))
			s := openTL(t, dir, TLOptions{}, 0)
			l := tlLog(t, s, "acme")
			// The damage appears after start-up: reads find it.
			b := slices.Clone(orig)
			for _, f := range tc.flips {
				b[f] ^= 0x5a
			}
			if err := os.WriteFile(p, b, 0o644); err != nil {
				t.Fatal(err)
			}
			check := func(when string, l tlog.Log) {
				t.Helper()
				got, gaps := readGaps(t, l, want)
				if !slices.Equal(got, served) || !slices.Equal(gaps, runs(lost)) {
					t.Fatalf("%s: flips at %v (records %v lost): gaps %v, want %v; served %d events, want %d",
						when, tc.flips, lost, gaps, runs(lost), len(got), len(served))
				}
			}
			check("while running", l)
			check("read again", l) // damage already met is stepped over alike
			s.Close()
			s = openTL(t, dir, TLOptions{}, 0)
			l = tlLog(t, s, "acme")
			if l.Epoch() != epoch {
				t.Fatal("damaged records changed the epoch")
			}
			check("after a restart", l)
			if f, _, err := tlAdd(l, tlBodies(int(newest)+1, 1)); err != nil || f != newest+1 {
				t.Fatalf("next Append %d, %v; want %d", f, err, newest+1)
			}
			s.Close()
		})
	}
}

// recordAt returns the index of the record of recs holding byte off.
func recordAt(recs []segRecord, off int64) int {
	i, _ := slices.BinarySearchFunc(recs, off, func(r segRecord, off int64) int {
		switch {
		case r.end <= off:
			return -1
		case r.off > off:
			return 1
		}
		return 0
	})
	return i
}
