package main

import (
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/tl-sh/tl/lib/wsframe"
)

// TestRunFrames: the subscriber reads the relay's frames with wsframe: a
// message in two fragments longer than its buffer (16-bit lengths), a
// ping it answers with a masked pong, then a close.
func TestRunFrames(t *testing.T) {
	srv, cli := net.Pipe()
	defer srv.Close()
	hello := `{"control":"hello","tenant":"t","epoch":"e","last_seq":4}` + "\n"
	line := `{"seq":5,"tenant_id":"t","timestamp":1,"type":"click","path":"/` + strings.Repeat("x", 200) + `"}` + "\n"
	msg := hello + line
	half := len(msg) / 2
	done := make(chan error, 1)
	go func() {
		done <- func() error {
			server := func(fin bool, op wsframe.OpCode, p string) error {
				_, err := srv.Write(wsframe.AppendFrame(nil, wsframe.Header{Fin: fin, OpCode: op}, []byte(p)))
				return err
			}
			if err := server(false, wsframe.OpText, msg[:half]); err != nil {
				return err
			}
			if err := server(true, wsframe.OpContinuation, msg[half:]); err != nil {
				return err
			}
			if err := server(true, wsframe.OpPing, "p1"); err != nil {
				return err
			}
			h, err := wsframe.ReadHeader(srv)
			if err != nil {
				return err
			}
			p := make([]byte, h.Length)
			if _, err := io.ReadFull(srv, p); err != nil {
				return err
			}
			wsframe.Cipher(p, h.Mask, 0)
			if h.OpCode != wsframe.OpPong || !h.Masked || !h.Fin || string(p) != "p1" {
				return errors.New("not a masked pong p1")
			}
			return server(true, wsframe.OpClose, "")
		}()
	}()
	s := &sub{c: cli, buf: make([]byte, 64), now: time.Now()}
	if err := s.run(); err != io.EOF {
		t.Fatalf("run: %v, want EOF at the close", err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !s.hello.Load() || s.last != 5 || s.delivered != 1 || s.lost != 0 || len(s.carry) != 0 {
		t.Fatalf("hello %v last %d delivered %d lost %d carry %q", s.hello.Load(), s.last, s.delivered, s.lost, s.carry)
	}
}
