package disklog

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/tl-sh/tl/lib/internal/testkit"
)

func TestAppendReadReopen(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir, Options{SegmentBytes: 1 << 10})
	l := mustLog(t, s, "acme")
	if o, n := l.Bounds(); o != 1 || n != 0 {
		t.Fatalf("empty log Bounds = %d,%d; want 1,0", o, n)
	}
	if got := segFiles(t, dir, "acme"); len(got) != 0 {
		t.Fatalf("a log nobody appended to has files: %v", got)
	}
	epoch := l.Epoch()
	// Batches of several sizes, across many small segments.
	for _, n := range []int{1, 3, 10, 1, 20, 1, 29} {
		_, newest := l.Bounds()
		var bodies [][]byte
		for i := 1; i <= n; i++ {
			bodies = append(bodies, body("acme", int(newest)+i))
		}
		f, la, err := l.Append(bodies)
		if err != nil {
			t.Fatal(err)
		}
		if f != newest+1 || la != newest+uint64(n) {
			t.Fatalf("Append(%d) = %d..%d, want %d..%d", n, f, la, newest+1, newest+uint64(n))
		}
	}
	if len(segFiles(t, dir, "acme")) < 3 {
		t.Fatalf("want several segments of 1 KiB, got %v", segFiles(t, dir, "acme"))
	}
	check := func(l *Log) {
		t.Helper()
		recs := readAllRecords(t, l)
		if !slices.Equal(seqsOf(recs), testkit.SeqRange(1, 65)) {
			t.Fatalf("seqs %v, want 1..65", seqsOf(recs))
		}
		checkBodies(t, "acme", recs)
		for _, tc := range []struct {
			from     uint64
			max      int
			maxBytes int
			want     []uint64
		}{
			{from: 40, max: 3, maxBytes: 1 << 20, want: []uint64{40, 41, 42}},
			{from: 65, max: 10, maxBytes: 1 << 20, want: []uint64{65}},
			{from: 66, max: 10, maxBytes: 1 << 20, want: nil},
			{from: 0, max: 2, maxBytes: 1 << 20, want: []uint64{1, 2}},
			{from: 10, max: 100, maxBytes: 1, want: []uint64{10}}, // at least one record
		} {
			recs, err := l.Read(nil, tc.from, tc.max, tc.maxBytes)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(seqsOf(recs), tc.want) {
				t.Errorf("Read(from %d, max %d, bytes %d) = %v, want %v", tc.from, tc.max, tc.maxBytes, seqsOf(recs), tc.want)
			}
			checkBodies(t, "acme", recs)
		}
	}
	check(l)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, _, err := l.Append([][]byte{body("acme", 66)}); err != ErrClosed {
		t.Fatalf("Append after Close: %v, want ErrClosed", err)
	}

	s2 := mustOpen(t, dir, Options{SegmentBytes: 1 << 10})
	if got := s2.Tenants(); len(got) != 1 || got[0] != "acme" {
		t.Fatalf("Tenants() = %v", got)
	}
	l2 := mustLog(t, s2, "acme")
	if l2.Epoch() != epoch {
		t.Fatalf("epoch after reopen %q, want %q", l2.Epoch(), epoch)
	}
	check(l2)
	if f, _, err := l2.Append([][]byte{body("acme", 66)}); err != nil || f != 66 {
		t.Fatalf("Append after reopen = %d, %v; want 66", f, err)
	}
}

func TestDirectoryInUse(t *testing.T) {
	dir := t.TempDir()
	mustOpen(t, dir, Options{})
	if s, err := Open(dir, Options{}); err == nil {
		s.Close()
		t.Fatal("a second Open of the same directory succeeded")
	}
}

func TestBadTenant(t *testing.T) {
	s := mustOpen(t, t.TempDir(), Options{})
	for _, name := range []string{"", "..", ".x", "a/b", strings.Repeat("a", 65)} {
		if _, err := s.Log(name); err == nil {
			t.Errorf("Log(%q) accepted", name)
		}
	}
}

func TestTwoTenantsAreSeparate(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir, Options{})
	a, b := mustLog(t, s, "a"), mustLog(t, s, "b")
	appendN(t, a, 5)
	appendN(t, b, 2)
	if _, n := a.Bounds(); n != 5 {
		t.Fatalf("a newest %d", n)
	}
	if _, n := b.Bounds(); n != 2 {
		t.Fatalf("b newest %d", n)
	}
	if a.Epoch() == b.Epoch() {
		t.Fatalf("two tenants share epoch %q", a.Epoch())
	}
	checkBodies(t, "b", readAllRecords(t, b))
}

