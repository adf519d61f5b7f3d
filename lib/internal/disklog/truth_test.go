package disklog

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/tl-sh/tl/lib/internal/testkit"
)

// ledger states once the invariant of issue 16 for a data directory: no
// (epoch, seq) ever names two different events, and every acknowledged
// event is served to a reader resuming in its epoch, or announced lost (a
// seq missing between the records it reads, which the relay sends as a
// gap), or the epoch changed (the relay tells a resuming client with a gap
// of reason `epoch`). It learns names from the answers of Append and from
// what reads return.
type ledger struct {
	t      testing.TB
	names  map[string]map[uint64]string // epoch -> seq -> event
	acked  map[string][]uint64          // epoch -> acknowledged seqs, in order
	nextID int
}

func newLedger(t testing.TB) *ledger {
	return &ledger{t: t, names: map[string]map[uint64]string{}, acked: map[string][]uint64{}}
}

// name records that (epoch, seq) names ev, failing if it named another.
func (lg *ledger) name(epoch string, seq uint64, ev string, how string) {
	lg.t.Helper()
	m := lg.names[epoch]
	if m == nil {
		m = map[uint64]string{}
		lg.names[epoch] = m
	}
	if old, ok := m[seq]; ok && old != ev {
		lg.t.Fatalf("(%s, %d) names two events: %q, then %q (%s)", epoch, seq, old, ev, how)
	}
	m[seq] = ev
}

// publish appends a batch of n new events and records the answer.
func (lg *ledger) publish(l *Log, n int) (first, last uint64) {
	lg.t.Helper()
	var bodies [][]byte
	for i := 0; i < n; i++ {
		lg.nextID++
		bodies = append(bodies, fmt.Appendf(nil, `{"event":%d,"pad":%q}`, lg.nextID, strings.Repeat("x", lg.nextID%37)))
	}
	first, last, err := l.Append(bodies)
	if err != nil {
		lg.t.Fatal(err)
	}
	ep := l.Epoch()
	for i, b := range bodies {
		lg.name(ep, first+uint64(i), string(b), "acknowledged")
		lg.acked[ep] = append(lg.acked[ep], first+uint64(i))
	}
	return first, last
}

// resume checks a reader that had everything of epoch up to seq since and
// resumes: in the same epoch, every acknowledged seq after since is served
// or missing (a gap), and what is served names what it named; in another
// epoch, it is told so. It returns the seqs announced lost, the epoch
// changed or not.
func (lg *ledger) resume(l *Log, epoch string, since uint64) (lost []uint64, newEpoch bool) {
	lg.t.Helper()
	now := l.Epoch()
	var served []uint64
	for from := since + 1; ; {
		recs, err := l.Read(nil, from, 5, 1<<10)
		if err != nil {
			lg.t.Fatal(err)
		}
		if len(recs) == 0 {
			break
		}
		for _, r := range recs {
			if r.Seq < from {
				lg.t.Fatalf("Read from %d returned seq %d", from, r.Seq)
			}
			lg.name(now, r.Seq, string(r.Body), "served")
			served = append(served, r.Seq)
			from = r.Seq + 1
		}
	}
	if now != epoch {
		return nil, true
	}
	_, newest := l.Bounds()
	for _, s := range lg.acked[epoch] {
		if s <= since {
			continue
		}
		if s > newest {
			lg.t.Fatalf("acknowledged (%s, %d) is past the newest seq %d of the same epoch: it would be given again", epoch, s, newest)
		}
		if !slices.Contains(served, s) {
			lost = append(lost, s)
		}
	}
	return lost, false
}

// batchEnds appends batches of 1 to 3 events to a new log and returns the
// ledger, the directory and, for each batch, its last seq and the size of
// the newest segment after it.
type batchMark struct {
	last uint64
	size int64
}

func buildBatches(t *testing.T, batches int) (*ledger, string, string, []batchMark) {
	t.Helper()
	dir := t.TempDir()
	s := mustOpen(t, dir, Options{})
	l := mustLog(t, s, "acme")
	lg := newLedger(t)
	var ends []batchMark
	for i := 0; i < batches; i++ {
		_, last := lg.publish(l, 1+i%3)
		files := segFiles(t, dir, "acme")
		st, err := os.Stat(files[len(files)-1])
		if err != nil {
			t.Fatal(err)
		}
		ends = append(ends, batchMark{last, st.Size()})
	}
	epoch := l.Epoch()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return lg, dir, epoch, ends
}

