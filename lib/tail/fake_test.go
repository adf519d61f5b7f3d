package tail

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/tl-sh/tl/lib/cli"
	"github.com/tl-sh/tl/lib/internal/testkit"
)

// fakeRelay is a tiny relay speaking tl-protocol(7)'s subscribe side, driven
// by the test: every subscription is handed to the test as a fakeConn.
type fakeRelay struct {
	srv    *httptest.Server
	conns  chan *fakeConn
	mu     sync.Mutex // guards refuse and tries
	refuse []int      // statuses to answer the next attempts with instead of upgrading
	tries  int
}

// fakeConn is one subscription.
type fakeConn struct {
	path   string
	query  url.Values
	header http.Header
	ws     *websocket.Conn
	closed chan int // the close code the client sent (-1: none, the connection dropped)
}

func newFakeRelay(t *testing.T) *fakeRelay {
	f := &fakeRelay{conns: make(chan *fakeConn, 16)}
	up := websocket.Upgrader{}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.tries++
		var code int
		if len(f.refuse) > 0 {
			code, f.refuse = f.refuse[0], f.refuse[1:]
		}
		f.mu.Unlock()
		if code != 0 {
			w.Header().Set("Retry-After", "0")
			w.WriteHeader(code)
			fmt.Fprintf(w, `{"error":"refused with %d"}`, code)
			return
		}
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		c := &fakeConn{path: r.URL.Path, query: r.URL.Query(), header: r.Header, ws: ws, closed: make(chan int, 1)}
		f.conns <- c
		// Read until the client closes: answer its close frame (gorilla's
		// default handler does) and record the code.
		for {
			if _, _, err := ws.ReadMessage(); err != nil {
				var ce *websocket.CloseError
				if errors.As(err, &ce) {
					c.closed <- ce.Code
				} else {
					c.closed <- -1
				}
				ws.Close()
				return
			}
		}
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeRelay) attempts() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.tries
}

// next waits for the next subscription.
func (f *fakeRelay) next(t *testing.T) *fakeConn {
	t.Helper()
	select {
	case c := <-f.conns:
		return c
	case <-time.After(30 * time.Second):
		t.Fatal("tl-tail did not connect")
		return nil
	}
}

// send writes one WebSocket message made of lines.
func (c *fakeConn) send(t *testing.T, lines ...string) {
	t.Helper()
	if err := c.ws.WriteMessage(websocket.TextMessage, []byte(strings.Join(lines, ""))); err != nil {
		t.Fatalf("fake relay: %v", err)
	}
}

// drop cuts the connection without a close frame.
func (c *fakeConn) drop() { c.ws.NetConn().Close() }

// closeCode waits for the code the client closed with.
func (c *fakeConn) closeCode(t *testing.T) int {
	t.Helper()
	select {
	case code := <-c.closed:
		return code
	case <-time.After(30 * time.Second):
		t.Fatal("tl-tail did not close the connection")
		return 0
	}
}

func hello(epoch string, last uint64) string {
	return fmt.Sprintf(`{"control":"hello","tenant":"acme","epoch":%q,"last_seq":%d}`+"\n", epoch, last)
}

func gap(from, to uint64, reason string) string {
	return fmt.Sprintf(`{"control":"gap","from_seq":%d,"to_seq":%d,"reason":%q}`+"\n", from, to, reason)
}

// ev is a delivery line as the relay writes it.
func ev(seq uint64) string {
	return fmt.Sprintf(`{"seq":%d,"tenant_id":"acme","timestamp":1732740000123,"type":"click","path":"/p/%d","metadata":{}}`+"\n", seq, seq)
}

func evs(from, to uint64) string {
	var b strings.Builder
	for s := from; s <= to; s++ {
		b.WriteString(ev(s))
	}
	return b.String()
}

// run is a tl-tail run against a fake relay.
type run struct {
	cancel context.CancelFunc
	done   chan error
	stdout *testkit.SyncBuffer
	stderr *testkit.SyncBuffer
}

// startTail starts tl-tail with args against f, with fast reconnects. A nil
// stdout collects output in run.stdout.
func startTail(t *testing.T, f *fakeRelay, stdout io.Writer, args ...string) *run {
	t.Helper()
	r := &run{done: make(chan error, 1), stdout: &testkit.SyncBuffer{}, stderr: &testkit.SyncBuffer{}}
	if stdout == nil {
		stdout = r.stdout
	}
	env := &cli.Env{Stdout: stdout, Stderr: r.stderr, Getenv: func(k string) string {
		if k == "TL_RELAY" {
			return f.srv.URL
		}
		return ""
	}}
	opts, err := parseArgs(args, env)
	if err != nil {
		t.Fatalf("parseArgs(%q): %v", args, err)
	}
	tl := newTail(opts, env)
	tl.backoff.Base, tl.backoff.Cap = time.Millisecond, 10*time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() { r.done <- tl.run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-r.done
	})
	return r
}

// wait returns the run's result.
func (r *run) wait(t *testing.T) error {
	t.Helper()
	select {
	case err := <-r.done:
		r.done <- err // for the cleanup
		return err
	case <-time.After(30 * time.Second):
		t.Fatal("tl-tail did not end")
		return nil
	}
}

// code is the exit status of a run's result.
func code(err error) int {
	c, _ := cli.Code(err)
	if errors.Is(err, context.Canceled) {
		return cli.ExitInterrupted
	}
	return c
}