// TestGroupCommit holds every fsync while 20 appends queue up behind a
// first one: none returns (and nothing is visible) before its fsync; at
// most maxSyncs groups can be in flight, so the rest must share a single
// fsync once the first ones are let go.
func TestGroupCommit(t *testing.T) {
	const waiting = 20
	s := mustOpen(t, t.TempDir(), Options{})
	l := mustLog(t, s, "acme")
	release := make(chan struct{})
	var syncs, returned atomic.Int32
	s.opts.faults = &faults{syncFile: func(f *os.File) error {
		syncs.Add(1)
		<-release
		return f.Sync()
	}}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if _, _, err := l.Append([][]byte{body("acme", 1)}); err != nil {
			t.Error(err)
		}
		returned.Add(1)
	}()
	for syncs.Load() == 0 { // the first append is in its fsync
		runtime.Gosched()
	}
	for i := 0; i < waiting; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, _, err := l.Append([][]byte{[]byte(`{}`), []byte(`{}`)}); err != nil {
				t.Error(err)
			}
			returned.Add(1)
		}()
	}
	for { // every append has its seqs
		l.mu.Lock()
		n := l.next
		l.mu.Unlock()
		if n == 2+2*waiting {
			break
		}
		runtime.Gosched()
	}
	if n := syncs.Load(); n > maxSyncs {
		t.Fatalf("%d fsyncs in flight, want at most %d", n, maxSyncs)
	}
	// No append returns (no 202 is answered) before its fsync is done.
	if n := returned.Load(); n != 0 {
		t.Fatalf("%d appends returned while every fsync was held", n)
	}
	if _, n := l.Bounds(); n != 0 {
		t.Fatalf("newest %d is visible before its fsync", n)
	}
	close(release)
	wg.Wait()
	if n := syncs.Load(); n > maxSyncs+1 {
		t.Fatalf("%d appends took %d fsyncs, want at most %d", waiting+1, n, maxSyncs+1)
	}
	if _, n := l.Bounds(); n != 1+2*waiting {
		t.Fatalf("newest %d, want %d", n, 1+2*waiting)
	}
	t.Logf("%d appends, %d fsyncs", waiting+1, syncs.Load())
}

