package drain

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// line returns the i-th test line, n bytes long including its newline, so
// every line says which one it is: "000042 xxxx…\n".
func line(i, n int) []byte {
	b := make([]byte, n)
	copy(b, fmt.Sprintf("%06d ", i))
	for j := 7; j < n-1; j++ {
		b[j] = 'x'
	}
	b[n-1] = '\n'
	return b
}

// lines returns lines first..first+count-1 of length n, concatenated.
func lines(first, count, n int) []byte {
	var b []byte
	for i := first; i < first+count; i++ {
		b = append(b, line(i, n)...)
	}
	return b
}

// checkLines verifies that out is made of whole, well-formed test lines of
// length n in increasing order, and returns their numbers.
func checkLines(t *testing.T, out []byte, n int) []int {
	t.Helper()
	var got []int
	for len(out) > 0 {
		i := bytes.IndexByte(out, '\n')
		if i < 0 {
			t.Fatalf("output ends in a partial line %q", out)
		}
		l := out[:i+1]
		out = out[i+1:]
		num, err := strconv.Atoi(string(l[:6]))
		if err != nil || len(l) != n || !bytes.Equal(l, line(num, n)) {
			t.Fatalf("malformed line %q", l)
		}
		if len(got) > 0 && num <= got[len(got)-1] {
			t.Fatalf("line %d after line %d", num, got[len(got)-1])
		}
		got = append(got, num)
	}
	return got
}

// gate is a writer that takes nothing until it is opened.
type gate struct {
	open chan struct{}
	mu   sync.Mutex // guards buf
	buf  bytes.Buffer
}

func newGate() *gate { return &gate{open: make(chan struct{})} }

func (g *gate) Write(p []byte) (int, error) {
	<-g.open
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.buf.Write(p)
}

func (g *gate) bytes() []byte {
	g.mu.Lock()
	defer g.mu.Unlock()
	return bytes.Clone(g.buf.Bytes())
}

func TestWriteLinesPassThrough(t *testing.T) {
	tests := []struct {
		name   string
		writes [][]byte
	}{
		{"one line", [][]byte{[]byte("{\"seq\":1}\n")}},
		{"many lines in one write", [][]byte{lines(0, 100, 50)}},
		{"many writes", [][]byte{lines(0, 10, 50), lines(10, 1, 50), lines(11, 500, 50)}},
		{"empty writes", [][]byte{nil, []byte{}, []byte("a\n")}},
		{"a line longer than a write chunk", [][]byte{lines(0, 1, writeChunk*3/2), lines(1, 3, 10)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newGate()
			close(g.open)
			w := New(g, Config{})
			var want []byte
			for _, p := range tt.writes {
				if err := w.WriteLines(context.Background(), p); err != nil {
					t.Fatalf("WriteLines: %v", err)
				}
				want = append(want, p...)
			}
			if err := w.Close(context.Background()); err != nil {
				t.Fatalf("Close: %v", err)
			}
			if got := g.bytes(); !bytes.Equal(got, want) {
				t.Fatalf("output differs: got %d bytes, want %d", len(got), len(want))
			}
			if w.Dropped() != 0 {
				t.Fatalf("Dropped = %d, want 0", w.Dropped())
			}
		})
	}
}

