package post

import (
	"io"
	"os"
	"strings"
	"testing"
	"time"
)

// TestStdinInterrupt: a read blocked on a quiet pipe (tail -f | tl-post
// after Ctrl-C) is ended by the interrupt func, and the original descriptor
// is left open and usable.
func TestStdinInterrupt(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	in, interrupt := openStdin(r)
	if in == io.Reader(r) {
		t.Fatal("a pipe was not reopened")
	}
	io.WriteString(w, "x\n")
	buf := make([]byte, 10)
	if n, err := in.Read(buf); err != nil || string(buf[:n]) != "x\n" {
		t.Fatalf("read %q, %v", buf[:n], err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := in.Read(buf) // blocks: nothing more is written
		done <- err
	}()
	interrupt()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("read returned no error after interrupt")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("interrupt did not end a blocked read")
	}
	io.WriteString(w, "y")
	if _, err := r.Read(buf[:1]); err != nil || buf[0] != 'y' {
		t.Fatalf("original stdin unusable: %v %q", err, buf)
	}
	interrupt() // safe twice
}

func TestStdinNotAFile(t *testing.T) {
	sr := strings.NewReader("a")
	in, interrupt := openStdin(sr)
	interrupt()
	if in != io.Reader(sr) {
		t.Fatal("a plain reader was replaced")
	}
}
