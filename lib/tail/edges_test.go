package tail

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/tl-sh/tl/lib/cli"
	"github.com/tl-sh/tl/lib/internal/testkit"
)

// TestNotARelay: a web server that is not tl-relay answers with its HTML
// page: tl-tail prints the status and a hint, never the page.
func TestNotARelay(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprint(w, "<!DOCTYPE html>\n<html><head><title>404</title></head><body><h1>Not here</h1></body></html>\n")
	}))
	defer srv.Close()
	f := &fakeRelay{srv: srv}
	r := startTail(t, f, nil, "acme")
	got, msg := cli.Code(r.wait(t))
	want := "relay answered 404 Not Found with an HTML page: is tl-relay running at " + srv.URL + "? (TL_RELAY)"
	if got != 1 || msg != want {
		t.Fatalf("exit %d %q, want 1 %q", got, msg, want)
	}
	if strings.Contains(r.stderr.String(), "<") || r.stdout.String() != "" {
		t.Fatalf("stdout %q stderr %q", r.stdout.String(), r.stderr.String())
	}
}

// failWriter fails every write as a full disk does.
type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("no space left on device") }

// TestWriteErrorIsAFailure: a write error other than a reader leaving is
// exit 1 with the reason, not the quiet 141 of `| head`.
func TestWriteErrorIsAFailure(t *testing.T) {
	f := newFakeRelay(t)
	r := startTail(t, f, failWriter{}, "acme")
	c := f.next(t)
	c.send(t, hello("e1", 0), evs(1, 3))
	got, msg := cli.Code(r.wait(t))
	if got != cli.ExitFailure || msg != "writing stdout: no space left on device" {
		t.Fatalf("exit %d %q, want 1 and the write error", got, msg)
	}
	if code := c.closeCode(t); code != websocket.CloseNormalClosure {
		t.Fatalf("close code %d, want 1000", code)
	}
}

// TestNoFollow: --no-follow asks the relay to end the stream at the newest
// seq of the first hello (until=now, then until=SEQ on a reconnect, so
// events published meanwhile are not waited for), and exits 0 when the
// relay closes with 1000.
func TestNoFollow(t *testing.T) {
	f := newFakeRelay(t)
	r := startTail(t, f, nil, "acme", "--no-follow", "--type", "click")
	c := f.next(t)
	if got, want := c.query.Encode(), "last=9223372036854775807&type=click&until=now"; got != want {
		t.Fatalf("query %q, want %q", got, want)
	}
	c.send(t, hello("e1", 10), ev(2), ev(4))
	testkit.WaitFor(t, "two events", func() bool { return r.stdout.String() == ev(2)+ev(4) })
	c.drop()
	c = f.next(t)
	if got, want := c.query.Encode(), "epoch=e1&since=4&type=click&until=10"; got != want {
		t.Fatalf("resume query %q, want %q", got, want)
	}
	c.send(t, hello("e1", 12), ev(7))
	c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, "end of stream"), time.Now().Add(writeWait))
	if err := r.wait(t); err != nil {
		t.Fatalf("run: %v", err)
	}
	if got := r.stdout.String(); got != ev(2)+ev(4)+ev(7) {
		t.Fatalf("stdout %q", got)
	}
	// In follow mode the same close is a disconnect: it reconnects.
	f = newFakeRelay(t)
	r = startTail(t, f, nil, "acme")
	c = f.next(t)
	c.send(t, hello("e1", 10))
	c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(writeWait))
	if got := f.next(t).query.Encode(); got != "epoch=e1&since=10" {
		t.Fatalf("follow: reconnect query %q", got)
	}
}

// TestCountOverTenants: -c N counts the events of every tenant of the run
// together, exactly, though their streams print at the same time; each
// tenant has its own stream and resume point.
func TestCountOverTenants(t *testing.T) {
	f := newFakeRelay(t)
	r := startTail(t, f, nil, "a", "b", "-c", "15")
	c1, c2 := f.next(t), f.next(t)
	paths := map[string]bool{}
	for _, c := range []*fakeConn{c1, c2} {
		paths[c.path] = true
	}
	if !paths["/v1/tenants/a/stream"] || !paths["/v1/tenants/b/stream"] {
		t.Fatalf("streams %v, want one per tenant", paths)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for s := uint64(1); s <= 10; s++ {
			c2.ws.WriteMessage(websocket.TextMessage, []byte(ev(s)))
		}
	}()
	c1.send(t, hello("e1", 0))
	for s := uint64(1); s <= 10; s++ {
		c1.send(t, ev(s))
	}
	<-done
	if err := r.wait(t); err != nil {
		t.Fatalf("run: %v", err)
	}
	if n := strings.Count(r.stdout.String(), "\n"); n != 15 {
		t.Fatalf("%d lines, want 15:\n%s", n, r.stdout.String())
	}
}
