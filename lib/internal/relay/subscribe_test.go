package relay

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/tl-sh/tl/lib/event"
	"github.com/tl-sh/tl/lib/internal/testkit"
)

// wantSeqs reads len(want) deliveries and checks their seqs.
func (w *wsClient) wantSeqs(want ...uint64) {
	w.t.Helper()
	for _, s := range want {
		l := w.line()
		if got := w.seq(l); got != s {
			w.t.Fatalf("got seq %d (%s), want %d", got, l, s)
		}
	}
}

func (w *wsClient) gap() gapLine {
	w.t.Helper()
	l := w.line()
	var g gapLine
	if err := json.Unmarshal([]byte(l), &g); err != nil || g.Control != "gap" || !strings.HasPrefix(l, `{"control":"gap",`) {
		w.t.Fatalf("line %q is not a gap", l)
	}
	return g
}

// seqRange is testkit.SeqRange under the name this package's tests use.
// TestReplayAndResume covers last=N and since=SEQ&epoch=E.
func TestReplayAndResume(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		r := e.start(t, Config{})
		a := r.mustPost("acme", clicks(1, 10))
		cases := []struct {
			name, query string
			gap         *gapLine
			replay      []uint64
		}{
			{"live", "", nil, nil},
			{"last 3", "last=3", nil, testkit.SeqRange(8, 10)},
			{"last 0", "last=0", nil, nil},
			{"last more than held", "last=100", nil, testkit.SeqRange(1, 10)},
			{"since 4", "since=4&epoch=" + a.Epoch, nil, testkit.SeqRange(5, 10)},
			{"since 0", "since=0&epoch=" + a.Epoch, nil, testkit.SeqRange(1, 10)},
			{"since newest", "since=10&epoch=" + a.Epoch, nil, nil},
			{"since ahead", "since=99&epoch=" + a.Epoch, nil, nil},
			{"since without epoch", "since=7", nil, testkit.SeqRange(8, 10)},
			{"other epoch, nothing lost", "since=4&epoch=0123456789abcdef", nil, testkit.SeqRange(1, 10)}, // no gap line: the hello tells
			{"filtered replay", "last=5&path=/p7", nil, []uint64{7}},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				w := r.dial("acme", c.query)
				h := w.hello()
				if h.Tenant != "acme" || h.Epoch != a.Epoch || h.LastSeq != 10 {
					t.Errorf("hello %+v", h)
				}
				if c.gap != nil {
					if g := w.gap(); g != *c.gap {
						t.Errorf("gap %+v, want %+v", g, *c.gap)
					}
				}
				w.t = t
				w.wantSeqs(c.replay...)
				w.c.Close()
			})
		}
		// Live after replay: a new subscriber with last=2 then gets seq 11.
		w := r.dial("acme", "last=2")
		w.hello()
		w.wantSeqs(9, 10)
		r.mustPost("acme", clicks(11, 1))
		w.wantSeqs(11)
	})
}

// TestResumeEvicted: resuming from before the history gives one exact gap.
func TestResumeEvicted(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		r := e.start(t, Config{HistoryEvents: 5})
		a := r.mustPost("acme", clicks(1, 10))
		w := r.dial("acme", "since=2&epoch="+a.Epoch)
		w.hello()
		if g := w.gap(); g != (gapLine{"gap", 3, 5, "evicted"}) {
			t.Errorf("gap %+v, want 3..5 evicted", g)
		}
		w.wantSeqs(6, 7, 8, 9, 10)
		r.mustPost("acme", clicks(11, 1))
		w.wantSeqs(11)
		// An epoch gap names the new numbering's evicted part.
		w = r.dial("acme", "since=3&epoch=old")
		w.hello()
		if g := w.gap(); g != (gapLine{"gap", 1, 6, "epoch"}) {
			t.Errorf("gap %+v, want 1..6 epoch", g)
		}
		w.wantSeqs(7, 8, 9, 10, 11)
	})
}

