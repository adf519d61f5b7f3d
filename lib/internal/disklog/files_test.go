package disklog

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
)

// openFDs counts the descriptors this process holds.
func openFDs(t testing.TB) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd: %v", err)
	}
	return len(ents) - 1 // the directory being read
}

// A store holds no more open segment files than its cache allows, however
// many tenants are written; an idle tenant's files are closed; recovery of
// many tenants holds none for good; every history still reads back whole.
func TestOpenFilesBounded(t *testing.T) {
	const tenants, bound = 300, 8
	dir := t.TempDir()
	base := openFDs(t)
	s, err := Open(dir, Options{MaxOpenFiles: bound})
	if err != nil {
		t.Fatal(err)
	}
	for i := range tenants {
		appendN(t, mustLog(t, s, fmt.Sprintf("t%d", i)), 3)
	}
	held := openFDs(t) - base
	t.Logf("descriptors after writing %d tenants: %d (cache bound %d, plus the LOCK file)", tenants, held, bound)
	if got := s.OpenFiles(); got > bound {
		t.Errorf("OpenFiles = %d after writing %d tenants, want <= %d", got, tenants, bound)
	}
	if held > bound+1 {
		t.Errorf("the process holds %d more descriptors after writing %d tenants, want <= %d", held, tenants, bound+1)
	}
	for i := range tenants {
		s.Forget(fmt.Sprintf("t%d", i))
	}
	idle := openFDs(t) - base
	t.Logf("descriptors once they are idle: %d", idle)
	if got := s.OpenFiles(); got != 0 {
		t.Errorf("OpenFiles = %d once every tenant is idle, want 0", got)
	}
	if idle > 1 {
		t.Errorf("the process holds %d more descriptors with every tenant idle, want <= 1 (LOCK)", idle)
	}
	// Idle tenants read and write again (their files are reopened).
	for i := 0; i < tenants; i += 37 {
		l := mustLog(t, s, fmt.Sprintf("t%d", i))
		appendN(t, l, 1)
		if got := seqsOf(readAllRecords(t, l)); len(got) != 4 || got[3] != 4 {
			t.Fatalf("tenant t%d reads %v, want seqs 1-4", i, got)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if n := openFDs(t) - base; n > 0 {
		t.Errorf("the process holds %d more descriptors after Close, want 0", n)
	}

	s = mustOpen(t, dir, Options{MaxOpenFiles: bound})
	if n := openFDs(t) - base; n > 1 {
		t.Errorf("recovering %d tenants left %d descriptors open, want <= 1 (LOCK)", tenants, n)
	}
	for i := range tenants {
		l := mustLog(t, s, fmt.Sprintf("t%d", i))
		want := 3
		if i%37 == 0 {
			want = 4
		}
		recs := readAllRecords(t, l)
		if len(recs) != want || !bytes.Equal(recs[0].Body, body(l.tenant, 1)) {
			t.Fatalf("tenant t%d after restart: %d records, want %d", i, len(recs), want)
		}
	}
	if got := s.OpenFiles(); got > bound {
		t.Errorf("OpenFiles = %d after reading every tenant, want <= %d", got, bound)
	}
}

// Readers and writers of many tenants at once, under a tiny cache: files
// are pinned while in use, evicted otherwise, and nothing reads wrong.
func TestOpenFilesConcurrent(t *testing.T) {
	s := mustOpen(t, t.TempDir(), Options{MaxOpenFiles: 2, SegmentBytes: 512, MaxEvents: 40})
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l, err := s.Log(fmt.Sprintf("c%d", w%4))
			if err != nil {
				errs <- err
				return
			}
			for i := range 60 {
				if _, _, err := l.Append([][]byte{body(l.tenant, i)}); err != nil {
					errs <- err
					return
				}
				recs, err := l.Read(nil, 1, 100, 1<<20)
				if err != nil {
					errs <- err
					return
				}
				// The other writer's appends move the event bound
				// while the read goes on: seqs it passed meanwhile
				// are skipped (a gap for the reader), none above it.
				oldest, _ := l.Bounds()
				for j := 1; j < len(recs); j++ {
					if recs[j].Seq != recs[j-1].Seq+1 && recs[j].Seq > oldest {
						errs <- fmt.Errorf("tenant %s reads seqs %v, oldest %d", l.tenant, seqsOf(recs), oldest)
						return
					}
				}
				if i%10 == 0 {
					s.Forget(l.tenant)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := s.OpenFiles(); n > 2 {
		t.Errorf("OpenFiles = %d at rest, want <= 2", n)
	}
}

// failOpens makes the store's opens of segment files fail while on is set,
// as a shortage of descriptors would.
type failOpens struct {
	mu   sync.Mutex
	on   bool
	only string // when set, only files of this name are refused
	n    int    // opens refused
}

func (f *failOpens) set(on bool) { f.mu.Lock(); f.on = on; f.mu.Unlock() }

func (f *failOpens) open(name string, flag int, perm os.FileMode) (*os.File, error) {
	f.mu.Lock()
	on := f.on && (f.only == "" || filepath.Base(name) == f.only)
	if on {
		f.n++
	}
	f.mu.Unlock()
	if on {
		return nil, &os.PathError{Op: "open", Path: name, Err: syscall.EMFILE}
	}
	return os.OpenFile(name, flag, perm)
}

// An error before anything is written (opening the file, rolling to a new
// segment, creating the tenant's directory) is not kept: the append fails,
// its seqs are given out again, the next append succeeds, and the tenant is
// never listed as failed.
func TestPreWriteErrorRetried(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir, Options{MaxOpenFiles: 1, SegmentBytes: 300})
	fo := &failOpens{}
	s.files.openFile = fo.open

	// The tenant's directory cannot be made: a file stands in its way.
	blocker := filepath.Join(dir, "tenants", "a")
	if err := os.WriteFile(blocker, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	la := mustLog(t, s, "a")
	if _, _, err := la.Append([][]byte{body("a", 1)}); err == nil {
		t.Fatal("Append succeeded with the tenant's directory blocked")
	}
	os.Remove(blocker)
	if f, _, err := la.Append([][]byte{body("a", 1)}); err != nil || f != 1 {
		t.Fatalf("Append after the directory is free: seq %d, %v; want seq 1", f, err)
	}

	// Opening (a cached file evicted by another tenant) and rolling (the
	// segment is small) both fail while descriptors are short.
	lb := mustLog(t, s, "b")
	appendN(t, lb, 1) // evicts a's file (the cache holds one)
	fo.set(true)
	for range 3 {
		if _, _, err := la.Append([][]byte{body("a", 2)}); !errors.Is(err, syscall.EMFILE) {
			t.Fatalf("Append with opens failing: %v, want EMFILE", err)
		}
	}
	fo.set(false)
	appendN(t, la, 10) // checks each seq: 2, 3, ... (none lost to the failures)
	fo.set(true)
	var failed int
	for range 20 { // a roll comes soon with 300-byte segments
		if _, _, err := la.Append([][]byte{body("a", 12)}); err != nil {
			failed++
		}
	}
	fo.set(false)
	if failed == 0 {
		t.Fatal("no Append failed while segment files could not be created")
	}
	appendN(t, la, 5)
	if got := s.Failed(); len(got) != 0 {
		t.Errorf("Failed() = %v after passing errors, want none", got)
	}
	recs := readAllRecords(t, la)
	for i, r := range recs {
		if r.Seq != uint64(i+1) {
			t.Fatalf("seqs after the failures: %v, want 1..%d with no hole", seqsOf(recs), len(recs))
		}
	}
	if fo.n == 0 {
		t.Error("the fault was never hit")
	}

	// The numbering holds across a restart too.
	s.Close()
	s2 := mustOpen(t, dir, Options{})
	if got := seqsOf(readAllRecords(t, mustLog(t, s2, "a"))); len(got) != len(recs) {
		t.Errorf("after restart: %d records, want %d", len(got), len(recs))
	}
}

// Concurrent appends across a passing failure: every append either fails or
// gets seqs, and the seqs given form 1..N with no hole and no repeat.
func TestPreWriteErrorConcurrent(t *testing.T) {
	s := mustOpen(t, t.TempDir(), Options{MaxOpenFiles: 1, SegmentBytes: 200})
	fo := &failOpens{}
	s.files.openFile = fo.open
	l := mustLog(t, s, "x")
	other := mustLog(t, s, "y")
	var wg sync.WaitGroup
	var mu sync.Mutex
	got := map[uint64]bool{}
	for w := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 40 {
				if w == 0 && i%5 == 0 {
					fo.set(i%10 == 0)
					other.Append([][]byte{[]byte("z")}) // takes the cache's one slot (or fails)
				}
				f, last, err := l.Append([][]byte{[]byte("a"), []byte("b")})
				if err != nil {
					continue
				}
				mu.Lock()
				for q := f; q <= last; q++ {
					if got[q] {
						t.Errorf("seq %d given twice", q)
					}
					got[q] = true
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	fo.set(false)
	for q := uint64(1); q <= uint64(len(got)); q++ {
		if !got[q] {
			t.Fatalf("seq %d never given, with %d given: a hole", q, len(got))
		}
	}
	if n := len(readAllRecords(t, l)); n != len(got) {
		t.Errorf("read %d records, want %d", n, len(got))
	}
	if f := s.Failed(); len(f) != 0 {
		t.Errorf("Failed() = %v, want none", f)
	}
	if fo.n == 0 {
		t.Error("the fault was never hit")
	}
}

// A failed fsync stops the tenant, and the store names it.
func TestFailedWriteListed(t *testing.T) {
	s := mustOpen(t, t.TempDir(), Options{})
	boom := errors.New("injected fsync failure")
	s.opts.faults = &faults{syncFile: func(*os.File) error { return boom }}
	l := mustLog(t, s, "bad")
	if _, _, err := l.Append([][]byte{body("bad", 1)}); !errors.Is(err, boom) {
		t.Fatalf("Append: %v, want the fsync failure", err)
	}
	s.opts.faults = nil
	if _, _, err := l.Append([][]byte{body("bad", 1)}); err == nil {
		t.Fatal("Append after a failed fsync succeeded: the tenant should stay stopped")
	}
	got := s.Failed()
	if len(got) != 1 || got["bad"] == "" {
		t.Errorf("Failed() = %v, want tenant bad with a reason", got)
	}
	appendN(t, mustLog(t, s, "good"), 2)
}

// The acked file is held through the file cache like a segment: an idle
// tenant holds it no more, and failing to open it before a batch is written
// is a passing error (the append fails, its seqs are given again, nothing
// stops), not a failed write.
func TestAckedFileOpenRetried(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir, Options{MaxOpenFiles: 1})
	fo := &failOpens{only: ackedName}
	s.files.openFile = fo.open
	l := mustLog(t, s, "a")
	appendN(t, l, 2)
	s.Forget("a")
	if n := s.OpenFiles(); n != 0 {
		t.Fatalf("OpenFiles = %d once the tenant is idle, want 0 (its segment and acked file closed)", n)
	}
	fo.set(true)
	for range 3 {
		if _, _, err := l.Append([][]byte{body("a", 3)}); !errors.Is(err, syscall.EMFILE) {
			t.Fatalf("Append with the acked file failing to open: %v, want EMFILE", err)
		}
	}
	fo.set(false)
	if fo.n == 0 {
		t.Fatal("the fault was never hit")
	}
	appendN(t, l, 3) // seqs 3, 4, 5: none lost to the failures
	if got := s.Failed(); len(got) != 0 {
		t.Errorf("Failed() = %v after a passing error, want none", got)
	}
	epoch := l.Epoch()
	s.Close()
	s = mustOpen(t, dir, Options{})
	l = mustLog(t, s, "a")
	if got := seqsOf(readAllRecords(t, l)); fmt.Sprint(got) != "[1 2 3 4 5]" || l.Epoch() != epoch {
		t.Errorf("after restart: seqs %v epoch %s, want 1..5 in epoch %s", got, l.Epoch(), epoch)
	}
}
