package post

import (
	"io"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/tl-sh/tl/lib/cli"
	"github.com/tl-sh/tl/lib/internal/testkit"
)

func TestConsole(t *testing.T) {
	tests := []struct {
		name     string
		mode     int
		progress string // must appear once a tick has passed
		absent   []string
	}{
		{"tty", progressTTY, "\rread 3  sent 2  refused 1  retried 0  ", nil},
		{"plain", progressPlain, "tl-post: read 3  sent 2  refused 1  retried 0  ", []string{"\r", "\x1b["}},
		{"none", progressNone, "", []string{"read 3", "\r", "\x1b["}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var w testkit.SyncBuffer
			st := &stats{}
			st.read.Store(3)
			st.sent.Store(2)
			st.refused.Store(1)
			c := newConsole(&w, tt.mode, false, st)
			c.interval = time.Millisecond
			go c.run()
			c.printf("f:1: bad")
			if tt.progress != "" {
				testkit.WaitFor(t, "a progress line", func() bool { return strings.Contains(w.String(), tt.progress) })
				c.printf("f:2: bad")
			}
			c.close()
			c.close() // safe twice
			out := w.String()
			for _, s := range tt.absent {
				if strings.Contains(out, s) {
					t.Errorf("output holds %q:\n%q", s, out)
				}
			}
			if !strings.Contains(out, "f:1: bad\n") {
				t.Errorf("message lost: %q", out)
			}
			if tt.mode == progressTTY {
				// A message first erases the progress line, and close
				// leaves the line erased.
				if !strings.Contains(out, "\r\x1b[Kf:2: bad\n") || !strings.HasSuffix(out, "\r\x1b[K") && !strings.HasSuffix(out, "f:2: bad\n") {
					t.Errorf("progress line not erased: %q", out)
				}
			}
		})
	}
}

func TestCommas(t *testing.T) {
	for n, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", 1234567: "1,234,567", -1234: "-1,234"} {
		if got := commas(n); got != want {
			t.Errorf("commas(%d) = %q, want %q", n, got, want)
		}
	}
}

// TestProgressOnTerminal runs tl-post with stderr on a pty: the progress
// line is drawn (and redrawn in place); with stderr on a pipe it is not.
func TestProgressOnTerminal(t *testing.T) {
	for _, onTTY := range []bool{true, false} {
		name := map[bool]string{true: "pty", false: "pipe"}[onTTY]
		t.Run(name, func(t *testing.T) {
			f := newFakeRelay()
			srv := httptest.NewServer(f)
			defer srv.Close()

			var errR, errW *os.File
			var err error
			if onTTY {
				errR, errW, err = pty.Open()
			} else {
				errR, errW, err = os.Pipe()
			}
			if err != nil {
				t.Fatal(err)
			}
			defer errR.Close()
			var got testkit.SyncBuffer
			copied := make(chan struct{})
			go func() {
				io.Copy(&got, errR) // ends when errR is closed or errW's last copy is
				close(copied)
			}()

			pr, pw := io.Pipe()
			env := &cli.Env{Stdin: pr, Stdout: io.Discard, Stderr: errW, Getenv: func(k string) string {
				if k == "TERM" {
					return "xterm"
				}
				return ""
			}}
			done := make(chan error, 1)
			go func() { done <- Run(t.Context(), []string{"--relay", srv.URL, "acme", "--linger", "1ms"}, env) }()
			io.WriteString(pw, genEvents(20, "acme"))
			testkit.WaitFor(t, "the events to be published", func() bool {
				events, _, _, _ := f.snapshot()
				return len(events["acme"]) == 20
			})
			if onTTY {
				testkit.WaitFor(t, "a progress line on the terminal", func() bool {
					return strings.Contains(got.String(), "read 20  sent 20  refused 0  retried 0")
				})
			} else {
				// Let several redraw periods pass: none may draw.
				time.Sleep(5 * ttyRedraw)
			}
			pw.Close()
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			errW.Close()
			if !onTTY {
				<-copied
			} else {
				testkit.WaitFor(t, "the summary", func() bool { return strings.Contains(got.String(), "published 20 events") })
			}
			out := got.String()
			if hasProgress := strings.Contains(out, "\x1b[K") && strings.Contains(out, "read 20  sent"); hasProgress != onTTY {
				t.Errorf("progress drawn: %v, want %v; stderr:\n%q", hasProgress, onTTY, out)
			}
			if !strings.Contains(out, "published 20 events") {
				t.Errorf("no summary: %q", out)
			}
		})
	}
}
