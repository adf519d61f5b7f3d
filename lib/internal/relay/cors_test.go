package relay

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/tl-sh/tl/lib/internal/auth"
)

// The tokens of the browser tests.
const (
	shopKey  = "ingest-key-shop-0123456789abcdef0123" // ingest, acme, from https://shop.example
	backend  = "backend-token-0123456789abcdef01234"  // publish,subscribe on every tenant
	shopPage = "https://shop.example"
)

// browserRelay starts a relay whose flags are as tl-relay's: tokens (an
// ingest key for acme from shopPage, and a backend token), the
// --allow-origin values and the ingest limit.
func browserRelay(t *testing.T, allow []string, rate float64, burst int) *testRelay {
	t.Helper()
	path := filepath.Join(t.TempDir(), "tokens")
	key, err := auth.IngestLine(shopKey, "acme", "shop", []string{shopPage})
	if err != nil {
		t.Fatal(err)
	}
	back, err := auth.Line(backend, auth.Publish|auth.Subscribe, "*", "backend")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(key+"\n"+back+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var cfg Config
	installAccess(t, &cfg, path, allow, rate, burst)
	return startRelay(t, cfg)
}

// answer is a response, read whole.
type answer struct {
	status int
	body   string
	h      http.Header
}

// send makes a request through client (nil: the default) with the headers
// given as pairs.
func send(t *testing.T, client *http.Client, method, url, body string, hdr ...string) answer {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	if client == nil {
		client = http.DefaultClient
	}
	res, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return answer{res.StatusCode, string(b), res.Header}
}

// noCORS fails when a refusal carries a CORS header: the browser must show
// a page from another origin nothing.
func noCORS(t *testing.T, what string, a answer) {
	t.Helper()
	for k := range a.h {
		if strings.HasPrefix(k, "Access-Control-") {
			t.Errorf("%s: %d carries %s: %q", what, a.status, k, a.h.Get(k))
		}
	}
}

// corsFor fails unless a's CORS headers let a page of origin read it.
func corsFor(t *testing.T, what string, a answer, origin string) {
	t.Helper()
	if got := a.h.Get("Access-Control-Allow-Origin"); got != origin {
		t.Errorf("%s: Access-Control-Allow-Origin = %q, want %q", what, got, origin)
	}
	if !contains(a.h.Values("Vary"), "Origin") {
		t.Errorf("%s: Vary = %q, want Origin", what, a.h.Values("Vary"))
	}
	if a.h.Get("Access-Control-Allow-Credentials") != "" {
		t.Errorf("%s: Access-Control-Allow-Credentials set", what)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestCORSPreflight(t *testing.T) {
	r := browserRelay(t, []string{"https://dash.example", "acme=https://blog.example"}, 10, 100)
	events := func(tenant string) string { return r.url + "/v1/tenants/" + tenant + "/events" }
	preflight := []string{"Access-Control-Request-Method", "POST", "Access-Control-Request-Headers", "content-type,authorization,idempotency-key"}
	for _, tt := range []struct {
		name, tenant, origin string
	}{
		{"relay-wide origin", "acme", "https://dash.example"},
		{"relay-wide origin, any tenant", "beta", "https://dash.example"},
		{"the tenant's origin", "acme", "https://blog.example"},
		{"an ingest key's origin", "acme", shopPage},
	} {
		a := send(t, nil, http.MethodOptions, events(tt.tenant), "", append([]string{"Origin", tt.origin}, preflight...)...)
		if a.status != http.StatusNoContent || a.body != "" {
			t.Errorf("%s: preflight = %d %q, want 204", tt.name, a.status, a.body)
		}
		corsFor(t, tt.name, a, tt.origin)
		want := map[string]string{
			"Access-Control-Allow-Methods": "POST",
			"Access-Control-Allow-Headers": "Content-Type, Authorization, Idempotency-Key",
			"Access-Control-Max-Age":       "7200",
		}
		for k, v := range want {
			if got := a.h.Get(k); got != v {
				t.Errorf("%s: %s = %q, want %q", tt.name, k, got, v)
			}
		}
		if a.h.Get("Access-Control-Allow-Private-Network") != "" {
			t.Errorf("%s: Allow-Private-Network without being asked", tt.name)
		}
	}
	for _, tt := range []struct {
		name, tenant, origin string
	}{
		{"another origin", "acme", "https://evil.example"},
		{"the tenant's origin, another tenant", "beta", "https://blog.example"},
		{"an ingest key's origin, another tenant", "beta", shopPage},
		{"same host as the relay", "acme", r.url},
		{"null", "acme", "null"},
		{"a bad tenant", "no/such", "https://dash.example"},
	} {
		a := send(t, nil, http.MethodOptions, events(tt.tenant), "", append([]string{"Origin", tt.origin}, preflight...)...)
		if a.status != http.StatusForbidden && a.status != http.StatusNotFound {
			t.Errorf("%s: preflight = %d %q, want 403", tt.name, a.status, a.body)
		}
		noCORS(t, tt.name, a)
	}
	// Chromium's Private Network Access asks before a public page
	// reaches a loopback relay.
	a := send(t, nil, http.MethodOptions, events("acme"), "", append([]string{"Origin", "https://dash.example", "Access-Control-Request-Private-Network", "true"}, preflight...)...)
	if a.status != http.StatusNoContent || a.h.Get("Access-Control-Allow-Private-Network") != "true" {
		t.Errorf("private network preflight = %d, Allow-Private-Network %q", a.status, a.h.Get("Access-Control-Allow-Private-Network"))
	}
	// OPTIONS without Origin is no preflight: it says what the endpoint takes.
	a = send(t, nil, http.MethodOptions, events("acme"), "")
	if a.status != http.StatusNoContent || a.h.Get("Allow") != "OPTIONS, POST" {
		t.Errorf("OPTIONS without Origin = %d, Allow %q", a.status, a.h.Get("Allow"))
	}
	noCORS(t, "OPTIONS without Origin", a)
	// Streams are not CORS: OPTIONS there stays 405.
	a = send(t, nil, http.MethodOptions, r.url+"/v1/tenants/acme/stream", "", append([]string{"Origin", "https://dash.example"}, preflight...)...)
	if a.status != http.StatusMethodNotAllowed {
		t.Errorf("OPTIONS on a stream = %d, want 405", a.status)
	}
	noCORS(t, "OPTIONS on a stream", a)
}

func TestCORSPublish(t *testing.T) {
	r := browserRelay(t, []string{"https://dash.example", "acme=https://blog.example"}, 10, 100)
	events := r.url + "/v1/tenants/acme/events"
	bearer := "Bearer " + backend
	const ev = `{"type":"pageview","path":"/a"}`

	// sendBeacon: text/plain, no preflight, read as NDJSON.
	a := send(t, nil, http.MethodPost, events, ev+"\n"+`{"type":"click","path":"/b"}`, "Origin", "https://blog.example", "Authorization", bearer, "Content-Type", "text/plain;charset=UTF-8")
	if a.status != http.StatusAccepted || !strings.Contains(a.body, `"accepted":2`) {
		t.Fatalf("text/plain POST = %d %q, want 202 of 2 events", a.status, a.body)
	}
	corsFor(t, "text/plain 202", a, "https://blog.example")
	if got := a.h.Get("Access-Control-Expose-Headers"); got != "Retry-After, TL-Max-Batch" {
		t.Errorf("Expose-Headers = %q", got)
	}
	// fetch with application/json, after its preflight.
	a = send(t, nil, http.MethodPost, events, ev, "Origin", "https://dash.example", "Authorization", bearer, "Content-Type", "application/json", "Idempotency-Key", "k1")
	if a.status != http.StatusAccepted || !strings.Contains(a.body, `"first_seq":3`) {
		t.Fatalf("application/json POST = %d %q", a.status, a.body)
	}
	corsFor(t, "application/json 202", a, "https://dash.example")
	// Errors carry the CORS headers too, so the page can read why.
	for _, tt := range []struct {
		name   string
		hdr    []string
		body   string
		status int
	}{
		{"invalid event", []string{"Authorization", bearer, "Content-Type", "text/plain"}, `{"type":"nope","path":"/"}`, 400},
		{"no token", []string{"Content-Type", "text/plain"}, ev, 401},
		{"other content type", []string{"Authorization", bearer, "Content-Type", "text/html"}, ev, 415},
	} {
		a := send(t, nil, http.MethodPost, events, tt.body, append([]string{"Origin", "https://blog.example"}, tt.hdr...)...)
		if a.status != tt.status {
			t.Errorf("%s: %d %q, want %d", tt.name, a.status, a.body, tt.status)
		}
		corsFor(t, tt.name, a, "https://blog.example")
	}
	// Another origin: 403, and nothing a browser would show the page.
	for _, origin := range []string{"https://evil.example", "null", shopPage /* the ingest key's, with another token */} {
		for _, ct := range []string{"text/plain", "application/json"} {
			a := send(t, nil, http.MethodPost, events, ev, "Origin", origin, "Authorization", bearer, "Content-Type", ct)
			if a.status != http.StatusForbidden {
				t.Errorf("POST from %s (%s) = %d %q, want 403", origin, ct, a.status, a.body)
			}
			if origin != shopPage {
				noCORS(t, "POST from "+origin, a)
			}
		}
	}
	// Without Origin (not a web page) text/plain stays a 415.
	a = send(t, nil, http.MethodPost, events, ev, "Authorization", bearer, "Content-Type", "text/plain")
	if a.status != http.StatusUnsupportedMediaType {
		t.Errorf("text/plain without Origin = %d, want 415", a.status)
	}
	noCORS(t, "POST without Origin", a)
	// Exactly the accepted events are in the history.
	a = send(t, nil, http.MethodGet, r.url+"/v1/tenants/acme/stream?since=0&until=now", "", "Authorization", bearer)
	var paths []string
	for _, l := range strings.Split(strings.TrimSpace(a.body), "\n") {
		if l != "" {
			paths = append(paths, l[strings.Index(l, `"path":`):])
		}
	}
	if len(paths) != 3 || !strings.HasPrefix(paths[0], `"path":"/a"`) || !strings.HasPrefix(paths[1], `"path":"/b"`) || !strings.HasPrefix(paths[2], `"path":"/a"`) {
		t.Errorf("history = %q, want /a /b /a", paths)
	}
}

// TestStreamsKeepOriginRule: a TENANT=ORIGIN value and an ingest key's
// origins let pages publish, never read.
func TestStreamsKeepOriginRule(t *testing.T) {
	r := browserRelay(t, []string{"https://dash.example", "acme=https://blog.example"}, 10, 100)
	for _, tt := range []struct {
		origin string
		want   int
	}{
		{"https://dash.example", http.StatusSwitchingProtocols},
		{"https://blog.example", http.StatusForbidden},
		{shopPage, http.StatusForbidden},
	} {
		c, res, err := websocket.DefaultDialer.Dial(r.ws+"/v1/tenants/acme/stream", http.Header{"Origin": {tt.origin}, "Authorization": {"Bearer " + backend}})
		if c != nil {
			c.Close()
		}
		if res == nil || res.StatusCode != tt.want {
			t.Errorf("stream from %s: %v (%v), want %d", tt.origin, err, res, tt.want)
		}
	}
}

func TestIngestKey(t *testing.T) {
	r := browserRelay(t, []string{"https://dash.example"}, 1000, 1000)
	events := func(tenant, query string) string { return r.url + "/v1/tenants/" + tenant + "/events" + query }
	const ev = `{"type":"pageview","path":"/"}`
	key := "?key=" + shopKey
	bearer := "Bearer " + shopKey
	for _, tt := range []struct {
		name, method, url, body string
		hdr                     []string
		status                  int
		cors                    string // the origin the answer's CORS headers name ("-": none)
	}{
		{"beacon with key=", "POST", events("acme", key), ev, []string{"Origin", shopPage, "Content-Type", "text/plain;charset=UTF-8"}, 202, shopPage},
		{"fetch with bearer", "POST", events("acme", ""), ev, []string{"Origin", shopPage, "Authorization", bearer, "Content-Type", "application/json"}, 202, shopPage},
		{"NDJSON with key=", "POST", events("acme", key), ev + "\n" + ev, []string{"Origin", shopPage, "Content-Type", "application/x-ndjson"}, 202, shopPage},
		{"no Origin", "POST", events("acme", key), ev, []string{"Content-Type", "application/json"}, 403, "-"},
		{"no Origin, bearer", "POST", events("acme", ""), ev, []string{"Authorization", bearer, "Content-Type", "application/json"}, 403, "-"},
		{"another origin", "POST", events("acme", key), ev, []string{"Origin", "https://evil.example", "Content-Type", "text/plain"}, 403, "-"},
		{"a relay-wide origin not the key's", "POST", events("acme", key), ev, []string{"Origin", "https://dash.example", "Content-Type", "text/plain"}, 403, "https://dash.example"}, // an allowed page reads why
		{"another tenant", "POST", events("beta", key), ev, []string{"Origin", shopPage, "Content-Type", "text/plain"}, 403, "-"},
		{"another tenant, relay-wide origin", "POST", events("beta", key), ev, []string{"Origin", "https://dash.example", "Content-Type", "text/plain"}, 403, "https://dash.example"},
		{"stream, bearer", "GET", r.url + "/v1/tenants/acme/stream?last=1", "", []string{"Authorization", bearer}, 403, "-"},
		{"stream, key=", "GET", r.url + "/v1/tenants/acme/stream" + key, "", nil, 403, "-"},
		{"stream from its page", "GET", r.url + "/v1/tenants/acme/stream", "", []string{"Origin", shopPage, "Authorization", bearer}, 403, "-"},
		{"list", "GET", r.url + "/v1/tenants", "", []string{"Authorization", bearer}, 403, "-"},
		{"metrics", "GET", r.url + "/metrics", "", []string{"Authorization", bearer}, 403, "-"},
		{"a backend token in key=", "POST", events("acme", "?key="+backend), ev, []string{"Content-Type", "application/json"}, 403, "-"},
		{"an unknown key=", "POST", events("acme", "?key=unknown-0123456789abcdef0123456"), ev, []string{"Origin", shopPage, "Content-Type", "text/plain"}, 401, shopPage},
		{"an empty key=", "POST", events("acme", "?key="), ev, []string{"Origin", shopPage, "Content-Type", "text/plain"}, 401, shopPage},
		{"key= and bearer", "POST", events("acme", key), ev, []string{"Origin", shopPage, "Authorization", bearer, "Content-Type", "text/plain"}, 400, shopPage},
		{"two key=", "POST", events("acme", key+"&key="+shopKey), ev, []string{"Origin", shopPage, "Content-Type", "text/plain"}, 400, shopPage},
		{"body over 64 KiB", "POST", events("acme", key), ev + strings.Repeat("\n", 64<<10), []string{"Origin", shopPage, "Content-Type", "text/plain"}, 413, shopPage},
	} {
		a := send(t, nil, tt.method, tt.url, tt.body, tt.hdr...)
		if a.status != tt.status {
			t.Errorf("%s: %d %q, want %d", tt.name, a.status, a.body, tt.status)
		}
		if strings.Contains(a.body, shopKey) {
			t.Errorf("%s: the answer shows the key", tt.name)
		}
		if tt.cors != "-" {
			corsFor(t, tt.name, a, tt.cors)
		} else {
			noCORS(t, tt.name, a)
		}
	}
	// A chunked body is cut at 64 KiB too.
	req, _ := http.NewRequest(http.MethodPost, events("acme", key), io.MultiReader(strings.NewReader(ev), bytes.NewReader(bytes.Repeat([]byte("\n"), 70<<10))))
	req.Header.Set("Origin", shopPage)
	req.Header.Set("Content-Type", "text/plain")
	req.ContentLength = -1
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("chunked body over 64 KiB: %d, want 413", res.StatusCode)
	}
	// The backend token reads exactly the 4 events the key published.
	a := send(t, nil, http.MethodGet, r.url+"/v1/tenants/acme/stream?since=0&until=now", "", "Authorization", "Bearer "+backend)
	if n := strings.Count(a.body, `"path":"/"`); a.status != 200 || n != 4 {
		t.Errorf("history: %d, %d events, want 4: %q", a.status, n, a.body)
	}
}

// fromAddr returns a client whose connections come from the loopback
// address ip (127.0.0.1 and 127.0.0.2 are both this machine's).
func fromAddr(t *testing.T, ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	tr := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		return d.DialContext(ctx, network, addr)
	}}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

func TestIngestRatePerAddress(t *testing.T) {
	// A rate so slow that no token comes back during the test: the
	// outcome depends on counts only, never on timing.
	r := browserRelay(t, nil, 0.001, 3)
	events := r.url + "/v1/tenants/acme/events?key=" + shopKey
	one, two := fromAddr(t, "127.0.0.1"), fromAddr(t, "127.0.0.2")
	post := func(c *http.Client, body string) answer {
		return send(t, c, http.MethodPost, events, body, "Origin", shopPage, "Content-Type", "text/plain")
	}
	const ev = `{"type":"click","path":"/x"}`
	// A batch over the burst can never pass: 429 saying how large a batch may be.
	if a := post(one, strings.Repeat(ev+"\n", 4)); a.status != 429 || a.h.Get("TL-Max-Batch") != "3" || a.h.Get("Retry-After") == "" {
		t.Errorf("batch of 4 = %d %q (TL-Max-Batch %q), want 429 with TL-Max-Batch 3", a.status, a.body, a.h.Get("TL-Max-Batch"))
	} else {
		corsFor(t, "429", a, shopPage)
	}
	if a := post(one, ev+"\n"+ev); a.status != 202 {
		t.Fatalf("batch of 2 = %d %q", a.status, a.body)
	}
	if a := post(one, ev); a.status != 202 {
		t.Fatalf("third event = %d %q", a.status, a.body)
	}
	a := post(one, ev)
	if a.status != 429 || a.h.Get("Retry-After") == "" {
		t.Fatalf("fourth event = %d %q, want 429 with Retry-After", a.status, a.body)
	}
	corsFor(t, "429", a, shopPage)
	// Another address has its own bucket.
	for i := 0; i < 3; i++ {
		if a := post(two, ev); a.status != 202 {
			t.Fatalf("127.0.0.2, event %d = %d %q", i+1, a.status, a.body)
		}
	}
	if a := post(two, ev); a.status != 429 {
		t.Fatalf("127.0.0.2, fourth event = %d, want 429", a.status)
	}
	// Other tokens are not limited by address.
	for i := 0; i < 5; i++ {
		a := send(t, one, http.MethodPost, r.url+"/v1/tenants/acme/events", ev, "Authorization", "Bearer "+backend, "Content-Type", "application/json")
		if a.status != 202 {
			t.Fatalf("backend token, event %d = %d %q", i+1, a.status, a.body)
		}
	}
}

func TestClientKey(t *testing.T) {
	for _, tt := range []struct{ remote, want string }{
		{"127.0.0.1:5000", "127.0.0.1"},
		{"[::ffff:10.1.2.3]:80", "10.1.2.3"},
		{"[2001:db8:1:2:3:4:5:6]:443", "2001:db8:1:2::/64"},
		{"[2001:db8:1:2:ffff::1]:443", "2001:db8:1:2::/64"},
		{"junk", "junk"},
	} {
		r := &http.Request{RemoteAddr: tt.remote}
		if got := clientKey(r); got != tt.want {
			t.Errorf("clientKey(%q) = %q, want %q", tt.remote, got, tt.want)
		}
	}
}

// BenchmarkPublishWeb measures one event through the handler with tokens:
// a backend's POST (no Origin: the cost the CORS code adds to every POST),
// a page's text/plain POST with a bearer token (CORS headers), and a
// beacon with an ingest key in ?key= (two token lookups and the address's
// bucket).
func BenchmarkPublishWeb(b *testing.B) {
	path := filepath.Join(b.TempDir(), "tokens")
	key, _ := auth.IngestLine(shopKey, "bench", "shop", []string{shopPage})
	back, _ := auth.Line(backend, auth.Publish, "*", "backend")
	if err := os.WriteFile(path, []byte(key+"\n"+back+"\n"), 0o600); err != nil {
		b.Fatal(err)
	}
	var cfg Config
	installAccess(b, &cfg, path, []string{"bench=" + shopPage}, 1e12, 1<<30)
	s := New(cfg)
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s.Shutdown(ctx)
	}()
	body := []byte(`{"type":"click","path":"/checkout","metadata":{"button":"buy"}}`)
	for _, bc := range []struct {
		name, query string
		hdr         []string
	}{
		{"backend", "", []string{"Authorization", "Bearer " + backend, "Content-Type", "application/json"}},
		{"page", "", []string{"Origin", shopPage, "Authorization", "Bearer " + backend, "Content-Type", "text/plain;charset=UTF-8"}},
		{"beacon", "?key=" + shopKey, []string{"Origin", shopPage, "Content-Type", "text/plain;charset=UTF-8"}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				req := httptest.NewRequest(http.MethodPost, "http://127.0.0.1/v1/tenants/bench/events"+bc.query, bytes.NewReader(body))
				for i := 0; i+1 < len(bc.hdr); i += 2 {
					req.Header.Set(bc.hdr[i], bc.hdr[i+1])
				}
				w := httptest.NewRecorder()
				s.ServeHTTP(w, req)
				if w.Code != http.StatusAccepted {
					b.Fatalf("status %d: %s", w.Code, w.Body)
				}
			}
		})
	}
}
