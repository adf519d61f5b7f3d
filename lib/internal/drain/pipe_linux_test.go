package drain

import (
	"context"
	"errors"
	"io"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// stall is how long the readers below stop reading: seconds, as when a
// terminal is paused or a consumer is busy.
const stall = 2 * time.Second

// stdoutPipe returns a pipe whose write end is a blocking *os.File outside
// the poller, as os.Stdout is when a shell connects it to a pipe.
func stdoutPipe(t *testing.T) (r, w *os.File) {
	t.Helper()
	var p [2]int
	if err := syscall.Pipe2(p[:], syscall.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	r, w = os.NewFile(uintptr(p[0]), "r"), os.NewFile(uintptr(p[1]), "w")
	if pollable(w) {
		t.Fatal("a blocking pipe from os.NewFile should not be in the poller")
	}
	return r, w
}

// TestStalledReaderDrops: the reader of a real pipe stalls for seconds; the
// producer never waits, the output holds only whole lines in order, and the
// lines missing from it are exactly the lines counted as dropped.
func TestStalledReaderDrops(t *testing.T) {
	for _, kind := range []string{"os.Pipe", "stdout-like pipe"} {
		t.Run(kind, func(t *testing.T) {
			const lineLen, total = 200, 50_000 // 10 MB against an 80 KiB buffer
			var pr, pw *os.File
			if kind == "os.Pipe" {
				var err error
				if pr, pw, err = os.Pipe(); err != nil {
					t.Fatal(err)
				}
			} else {
				pr, pw = stdoutPipe(t)
			}
			defer pr.Close()
			var reported atomic.Int64
			w := New(pw, Config{Size: MinSize, OnDrop: func(n, _ int64) { reported.Add(n) }})
			produced := make(chan struct{})
			go func() {
				defer close(produced)
				for i := 0; i < total; i += 50 {
					if err := w.WriteLines(context.Background(), lines(i, 50, lineLen)); err != nil {
						t.Errorf("WriteLines: %v", err)
						return
					}
				}
			}()
			select {
			case <-produced: // the producer never waited on the stalled pipe
			case <-time.After(60 * time.Second):
				t.Fatal("the producer is blocked on a stalled reader")
			}
			time.Sleep(stall)
			outc := make(chan []byte)
			go func() { outc <- readAll(pr) }()
			if err := w.Close(context.Background()); err != nil {
				t.Fatalf("Close: %v", err)
			}
			pw.Close()
			got := checkLines(t, <-outc, lineLen)
			if w.Dropped() == 0 {
				t.Fatalf("nothing dropped: the test did not fill the buffer")
			}
			if int64(len(got))+w.Dropped() != total {
				t.Fatalf("received %d + dropped %d != sent %d", len(got), w.Dropped(), total)
			}
			if reported.Load() != w.Dropped() {
				t.Fatalf("reported %d dropped lines, dropped %d", reported.Load(), w.Dropped())
			}
		})
	}
}

// TestStalledReaderLossless: in lossless mode the producer is held back while
// the reader stalls, and then every line arrives, once, in order.
func TestStalledReaderLossless(t *testing.T) {
	const lineLen, total = 200, 20_000 // 4 MB: far more than buffer + pipe
	pr, pw := stdoutPipe(t)
	defer pr.Close()
	w := New(pw, Config{Size: MinSize, Lossless: true})
	var finished atomic.Bool
	produced := make(chan error, 1)
	go func() {
		for i := 0; i < total; i += 50 {
			if err := w.WriteLines(context.Background(), lines(i, 50, lineLen)); err != nil {
				produced <- err
				return
			}
		}
		finished.Store(true)
		produced <- nil
	}()
	time.Sleep(stall)
	if finished.Load() {
		t.Fatal("the producer finished although the reader took nothing")
	}
	outc := make(chan []byte)
	go func() { outc <- readAll(pr) }()
	if err := <-produced; err != nil {
		t.Fatalf("WriteLines: %v", err)
	}
	if err := w.Close(context.Background()); err != nil {
		t.Fatalf("Close: %v", err)
	}
	pw.Close()
	if got := checkLines(t, <-outc, lineLen); len(got) != total {
		t.Fatalf("received %d lines, want %d", len(got), total)
	}
}

// TestReopenKeepsFd1Blocking: the writer writes through its own description
// of the pipe, whose writes take deadlines, and leaves the shared one
// blocking.
func TestReopenKeepsFd1Blocking(t *testing.T) {
	pr, pw := stdoutPipe(t)
	defer pr.Close()
	defer pw.Close()
	s := openSink(pw)
	defer s.close()
	if s.reopened == nil || s.deadline == nil {
		t.Fatal("the pipe was not reopened through /proc/self/fd")
	}
	fl, err := unix.FcntlInt(pw.Fd(), unix.F_GETFL, 0)
	if err != nil {
		t.Fatal(err)
	}
	if fl&unix.O_NONBLOCK != 0 {
		t.Fatal("O_NONBLOCK was set on the shared description")
	}
	if _, err := s.w.Write([]byte("x\n")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 2)
	if _, err := pr.Read(buf); err != nil || string(buf) != "x\n" {
		t.Fatalf("read %q, %v", buf, err)
	}
}

// TestReaderGone: when the pipe's reader leaves, the writer stops with
// ErrBrokenPipe, whether or not a line was pending.
func TestReaderGone(t *testing.T) {
	for _, pending := range []bool{false, true} {
		for _, kind := range []string{"os.Pipe", "stdout-like pipe"} {
			t.Run(kind, func(t *testing.T) {
				var pr, pw *os.File
				if kind == "os.Pipe" {
					pr, pw, _ = os.Pipe()
				} else {
					pr, pw = stdoutPipe(t)
				}
				defer pw.Close()
				w := New(pw, Config{})
				if pending {
					w.WriteLines(context.Background(), []byte("a\n"))
				}
				pr.Close()
				select {
				case <-w.Done():
				case <-time.After(30 * time.Second):
					t.Fatal("the writer did not notice its reader leaving")
				}
				if err := w.Err(); !errors.Is(err, ErrBrokenPipe) {
					t.Fatalf("Err = %v, want ErrBrokenPipe", err)
				}
				if err := w.WriteLines(context.Background(), []byte("b\n")); !errors.Is(err, ErrBrokenPipe) {
					t.Fatalf("WriteLines = %v, want ErrBrokenPipe", err)
				}
				if err := w.Close(context.Background()); !errors.Is(err, ErrBrokenPipe) {
					t.Fatalf("Close = %v, want ErrBrokenPipe", err)
				}
			})
		}
	}
}

// TestCloseGivesUpOnStalledReader: Close flushes until its context ends, then
// interrupts the blocked write instead of hanging.
func TestCloseGivesUpOnStalledReader(t *testing.T) {
	pr, pw := stdoutPipe(t)
	defer pr.Close()
	defer pw.Close()
	w := New(pw, Config{Size: 1 << 20})
	w.WriteLines(context.Background(), lines(0, 4000, 200)) // 800 KB: more than the pipe holds
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	err := w.Close(ctx)
	if err == nil || !strings.Contains(err.Error(), "gave up flushing") {
		t.Fatalf("Close = %v, want a gave-up error", err)
	}
}

// TestStorageNeverDrops: a regular file or /dev/null is written losslessly
// (only the flusher can lag there), a pipe or a writer of unknown kind is not.
func TestStorageNeverDrops(t *testing.T) {
	file, err := os.CreateTemp(t.TempDir(), "out")
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer null.Close()
	pr, pw := stdoutPipe(t)
	defer pr.Close()
	defer pw.Close()
	tests := []struct {
		name     string
		out      io.Writer
		lossless bool
	}{
		{"regular file", file, true},
		{"/dev/null", null, true},
		{"pipe", pw, false},
		{"other writer", io.Discard, false},
	}
	for _, tt := range tests {
		w := New(tt.out, Config{Size: MinSize})
		if w.lossless != tt.lossless {
			t.Errorf("%s: lossless = %v, want %v", tt.name, w.lossless, tt.lossless)
		}
		if !tt.lossless {
			w.Close(context.Background())
			continue
		}
		const lineLen, total = 200, 20_000 // 4 MB through an 80 KiB buffer
		for i := 0; i < total; i += 100 {
			if err := w.WriteLines(context.Background(), lines(i, 100, lineLen)); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		if w.Dropped() != 0 {
			t.Errorf("%s: %d lines dropped", tt.name, w.Dropped())
		}
	}
	data, err := os.ReadFile(file.Name())
	if err != nil {
		t.Fatal(err)
	}
	if got := checkLines(t, data, 200); len(got) != 20_000 {
		t.Fatalf("the file holds %d lines, want 20000", len(got))
	}
}
