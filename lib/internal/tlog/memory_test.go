package tlog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/tl-sh/tl/lib/event"
)

// body returns a small canonical-looking body whose path names i.
func body(i int) []byte {
	return []byte(`"tenant_id":"t","timestamp":1,"type":"click","path":"/` + strconv.Itoa(i) + `","metadata":{}}` + "\n")
}

// add appends bs to l without a key, the way most tests fill a log.
func add(l Log, bs [][]byte) (first, last uint64, err error) {
	a, err := l.Append(context.Background(), Batch{Bodies: bs})
	return a.First, a.Last, err
}

func bodies(from, n int) [][]byte {
	var bs [][]byte
	for i := from; i < from+n; i++ {
		bs = append(bs, body(i))
	}
	return bs
}

// seqs returns the seqs of lines, checking each line's body names the same
// number (the body of event i was appended as seq i in these tests).
func seqs(t *testing.T, lines [][]byte) []uint64 {
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

// readFrom reads every line from seq from on, in pieces of maxLines, and
// returns the seqs and the gaps seen.
func readFrom(t *testing.T, l Log, from uint64, maxLines int) ([]uint64, []Gap) {
	t.Helper()
	var got []uint64
	var gaps []Gap
	for i := 0; i < 10000; i++ {
		lines, next, gap, err := l.Read(from, nil, maxLines, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		if !gap.Empty() {
			gaps = append(gaps, gap)
		}
		got = append(got, seqs(t, lines)...)
		if len(lines) == 0 && gap.Empty() {
			return got, gaps
		}
		from = next
	}
	t.Fatal("Read never reached the end")
	return nil, nil
}

func TestAppendSeqs(t *testing.T) {
	m := NewMemory(10, 1<<20)
	if o, n := m.Bounds(); o != 1 || n != 0 {
		t.Fatalf("empty bounds %d..%d, want 1..0", o, n)
	}
	first, last, err := add(m, bodies(1, 3))
	if err != nil || first != 1 || last != 3 {
		t.Fatalf("Append = %d, %d, %v; want 1, 3", first, last, err)
	}
	first, last, _ = add(m, bodies(4, 1))
	if first != 4 || last != 4 {
		t.Fatalf("second Append = %d, %d; want 4, 4", first, last)
	}
	if f, l, err := add(m, nil); f != 0 || l != 0 || err != nil {
		t.Fatalf("empty Append = %d %d %v", f, l, err)
	}
	lines, next, gap, _ := m.Read(1, nil, 100, 1<<20)
	if got := fmt.Sprint(seqs(t, lines)); got != "[1 2 3 4]" || next != 5 || !gap.Empty() {
		t.Fatalf("Read(1) = %s next %d gap %v", got, next, gap)
	}
	want := `{"seq":1,` + string(body(1))
	if string(lines[0]) != want {
		t.Errorf("line 1 = %q, want %q", lines[0], want)
	}
}

// TestWrapAndGaps drives a 5-line ring through several wraps and checks the
// bounds and what Read returns from every cursor.
func TestWrapAndGaps(t *testing.T) {
	cases := []struct {
		appended       int // events appended so far, in batches of 3
		from           uint64
		maxLines       int
		wantSeqs       string
		wantNext       uint64
		wantGap        Gap
		oldest, newest uint64
	}{
		{3, 1, 10, "[1 2 3]", 4, Gap{}, 1, 3},
		{6, 1, 10, "[2 3 4 5 6]", 7, Gap{1, 1}, 2, 6},
		{6, 2, 10, "[2 3 4 5 6]", 7, Gap{}, 2, 6},
		{6, 7, 10, "[]", 7, Gap{}, 2, 6},
		{12, 1, 10, "[8 9 10 11 12]", 13, Gap{1, 7}, 8, 12},
		{12, 7, 2, "[8 9]", 10, Gap{7, 7}, 8, 12},
		{12, 10, 2, "[10 11]", 12, Gap{}, 8, 12},
		{30, 0, 10, "[26 27 28 29 30]", 31, Gap{1, 25}, 26, 30},
		{30, 26, 1, "[26]", 27, Gap{}, 26, 30},
		{30, 31, 10, "[]", 31, Gap{}, 26, 30},
	}
	m := NewMemory(5, 1<<20)
	appended := 0
	for _, c := range cases {
		for appended < c.appended {
			if _, _, err := add(m, bodies(appended+1, 3)); err != nil {
				t.Fatal(err)
			}
			appended += 3
		}
		if o, n := m.Bounds(); o != c.oldest || n != c.newest {
			t.Errorf("after %d: bounds %d..%d, want %d..%d", c.appended, o, n, c.oldest, c.newest)
		}
		lines, next, gap, err := m.Read(c.from, nil, c.maxLines, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		got := fmt.Sprint(seqs(t, lines))
		if got != c.wantSeqs || next != c.wantNext || gap != c.wantGap {
			t.Errorf("after %d, Read(%d, max %d) = %s next %d gap %v; want %s next %d gap %v",
				c.appended, c.from, c.maxLines, got, next, gap, c.wantSeqs, c.wantNext, c.wantGap)
		}
	}
}

// TestByteBound: the byte limit evicts as well, and Read's byte cap always
// returns at least one line.
func TestByteBound(t *testing.T) {
	one := len(`{"seq":1,`) + len(body(1)) // seqs 1..9 have the same length
	m := NewMemory(100, 3*one)
	add(m, bodies(1, 5))
	if o, n := m.Bounds(); o != 3 || n != 5 {
		t.Fatalf("bounds %d..%d, want 3..5", o, n)
	}
	if lines, bytes := m.Len(); lines != 3 || bytes != 3*one {
		t.Errorf("Len = %d, %d; want 3, %d", lines, bytes, 3*one)
	}
	lines, next, _, _ := m.Read(3, nil, 10, one+1)
	if got := fmt.Sprint(seqs(t, lines)); got != "[3]" || next != 4 {
		t.Errorf("byte-capped Read = %s next %d, want [3] 4", got, next)
	}
	lines, _, _, _ = m.Read(3, nil, 10, 1)
	if len(lines) != 1 {
		t.Errorf("Read with a tiny byte cap returned %d lines, want 1", len(lines))
	}
	// A batch larger than the whole bound keeps its newest lines.
	first, last, _ := add(m, bodies(6, 4))
	if first != 6 || last != 9 {
		t.Errorf("Append = %d..%d", first, last)
	}
	if o, n := m.Bounds(); o != 7 || n != 9 {
		t.Errorf("bounds %d..%d, want 7..9", o, n)
	}
}

func TestRingGrows(t *testing.T) {
	m := NewMemory(1000, 1<<30)
	for i := 1; i <= 2500; i += 10 {
		add(m, bodies(i, 10))
	}
	if len(m.ring.lines) != 1000 {
		t.Errorf("ring size %d, want 1000", len(m.ring.lines))
	}
	lines, next, gap, _ := m.Read(1, nil, 2000, 1<<30)
	s := seqs(t, lines)
	if len(s) != 1000 || s[0] != 1501 || s[999] != 2500 || next != 2501 || gap != (Gap{1, 1500}) {
		t.Errorf("got %d lines %d..%d next %d gap %v", len(s), s[0], s[len(s)-1], next, gap)
	}
}

func TestNotifyAndClose(t *testing.T) {
	m := NewMemory(10, 1<<20)
	ch := m.Notify()
	select {
	case <-ch:
		t.Fatal("notified before an append")
	default:
	}
	add(m, bodies(1, 1))
	<-ch // closed by the append
	ch2 := m.Notify()
	if ch2 == ch {
		t.Fatal("Notify returned the spent channel")
	}
	if m.Epoch() == "" || len(m.Epoch()) != 16 || m.Epoch() == NewMemory(1, 1).Epoch() {
		t.Errorf("epoch %q", m.Epoch())
	}
	m.Close()
	m.Close()
	<-ch2 // Close wakes waiters
	if _, _, err := add(m, bodies(2, 1)); !errors.Is(err, ErrClosed) {
		t.Errorf("Append after Close: %v", err)
	}
	if _, _, _, err := m.Read(1, nil, 1, 1); !errors.Is(err, ErrClosed) {
		t.Errorf("Read after Close: %v", err)
	}
}

// TestConcurrent appends from several goroutines while readers follow with
// their own cursors: every reader sees consecutive seqs (or an exact gap),
// and each appender's batches keep their order.
func TestConcurrent(t *testing.T) {
	const appenders, batches, batch, readers = 4, 200, 5, 4
	const total = appenders * batches * batch
	m := NewMemory(300, 1<<20)
	var wg sync.WaitGroup
	done := make(chan struct{})
	errs := make(chan error, readers)
	for r := 0; r < readers; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cursor := uint64(1)
			var buf [][]byte
			for cursor <= total {
				ch := m.Notify()
				lines, next, gap, err := m.Read(cursor, buf[:0], 50, 1<<20)
				if err != nil {
					errs <- err
					return
				}
				if !gap.Empty() && (gap.From != cursor || gap.To+1 != next-uint64(len(lines))) {
					errs <- fmt.Errorf("gap %v from cursor %d, next %d after %d lines", gap, cursor, next, len(lines))
					return
				}
				expect := next - uint64(len(lines))
				for _, l := range lines {
					s, _ := event.LineSeq(l)
					if s != expect {
						errs <- fmt.Errorf("seq %d, want %d", s, expect)
						return
					}
					expect++
				}
				cursor = next
				if len(lines) == 0 {
					select {
					case <-ch:
					case <-done:
						return
					}
				}
			}
		}()
	}
	var aw sync.WaitGroup
	for a := 0; a < appenders; a++ {
		aw.Add(1)
		go func() {
			defer aw.Done()
			var prev uint64
			for b := 0; b < batches; b++ {
				first, last, err := add(m, bodies(0, batch))
				if err != nil || last-first != batch-1 || first <= prev {
					t.Errorf("Append = %d..%d after %d: %v", first, last, prev, err)
					return
				}
				prev = last
			}
		}()
	}
	aw.Wait()
	if _, n := m.Bounds(); n != total {
		t.Errorf("newest %d, want %d", n, total)
	}
	wait := time.AfterFunc(30*time.Second, func() { close(done) })
	wg.Wait()
	wait.Stop()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func BenchmarkAppend(b *testing.B) {
	for _, n := range []int{1, 100, 1000} {
		b.Run(fmt.Sprintf("batch%d", n), func(b *testing.B) {
			m := NewMemory(DefaultMaxEvents, DefaultMaxBytes)
			bs := bodies(1, n)
			b.ReportAllocs()
			b.SetBytes(int64(n * len(bs[0])))
			for b.Loop() {
				add(m, bs)
			}
		})
	}
}

func BenchmarkRead(b *testing.B) {
	m := NewMemory(DefaultMaxEvents, DefaultMaxBytes)
	for i := 0; i < 100; i++ {
		add(m, bodies(1, 1000))
	}
	buf := make([][]byte, 0, 256)
	b.ReportAllocs()
	var cursor uint64 = 1
	for b.Loop() {
		lines, next, _, _ := m.Read(cursor, buf[:0], 256, 64<<10)
		if len(lines) == 0 {
			next = 1
		}
		cursor = next
	}
}

// TestMemoryNeverCold: the memory log reads from memory only, so a writer
// never sets its reads apart.
func TestMemoryNeverCold(t *testing.T) {
	if IsCold(NewMemory(10, 1<<20), 1) {
		t.Error("a memory log is never cold")
	}
}