// TestTruncatedSegmentStartsNewEpoch cuts the newest segment, after every
// batch was acknowledged, at every record boundary and in the middle of
// every record's header and body (a restore, a copy cut short, a
// truncation: not a crash, so the cut-off events were acknowledged): the
// events before the cut are served, the lost seqs are never given again,
// and the epoch changes exactly when acknowledged events were lost; a
// reader of the new epoch sees exactly the lost seqs missing.
func TestTruncatedSegmentStartsNewEpoch(t *testing.T) {
	lg0, base, epoch, ends := buildBatches(t, 12)
	files := segFiles(t, base, "acme")
	seg := filepath.Base(files[len(files)-1])
	orig, err := os.ReadFile(files[len(files)-1])
	if err != nil {
		t.Fatal(err)
	}
	var cuts []int64
	for off := int64(0); off < int64(len(orig)); {
		_, size, st := parseRecord(orig[off:])
		if st != recOK {
			t.Fatalf("record at %d: %v", off, st)
		}
		cuts = append(cuts, off, off+7, off+headerSize+int64(size-headerSize)/2)
		off += int64(size)
	}
	cuts = append(cuts, int64(len(orig)))
	maxAcked := ends[len(ends)-1].last
	for _, cut := range cuts {
		name := fmt.Sprintf("cut at %d of %d", cut, len(orig))
		dir := copyDir(t, base)
		if err := os.Truncate(filepath.Join(dir, "tenants", "acme", seg), cut); err != nil {
			t.Fatal(err)
		}
		// The whole batches before the cut survive.
		var kept uint64
		for _, e := range ends {
			if e.size <= cut {
				kept = e.last
			}
		}
		lg := lg0.clone()
		var logbuf testkit.SyncBuffer
		s, err := Open(dir, Options{Logger: testLogger(&logbuf)})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		l := mustLog(t, s, "acme")
		lost, changed := lg.resume(l, epoch, 0)
		if changed != (kept < maxAcked) {
			t.Fatalf("%s: epoch changed %v, want %v (kept up to %d of %d acknowledged)\n%s", name, changed, kept < maxAcked, kept, maxAcked, logbuf.String())
		}
		if len(lost) > 0 {
			t.Fatalf("%s: seqs %v missing in the same epoch", name, lost)
		}
		if changed {
			if !strings.Contains(logbuf.String(), fmt.Sprintf("seqs=%d-%d", kept+1, maxAcked)) {
				t.Fatalf("%s: the log does not name seqs %d-%d:\n%s", name, kept+1, maxAcked, logbuf.String())
			}
			// A reader of the new epoch from the start: what survived,
			// then exactly the lost seqs missing.
			recs := readAllRecords(t, l)
			if !slices.Equal(seqsOf(recs), testkit.SeqRange(1, kept)) {
				t.Fatalf("%s: new epoch serves %v, want 1..%d", name, seqsOf(recs), kept)
			}
			wantOldest := uint64(1)
			if kept == 0 {
				wantOldest = maxAcked + 1 // nothing held
			}
			if o, n := l.Bounds(); o != wantOldest || n != maxAcked {
				t.Fatalf("%s: Bounds %d,%d; want %d,%d (the lost seqs reserved)", name, o, n, wantOldest, maxAcked)
			}
		}
		first, _ := lg.publish(l, 2)
		if first <= maxAcked {
			t.Fatalf("%s: next seq %d, but %d was acknowledged", name, first, maxAcked)
		}
		ep := l.Epoch()
		s.Close()
		// Another restart changes nothing: same epoch, the numbering
		// goes on, nothing lost.
		s = mustOpen(t, dir, Options{})
		l = mustLog(t, s, "acme")
		if l.Epoch() != ep {
			t.Fatalf("%s: a clean restart changed the epoch", name)
		}
		if lost, changed := lg.resume(l, ep, 0); changed || len(lost) > 0 {
			t.Fatalf("%s: after a clean restart lost %v, epoch changed %v", name, lost, changed)
		}
		if f, _ := lg.publish(l, 1); f != first+2 {
			t.Fatalf("%s: after a clean restart next seq %d, want %d", name, f, first+2)
		}
		s.Close()
	}
}

