package relay

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/tl-sh/tl/lib/internal/tlog"
)

// switchLog is a Log whose backing can be swapped for a fresh one, as a
// shared broker's log is when Redis lost its data: the epoch changes
// under connected subscribers.
type switchLog struct {
	mu  sync.Mutex // guards cur
	cur tlog.Log
}

func (s *switchLog) get() tlog.Log {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cur
}

// restart replaces the log and closes the old one (waking its waiters).
func (s *switchLog) restart(l tlog.Log) {
	s.mu.Lock()
	old := s.cur
	s.cur = l
	s.mu.Unlock()
	old.Close()
}

func (s *switchLog) Read(from uint64, dst [][]byte, n, b int) ([][]byte, uint64, tlog.Gap, error) {
	return s.get().Read(from, dst, n, b)
}
func (s *switchLog) Notify() <-chan struct{}  { return s.get().Notify() }
func (s *switchLog) Bounds() (uint64, uint64) { return s.get().Bounds() }
func (s *switchLog) Epoch() string            { return s.get().Epoch() }
func (s *switchLog) Close() error             { return s.get().Close() }
func (s *switchLog) Append(ctx context.Context, b tlog.Batch) (tlog.Appended, error) {
	l := s.get()
	a, err := l.Append(ctx, b)
	a.Epoch = "shared-" + l.Epoch() // as a shared log names the epoch of the seqs
	return a, err
}

// noEpochLog is a Log whose backing could not learn its epoch.
type noEpochLog struct{ tlog.Log }

func (noEpochLog) Epoch() string { return "" }

// The hooks a shared broker uses: readiness, publishes through
// Append (the 202 names the epoch it returns), a subscriber told of
// an epoch change mid-stream, and a 503 when the epoch is unknown.
func TestBrokerHooks(t *testing.T) {
	var ready atomic.Bool
	ready.Store(true)
	sl := &switchLog{cur: tlog.NewMemory(100, 1<<20)}
	cfg := Config{Ready: ready.Load}
	cfg.OpenLog = func(name string) (tlog.Log, error) {
		if name == "noepoch" {
			return noEpochLog{tlog.NewMemory(10, 1<<20)}, nil
		}
		return sl, nil
	}
	r := startRelay(t, cfg)

	readyz := func() (int, string, string) {
		rec := httptest.NewRecorder()
		r.s.ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
		return rec.Code, strings.TrimSpace(rec.Body.String()), rec.Header().Get("Retry-After")
	}
	tests := []struct {
		ready bool
		code  int
		body  string
		retry string
	}{
		{true, 200, "ok", ""},
		{false, 503, "broker unreachable", "1"},
		{true, 200, "ok", ""},
	}
	for _, tt := range tests {
		ready.Store(tt.ready)
		if code, body, retry := readyz(); code != tt.code || body != tt.body || retry != tt.retry {
			t.Errorf("ready %v: /readyz %d %q Retry-After %q; want %d %q %q", tt.ready, code, body, retry, tt.code, tt.body, tt.retry)
		}
	}

	ws := r.dial("acme", "")
	h := ws.hello()
	a := r.mustPost("acme", clicks(0, 3))
	if a.Epoch != "shared-"+h.Epoch || a.FirstSeq != 1 || a.LastSeq != 3 || a.Accepted != 3 {
		t.Errorf("202 %+v, want seqs 1..3 in the epoch Append named (shared-%s)", a, h.Epoch)
	}
	for i := uint64(1); i <= 3; i++ {
		if got := ws.seq(ws.line()); got != i {
			t.Fatalf("got seq %d, want %d", got, i)
		}
	}
	// The numbering restarts under the subscriber, with 2 events already in
	// the new epoch.
	fresh := tlog.NewMemory(100, 1<<20)
	if _, _, err := appendBodies(fresh, [][]byte{[]byte(`"tenant_id":"acme","timestamp":1,"type":"click","path":"/n","metadata":{}}` + "\n"),
		[]byte(`"tenant_id":"acme","timestamp":2,"type":"click","path":"/n","metadata":{}}` + "\n")}); err != nil {
		t.Fatal(err)
	}
	sl.restart(fresh)
	l := ws.line()
	if want := `{"control":"hello","tenant":"acme","epoch":"` + fresh.Epoch() + `","last_seq":2}`; l != want {
		t.Fatalf("after the restart: %s, want %s", l, want)
	}
	// Nothing of the new numbering is lost: no gap line, the deliveries
	// follow the hello (ws.seq fails on anything else).
	for i := uint64(1); i <= 2; i++ {
		if got := ws.seq(ws.line()); got != i {
			t.Fatalf("new epoch: got seq %d, want %d", got, i)
		}
	}

	res, err := http.Get(r.url + "/v1/tenants/noepoch/stream")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusServiceUnavailable || res.Header.Get("Retry-After") == "" {
		t.Errorf("subscribe without an epoch: %d (Retry-After %q), want 503 with Retry-After", res.StatusCode, res.Header.Get("Retry-After"))
	}
}
