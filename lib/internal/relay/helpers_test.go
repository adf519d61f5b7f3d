package relay

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/goleak"

	"github.com/tl-sh/tl/lib/event"
	"github.com/tl-sh/tl/lib/internal/testkit"
)

// engine is one of the two ways a relay serves WebSocket subscribers: its
// tenants' hubs (epoll, Linux) or goroutines of their own (TLS, systems
// without epoll).
type engine struct {
	name   string
	noHubs bool
}

// engines are the engines this system has.
func engines() []engine {
	es := []engine{{name: "goroutines", noHubs: true}}
	if runtime.GOOS == "linux" {
		es = append([]engine{{name: "hub"}}, es...)
	}
	return es
}

// hub reports whether the engine is the hubs.
func (e engine) hub() bool { return !e.noHubs }

// start starts a relay with cfg (see startRelay) served by the engine.
func (e engine) start(t *testing.T, cfg Config) *testRelay {
	t.Helper()
	cfg.noHubs = e.noHubs
	return startRelay(t, cfg)
}

// forEachEngine runs f as a subtest on each engine: every stream behaviour
// holds on both, except where a test says otherwise.
func forEachEngine(t *testing.T, f func(t *testing.T, e engine)) {
	t.Helper()
	for _, e := range engines() {
		t.Run(e.name, func(t *testing.T) { f(t, e) })
	}
}

// testRelay is a relay on a real loopback port.
type testRelay struct {
	t   *testing.T
	s   *Server
	url string // http://127.0.0.1:PORT
	ws  string // ws://127.0.0.1:PORT
}

// startRelay starts a relay with cfg and, at the end of the test, shuts it
// down and checks that no goroutine it started is left (goleak: it names the
// leaked goroutines' stacks, which a bare count does not).
func startRelay(t *testing.T, cfg Config) *testRelay {
	t.Helper()
	ignore := goleak.IgnoreCurrent()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := New(cfg)
	served := make(chan error, 1)
	go func() { served <- s.Serve(l) }()
	r := &testRelay{t: t, s: s, url: "http://" + l.Addr().String(), ws: "ws://" + l.Addr().String()}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
		http.DefaultClient.CloseIdleConnections()
		// goleak retries for about half a second; allow a loaded machine
		// more time before calling a goroutine leaked.
		var err error
		for i := 0; i < 20; i++ {
			if err = goleak.Find(ignore); err == nil {
				break
			}
		}
		if err != nil {
			t.Error(err)
		}
	})
	return r
}

// waitSubscribers waits until the relay counts n subscribers.
func (r *testRelay) waitSubscribers(n int) {
	r.t.Helper()
	testkit.WaitFor(r.t, fmt.Sprintf("%d subscribers", n), func() bool { return r.s.Stats().Subscribers == n })
}

// post sends body to tenant's events endpoint and returns the status, the
// body and the headers.
func (r *testRelay) post(tenant, ctype string, body []byte, hdr ...string) (int, string, http.Header) {
	r.t.Helper()
	req, err := http.NewRequest(http.MethodPost, r.url+"/v1/tenants/"+tenant+"/events", bytes.NewReader(body))
	if err != nil {
		r.t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		r.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b), res.Header
}

// accepted is the 202 body.
type accepted struct {
	Accepted int    `json:"accepted"`
	FirstSeq uint64 `json:"first_seq"`
	LastSeq  uint64 `json:"last_seq"`
	Epoch    string `json:"epoch"`
}

// shutdownAsync starts r's Shutdown with a deadline timeout from now; its
// result comes on the channel.
func (r *testRelay) shutdownAsync(timeout time.Duration) <-chan error {
	stopped := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		stopped <- r.s.Shutdown(ctx)
	}()
	return stopped
}

// mustPost posts NDJSON and requires a 202.
func (r *testRelay) mustPost(tenant string, body []byte) accepted {
	r.t.Helper()
	code, b, _ := r.post(tenant, "application/x-ndjson", body)
	if code != http.StatusAccepted {
		r.t.Fatalf("POST %s: %d %s", tenant, code, b)
	}
	var a accepted
	if err := json.Unmarshal([]byte(b), &a); err != nil {
		r.t.Fatalf("202 body %q: %v", b, err)
	}
	return a
}

// wsClient is a WebSocket subscriber reading lines.
type wsClient struct {
	t       *testing.T
	c       *websocket.Conn
	pending []string // lines of the last message not yet taken
	msgs    int      // messages read
}