// clone returns a ledger knowing what lg knows, to go on with on its own.
func (lg *ledger) clone() *ledger {
	c := newLedger(lg.t)
	c.nextID = lg.nextID
	for ep, m := range lg.names {
		c.names[ep] = maps.Clone(m)
	}
	for ep, a := range lg.acked {
		c.acked[ep] = slices.Clone(a)
	}
	return c
}

// TestTornWriteKeepsEpoch: a crash in the middle of writing a batch that
// was never acknowledged (the mark stands below it, as it does on disk
// until the batch's fsync is done) is dropped quietly: same epoch, its seqs
// given again, nothing acknowledged missing.
func TestTornWriteKeepsEpoch(t *testing.T) {
	_, base, epoch, ends := buildBatches(t, 6)
	files := segFiles(t, base, "acme")
	seg := filepath.Base(files[len(files)-1])
	prev, last := ends[len(ends)-2], ends[len(ends)-1]
	for cut := prev.size + 1; cut < last.size; cut += 3 {
		dir := copyDir(t, base)
		if err := os.Truncate(filepath.Join(dir, "tenants", "acme", seg), cut); err != nil {
			t.Fatal(err)
		}
		setMark(t, dir, "acme", prev.last)
		s := mustOpen(t, dir, Options{})
		l := mustLog(t, s, "acme")
		if l.Epoch() != epoch {
			t.Fatalf("cut %d: a torn write changed the epoch", cut)
		}
		if _, n := l.Bounds(); n != prev.last {
			t.Fatalf("cut %d: newest %d, want %d", cut, n, prev.last)
		}
		if f, _, err := l.Append([][]byte{[]byte("again")}); err != nil || f != prev.last+1 {
			t.Fatalf("cut %d: next Append %d, %v; want %d", cut, f, err, prev.last+1)
		}
		s.Close()
	}
}

// TestRestoredOlderSegment: the newest segment restored from a copy taken
// before more events were acknowledged (cp -a of the directory, more
// publishes, then the old segment copied back), or removed: the events of
// the copy are served, the later ones are announced lost by a new epoch and
// their seqs are never given again; a reader resuming in the old epoch from
// before the copy is told, and one of the new epoch sees the exact loss.
func TestRestoredOlderSegment(t *testing.T) {
	for _, how := range []string{"restore", "remove"} {
		t.Run(how, func(t *testing.T) {
			dir := t.TempDir()
			s := mustOpen(t, dir, Options{SegmentBytes: minSegmentBytes})
			l := mustLog(t, s, "acme")
			lg := newLedger(t)
			epoch := l.Epoch()
			// Two segments, so that a removed newest one leaves history.
			for n := 0; len(segFiles(t, dir, "acme")) < 2; n++ {
				lg.publish(l, 50)
			}
			lg.publish(l, 3)
			s.Close()
			snap := copyDir(t, dir)
			s = mustOpen(t, dir, Options{SegmentBytes: minSegmentBytes})
			l = mustLog(t, s, "acme")
			_, atSnap := l.Bounds()
			for i := 0; i < 5; i++ {
				lg.publish(l, 2)
			}
			_, maxAcked := l.Bounds()
			s.Close()

			files := segFiles(t, dir, "acme")
			newest := files[len(files)-1]
			var kept uint64
			switch how {
			case "restore":
				b, err := os.ReadFile(filepath.Join(snap, "tenants", "acme", filepath.Base(newest)))
				if err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(newest, b, 0o644); err != nil {
					t.Fatal(err)
				}
				kept = atSnap
			case "remove":
				base, _ := parseSegName(filepath.Base(newest))
				if err := os.Remove(newest); err != nil {
					t.Fatal(err)
				}
				kept = base - 1
			}
			s = mustOpen(t, dir, Options{SegmentBytes: minSegmentBytes})
			l = mustLog(t, s, "acme")
			if l.Epoch() == epoch {
				t.Fatalf("events %d-%d acknowledged then lost, but the epoch is the same", kept+1, maxAcked)
			}
			if _, changed := lg.resume(l, epoch, atSnap-2); !changed {
				t.Fatal("a reader resuming in the old epoch is not told")
			}
			recs := readAllRecords(t, l)
			if !slices.Equal(seqsOf(recs), testkit.SeqRange(1, kept)) {
				t.Fatalf("new epoch serves %v..., want 1..%d", seqsOf(recs)[max(len(recs)-3, 0):], kept)
			}
			for _, r := range recs {
				if !bytes.Equal(r.Body, []byte(lg.names[epoch][r.Seq])) {
					t.Fatalf("seq %d serves %q, acknowledged as %q", r.Seq, r.Body, lg.names[epoch][r.Seq])
				}
			}
			if f, _ := lg.publish(l, 1); f != maxAcked+1 {
				t.Fatalf("next seq %d, want %d", f, maxAcked+1)
			}
		})
	}
}

