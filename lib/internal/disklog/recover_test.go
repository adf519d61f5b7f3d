package disklog

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tl-sh/tl/lib/internal/testkit"
)

// buildLog writes a log of n single-record batches and then one batch of
// lastBatch records, closes it, and returns the directory, the newest
// segment's path, and the offset where the last batch starts.
func buildLog(t *testing.T, n, lastBatch int) (dir, seg string, lastStart int64) {
	t.Helper()
	dir = t.TempDir()
	s := mustOpen(t, dir, Options{})
	l := mustLog(t, s, "acme")
	appendN(t, l, n)
	files := segFiles(t, dir, "acme")
	st, err := os.Stat(files[len(files)-1])
	if err != nil {
		t.Fatal(err)
	}
	var bodies [][]byte
	for i := 1; i <= lastBatch; i++ {
		bodies = append(bodies, body("acme", n+i))
	}
	if _, _, err := l.Append(bodies); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	files = segFiles(t, dir, "acme")
	return dir, files[len(files)-1], st.Size()
}

// TestTornTailEveryOffset cuts the newest segment at every byte offset
// inside its last batch (a crash in the middle of the write): recovery drops
// the whole unfinished batch, says so, gives its seqs out again, and a second
// restart finds a clean log.
func TestTornTailEveryOffset(t *testing.T) {
	for _, lastBatch := range []int{1, 3} {
		base, seg, start := buildLog(t, 10, lastBatch)
		st, _ := os.Stat(seg)
		for cut := start; cut < st.Size(); cut++ {
			dir := copyDir(t, base)
			p := filepath.Join(dir, "tenants", "acme", filepath.Base(seg))
			if err := os.Truncate(p, cut); err != nil {
				t.Fatal(err)
			}
			// A crash in the middle of the write came before the batch
			// was acknowledged: the mark stands below it.
			setMark(t, dir, "acme", 10)
			var logbuf testkit.SyncBuffer
			s, err := Open(dir, Options{Logger: testLogger(&logbuf)})
			if err != nil {
				t.Fatalf("cut %d: %v", cut, err)
			}
			l := mustLog(t, s, "acme")
			if e := l.Epoch(); e != epochOf(t, base, "acme") {
				t.Fatalf("cut %d: epoch %s after a torn write, want the same as before", cut, e)
			}
			recs := readAllRecords(t, l)
			if !slices.Equal(seqsOf(recs), testkit.SeqRange(1, 10)) {
				t.Fatalf("batch of %d cut at %d: seqs %v, want 1..10", lastBatch, cut, seqsOf(recs))
			}
			checkBodies(t, "acme", recs)
			if cut > start && !strings.Contains(logbuf.String(), "torn tail") {
				t.Fatalf("cut %d: no log line about the torn tail:\n%s", cut, logbuf.String())
			}
			if f, _, err := l.Append([][]byte{body("acme", 11)}); err != nil || f != 11 {
				t.Fatalf("cut %d: next Append = %d, %v; want 11", cut, f, err)
			}
			s.Close()
			var again testkit.SyncBuffer
			s = mustOpen(t, dir, Options{Logger: testLogger(&again)})
			if strings.Contains(again.String(), "damage") {
				t.Fatalf("cut %d: second restart still finds damage:\n%s", cut, again.String())
			}
			recs = readAllRecords(t, mustLog(t, s, "acme"))
			if !slices.Equal(seqsOf(recs), testkit.SeqRange(1, 11)) {
				t.Fatalf("cut %d, after restart: seqs %v", cut, seqsOf(recs))
			}
			checkBodies(t, "acme", recs)
			s.Close()
		}
	}
}

