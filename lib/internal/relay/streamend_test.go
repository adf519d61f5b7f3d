package relay

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/gorilla/websocket"

	"github.com/tl-sh/tl/lib/event"
	"github.com/tl-sh/tl/lib/internal/disklog"
	"github.com/tl-sh/tl/lib/internal/testkit"
	"github.com/tl-sh/tl/lib/internal/tlog"
)

// pageviews returns n pageview events as NDJSON.
func pageviews(n int) []byte {
	var b bytes.Buffer
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, `{"type":"pageview","path":"/v%d","timestamp":1}`+"\n", i)
	}
	return b.Bytes()
}

// closed reads on until the relay closes the WebSocket and returns the
// close code, failing on a delivery: the stream must have ended.
func (w *wsClient) closed() int {
	w.t.Helper()
	if len(w.pending) > 0 {
		w.t.Fatalf("lines past the stream's end: %q", w.pending)
	}
	for {
		l, err := w.next(20e9)
		var ce *websocket.CloseError
		if errors.As(err, &ce) {
			return ce.Code
		}
		if err != nil {
			w.t.Fatalf("reading to the close: %v", err)
		}
		w.t.Fatalf("line past the stream's end: %s", l)
	}
}

// chunkedSeqs GETs a chunked stream and reads it to its end: the response
// must end by itself.
func (r *testRelay) chunkedSeqs(tenant, query string) []uint64 {
	r.t.Helper()
	res, err := http.Get(r.url + "/v1/tenants/" + tenant + "/stream?" + query)
	if err != nil {
		r.t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil || res.StatusCode != 200 {
		r.t.Fatalf("GET ?%s: %d %v %s", query, res.StatusCode, err, body)
	}
	var seqs []uint64
	for _, l := range strings.Split(string(body), "\n") {
		if l == "" {
			continue
		}
		s, ok := event.LineSeq([]byte(l))
		if !ok {
			r.t.Fatalf("not a delivery: %q", l)
		}
		seqs = append(seqs, s)
	}
	return seqs
}

// TestStreamUnknownParameter: a parameter the stream does not take is a
// 400 naming it, on both kinds of stream, not a stream of something else.
func TestStreamUnknownParameter(t *testing.T) {
	r := startRelay(t, Config{})
	for _, q := range []string{"types=click", "lst=5", "last=5&limit=2&foo=", "Type=click"} {
		name := strings.SplitN(strings.SplitN(q[strings.LastIndex(q, "&")+1:], "=", 2)[0], "&", 2)[0]
		_, res, err := websocket.DefaultDialer.Dial(r.ws+"/v1/tenants/acme/stream?"+q, nil)
		if !errors.Is(err, websocket.ErrBadHandshake) || res.StatusCode != 400 {
			t.Fatalf("WebSocket ?%s: %v %v", q, err, res)
		}
		b, _ := io.ReadAll(res.Body)
		if !strings.Contains(string(b), fmt.Sprintf(`unknown parameter \"%s\"`, name)) {
			t.Errorf("WebSocket ?%s: body %s does not name %q", q, b, name)
		}
		res, err = http.Get(r.url + "/v1/tenants/acme/stream?" + q)
		if err != nil {
			t.Fatal(err)
		}
		b, _ = io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 400 || !strings.Contains(string(b), name) {
			t.Errorf("chunked ?%s: %d %s", q, res.StatusCode, b)
		}
	}
	for _, q := range []string{"limit=-1", "limit=x", "until=soon", "until=-3"} {
		res, err := http.Get(r.url + "/v1/tenants/acme/stream?" + q)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 400 {
			t.Errorf("?%s: %d, want 400", q, res.StatusCode)
		}
	}
}

// TestStreamLimit: limit=N closes the stream (1000; a chunked one ends)
// after N deliveries, counting only what passes the filter, whether they
// come from the history or live.
func TestStreamLimit(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		r := e.start(t, Config{})
		r.mustPost("acme", clicks(1, 10))        // 1..10
		r.mustPost("acme", pageviews(5))         // 11..15
		r.mustPost("acme", clicks(11, 3))        // 16..18
		r.mustPost("acme", []byte(pageviews(1))) // 19
		cases := []struct {
			query string
			want  []uint64
		}{
			{"last=5&limit=5", testkit.SeqRange(15, 19)},
			{"last=5&limit=2", []uint64{15, 16}},
			{"last=100&limit=3&type=click", []uint64{1, 2, 3}},
			{"since=9&limit=4&type=click", []uint64{10, 16, 17, 18}},
			{"last=3&limit=0", nil},
		}
		for _, c := range cases {
			t.Run(c.query, func(t *testing.T) {
				w := r.dial("acme", c.query)
				w.t = t
				w.hello()
				w.wantSeqs(c.want...)
				if code := w.closed(); code != websocket.CloseNormalClosure {
					t.Errorf("close %d, want 1000", code)
				}
				if got := r.chunkedSeqs("acme", c.query); fmt.Sprint(got) != fmt.Sprint(c.want) {
					t.Errorf("chunked: %v, want %v", got, c.want)
				}
			})
		}

		// Live: the stream waits for the N-th delivery, then ends.
		w := r.dial("acme", "limit=2&type=click")
		w.hello()
		r.mustPost("acme", pageviews(2))   // 20, 21
		r.mustPost("acme", clicks(100, 3)) // 22..24
		w.wantSeqs(22, 23)
		if code := w.closed(); code != websocket.CloseNormalClosure {
			t.Errorf("live: close %d, want 1000", code)
		}
		r.waitSubscribers(0)
	})
}