// TestRestoredDirectoryWithoutMeta: a directory restored whole (meta and
// mark with the segments) holds nothing that says more was acknowledged
// after the copy, so README tells the operator to remove the meta files of
// a restored directory: that starts a new epoch, the numbering going on.
func TestRestoredDirectoryWithoutMeta(t *testing.T) {
	lg, base, epoch, ends := buildBatches(t, 3)
	snap := copyDir(t, base)
	s := mustOpen(t, base, Options{})
	lg.publish(mustLog(t, s, "acme"), 2)
	s.Close()
	if err := os.Remove(filepath.Join(snap, "tenants", "acme", "meta.json")); err != nil {
		t.Fatal(err)
	}
	s = mustOpen(t, snap, Options{})
	l := mustLog(t, s, "acme")
	if l.Epoch() == epoch {
		t.Fatal("a restored directory without its meta files kept the epoch")
	}
	if f, _ := lg.publish(l, 1); f != ends[len(ends)-1].last+1 {
		t.Fatalf("next seq %d, want the numbering to go on at %d", f, ends[len(ends)-1].last+1)
	}
}

// TestAckedMarkFailure: when the mark cannot be made durable, the batch is
// not acknowledged, never delivered (OnCommit), and the tenant takes no more
// events, as with a failed fsync of its segment.
func TestAckedMarkFailure(t *testing.T) {
	dir := t.TempDir()
	fail := errors.New("disk on fire")
	var delivered []uint64
	var mu sync.Mutex
	fs := &faults{}
	s := mustOpen(t, dir, Options{faults: fs, OnCommit: func(_ string, first uint64, b [][]byte) {
		mu.Lock()
		defer mu.Unlock()
		delivered = append(delivered, first)
	}})
	l := mustLog(t, s, "acme")
	appendN(t, l, 2)
	fs.ackSync = func(*os.File) error { return fail }
	if _, _, err := l.Append([][]byte{body("acme", 3)}); !errors.Is(err, fail) {
		t.Fatalf("Append with a failing mark: %v, want %v", err, fail)
	}
	if _, _, err := l.Append([][]byte{body("acme", 3)}); err == nil {
		t.Fatal("the tenant takes events after its mark failed")
	}
	if got := s.Failed(); got["acme"] == "" {
		t.Errorf("Failed() = %v, want acme listed: a failed mark is a failed write", got)
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(delivered, []uint64{1, 2}) {
		t.Fatalf("delivered batches %v, want 1, 2 only", delivered)
	}
}

// TestAckedMarkSlots: a slot spoiled (a write torn by a crash) leaves the
// other, and the mark it holds; both spoiled (damage), the mark is unknown,
// so a loss cannot be ruled out: new epoch, the numbering going on.
func TestAckedMarkSlots(t *testing.T) {
	_, base, epoch, ends := buildBatches(t, 4)
	last := ends[len(ends)-1].last
	for _, spoil := range [][]int{{0}, {1}, {0, 1}} {
		dir := copyDir(t, base)
		p := filepath.Join(dir, "tenants", "acme", ackedName)
		b, err := os.ReadFile(p)
		if err != nil || len(b) != 2*ackSlot {
			t.Fatalf("acked file %d bytes, %v", len(b), err)
		}
		for _, i := range spoil {
			b[i*ackSlot+3] ^= 0x40
		}
		os.WriteFile(p, b, 0o644)
		var logbuf testkit.SyncBuffer
		s := mustOpen(t, dir, Options{Logger: testLogger(&logbuf)})
		l := mustLog(t, s, "acme")
		if changed := l.Epoch() != epoch; changed != (len(spoil) == 2) {
			t.Fatalf("slots %v spoiled: epoch changed %v\n%s", spoil, changed, logbuf.String())
		}
		if f, _, err := l.Append([][]byte{body("acme", 0)}); err != nil || f != last+1 {
			t.Fatalf("slots %v spoiled: next Append %d, %v; want %d", spoil, f, err, last+1)
		}
		s.Close()
	}
}