// TestFlippedBitEveryOffset flips one bit at every byte of a record in the
// middle of a segment: that record, and only it, is lost; it is never
// served, the loss is logged, and the rest of the log is intact.
func TestFlippedBitEveryOffset(t *testing.T) {
	base, seg, _ := buildLog(t, 12, 1)
	orig, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	// Find record 6.
	var off int64
	for seq := 1; seq < 6; seq++ {
		_, size, _ := parseRecord(orig[off:])
		off += int64(size)
	}
	_, size, _ := parseRecord(orig[off:])
	want := append(testkit.SeqRange(1, 5), testkit.SeqRange(7, 13)...)
	for i := off; i < off+int64(size); i++ {
		for _, bit := range []byte{0x01, 0x80} {
			dir := copyDir(t, base)
			p := filepath.Join(dir, "tenants", "acme", filepath.Base(seg))
			b := append([]byte(nil), orig...)
			b[i] ^= bit
			if err := os.WriteFile(p, b, 0o644); err != nil {
				t.Fatal(err)
			}
			var logbuf testkit.SyncBuffer
			s, err := Open(dir, Options{Logger: testLogger(&logbuf)})
			if err != nil {
				t.Fatal(err)
			}
			l := mustLog(t, s, "acme")
			recs := readAllRecords(t, l)
			if !slices.Equal(seqsOf(recs), want) {
				t.Fatalf("bit %#x of byte %d flipped: seqs %v, want %v", bit, i, seqsOf(recs), want)
			}
			checkBodies(t, "acme", recs)
			if !strings.Contains(logbuf.String(), "seqs 6-6 lost") {
				t.Fatalf("byte %d: log says\n%s", i, logbuf.String())
			}
			if f, _, err := l.Append([][]byte{body("acme", 14)}); err != nil || f != 14 {
				t.Fatalf("byte %d: next Append = %d, %v; want 14", i, f, err)
			}
			s.Close()
		}
	}
}

// TestFlippedBitInLastRecord: a damaged record at the very end was written
// in full (it may have been acknowledged and delivered), so it is cut but
// its seq is never given to another event, even after another restart.
func TestFlippedBitInLastRecord(t *testing.T) {
	base, seg, start := buildLog(t, 5, 1)
	for _, i := range []int64{start + headerSize + 3, start + 1} {
		dir := copyDir(t, base)
		p := filepath.Join(dir, "tenants", "acme", filepath.Base(seg))
		b, _ := os.ReadFile(p)
		b[i] ^= 0x10
		os.WriteFile(p, b, 0o644)
		var logbuf testkit.SyncBuffer
		s := mustOpen(t, dir, Options{Logger: testLogger(&logbuf)})
		if !strings.Contains(logbuf.String(), "damaged record") {
			t.Fatalf("byte %d: log says\n%s", i, logbuf.String())
		}
		l := mustLog(t, s, "acme")
		if o, n := l.Bounds(); o != 1 || n != 6 {
			t.Fatalf("byte %d: Bounds = %d,%d; want 1,6 (seq 6 reserved)", i, o, n)
		}
		if recs := readAllRecords(t, l); !slices.Equal(seqsOf(recs), testkit.SeqRange(1, 5)) {
			t.Fatalf("byte %d: seqs %v", i, seqsOf(recs))
		}
		s.Close()
		s = mustOpen(t, dir, Options{})
		l = mustLog(t, s, "acme")
		if f, _, err := l.Append([][]byte{body("acme", 7)}); err != nil || f != 7 {
			t.Fatalf("byte %d: Append after two restarts = %d, %v; want 7", i, f, err)
		}
		recs := readAllRecords(t, l)
		if !slices.Equal(seqsOf(recs), append(testkit.SeqRange(1, 5), 7)) {
			t.Fatalf("byte %d: seqs %v", i, seqsOf(recs))
		}
		checkBodies(t, "acme", recs)
		s.Close()
	}
}

// TestDamageInOlderSegment: a damaged record in an older segment loses the
// rest of that record only; later segments stay.
func TestDamageInOlderSegment(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir, Options{SegmentBytes: 512})
	appendN(t, mustLog(t, s, "acme"), 40)
	s.Close()
	files := segFiles(t, dir, "acme")
	if len(files) < 3 {
		t.Fatalf("want at least 3 segments, got %d", len(files))
	}
	// Damage the last record of the first segment.
	b, _ := os.ReadFile(files[0])
	b[len(b)-2] ^= 0xff
	os.WriteFile(files[0], b, 0o644)
	var logbuf testkit.SyncBuffer
	s = mustOpen(t, dir, Options{SegmentBytes: 512, Logger: testLogger(&logbuf)})
	l := mustLog(t, s, "acme")
	recs := readAllRecords(t, l)
	checkBodies(t, "acme", recs)
	// The record lost is the last of segment 1: one seq short of the
	// second segment's base.
	base2, _ := parseSegName(filepath.Base(files[1]))
	lost := base2 - 1
	var want []uint64
	for q := uint64(1); q <= 40; q++ {
		if q != lost {
			want = append(want, q)
		}
	}
	if !slices.Equal(seqsOf(recs), want) {
		t.Fatalf("seqs %v, want all but %d", seqsOf(recs), lost)
	}
	if !strings.Contains(logbuf.String(), "damage") {
		t.Fatalf("no log line:\n%s", logbuf.String())
	}
	if _, n := l.Bounds(); n != 40 {
		t.Fatalf("newest %d, want 40", n)
	}
}