// TestStreamUntil: until=SEQ (or now: the hello's last_seq) sends the
// history up to that seq, filtered, and closes even when the last event
// that passes the filter is older: the cursor passing SEQ ends it.
func TestStreamUntil(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		r := e.start(t, Config{})

		// An empty tenant ends at once, after the hello.
		w := r.dial("empty", "until=now")
		if h := w.hello(); h.LastSeq != 0 {
			t.Errorf("hello %+v", h)
		}
		if code := w.closed(); code != websocket.CloseNormalClosure {
			t.Errorf("empty: close %d, want 1000", code)
		}
		if got := r.chunkedSeqs("empty", "until=now"); len(got) != 0 {
			t.Errorf("empty chunked: %v", got)
		}

		a := r.mustPost("acme", clicks(1, 3)) // 1..3
		r.mustPost("acme", pageviews(4))      // 4..7
		cases := []struct {
			query string
			want  []uint64
		}{
			{"until=now&last=100", testkit.SeqRange(1, 7)},
			{"until=now&last=2&type=click", []uint64{2, 3}},
			{"until=now&type=click", nil},
			{"until=5&since=1&epoch=" + a.Epoch, testkit.SeqRange(2, 5)},
			{"until=5&since=9&epoch=" + a.Epoch, nil},
			{"until=2&last=100&type=pageview", nil},
			// An until of another epoch means now.
			{"until=2&since=0&epoch=0123456789abcdef", testkit.SeqRange(1, 7)},
		}
		for _, c := range cases {
			t.Run(c.query, func(t *testing.T) {
				w := r.dial("acme", c.query)
				w.t = t
				w.hello()
				w.wantSeqs(c.want...)
				if code := w.closed(); code != websocket.CloseNormalClosure {
					t.Errorf("close %d, want 1000", code)
				}
				if got := r.chunkedSeqs("acme", c.query); fmt.Sprint(got) != fmt.Sprint(c.want) {
					t.Errorf("chunked: %v, want %v", got, c.want)
				}
			})
		}

		// until=SEQ ahead of the log: the stream waits for SEQ, then ends,
		// without the events after it.
		w = r.dial("acme", "until=9&type=click")
		w.hello()
		r.mustPost("acme", clicks(10, 5)) // 8..12
		w.wantSeqs(8, 9)
		if code := w.closed(); code != websocket.CloseNormalClosure {
			t.Errorf("ahead: close %d, want 1000", code)
		}
		r.waitSubscribers(0)
	})
}

