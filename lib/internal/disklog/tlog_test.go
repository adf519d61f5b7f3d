package disklog

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"

	"github.com/tl-sh/tl/lib/event"
	"github.com/tl-sh/tl/lib/internal/testkit"
	"github.com/tl-sh/tl/lib/internal/tlog"
)

// The tests of the data directory as a tlog.Log (tlog.go). The Append
// contract every backing shares is lib/internal/tlog's contract_test.go.

// tlBody returns a small canonical-looking body whose path names i.
func tlBody(i int) []byte {
	return []byte(`"tenant_id":"t","timestamp":1,"type":"click","path":"/` + strconv.Itoa(i) + `","metadata":{}}` + "\n")
}

// tlBodies returns the bodies of events from..from+n-1.
func tlBodies(from, n int) [][]byte {
	var bs [][]byte
	for i := from; i < from+n; i++ {
		bs = append(bs, tlBody(i))
	}
	return bs
}

// tlAdd appends bs to l without a key, the way most tests fill a log.
func tlAdd(l tlog.Log, bs [][]byte) (first, last uint64, err error) {
	a, err := l.Append(context.Background(), tlog.Batch{Bodies: bs})
	return a.First, a.Last, err
}

// tlSeqs returns the seqs of lines, checking each line's body names the
// same number (the body of event i was appended as seq i in these tests).
func tlSeqs(t *testing.T, lines [][]byte) []uint64 {
	t.Helper()
	var out []uint64
	for _, l := range lines {
		s, ok := event.LineSeq(l)
		if !ok {
			t.Fatalf("line without seq: %s", l)
		}
		if !bytes.Contains(l, []byte(`"path":"/`+strconv.FormatUint(s, 10)+`"`)) {
			t.Fatalf("line %s holds another event than seq %d", l, s)
		}
		out = append(out, s)
	}
	return out
}