// TestDamageAfterStart: a record damaged on disk while the relay runs is
// detected by the read-time checksum and never served.
func TestDamageAfterStart(t *testing.T) {
	dir := t.TempDir()
	var logbuf testkit.SyncBuffer
	s := mustOpen(t, dir, Options{Logger: testLogger(&logbuf)})
	l := mustLog(t, s, "acme")
	appendN(t, l, 100)
	files := segFiles(t, dir, "acme")
	f, err := os.OpenFile(files[0], os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt([]byte{'X'}, 20) // inside record 1's body
	f.Close()
	recs := readAllRecords(t, l)
	if len(recs) == 0 || recs[0].Seq == 1 {
		t.Fatalf("damaged record 1 served (or nothing read): %v", seqsOf(recs))
	}
	checkBodies(t, "acme", recs)
	if recs[len(recs)-1].Seq != 100 {
		t.Fatalf("last record %d, want 100", recs[len(recs)-1].Seq)
	}
	if !strings.Contains(logbuf.String(), "damaged record skipped") {
		t.Fatalf("no log line:\n%s", logbuf.String())
	}
}

// TestLostMeta: without its meta file a tenant gets a new epoch (clients
// cannot trust the numbering) but its records and seqs continue.
func TestLostMeta(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir, Options{})
	l := mustLog(t, s, "acme")
	appendN(t, l, 3)
	e := l.Epoch()
	s.Close()
	os.Remove(filepath.Join(dir, "tenants", "acme", "meta.json"))
	s = mustOpen(t, dir, Options{})
	l = mustLog(t, s, "acme")
	if l.Epoch() == e || l.Epoch() == "" {
		t.Fatalf("epoch %q after losing meta (was %q)", l.Epoch(), e)
	}
	if _, n := l.Bounds(); n != 3 {
		t.Fatalf("newest %d", n)
	}
}

// TestKeysSurviveRestart: an Idempotency-Key written with its batch comes
// back after a restart with the batch's seqs, unless the batch itself was
// cut (a torn tail); key records are never served as events.
func TestKeysSurviveRestart(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir, Options{})
	l := mustLog(t, s, "acme")
	appendN(t, l, 2)
	for _, key := range []string{"k-one", "k-two"} {
		_, newest := l.Bounds()
		if _, err := l.AppendFunc(key, 3, 0, func(dst []byte, seq uint64, _ int) []byte {
			return append(dst, body("acme", int(seq))...)
		}); err != nil {
			t.Fatal(err)
		}
		if _, n := l.Bounds(); n != newest+3 {
			t.Fatalf("newest %d after a keyed batch of 3, want %d", n, newest+3)
		}
	}
	recs := readAllRecords(t, l)
	if !slices.Equal(seqsOf(recs), testkit.SeqRange(1, 8)) {
		t.Fatalf("seqs %v", seqsOf(recs))
	}
	checkBodies(t, "acme", recs)
	s.Close()

	want := []Key{{"k-one", 3, 5}, {"k-two", 6, 8}}
	s = mustOpen(t, dir, Options{})
	l = mustLog(t, s, "acme")
	if got := l.TakeKeys(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("TakeKeys = %v, want %v", got, want)
	}
	if got := l.TakeKeys(); got != nil {
		t.Fatalf("second TakeKeys = %v", got)
	}
	recs = readAllRecords(t, l)
	if !slices.Equal(seqsOf(recs), testkit.SeqRange(1, 8)) {
		t.Fatalf("after restart: seqs %v", seqsOf(recs))
	}
	checkBodies(t, "acme", recs)
	s.Close()

	// Cut the last batch short, as a crash before its answer would (the
	// mark stands below it): its key goes with it.
	files := segFiles(t, dir, "acme")
	st, _ := os.Stat(files[len(files)-1])
	os.Truncate(files[len(files)-1], st.Size()-5)
	setMark(t, dir, "acme", 5)
	s = mustOpen(t, dir, Options{})
	l = mustLog(t, s, "acme")
	if got := l.TakeKeys(); fmt.Sprint(got) != fmt.Sprint(want[:1]) {
		t.Fatalf("after a torn tail, TakeKeys = %v, want %v", got, want[:1])
	}
	if _, n := l.Bounds(); n != 5 {
		t.Fatalf("newest %d after the torn batch, want 5", n)
	}
}