// TestFilters: type and path filters, applied by the relay.
func TestFilters(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		r := e.start(t, Config{})
		evs := []string{
			`{"type":"click","path":"/checkout"}`,
			`{"type":"pageview","path":"/checkout/pay"}`,
			`{"type":"custom","path":"/"}`,
			`{"type":"click","path":"/check"}`,
			`{"type":"pageview","path":"/\u0063heckout"}`,
		}
		cases := []struct {
			query string
			want  []uint64
		}{
			{"", []uint64{1, 2, 3, 4, 5, 6}},
			{"type=click", []uint64{1, 4, 6}},
			{"type=click,custom", []uint64{1, 3, 4, 6}},
			{"type=pageview&type=custom", []uint64{2, 3, 5}},
			{"path=/checkout", []uint64{1, 2, 5}},
			{"type=pageview&path=/checkout", []uint64{2, 5}},
			{"path=/check&path=/", []uint64{1, 2, 3, 4, 5, 6}},
			{"path=/nothing", nil},
		}
		var subs []*wsClient
		for _, c := range cases {
			w := r.dial("acme", c.query)
			w.hello()
			subs = append(subs, w)
		}
		r.mustPost("acme", []byte(strings.Join(evs, "\n")))
		r.mustPost("acme", clicks(6, 1))
		// A last event every subscriber sees shows nothing else came before it.
		r.mustPost("acme", []byte(`{"type":"click","path":"/checkout/end"}`))
		for i, c := range cases {
			w := subs[i]
			w.wantSeqs(c.want...)
			if c.query != "path=/nothing" && c.query != "type=pageview&type=custom" && c.query != "type=pageview&path=/checkout" {
				w.wantSeqs(7)
			}
		}
	})
}

// TestPacking: a batch reaches a subscriber in few messages (all 100 lines
// of one append in one message), one event in one message.
func TestPacking(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		r := e.start(t, Config{})
		w := r.dial("acme", "")
		w.hello()
		r.mustPost("acme", clicks(1, 1))
		w.wantSeqs(1)
		if w.msgs != 2 {
			t.Errorf("%d messages for hello and one event, want 2", w.msgs)
		}
		r.mustPost("acme", clicks(2, 100))
		w.wantSeqs(testkit.SeqRange(2, 101)...)
		if w.msgs != 3 {
			t.Errorf("100 events of one batch came in %d messages, want 1", w.msgs-2)
		}
		// 1,000 events of one batch: capped at 256 lines per message.
		r.mustPost("acme", clicks(102, 1000))
		w.wantSeqs(testkit.SeqRange(102, 1101)...)
		if n := w.msgs - 3; n != 4 {
			t.Errorf("1,000 events came in %d messages, want 4 (256 lines each at most)", n)
		}
	})
}