// openTL opens a data directory closed with the test; hot > 0 sets its
// hot caches' line bound.
func openTL(t *testing.T, dir string, o TLOptions, hot int) *TLStore {
	t.Helper()
	s, err := OpenTL(dir, o)
	if err != nil {
		t.Fatal(err)
	}
	if hot > 0 {
		s.hotEvents = hot
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// tlLog opens a handle on tenant's log.
func tlLog(t *testing.T, s *TLStore, tenant string) *TLog {
	t.Helper()
	d, err := s.Log(tenant)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// readFrom reads every line from seq from on, in pieces of maxLines, and
// returns the seqs and the gaps seen.
func readFrom(t *testing.T, l tlog.Log, from uint64, maxLines int) ([]uint64, []tlog.Gap) {
	t.Helper()
	var got []uint64
	var gaps []tlog.Gap
	for i := 0; i < 10000; i++ {
		lines, next, gap, err := l.Read(from, nil, maxLines, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		if !gap.Empty() {
			gaps = append(gaps, gap)
		}
		got = append(got, tlSeqs(t, lines)...)
		if len(lines) == 0 && gap.Empty() {
			return got, gaps
		}
		from = next
	}
	t.Fatal("Read never reached the end")
	return nil, nil
}

func TestDiskSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	s := openTL(t, dir, TLOptions{}, 10)
	d := tlLog(t, s, "acme")
	var l tlog.Log = d
	epoch := l.Epoch()
	for i := 1; i <= 50; i += 5 {
		n := l.Notify()
		first, last, err := tlAdd(l, tlBodies(i, 5))
		if err != nil || first != uint64(i) || last != uint64(i+4) {
			t.Fatalf("Append = %d..%d, %v", first, last, err)
		}
		select {
		case <-n:
		default:
			t.Fatal("Append did not wake Notify")
		}
	}
	// The hot cache holds the newest 10; older lines come from disk.
	for _, tc := range []struct {
		from     uint64
		maxLines int
	}{{1, 7}, {1, 100}, {38, 3}, {41, 100}, {45, 1}} {
		got, gaps := readFrom(t, l, tc.from, tc.maxLines)
		if !slices.Equal(got, testkit.SeqRange(tc.from, 50)) || len(gaps) != 0 {
			t.Fatalf("read from %d by %d: %v, gaps %v", tc.from, tc.maxLines, got, gaps)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := tlAdd(l, tlBodies(51, 1)); err != tlog.ErrClosed {
		t.Fatalf("Append after Close: %v", err)
	}

	s = openTL(t, dir, TLOptions{}, 10)
	l = tlLog(t, s, "acme")
	if l.Epoch() != epoch {
		t.Fatalf("epoch %q after restart, want %q", l.Epoch(), epoch)
	}
	if o, n := l.Bounds(); o != 1 || n != 50 {
		t.Fatalf("Bounds after restart %d..%d", o, n)
	}
	if got, gaps := readFrom(t, l, 1, 16); !slices.Equal(got, testkit.SeqRange(1, 50)) || len(gaps) != 0 {
		t.Fatalf("after restart: %v, gaps %v", got, gaps)
	}
	if first, _, err := tlAdd(l, tlBodies(51, 2)); err != nil || first != 51 {
		t.Fatalf("Append after restart = %d, %v", first, err)
	}
	if got, _ := readFrom(t, l, 45, 100); !slices.Equal(got, testkit.SeqRange(45, 52)) {
		t.Fatalf("after restart and append: %v", got)
	}
}

func TestDiskEvictionGap(t *testing.T) {
	s := openTL(t, t.TempDir(), TLOptions{MaxEvents: 20}, 5)
	l := tlLog(t, s, "acme")
	for i := 1; i <= 100; i += 10 {
		if _, _, err := tlAdd(l, tlBodies(i, 10)); err != nil {
			t.Fatal(err)
		}
	}
	got, gaps := readFrom(t, l, 3, 100)
	if !slices.Equal(got, testkit.SeqRange(81, 100)) || len(gaps) != 1 || gaps[0] != (tlog.Gap{From: 3, To: 80}) {
		t.Fatalf("got %v, gaps %v; want 81..100 after gap 3..80", got, gaps)
	}
}

// TestDiskDamagedRecord: a record damaged on disk is cut at start-up and
// never served; a reader resuming before it sees exactly that gap.
func TestDiskDamagedRecord(t *testing.T) {
	dir := t.TempDir()
	s := openTL(t, dir, TLOptions{}, 0)
	l := tlLog(t, s, "acme")
	for i := 1; i <= 30; i += 10 {
		tlAdd(l, tlBodies(i, 10))
	}
	s.Close()
	segs, _ := filepath.Glob(filepath.Join(dir, "tenants", "acme", "*.seg"))
	b, err := os.ReadFile(segs[0])
	if err != nil || len(segs) != 1 {
		t.Fatal(segs, err)
	}
	// Damage record 12: find it by its path.
	i := bytes.Index(b, []byte(`"path":"/12"`))
	if i < 0 {
		t.Fatal("record 12 not found")
	}
	b[i+9] ^= 0x01
	os.WriteFile(segs[0], b, 0o644)

	s = openTL(t, dir, TLOptions{}, 0)
	l = tlLog(t, s, "acme")
	got, gaps := readFrom(t, l, 5, 3)
	want := append(testkit.SeqRange(5, 11), testkit.SeqRange(13, 30)...)
	if !slices.Equal(got, want) || len(gaps) != 1 || gaps[0] != (tlog.Gap{From: 12, To: 12}) {
		t.Fatalf("got %v, gaps %v; want %v with gap 12..12", got, gaps, want)
	}
}

// TestDiskHandles: the relay closes an idle tenant's log and may open it
// again at once; handles are independent and share the history.
func TestDiskHandles(t *testing.T) {
	s := openTL(t, t.TempDir(), TLOptions{}, 4)
	a := tlLog(t, s, "acme")
	b := tlLog(t, s, "acme")
	tlAdd(a, tlBodies(1, 6))
	if err := a.Close(); err != nil || a.Close() != nil {
		t.Fatal("Close twice failed")
	}
	if _, _, err := tlAdd(a, tlBodies(7, 1)); err != tlog.ErrClosed {
		t.Fatalf("Append on a closed handle: %v", err)
	}
	if first, _, err := tlAdd(b, tlBodies(7, 2)); err != nil || first != 7 {
		t.Fatalf("Append on the other handle = %d, %v", first, err)
	}
	if got, _ := readFrom(t, b, 1, 3); !slices.Equal(got, testkit.SeqRange(1, 8)) {
		t.Fatalf("got %v", got)
	}
	n := b.Notify()
	b.Close()
	select {
	case <-n:
	default:
		t.Fatal("closing the last handle did not wake its waiters")
	}
	c := tlLog(t, s, "acme")
	if first, _, err := tlAdd(c, tlBodies(9, 1)); err != nil || first != 9 {
		t.Fatalf("Append after reopen = %d, %v", first, err)
	}
	if got, gaps := readFrom(t, c, 2, 100); !slices.Equal(got, testkit.SeqRange(2, 9)) || len(gaps) != 0 {
		t.Fatalf("after reopen: %v %v", got, gaps)
	}
}

// TestDiskReadersLeaveNoTrace: a tenant that was only read from is
// forgotten with its last handle (no files, no memory), while one with
// data keeps its epoch.
func TestDiskReadersLeaveNoTrace(t *testing.T) {
	dir := t.TempDir()
	s := openTL(t, dir, TLOptions{}, 0)
	for i := 0; i < 100; i++ {
		d := tlLog(t, s, fmt.Sprintf("spray-%d", i))
		d.Read(1, nil, 10, 1<<10)
		d.Close()
	}
	if got := s.Tenants(); len(got) != 0 {
		t.Fatalf("readers left %d tenants behind: %v", len(got), got[:3])
	}
	if ents, _ := os.ReadDir(filepath.Join(dir, "tenants")); len(ents) != 0 {
		t.Fatalf("readers left %d directories", len(ents))
	}
	d := tlLog(t, s, "kept")
	tlAdd(d, tlBodies(1, 1))
	e := d.Epoch()
	d.Close()
	if d2 := tlLog(t, s, "kept"); d2.Epoch() != e {
		t.Fatalf("epoch %q after reopen, want %q", d2.Epoch(), e)
	}
}

// TestDiskServesOnlyWhatDiskHolds: once the total cap removed old data
// from disk, it is not served from the hot cache either (a restart would
// not have it): a reader from seq 1 gets a gap.
func TestDiskServesOnlyWhatDiskHolds(t *testing.T) {
	s := openTL(t, t.TempDir(), TLOptions{MaxTotalBytes: 256 << 10}, 0)
	l := tlLog(t, s, "acme")
	for i := 1; i <= 4000; i += 100 {
		if _, _, err := tlAdd(l, tlBodies(i, 100)); err != nil {
			t.Fatal(err)
		}
	}
	// The cap is enforced after an append is acknowledged: wait until the
	// directory fits it, when the bounds no longer move.
	testkit.WaitFor(t, "the directory to fit its cap", func() bool { return s.store.TotalBytes() <= 256<<10 })
	oldest, newest := l.Bounds()
	if oldest == 1 || newest != 4000 {
		t.Fatalf("Bounds %d..%d: the cap removed nothing", oldest, newest)
	}
	if ho, _ := l.t.hot.Bounds(); ho >= oldest {
		t.Fatalf("hot cache starts at %d, disk at %d: the test needs the cache to hold more", ho, oldest)
	}
	got, gaps := readFrom(t, l, 1, 500)
	if len(gaps) != 1 || gaps[0] != (tlog.Gap{From: 1, To: oldest - 1}) || !slices.Equal(got, testkit.SeqRange(oldest, 4000)) {
		t.Fatalf("read from 1: gaps %v, %d lines from %d; want gap 1..%d then %d..4000", gaps, len(got), got[0], oldest-1, oldest)
	}
}

// TestDiskDamagedNewestLength: one flipped bit in the length field of the
// newest record makes it look cut short, like a crash mid-write; but it
// was acknowledged (and may have been delivered), so its seq is not given
// to the next event: a reader resuming after seq 6 is told seq 7 was lost
// and then gets the new event at a later seq.
func TestDiskDamagedNewestLength(t *testing.T) {
	dir := t.TempDir()
	s := openTL(t, dir, TLOptions{}, 0)
	l := tlLog(t, s, "acme")
	tlAdd(l, tlBodies(1, 6))
	if _, last, err := tlAdd(l, tlBodies(7, 1)); err != nil || last != 7 {
		t.Fatalf("Append = %d, %v", last, err)
	}
	epoch := l.Epoch()
	s.Close()
	segs, _ := filepath.Glob(filepath.Join(dir, "tenants", "acme", "*.seg"))
	b, err := os.ReadFile(segs[0])
	if err != nil || len(segs) != 1 {
		t.Fatal(segs, err)
	}
	// Record 7's header starts 16 bytes before its body.
	rec := bytes.Index(b, []byte(`{"seq":7,`)) - 16
	if rec < 0 {
		t.Fatal("record 7 not found")
	}
	b[rec+5] ^= 0x01 // the length's second byte: it now runs past the end
	os.WriteFile(segs[0], b, 0o644)

	s = openTL(t, dir, TLOptions{}, 0)
	l = tlLog(t, s, "acme")
	if l.Epoch() != epoch {
		t.Fatalf("epoch %q, was %q", l.Epoch(), epoch)
	}
	first, _, err := tlAdd(l, tlBodies(8, 1))
	if err != nil || first != 8 {
		t.Fatalf("next Append got seq %d, %v; want 8 (seq 7 was acknowledged in this epoch)", first, err)
	}
	got, gaps := readFrom(t, l, 7, 10)
	if !slices.Equal(got, []uint64{first}) || len(gaps) != 1 || gaps[0] != (tlog.Gap{From: 7, To: first - 1}) {
		t.Fatalf("from 7: got %v, gaps %v; want gap 7..%d then %d", got, gaps, first-1, first)
	}
}

// TestDiskCold: reads older than the hot cache go to the files (Cold), the
// others are served from memory; after a restart, all the history is on
// disk until new lines come.
func TestDiskCold(t *testing.T) {
	dir := t.TempDir()
	s := openTL(t, dir, TLOptions{}, 10)
	l := tlLog(t, s, "acme")
	if _, _, err := tlAdd(l, tlBodies(1, 50)); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		from uint64
		cold bool
	}{{0, true}, {1, true}, {40, true}, {41, false}, {50, false}, {51, false}} {
		if got := tlog.IsCold(l, tc.from); got != tc.cold {
			t.Errorf("Cold(%d) = %v, want %v", tc.from, got, tc.cold)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTL(t, dir, TLOptions{}, 10)
	l = tlLog(t, s, "acme")
	if !tlog.IsCold(l, 50) || tlog.IsCold(l, 51) {
		t.Errorf("after restart: Cold(50) = %v, Cold(51) = %v; want true, false", tlog.IsCold(l, 50), tlog.IsCold(l, 51))
	}
}

// TestDiskIdleClosesFiles: a tenant's last handle closed (the relay drops
// it after --tenant-idle) closes its files, and the cache bounds them while
// many tenants are held.
func TestDiskIdleClosesFiles(t *testing.T) {
	s := openTL(t, t.TempDir(), TLOptions{MaxOpenFiles: 4}, 0)
	var held []*TLog
	for i := 0; i < 20; i++ {
		d := tlLog(t, s, fmt.Sprintf("t%d", i))
		if _, _, err := tlAdd(d, tlBodies(1, 2)); err != nil {
			t.Fatal(err)
		}
		held = append(held, d)
	}
	if n := s.OpenFiles(); n > 4 {
		t.Errorf("OpenFiles = %d with 20 tenants held, want <= 4 (the cache)", n)
	}
	for _, d := range held {
		d.Close()
	}
	if n := s.OpenFiles(); n != 0 {
		t.Errorf("OpenFiles = %d once every handle is closed, want 0", n)
	}
	d := tlLog(t, s, "t7") // reopened: the history reads from disk
	if got, _ := readFrom(t, d, 1, 10); !slices.Equal(got, testkit.SeqRange(1, 2)) {
		t.Errorf("t7 reads %v after going idle, want 1-2", got)
	}
	if f := s.Failed(); len(f) != 0 {
		t.Errorf("Failed() = %v, want none", f)
	}
}

// TestDiskBudgetKeepsDisk: evicting a data directory's hot cache loses
// nothing: the lines are read from the files.
func TestDiskBudgetKeepsDisk(t *testing.T) {
	const limit = 256 << 10
	b := tlog.NewBudget(limit)
	s := openTL(t, t.TempDir(), TLOptions{Budget: b}, 0)
	d := tlLog(t, s, "acme")
	defer d.Close()
	for i := 0; i < 40; i++ {
		if _, _, err := tlAdd(d, tlBodies(i*100+1, 100)); err != nil {
			t.Fatal(err)
		}
		if u := b.Used(); u > limit {
			t.Fatalf("budget holds %d, over %d", u, limit)
		}
	}
	if b.Evicted() == 0 {
		t.Fatal("nothing was evicted from the hot cache")
	}
	if o, _ := d.t.hot.Bounds(); o == 1 {
		t.Fatal("the hot cache still holds seq 1")
	}
	got, gaps := readFrom(t, d, 1, 256)
	if len(gaps) != 0 || len(got) != 4000 || got[0] != 1 || got[3999] != 4000 {
		t.Fatalf("read %d lines with gaps %v, want 1..4000 without a gap", len(got), gaps)
	}
}

// TestDiskKeysSurviveReopen: a data directory answers a key written before
// a restart with the first answer, without the relay's help.
func TestDiskKeysSurviveReopen(t *testing.T) {
	dir := t.TempDir()
	s, err := OpenTL(dir, TLOptions{})
	if err != nil {
		t.Fatal(err)
	}
	l, _ := s.Log("acme")
	first, err := l.Append(context.Background(), tlog.Batch{Key: "k", Bodies: tlBodies(1, 3)})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err = OpenTL(dir, TLOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	l, _ = s.Log("acme")
	defer l.Close()
	a, err := l.Append(context.Background(), tlog.Batch{Key: "k", Bodies: tlBodies(1, 3)})
	first.Replayed = true
	if err != nil || a != first {
		t.Fatalf("after a restart: %+v %v, want %+v", a, err, first)
	}
	if _, newest := l.Bounds(); newest != 3 {
		t.Fatalf("newest %d after the repeat, want 3", newest)
	}
}