// TestFlippedHeaderBitInNewestRecord flips, one at a time, every bit of the
// newest record's header (checksum, length and flags, seq): that record was
// written in full and acknowledged (its Append returned), so whatever the
// damage makes it look like (a record cut short by a crash, an older seq, a
// garbage length), its seq is never given to another event in the epoch,
// even after a second restart, and a reader resuming after the last seq it
// had before is told of the loss (the next record it gets is later).
func TestFlippedHeaderBitInNewestRecord(t *testing.T) {
	const acked = 7
	base, seg, start := buildLog(t, acked-1, 1)
	orig, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	for byteAt := start; byteAt < start+headerSize; byteAt++ {
		for bit := 0; bit < 8; bit++ {
			field := map[bool]string{true: "crc", false: "lenflags"}[byteAt-start < 4]
			if byteAt-start >= 8 {
				field = "seq"
			}
			name := fmt.Sprintf("%s/byte%d/bit%d", field, byteAt-start, bit)
			dir := copyDir(t, base)
			p := filepath.Join(dir, "tenants", "acme", filepath.Base(seg))
			b := append([]byte(nil), orig...)
			b[byteAt] ^= 1 << bit
			if err := os.WriteFile(p, b, 0o644); err != nil {
				t.Fatal(err)
			}
			var logbuf testkit.SyncBuffer
			s, err := Open(dir, Options{Logger: testLogger(&logbuf)})
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			l := mustLog(t, s, "acme")
			if !strings.Contains(logbuf.String(), "damaged record") {
				t.Fatalf("%s: log says\n%s", name, logbuf.String())
			}
			recs := readAllRecords(t, l)
			if !slices.Equal(seqsOf(recs), testkit.SeqRange(1, acked-1)) {
				t.Fatalf("%s: seqs %v, want 1..%d", name, seqsOf(recs), acked-1)
			}
			checkBodies(t, "acme", recs)
			f, _, err := l.Append([][]byte{body("acme", 100)})
			if err != nil || f <= acked {
				t.Fatalf("%s: next Append = %d, %v; seq %d was acknowledged already", name, f, err, acked)
			}
			// A reader that had everything up to acked-1 and asks
			// for the rest: seq acked is not there (a gap for it).
			got, err := l.Read(nil, acked, 10, 1<<20)
			if err != nil || len(got) != 1 || got[0].Seq != f {
				t.Fatalf("%s: Read from %d = %v, %v; want only seq %d", name, acked, seqsOf(got), err, f)
			}
			s.Close()
			// The reservation holds across another restart.
			s = mustOpen(t, dir, Options{})
			l = mustLog(t, s, "acme")
			if f2, _, err := l.Append([][]byte{body("acme", 101)}); err != nil || f2 != f+1 {
				t.Fatalf("%s: Append after a second restart = %d, %v; want %d", name, f2, err, f+1)
			}
			s.Close()
		}
	}
}

// TestRecoverCutFailure: when cutting a damaged tail fails (the truncate or
// its fsync: a failing disk), Open fails, naming the file, instead of going
// on over a cut that may not be durable; once the disk works, the same
// directory opens and is repaired.
func TestRecoverCutFailure(t *testing.T) {
	for _, op := range []string{"truncate", "fsync"} {
		t.Run(op, func(t *testing.T) {
			base, seg, start := buildLog(t, 10, 3)
			dir := copyDir(t, base)
			p := filepath.Join(dir, "tenants", "acme", filepath.Base(seg))
			if err := os.Truncate(p, start+5); err != nil { // a torn tail to cut
				t.Fatal(err)
			}
			fail := errors.New("disk on fire")
			var calls int
			fs := &faults{}
			hook := func(*os.File) error { calls++; return fail }
			if op == "truncate" {
				fs.truncateFile = func(*os.File, int64) error { calls++; return fail }
			} else {
				fs.syncFile = hook
			}
			_, err := Open(dir, Options{faults: fs})
			if !errors.Is(err, fail) || !strings.Contains(err.Error(), filepath.Base(seg)) {
				t.Fatalf("Open with a failing %s: %v; want the failure, naming the segment", op, err)
			}
			if calls != 1 {
				t.Fatalf("the %s hook ran %d times, want 1", op, calls)
			}
			s := mustOpen(t, dir, Options{})
			if recs := readAllRecords(t, mustLog(t, s, "acme")); !slices.Equal(seqsOf(recs), testkit.SeqRange(1, 10)) {
				t.Fatalf("after the disk recovered: seqs %v, want 1..10", seqsOf(recs))
			}
		})
	}
}
