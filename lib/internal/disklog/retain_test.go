package disklog

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tl-sh/tl/lib/internal/testkit"
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
			if !slices.Equal(seqsOf(recs), testkit.SeqRange(wantOldest, 700)) {
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
	if n != 1000 || !slices.Equal(seqsOf(recs), testkit.SeqRange(o, 1000)) {
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
	a.wg.Wait()        // the cap is enforced after an append is acknowledged
	appendN(t, b, 300) // pushes the total over the cap: a's old data goes first
	b.wg.Wait()
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

// dirSegmentBytes adds up the sizes of every segment file under dir.
func dirSegmentBytes(t *testing.T, dir string) int64 {
	t.Helper()
	var n int64
	err := filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err == nil && strings.HasSuffix(p, segExt) {
			n += info.Size()
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestTotalCapManyTenants: with more tenants than the cap has room for,
// each holding less than a segment (so nothing but open segments), the cap
// still holds: idle tenants' open segments are rolled over and removed,
// least recently written first, while the tenant writing keeps what it
// just wrote. The directory stays within the cap plus one segment (the
// writer's open one); the evicted tenants' seqs show as gone (a gap to a
// reader) and their numbering continues after a restart.
func TestTotalCapManyTenants(t *testing.T) {
	const (
		capBytes = 1 << 20
		tenants  = 300
		events   = 40 // of about 1 KB each: 40 KB a tenant, 12 MB in all
		batch    = 8
	)
	dir := t.TempDir()
	var logbuf testkit.SyncBuffer
	opts := Options{MaxTotalBytes: capBytes, Logger: testLogger(&logbuf)}
	s := mustOpen(t, dir, opts)
	slack := s.segBytes
	pad := strings.Repeat("x", 1000)
	name := func(i int) string { return fmt.Sprintf("t%d", i) }
	for i := 1; i <= tenants; i++ {
		l := mustLog(t, s, name(i))
		for seq := 1; seq <= events; seq += batch {
			var bodies [][]byte
			for j := seq; j < seq+batch; j++ {
				bodies = append(bodies, fmt.Appendf(nil, `{"seq":%d,"pad":%q}`, j, pad))
			}
			if f, _, err := l.Append(bodies); err != nil || f != uint64(seq) {
				t.Fatalf("%s: Append = %d, %v; want %d", name(i), f, err, seq)
			}
		}
		l.wg.Wait() // its last commit's cap enforcement is done
		if got := s.TotalBytes(); got > capBytes+slack {
			t.Fatalf("after %d tenants: %d bytes held, cap %d (+ one segment, %d)", i, got, capBytes, slack)
		}
	}
	if got := dirSegmentBytes(t, dir); got > capBytes+slack || got != s.TotalBytes() {
		t.Fatalf("segment files hold %d bytes (TotalBytes %d), cap %d (+ %d)", got, s.TotalBytes(), capBytes, slack)
	}
	if strings.Contains(logbuf.String(), "over its cap") {
		t.Fatalf("the cap could be met, yet the log says:\n%s", logbuf.String())
	}
	// The newest tenant keeps everything; the first lost everything, and
	// a reader from seq 1 is told so (the oldest seq is past the newest).
	if o, n := mustLog(t, s, name(tenants)).Bounds(); o != 1 || n != events {
		t.Fatalf("newest tenant holds %d..%d, want 1..%d", o, n, events)
	}
	first := mustLog(t, s, name(1))
	if o, n := first.Bounds(); o != events+1 || n != events {
		t.Fatalf("first tenant holds %d..%d, want nothing (%d..%d)", o, n, events+1, events)
	}
	if recs, err := first.Read(nil, 1, 100, 1<<20); err != nil || len(recs) != 0 {
		t.Fatalf("first tenant: read %v, %v", seqsOf(recs), err)
	}
	// After a restart the evicted tenant's numbering goes on.
	total := s.TotalBytes()
	s.Close()
	s = mustOpen(t, dir, opts)
	if s.TotalBytes() != total {
		t.Fatalf("total after restart %d, want %d", s.TotalBytes(), total)
	}
	l := mustLog(t, s, name(1))
	if o, n := l.Bounds(); o != events+1 || n != events {
		t.Fatalf("after restart, first tenant holds %d..%d", o, n)
	}
	if f, _, err := l.Append([][]byte{[]byte(`{"seq":41}`)}); err != nil || f != events+1 {
		t.Fatalf("after restart, first tenant's Append = %d, %v; want %d", f, err, events+1)
	}
}

// fakeClock is a clock that moves only when told.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// TestTotalCapWarning: when the cap cannot be met (the writing tenant's own
// open segment is over it), the log says so at most once a minute, and
// again once a minute has passed.
func TestTotalCapWarning(t *testing.T) {
	dir := t.TempDir()
	var logbuf testkit.SyncBuffer
	s := mustOpen(t, dir, Options{MaxTotalBytes: 4 << 10, SegmentBytes: 1 << 20, Logger: testLogger(&logbuf)})
	clk := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	s.now = clk.Now
	l := mustLog(t, s, "acme")
	for _, step := range []struct {
		advance time.Duration
		appends int
		want    int // warnings logged so far
	}{
		{0, 100, 1},
		{30 * time.Second, 10, 1},
		{30 * time.Second, 10, 2},
		{time.Second, 10, 2},
		{time.Hour, 1, 3},
	} {
		clk.advance(step.advance)
		appendN(t, l, step.appends)
		l.wg.Wait() // the cap enforcement after the last commit is done
		if got := strings.Count(logbuf.String(), "over its cap"); got != step.want {
			t.Fatalf("after %d more appends (+%v): %d warnings, want %d:\n%s", step.appends, step.advance, got, step.want, logbuf.String())
		}
	}
	if _, n := l.Bounds(); n != 131 {
		t.Fatalf("newest %d: the writing tenant lost data to the cap", n)
	}
}

// TestTotalCapConcurrent: tenants publishing at once under a cap far
// smaller than their data, so that idle tenants' open segments are rolled
// over and removed while other batches come in for them: every Append
// succeeds with the next seq, what is left of each tenant reads back whole
// and in order, and the numbering goes on after a restart.
func TestTotalCapConcurrent(t *testing.T) {
	const (
		capBytes = 64 << 10
		segBytes = 4 << 10
		workers  = 8
		tenants  = 32
		rounds   = 30
	)
	dir := t.TempDir()
	opts := Options{MaxTotalBytes: capBytes, SegmentBytes: segBytes}
	s := mustOpen(t, dir, opts)
	name := func(i int) string { return fmt.Sprintf("c%d", i) }
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := 0; r < rounds; r++ {
				for i := w; i < tenants; i += workers {
					l, err := s.Log(name(i))
					if err != nil {
						errs <- err
						return
					}
					seq := r*3 + 1
					bs := [][]byte{body(name(i), seq), body(name(i), seq+1), body(name(i), seq+2)}
					if f, _, err := l.Append(bs); err != nil || f != uint64(seq) {
						errs <- fmt.Errorf("%s round %d: Append = %d, %v; want %d", name(i), r, f, err, seq)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	check := func(when string) {
		for i := 0; i < tenants; i++ {
			l := mustLog(t, s, name(i))
			o, n := l.Bounds()
			if n != rounds*3 {
				t.Fatalf("%s %s: newest %d, want %d", when, name(i), n, rounds*3)
			}
			recs := readAllRecords(t, l)
			if !slices.Equal(seqsOf(recs), testkit.SeqRange(o, n)) {
				t.Fatalf("%s %s: read %v, want %d..%d", when, name(i), seqsOf(recs), o, n)
			}
			checkBodies(t, name(i), recs)
		}
	}
	// Close waits for the cap's work after the last commits; then the
	// directory is at rest.
	s.Close()
	total := s.TotalBytes()
	if total > capBytes+workers*segBytes {
		t.Fatalf("%d bytes held, cap %d (+ %d workers' open segments)", total, capBytes, workers)
	}
	s = mustOpen(t, dir, opts)
	if s.TotalBytes() != total {
		t.Fatalf("%d bytes after restart, %d before", s.TotalBytes(), total)
	}
	check("after restart")
	for i := 0; i < tenants; i++ {
		if f, _, err := mustLog(t, s, name(i)).Append([][]byte{body(name(i), rounds*3+1)}); err != nil || f != rounds*3+1 {
			t.Fatalf("%s after restart: Append = %d, %v", name(i), f, err)
		}
	}
}
