package disklog

import (
	"fmt"
	"testing"
)

func TestRetentionEvents(t *testing.T) {
	for _, max := range []int{1, 10, 300, 1000} {
		t.Run(fmt.Sprint(max), func(t *testing.T) {
			dir := t.TempDir()
			s := mustOpen(t, dir, Options{MaxEvents: max, SegmentBytes: 2 << 10})
			l := mustLog(t, s, "acme")
			appendN(t, l, 700)
			wantOldest := uint64(1)
			if max < 700 {
				wantOldest = uint64(700 - max + 1)
			}
			if o, n := l.Bounds(); o != wantOldest || n != 700 {
				t.Fatalf("Bounds = %d,%d; want %d,700", o, n, wantOldest)
			}
			recs := readAllRecords(t, l)
			if !equalSeqs(seqsOf(recs), seqRange(wantOldest, 700)) {
				t.Fatalf("read %d records from %d, want %d..700", len(recs), recs[0].Seq, wantOldest)
			}
			// Old segments are gone from disk: at most the bound's worth
			// plus one segment.
			limitSegs := (max*110)/(2<<10) + 2
			if got := len(segFiles(t, dir, "acme")); max < 700 && got > limitSegs+1 {
				t.Fatalf("%d segment files kept for %d events", got, max)
			}
			// The bound holds across a restart.
			s.Close()
			s = mustOpen(t, dir, Options{MaxEvents: max, SegmentBytes: 2 << 10})
			if o, n := mustLog(t, s, "acme").Bounds(); o != wantOldest || n != 700 {
				t.Fatalf("after restart Bounds = %d,%d; want %d,700", o, n, wantOldest)
			}
		})
	}
}

func TestRetentionBytes(t *testing.T) {
	const maxBytes, segBytes = 8 << 10, 1 << 10
	dir := t.TempDir()
	s := mustOpen(t, dir, Options{MaxBytes: maxBytes, SegmentBytes: segBytes})
	l := mustLog(t, s, "acme")
	appendN(t, l, 1000)
	if s.TotalBytes() > maxBytes+segBytes {
		t.Fatalf("tenant holds %d bytes, bound %d (+ one segment)", s.TotalBytes(), maxBytes)
	}
	if s.TotalBytes() < maxBytes-2*segBytes {
		t.Fatalf("tenant holds only %d bytes, bound %d", s.TotalBytes(), maxBytes)
	}
	recs := readAllRecords(t, l)
	o, n := l.Bounds()
	if n != 1000 || !equalSeqs(seqsOf(recs), seqRange(o, 1000)) {
		t.Fatalf("Bounds %d,%d; read %v", o, n, seqsOf(recs))
	}
	checkBodies(t, "acme", recs)
}

// TestTotalCap: the directory-wide cap removes the least recently written
// segments across tenants as new data arrives.
func TestTotalCap(t *testing.T) {
	const capBytes, segBytes = 16 << 10, 1 << 10
	dir := t.TempDir()
	s := mustOpen(t, dir, Options{MaxTotalBytes: capBytes, SegmentBytes: segBytes})
	a, b := mustLog(t, s, "a"), mustLog(t, s, "b")
	appendN(t, a, 120) // about 12 KiB
	appendN(t, b, 300) // pushes the total over the cap: a's old data goes first
	if s.TotalBytes() > capBytes+segBytes {
		t.Fatalf("directory holds %d bytes, cap %d", s.TotalBytes(), capBytes)
	}
	oa, na := a.Bounds()
	ob, nb := b.Bounds()
	if na != 120 || nb != 300 {
		t.Fatalf("newest %d, %d", na, nb)
	}
	if oa == 1 {
		t.Fatalf("tenant a kept everything (%d..%d) over the cap", oa, na)
	}
	if len(segFiles(t, dir, "a")) > 1 && ob == 1 {
		t.Fatalf("b's old data kept (b %d..%d) while a's older data went", ob, nb)
	}
	// A restart sees the same bounds and the same total.
	total := s.TotalBytes()
	s.Close()
	s = mustOpen(t, dir, Options{MaxTotalBytes: capBytes, SegmentBytes: segBytes})
	if s.TotalBytes() != total {
		t.Fatalf("total after restart %d, want %d", s.TotalBytes(), total)
	}
	if o, n := mustLog(t, s, "a").Bounds(); o != oa || n != na {
		t.Fatalf("a after restart %d..%d, want %d..%d", o, n, oa, na)
	}
}