// TestDropExact: with stdout taking nothing, exactly the lines that fit in
// the buffer are kept and every other line is counted as dropped, whatever
// the sizes of the writes.
func TestDropExact(t *testing.T) {
	tests := []struct {
		name     string
		size     int
		lineLen  int
		perWrite int
		total    int
	}{
		{"one line per write", MinSize, 100, 1, 2000},
		{"packed writes", MinSize, 100, 256, 2000},
		{"odd line length", 100_000, 333, 7, 1000},
		{"write larger than the buffer", MinSize, 200, 1000, 1000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newGate()
			var reports atomic.Int64
			w := New(g, Config{Size: tt.size, OnDrop: func(n, total int64) { reports.Add(n) }})
			for i := 0; i < tt.total; i += tt.perWrite {
				if err := w.WriteLines(context.Background(), lines(i, min(tt.perWrite, tt.total-i), tt.lineLen)); err != nil {
					t.Fatalf("WriteLines: %v", err)
				}
			}
			kept := tt.size / tt.lineLen
			if got, want := w.Dropped(), int64(tt.total-kept); got != want {
				t.Fatalf("Dropped = %d, want %d", got, want)
			}
			close(g.open)
			if err := w.Close(context.Background()); err != nil {
				t.Fatalf("Close: %v", err)
			}
			got := checkLines(t, g.bytes(), tt.lineLen)
			if len(got) != kept || got[len(got)-1] != kept-1 {
				t.Fatalf("kept lines %d..%d (%d), want 0..%d", got[0], got[len(got)-1], len(got), kept-1)
			}
			if reports.Load() != w.Dropped() {
				t.Fatalf("OnDrop reported %d lines, dropped %d", reports.Load(), w.Dropped())
			}
		})
	}
}

// TestDropPartialInput: a write that does not end in a newline still counts
// its last, unterminated line when it is dropped.
func TestDropPartialInput(t *testing.T) {
	g := newGate()
	w := New(g, Config{Size: MinSize})
	w.WriteLines(context.Background(), bytes.Repeat([]byte{'a'}, MinSize-1))
	w.WriteLines(context.Background(), []byte("b\nccccccccccccccccccccc"))
	if got := w.Dropped(); got != 2 {
		t.Fatalf("Dropped = %d, want 2", got)
	}
	close(g.open)
	w.Close(context.Background())
}

// TestReportAtMostOncePerTick: drops are reported only on a tick, once, with
// the exact count since the previous report; what is left is reported by
// Close.
func TestReportAtMostOncePerTick(t *testing.T) {
	g := newGate()
	tick := make(chan time.Time)
	type report struct{ n, total int64 }
	reports := make(chan report, 10)
	w := New(g, Config{Size: MinSize, tick: tick, OnDrop: func(n, total int64) { reports <- report{n, total} }})
	ctx := context.Background()
	fill := lines(0, MinSize/100, 100)
	w.WriteLines(ctx, fill)
	for range 5 {
		w.WriteLines(ctx, lines(0, 3, 100)) // dropped: the buffer is full
	}
	var got []report
	tick <- time.Time{}
	got = append(got, <-reports)
	tick <- time.Time{} // a second tick with nothing new: no report
	w.WriteLines(ctx, lines(0, 4, 100))
	tick <- time.Time{}
	got = append(got, <-reports)
	w.WriteLines(ctx, lines(0, 2, 100))
	close(g.open)
	w.Close(ctx)
	close(reports)
	for r := range reports {
		got = append(got, r)
	}
	want := []report{{15, 15}, {4, 19}, {2, 21}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("reports = %v, want %v", got, want)
	}
}

// TestLosslessWaits: in lossless mode a full buffer makes the producer wait
// (never more than the buffer is held), and every line arrives once stdout
// drains.
func TestLosslessWaits(t *testing.T) {
	const lineLen, total = 100, 5000
	g := newGate()
	w := New(g, Config{Size: MinSize, Lossless: true})
	var accepted atomic.Int64
	done := make(chan error, 1)
	go func() {
		for i := 0; i < total; i += 10 {
			if err := w.WriteLines(context.Background(), lines(i, 10, lineLen)); err != nil {
				done <- err
				return
			}
			accepted.Add(10)
		}
		done <- nil
	}()
	time.Sleep(300 * time.Millisecond) // let the producer run into the full buffer
	if got := accepted.Load() * lineLen; got > MinSize {
		t.Fatalf("accepted %d bytes while stdout took none; the buffer is %d", got, MinSize)
	}
	select {
	case err := <-done:
		t.Fatalf("producer finished (%v) while stdout took nothing", err)
	default:
	}
	close(g.open)
	if err := <-done; err != nil {
		t.Fatalf("WriteLines: %v", err)
	}
	if err := w.Close(context.Background()); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if got := checkLines(t, g.bytes(), lineLen); len(got) != total {
		t.Fatalf("got %d lines, want %d", len(got), total)
	}
	if w.Dropped() != 0 {
		t.Fatalf("Dropped = %d in lossless mode", w.Dropped())
	}
}