// TestConcurrentAppendRead runs appenders and readers at once (under -race
// in CI): every batch gets a contiguous range, the ranges tile 1..N, and
// readers only ever see durable, intact records in order.
func TestConcurrentAppendRead(t *testing.T) {
	const writers, batches, per = 6, 40, 5
	var got []string
	var gotMu sync.Mutex
	s := mustOpen(t, t.TempDir(), Options{
		SegmentBytes: 4 << 10,
		OnCommit: func(tenant string, first uint64, bodies [][]byte) {
			gotMu.Lock()
			got = append(got, fmt.Sprintf("%d+%d", first, len(bodies)))
			gotMu.Unlock()
		},
	})
	l := mustLog(t, s, "acme")
	owner := make([]int, writers*batches*per+1) // seq -> writer
	var ownerMu sync.Mutex
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := 0; b < batches; b++ {
				bodies := make([][]byte, per)
				for i := range bodies {
					bodies[i] = fmt.Appendf(nil, `{"w":%d,"b":%d,"i":%d}`, w, b, i)
				}
				f, la, err := l.Append(bodies)
				if err != nil {
					t.Error(err)
					return
				}
				if la-f+1 != per {
					t.Errorf("batch got %d..%d", f, la)
				}
				ownerMu.Lock()
				for q := f; q <= la; q++ {
					if owner[q] != 0 {
						t.Errorf("seq %d given twice", q)
					}
					owner[q] = w + 1
				}
				ownerMu.Unlock()
			}
		}()
	}
	stop := make(chan struct{})
	var rg sync.WaitGroup
	for r := 0; r < 2; r++ {
		rg.Add(1)
		go func() {
			defer rg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				_, newest := l.Bounds()
				recs, err := l.Read(nil, 1, 1<<20, 1<<30)
				if err != nil {
					t.Error(err)
					return
				}
				if uint64(len(recs)) < newest {
					t.Errorf("read %d records, newest was %d", len(recs), newest)
					return
				}
				for i, r := range recs {
					if r.Seq != uint64(i+1) || !strings.HasPrefix(string(r.Body), `{"w":`) {
						t.Errorf("record %d: seq %d body %q", i, r.Seq, r.Body)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	rg.Wait()
	for q := 1; q < len(owner); q++ {
		if owner[q] == 0 {
			t.Fatalf("seq %d never given", q)
		}
	}
	// OnCommit saw every batch once, in seq order.
	next := uint64(1)
	for _, g := range got {
		var f uint64
		var n int
		fmt.Sscanf(g, "%d+%d", &f, &n)
		if f != next {
			t.Fatalf("OnCommit order: %v", got)
		}
		next += uint64(n)
	}
	if next != uint64(len(owner)) {
		t.Fatalf("OnCommit covered up to %d, want %d", next-1, len(owner)-1)
	}
}

func TestFormatMismatch(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(dir+"/FORMAT", []byte("something else\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if s, err := Open(dir, Options{}); err == nil {
		s.Close()
		t.Fatal("Open accepted a foreign directory")
	}
}

// TestAppendFunc: bodies are encoded after their seqs are known, so a
// record can hold its own seq; a failed encoding stops the log, since its
// reserved seqs can never be written.
func TestAppendFunc(t *testing.T) {
	s := mustOpen(t, t.TempDir(), Options{})
	l := mustLog(t, s, "acme")
	appendN(t, l, 2)
	first, err := l.AppendFunc("", 3, 30, func(dst []byte, seq uint64, i int) []byte {
		return append(dst, body("acme", int(seq))...)
	})
	if err != nil || first != 3 {
		t.Fatalf("AppendFunc = %d, %v; want 3", first, err)
	}
	recs := readAllRecords(t, l)
	if !slices.Equal(seqsOf(recs), testkit.SeqRange(1, 5)) {
		t.Fatalf("seqs %v", seqsOf(recs))
	}
	checkBodies(t, "acme", recs)

	if _, err := l.AppendFunc("", 1, 0, func(dst []byte, seq uint64, i int) []byte { panic("boom") }); err == nil {
		t.Fatal("a panicking encoder was accepted")
	}
	if _, _, err := l.Append([][]byte{body("acme", 6)}); err == nil {
		t.Fatal("Append after a failed encoding succeeded: the numbering would have a hole")
	}
	if _, err := l.AppendFunc("", 1, 0, func(dst []byte, seq uint64, i int) []byte {
		return append(dst, make([]byte, MaxBody+1)...)
	}); err == nil {
		t.Fatal("an oversized record was accepted")
	}
	if recs := readAllRecords(t, l); !slices.Equal(seqsOf(recs), testkit.SeqRange(1, 5)) {
		t.Fatalf("after failures: seqs %v", seqsOf(recs))
	}
}

// TestSyncFailure: when an fsync fails, its appends and every later one
// fail (none is acknowledged out of order), the log stops taking events,
// and a restart finds every acknowledged record.
func TestSyncFailure(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir, Options{})
	l := mustLog(t, s, "acme")
	appendN(t, l, 3)
	s.opts.faults = &faults{syncFile: func(*os.File) error { return errors.New("disk on fire") }}
	if _, _, err := l.Append([][]byte{body("acme", 4)}); err == nil || !strings.Contains(err.Error(), "disk on fire") {
		t.Fatalf("Append with a failing fsync: %v", err)
	}
	s.opts.faults = nil
	if _, _, err := l.Append([][]byte{body("acme", 5)}); err == nil {
		t.Fatal("Append after a failed fsync succeeded")
	}
	if _, n := l.Bounds(); n != 3 {
		t.Fatalf("newest %d after the failure, want 3", n)
	}
	s.Close()
	s = mustOpen(t, dir, Options{})
	recs := readAllRecords(t, mustLog(t, s, "acme"))
	// Record 4 was written before its fsync failed: it may be there (whole),
	// never acknowledged.
	if got := seqsOf(recs); !slices.Equal(got, testkit.SeqRange(1, 3)) && !slices.Equal(got, testkit.SeqRange(1, 4)) {
		t.Fatalf("after restart: seqs %v", got)
	}
	checkBodies(t, "acme", recs)
}