// TestNDJSONStream: a GET without upgrade is a chunked NDJSON stream of
// deliveries only.
func TestNDJSONStream(t *testing.T) {
	r := startRelay(t, Config{})
	r.mustPost("acme", clicks(1, 5))
	res, err := http.Get(r.url + "/v1/tenants/acme/stream?last=2&type=click")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "application/x-ndjson" {
		t.Fatalf("%d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	r.mustPost("acme", []byte(`{"type":"pageview","path":"/x"}`+"\n"+clicksS(7, 1)))
	lines := readNDJSON(t, res.Body, 3)
	for i, want := range []uint64{4, 5, 7} {
		if s, ok := event.LineSeq([]byte(lines[i])); !ok || s != want {
			t.Errorf("line %d = %s, want seq %d", i, lines[i], want)
		}
	}
}

// TestLimits: subscribers over the per-tenant or total limit get 503 before
// any upgrade, with Retry-After: 5, counted as reason "limit" (not
// "unavailable", an outage).
func TestLimits(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		r := e.start(t, Config{MaxTenantSubscribers: 2, MaxSubscribers: 3})
		a1 := r.dial("acme", "")
		r.dial("acme", "")
		refuse := func(tenant string) {
			t.Helper()
			_, res, err := websocket.DefaultDialer.Dial(r.ws+"/v1/tenants/"+tenant+"/stream", nil)
			if !errors.Is(err, websocket.ErrBadHandshake) || res.StatusCode != 503 || res.Header.Get("Retry-After") != "5" {
				t.Fatalf("over the limit on %s: %v %v", tenant, err, res)
			}
			res2, err := http.Get(r.url + "/v1/tenants/" + tenant + "/stream")
			if err != nil || res2.StatusCode != 503 || res2.Header.Get("Retry-After") != "5" {
				t.Fatalf("chunked over the limit on %s: %v %v", tenant, err, res2)
			}
			res2.Body.Close()
		}
		refuse("acme")
		r.dial("globex", "")
		refuse("globex") // the total limit
		// The counters move after the answer is sent: poll.
		testkit.WaitFor(t, "4 refusals with reason limit", func() bool {
			_, fams := getMetrics(t, r.url+"/metrics")
			return metricValue(fams, "tl_relay_subscribe_refused_total", "reason", "limit") == 4 &&
				metricValue(fams, "tl_relay_subscribe_refused_total", "reason", "unavailable") == 0
		})
		a1.c.Close()
		testkit.WaitFor(t, "a freed slot", func() bool { return r.s.Stats().Subscribers == 2 })
		r.dial("initech", "").hello()
	})
}

// TestIsolation: concurrent publishers on many tenants; every subscriber
// sees only its tenant's events, seqs 1..N in order without holes.
func TestIsolation(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		const tenants, subsPer, publishers, batches, batch = 6, 2, 3, 20, 25
		const total = publishers * batches * batch
		r := e.start(t, Config{})
		type sub struct {
			tenant string
			w      *wsClient
		}
		var subs []sub
		for i := 0; i < tenants; i++ {
			name := fmt.Sprintf("t%d", i)
			for j := 0; j < subsPer; j++ {
				w := r.dial(name, "")
				w.hello()
				subs = append(subs, sub{name, w})
			}
		}
		var wg sync.WaitGroup
		for i := 0; i < tenants; i++ {
			for p := 0; p < publishers; p++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					name := fmt.Sprintf("t%d", i)
					for b := 0; b < batches; b++ {
						var buf bytes.Buffer
						for k := 0; k < batch; k++ {
							fmt.Fprintf(&buf, `{"tenant_id":"%s","type":"click","path":"/%s/%d/%d"}`+"\n", name, name, p, b*batch+k)
						}
						if code, body, _ := r.post(name, "application/x-ndjson", buf.Bytes()); code != 202 {
							t.Errorf("%s: %d %s", name, code, body)
							return
						}
					}
				}()
			}
		}
		wg.Wait()
		var v event.Validator
		for _, s := range subs {
			last := map[string]int{} // per publisher: its events stay in order
			for want := uint64(1); want <= total; want++ {
				l := s.w.line()
				if got := s.w.seq(l); got != want {
					t.Fatalf("%s: seq %d, want %d", s.tenant, got, want)
				}
				if err := v.Validate([]byte(l), s.tenant); err != nil {
					t.Fatalf("%s got %s: %v", s.tenant, l, err)
				}
				var n int
				path := l[strings.Index(l, `"path":"`)+8:]
				parts := strings.SplitN(path, "/", 5) // "", tenant, publisher, n...
				pub := parts[2]
				fmt.Sscanf(parts[3], "%d", &n)
				if parts[1] != s.tenant {
					t.Fatalf("%s got another tenant's event %s", s.tenant, l)
				}
				if prev, ok := last[pub]; ok && n != prev+1 {
					t.Fatalf("%s publisher %s: event %d after %d", s.tenant, pub, n, prev)
				}
				last[pub] = n
			}
		}
	})
}