// TestLosslessCancel: a producer waiting for room returns when its context
// ends, and so does one waiting when the writer is closed.
func TestLosslessCancel(t *testing.T) {
	g := newGate()
	defer close(g.open)
	w := New(g, Config{Size: MinSize, Lossless: true})
	w.WriteLines(context.Background(), lines(0, MinSize/100, 100))
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- w.WriteLines(ctx, lines(0, 1, 100)) }()
	time.Sleep(50 * time.Millisecond)
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("WriteLines after cancel = %v, want context.Canceled", err)
	}
	go func() { errc <- w.WriteLines(context.Background(), lines(0, 1, 100)) }()
	time.Sleep(50 * time.Millisecond)
	cctx, ccancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer ccancel()
	w.Close(cctx)
	if err := <-errc; err == nil {
		t.Fatalf("WriteLines during Close = nil, want an error")
	}
}

func TestCloseTwiceAndWriteAfterClose(t *testing.T) {
	var buf bytes.Buffer
	w := New(&buf, Config{})
	w.WriteLines(context.Background(), []byte("a\n"))
	if err := w.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(context.Background()); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := w.WriteLines(context.Background(), []byte("b\n")); !errors.Is(err, ErrClosed) {
		t.Fatalf("WriteLines after Close = %v, want ErrClosed", err)
	}
	if buf.String() != "a\n" {
		t.Fatalf("output %q", buf.String())
	}
}

type failWriter struct{ err error }

func (f failWriter) Write(p []byte) (int, error) { return 0, f.err }

func TestWriteError(t *testing.T) {
	w := New(failWriter{io.ErrClosedPipe}, Config{})
	w.WriteLines(context.Background(), []byte("a\n"))
	<-w.Done()
	if err := w.Err(); !errors.Is(err, io.ErrClosedPipe) {
		t.Fatalf("Err = %v", err)
	}
	if err := w.WriteLines(context.Background(), []byte("b\n")); !errors.Is(err, io.ErrClosedPipe) {
		t.Fatalf("WriteLines after failure = %v", err)
	}
	if err := w.Close(context.Background()); !errors.Is(err, io.ErrClosedPipe) {
		t.Fatalf("Close = %v", err)
	}
}

func TestChunkEnd(t *testing.T) {
	short := lines(0, 3, 10)
	long := lines(0, writeChunk/100+5, 100)
	huge := lines(0, 2, writeChunk+50)
	tests := []struct {
		name     string
		buf      []byte
		off, end int
	}{
		{"fits", short, 0, len(short)},
		{"fits from an offset", short, 10, len(short)},
		{"cut at the last line end within a chunk", long, 0, writeChunk / 100 * 100},
		{"a line longer than a chunk goes whole", huge, 0, writeChunk + 50},
		{"no newline at all", bytes.Repeat([]byte{'a'}, writeChunk*2), 0, writeChunk * 2},
	}
	for _, tt := range tests {
		if got := chunkEnd(tt.buf, tt.off); got != tt.end {
			t.Errorf("%s: chunkEnd = %d, want %d", tt.name, got, tt.end)
		}
	}
}

// readAll reads r to EOF with a line reader, as a consumer would.
func readAll(r io.Reader) []byte {
	var out bytes.Buffer
	br := bufio.NewReaderSize(r, 1<<16)
	io.Copy(&out, br)
	return out.Bytes()
}

func BenchmarkWriteLines(b *testing.B) {
	for _, perMsg := range []int{1, 256} {
		b.Run(fmt.Sprintf("lines=%d", perMsg), func(b *testing.B) {
			msg := lines(0, perMsg, 200)
			w := New(io.Discard, Config{Lossless: true})
			ctx := context.Background()
			b.SetBytes(int64(len(msg)))
			b.ReportAllocs()
			for b.Loop() {
				w.WriteLines(ctx, msg)
			}
			w.Close(ctx)
			b.ReportMetric(float64(b.N*perMsg)/b.Elapsed().Seconds(), "lines/s")
		})
	}
}