// dial subscribes to tenant over WebSocket with the query (without "?").
func (r *testRelay) dial(tenant, query string) *wsClient {
	r.t.Helper()
	c, res, err := websocket.DefaultDialer.Dial(r.ws+"/v1/tenants/"+tenant+"/stream?"+query, nil)
	if err != nil {
		status := 0
		if res != nil {
			status = res.StatusCode
		}
		r.t.Fatalf("dial %s?%s: %v (status %d)", tenant, query, err, status)
	}
	w := &wsClient{t: r.t, c: c}
	r.t.Cleanup(func() { c.Close() })
	return w
}

// line returns the next line, failing the test after 20 s without one.
func (w *wsClient) line() string {
	w.t.Helper()
	l, err := w.next(20 * time.Second)
	if err != nil {
		w.t.Fatalf("reading a line: %v", err)
	}
	return l
}

func (w *wsClient) next(timeout time.Duration) (string, error) {
	for len(w.pending) == 0 {
		w.c.SetReadDeadline(time.Now().Add(timeout))
		typ, msg, err := w.c.ReadMessage()
		if err != nil {
			return "", err
		}
		if typ != websocket.TextMessage || len(msg) == 0 || msg[len(msg)-1] != '\n' {
			return "", fmt.Errorf("bad message (type %d): %q", typ, msg)
		}
		w.msgs++
		w.pending = strings.SplitAfter(string(msg[:len(msg)-1]), "\n")
		for i := range w.pending {
			w.pending[i] = strings.TrimSuffix(w.pending[i], "\n")
		}
	}
	l := w.pending[0]
	w.pending = w.pending[1:]
	return l, nil
}

// hello reads the hello line and returns it decoded.
func (w *wsClient) hello() helloLine {
	w.t.Helper()
	l := w.line()
	var h helloLine
	if err := json.Unmarshal([]byte(l), &h); err != nil || h.Control != "hello" {
		w.t.Fatalf("first line %q is not a hello", l)
	}
	if !strings.HasPrefix(l, `{"control":"hello",`) {
		w.t.Fatalf("hello line %q does not start with control", l)
	}
	return h
}

type helloLine struct {
	Control string `json:"control"`
	Tenant  string `json:"tenant"`
	Epoch   string `json:"epoch"`
	LastSeq uint64 `json:"last_seq"`
}

type gapLine struct {
	Control string `json:"control"`
	From    uint64 `json:"from_seq"`
	To      uint64 `json:"to_seq"`
	Reason  string `json:"reason"`
}

// seq returns a delivery's seq, failing on anything else.
func (w *wsClient) seq(line string) uint64 {
	w.t.Helper()
	s, ok := event.LineSeq([]byte(line))
	if !ok {
		w.t.Fatalf("not a delivery: %q", line)
	}
	return s
}

// testEvents returns the sample events, by tenant, as lines.
func testEvents(t testing.TB) map[string][][]byte {
	data, err := os.ReadFile("../../event/testdata/events.ndjson")
	if err != nil {
		t.Fatal(err)
	}
	by := map[string][][]byte{}
	var v event.Validator
	for _, line := range bytes.Split(bytes.TrimSpace(data), []byte("\n")) {
		if err := v.Validate(line, ""); err != nil {
			t.Fatal(err)
		}
		by[v.TenantID()] = append(by[v.TenantID()], line)
	}
	return by
}

func joinLines(lines [][]byte) []byte {
	var b bytes.Buffer
	for _, l := range lines {
		b.Write(l)
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// click returns n click events with paths /p<from>.. as NDJSON.
func clicks(from, n int) []byte {
	var b bytes.Buffer
	for i := from; i < from+n; i++ {
		fmt.Fprintf(&b, `{"type":"click","path":"/p%d","timestamp":1}`+"\n", i)
	}
	return b.Bytes()
}

// readNDJSON reads n lines from a chunked stream.
func readNDJSON(t *testing.T, body io.Reader, n int) []string {
	t.Helper()
	sc := bufio.NewScanner(body)
	var out []string
	for len(out) < n && sc.Scan() {
		if sc.Text() != "" {
			out = append(out, sc.Text())
		}
	}
	if len(out) < n {
		t.Fatalf("stream ended after %d lines, want %d: %v", len(out), n, sc.Err())
	}
	return out
}
