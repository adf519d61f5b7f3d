package fdreopen

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// blockingPipe returns a pipe as a shell makes one: blocking descriptors
// that Go's poller does not manage.
func blockingPipe(t *testing.T) (r, w *os.File) {
	t.Helper()
	var p [2]int
	if err := syscall.Pipe2(p[:], syscall.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	r, w = os.NewFile(uintptr(p[0]), "r"), os.NewFile(uintptr(p[1]), "w")
	t.Cleanup(func() { r.Close(); w.Close() })
	if Pollable(r) || Pollable(w) {
		t.Fatal("a blocking pipe is pollable")
	}
	return r, w
}

// TestReopenRead: the reopened read end takes a deadline (a blocked read
// ends) and reads what the original write end writes.
func TestReopenRead(t *testing.T) {
	r, w := blockingPipe(t)
	g, err := Reopen(r, os.O_RDONLY)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	g.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	buf := make([]byte, 8)
	if _, err := g.Read(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read on an empty pipe: %v, want a deadline error", err)
	}
	g.SetReadDeadline(time.Time{})
	if _, err := w.Write([]byte("hi")); err != nil {
		t.Fatal(err)
	}
	if n, err := g.Read(buf); err != nil || string(buf[:n]) != "hi" {
		t.Fatalf("read %q, %v; want hi", buf[:n], err)
	}
	if Pollable(r) {
		t.Error("the original description became pollable")
	}
}

// TestReopenWrite: the reopened write end takes a deadline (a full pipe's
// write ends).
func TestReopenWrite(t *testing.T) {
	_, w := blockingPipe(t)
	g, err := Reopen(w, os.O_WRONLY)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	g.SetWriteDeadline(time.Now().Add(20 * time.Millisecond))
	big := make([]byte, 4<<20) // more than a pipe holds
	if _, err := g.Write(big); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("write to a full pipe: %v, want a deadline error", err)
	}
}

// TestReopenFIFOWithoutReader: stdout on a named pipe whose reader has gone
// is not reopened, and the attempt returns at once (without O_NONBLOCK the
// open would wait for a reader forever).
func TestReopenFIFOWithoutReader(t *testing.T) {
	path := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		t.Fatal(err)
	}
	rfd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	wfd, err := syscall.Open(path, syscall.O_WRONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	w := os.NewFile(uintptr(wfd), "w")
	defer w.Close()
	syscall.Close(rfd)
	done := make(chan error, 1)
	go func() {
		g, err := Reopen(w, os.O_WRONLY)
		if err == nil {
			g.Close()
		}
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("reopening a named pipe without a reader succeeded")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Reopen waited for a reader")
	}
}