// TestSlowSubscriber: a subscriber that stops reading delays neither
// ingestion nor a fast subscriber; when it reads again it gets its lines in
// order, then exactly one gap line naming what it lost, then the rest.
func TestSlowSubscriber(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		const batches, batch = 100, 20
		const total = batches * batch
		r := e.start(t, Config{HistoryEvents: 200})
		fast := r.dial("acme", "")
		fast.hello()
		// The slow one has a tiny receive buffer, so the relay's writes to it
		// block soon and its cursor falls behind.
		sc, _, err := smallBufDialer().Dial(r.ws+"/v1/tenants/acme/stream", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer sc.Close()
		slow := &wsClient{t: t, c: sc}
		blob := strings.Repeat("x", 8000) // ~8 KB events: 16 MB in all
		for b := 0; b < batches; b++ {
			var buf bytes.Buffer
			for k := 0; k < batch; k++ {
				fmt.Fprintf(&buf, `{"type":"custom","path":"/e%d","metadata":{"blob":"%s"}}`+"\n", b*batch+k+1, blob)
			}
			a := r.mustPost("acme", buf.Bytes())
			// Pace on the fast subscriber: it never lags a whole history.
			fast.wantSeqs(testkit.SeqRange(a.FirstSeq, a.LastSeq)...)
		}
		slow.hello()
		var next uint64 = 1
		gaps := 0
		for next <= total {
			l := slow.line()
			if strings.HasPrefix(l, `{"control":"gap"`) {
				var g gapLine
				json.Unmarshal([]byte(l), &g)
				if g.From != next || g.To < g.From || g.Reason != "evicted" {
					t.Fatalf("gap %+v at cursor %d", g, next)
				}
				gaps++
				next = g.To + 1
				continue
			}
			if got := slow.seq(l); got != next {
				t.Fatalf("slow subscriber got seq %d, want %d", got, next)
			}
			next++
		}
		if gaps != 1 {
			t.Errorf("%d gap lines, want exactly 1", gaps)
		}
	})
}

// TestHeartbeat: a client that never answers pings is closed and its
// resources freed, on the relay's own ticker (TestHeartbeatAnswered and
// TestBusySubscriberPinged check the rule on a clock of their own).
func TestHeartbeat(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		r := e.start(t, Config{PingInterval: 50 * time.Millisecond})
		mute := r.dial("acme", "")
		mute.c.SetPingHandler(func(string) error { return nil }) // never pong
		var err error
		for err == nil {
			_, err = mute.next(20 * time.Second)
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("the relay did not close a silent client: %v", err)
		}
		testkit.WaitFor(t, "the subscriber freed", func() bool { return r.s.Stats().Subscribers == 0 })
	})
}

// TestIdleTenants: tenants with no subscriber and no request are dropped;
// a tenant with a subscriber stays.
func TestIdleTenants(t *testing.T) {
	r := startRelay(t, Config{TenantIdle: 30 * time.Millisecond})
	w := r.dial("kept", "")
	w.hello()
	for i := 0; i < 50; i++ {
		r.mustPost(fmt.Sprintf("t%d", i), clicks(1, 1))
	}
	r.mustPost("kept", clicks(1, 1))
	testkit.WaitFor(t, "idle tenants dropped", func() bool { return r.s.Stats().Tenants == 1 })
	w.wantSeqs(1)
	// A dropped tenant starts a new history (a new epoch).
	a := r.mustPost("t0", clicks(1, 1))
	if a.FirstSeq != 1 {
		t.Errorf("dropped tenant continued at %d", a.FirstSeq)
	}
}

// smallBufDialer dials with a tiny receive buffer, so that the relay's
// writes to a client that does not read block soon.
func smallBufDialer() *websocket.Dialer {
	d := *websocket.DefaultDialer
	d.NetDial = func(network, addr string) (net.Conn, error) {
		nd := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
			return c.Control(func(fd uintptr) {
				syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
			})
		}}
		return nd.Dial(network, addr)
	}
	return &d
}