// TestFilteredLast: with a filter, last=N is the newest N events that pass
// it, however far back in the history they are (here more than one
// scanWindow back), not the filtered part of the newest N.
func TestFilteredLast(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		r := e.start(t, Config{HistoryEvents: 3 * scanWindow})
		r.mustPost("acme", clicks(1, 4))                                      // 1..4
		r.mustPost("acme", pageviews(scanWindow))                             // 5..4100
		r.mustPost("acme", pageviews(scanWindow))                             // 4101..8196
		r.mustPost("acme", []byte(`{"type":"custom","path":"/deploy"}`+"\n")) // 8197
		cases := []struct {
			query string
			want  []uint64
		}{
			{"last=3&type=click", []uint64{2, 3, 4}},
			{"last=10&type=click", testkit.SeqRange(1, 4)},
			{"last=2&type=click,custom", []uint64{4, 8197}},
			{"last=1&path=/p2", []uint64{2}},
			{"last=2&type=custom&path=/deploy", []uint64{8197}},
			{"last=0&type=click", nil},
		}
		for _, c := range cases {
			t.Run(c.query, func(t *testing.T) {
				w := r.dial("acme", c.query)
				w.t = t
				w.hello()
				w.wantSeqs(c.want...)
				w.c.Close()
				if got := r.chunkedSeqs("acme", c.query+"&until=now"); fmt.Sprint(got) != fmt.Sprint(c.want) {
					t.Errorf("chunked: %v, want %v", got, c.want)
				}
			})
		}
	})
}

// TestBoundedBesideShared: a stream with an end at the same cursor as
// streams without one never gets their shared message (the hub builds one
// for all the unfiltered subscribers at a cursor), and they never get its
// cut: each gets exactly what it asked for.
func TestBoundedBesideShared(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		r := e.start(t, Config{})
		free1, bounded, free2 := r.dial("acme", ""), r.dial("acme", "limit=3"), r.dial("acme", "")
		for _, w := range []*wsClient{free1, bounded, free2} {
			w.hello()
		}
		r.waitSubscribers(3)
		r.mustPost("acme", clicks(1, 10))
		bounded.wantSeqs(1, 2, 3)
		if code := bounded.closed(); code != websocket.CloseNormalClosure {
			t.Errorf("bounded: close %d, want 1000", code)
		}
		free1.wantSeqs(testkit.SeqRange(1, 10)...)
		free2.wantSeqs(testkit.SeqRange(1, 10)...)
		r.mustPost("acme", clicks(11, 1))
		free1.wantSeqs(11)
		free2.wantSeqs(11)
	})
}

// TestFilteredLastOnDisk: a filtered last=N and until over a data
// directory's log (its Read, with its own windows and caches, not the
// memory log's).
func TestFilteredLastOnDisk(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		ds, err := disklog.OpenTL(t.TempDir(), disklog.TLOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer ds.Close()
		r := e.start(t, Config{ListTenants: ds.Tenants, OpenLog: func(tenant string) (tlog.Log, error) { return ds.Log(tenant) }})
		r.mustPost("acme", clicks(1, 3))            // 1..3
		r.mustPost("acme", pageviews(2*scanWindow)) // 4..8195
		w := r.dial("acme", "last=2&type=click&until=now")
		w.hello()
		w.wantSeqs(2, 3)
		if code := w.closed(); code != websocket.CloseNormalClosure {
			t.Errorf("close %d, want 1000", code)
		}
		if got := r.chunkedSeqs("acme", "last=2&type=click&until=now"); fmt.Sprint(got) != "[2 3]" {
			t.Errorf("chunked: %v", got)
		}
	})
}
