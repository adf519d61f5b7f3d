package relay

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/tl-sh/tl/lib/internal/auth"
	"github.com/tl-sh/tl/lib/internal/testkit"
)

// getMetrics scrapes url (a /metrics endpoint) in the text format with the
// headers given as pairs, and parses it with the Prometheus text parser.
func getMetrics(t *testing.T, url string, hdr ...string) (int, map[string]*dto.MetricFamily) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "text/plain; version=0.0.4")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		io.Copy(io.Discard, res.Body)
		return res.StatusCode, nil
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(res.Body)
	if err != nil {
		t.Fatalf("parsing %s: %v", url, err)
	}
	return res.StatusCode, fams
}

// metricValue is the value of the series of family name with the labels in
// kv (pairs), or -1 when there is none; a histogram gives its sample count.
func metricValue(fams map[string]*dto.MetricFamily, name string, kv ...string) float64 {
	for _, m := range fams[name].GetMetric() {
		match := true
		for i := 0; i+1 < len(kv); i += 2 {
			found := false
			for _, l := range m.GetLabel() {
				if l.GetName() == kv[i] && l.GetValue() == kv[i+1] {
					found = true
				}
			}
			match = match && found
		}
		if !match {
			continue
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount())
		}
	}
	return -1
}

// want is one expected series value.
type want struct {
	name   string
	labels []string
	value  float64
}

// mismatches lists the expectations fams does not meet.
func mismatches(fams map[string]*dto.MetricFamily, wants []want) []string {
	var bad []string
	for _, w := range wants {
		if got := metricValue(fams, w.name, w.labels...); got != w.value {
			bad = append(bad, fmt.Sprintf("%s%v = %v, want %v", w.name, w.labels, got, w.value))
		}
	}
	return bad
}

// TestMetricsByValue runs a known workload against a relay over loopback,
// scrapes /metrics, parses it with the Prometheus text parser and checks the
// counters by value: accepted, refused by reason, deliveries, gaps.
func TestMetricsByValue(t *testing.T) {
	r := startRelay(t, Config{HistoryEvents: 5})

	// acme: two live subscribers, one filtered to pageviews.
	all := r.dial("acme", "")
	all.hello()
	pv := r.dial("acme", "type=pageview")
	pv.hello()
	testkit.WaitFor(t, "two subscribers", func() bool { return r.s.Stats().Subscribers == 2 })
	r.mustPost("acme", clicks(0, 3))
	if code, b, _ := r.post("acme", "application/json", []byte(`{"type":"pageview","path":"/x"}`)); code != http.StatusAccepted {
		t.Fatalf("POST pageview: %d %s", code, b)
	}
	for range 4 {
		all.seq(all.line())
	}
	pv.seq(pv.line())

	// Refusals, one of each kind a publisher can earn here.
	refusals := []struct {
		tenant, ctype string
		body          []byte
		status        int
	}{
		{"acme", "application/x-ndjson", []byte(`{"type":"nope","path":"/"}` + "\n"), 400},
		{"bad!name", "application/json", []byte(`{"type":"click","path":"/"}`), 400},
		{"acme", "text/plain", []byte("hello"), 415},
		{"acme", "application/json", []byte(`{"type":"click","path":"/` + strings.Repeat("a", 70<<10) + `"}`), 413},
	}
	for _, f := range refusals {
		if code, b, _ := r.post(f.tenant, f.ctype, f.body); code != f.status {
			t.Fatalf("POST %s %s: %d %s, want %d", f.tenant, f.ctype, code, b, f.status)
		}
	}
	if res, err := http.Get(r.url + "/v1/tenants/acme/events"); err != nil || res.StatusCode != 405 {
		t.Fatalf("GET events: %v %v", res, err)
	} else {
		res.Body.Close()
	}
	// A refused subscriber.
	if res, err := http.Get(r.url + "/v1/tenants/acme/stream?last=-1"); err != nil || res.StatusCode != 400 {
		t.Fatalf("GET stream?last=-1: %v %v", res, err)
	} else {
		res.Body.Close()
	}

	// beta: 8 events in a history of 5 (4..8 held), then a resume from
	// seq 1 (gap 2..3, evicted) and one with a stale epoch (gap 1..3).
	r.mustPost("beta", clicks(0, 8))
	late := r.dial("beta", "since=1")
	late.hello()
	stale := r.dial("beta", "since=3&epoch=0000")
	stale.hello()
	for _, c := range []*wsClient{late, stale} {
		var g gapLine
		if err := json.Unmarshal([]byte(c.line()), &g); err != nil || g.Control != "gap" {
			t.Fatalf("want a gap line, got %+v (%v)", g, err)
		}
		for range 5 {
			c.seq(c.line())
		}
	}

	wants := []want{
		{"tl_relay_tenants", nil, 2},
		{"tl_relay_subscribers", []string{"tenant", "acme"}, 2},
		{"tl_relay_subscribers", []string{"tenant", "beta"}, 2},
		{"tl_relay_events_accepted_total", []string{"tenant", "acme"}, 4},
		{"tl_relay_events_accepted_total", []string{"tenant", "beta"}, 8},
		{"tl_relay_events_accepted_total", []string{"tenant", "_other"}, 0},
		{"tl_relay_deliveries_total", []string{"tenant", "acme"}, 5},
		{"tl_relay_deliveries_total", []string{"tenant", "beta"}, 10},
		{"tl_relay_gaps_total", []string{"tenant", "beta", "reason", "evicted"}, 1},
		{"tl_relay_gaps_total", []string{"tenant", "beta", "reason", "epoch"}, 1},
		{"tl_relay_gaps_total", []string{"tenant", "acme", "reason", "evicted"}, 0},
		{"tl_relay_events_dropped_total", []string{"tenant", "beta"}, 5}, // 2..3 and 1..3
		{"tl_relay_subscriber_lag_max_events", []string{"tenant", "beta"}, 0},
		{"tl_relay_publish_refused_total", []string{"reason", "invalid"}, 2},
		{"tl_relay_publish_refused_total", []string{"reason", "unsupported"}, 1},
		{"tl_relay_publish_refused_total", []string{"reason", "too_large"}, 1},
		{"tl_relay_publish_refused_total", []string{"reason", "method"}, 1},
		{"tl_relay_publish_refused_total", []string{"reason", "rate_limited"}, 0},
		{"tl_relay_subscribe_refused_total", []string{"reason", "invalid"}, 1},
		{"tl_relay_http_requests_total", []string{"route", routeEvents, "code", "202"}, 3},
		{"tl_relay_http_requests_total", []string{"route", routeEvents, "code", "400"}, 2},
		{"tl_relay_http_requests_total", []string{"route", routeStream, "code", "400"}, 1},
	}
	// A writer counts a message once its write returns, which may be just
	// after the client has read it: poll until the counts settle.
	var fams map[string]*dto.MetricFamily
	var bad []string
	defer func() {
		if len(bad) > 0 {
			t.Logf("mismatches: %v", bad)
		}
	}()
	testkit.WaitFor(t, "the expected metrics", func() bool {
		var code int
		code, fams = getMetrics(t, r.url+"/metrics")
		if code != http.StatusOK {
			t.Fatalf("GET /metrics: %d", code)
		}
		bad = mismatches(fams, wants)
		return len(bad) == 0
	})
	if n := metricValue(fams, "tl_relay_delivery_latency_seconds"); n < 1 || n > 15 {
		t.Errorf("latency observations = %v, want 1..15 (one per live message, replays excluded)", n)
	}
	if metricValue(fams, "go_goroutines") <= 0 || metricValue(fams, "process_open_fds") <= 0 {
		t.Error("no Go runtime or process metrics")
	}
	for _, f := range fams {
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "route" && strings.Contains(l.GetValue(), "acme") {
					t.Errorf("raw path in route label: %q", l.GetValue())
				}
			}
		}
	}
	// The scrape itself is counted, by route, when it ends.
	_, fams = getMetrics(t, r.url+"/metrics")
	if got := metricValue(fams, "tl_relay_http_requests_total", "route", routeMetrics, "code", "200"); got < 1 {
		t.Errorf("scrapes counted: %v", got)
	}
}

// authHook is Config.Authorize backed by a real token table (lib/internal/auth).
func authHook(t *testing.T, lines ...string) func(*http.Request, string, Scope) error {
	t.Helper()
	table, err := auth.Parse("tokens", []byte(strings.Join(lines, "\n")+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	store := auth.NewStore(table)
	scope := map[Scope]auth.Scope{ScopePublish: auth.Publish, ScopeSubscribe: auth.Subscribe, ScopeAdmin: auth.Admin}
	return func(r *http.Request, tenant string, s Scope) error {
		if _, err := store.Authorize(auth.BearerToken(r.Header), tenant, scope[s]); err != nil {
			return &HTTPError{Status: auth.Status(err), Msg: err.Error()}
		}
		return nil
	}
}

func tokenLine(t *testing.T, token string, scopes auth.Scope, tenants string) string {
	t.Helper()
	l, err := auth.Line(token, scopes, tenants, "")
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// TestMetricsNeedAdmin: with tokens on, /metrics (and the admin listener's
// handler) need the admin scope on every tenant.
func TestMetricsNeedAdmin(t *testing.T) {
	const (
		admin     = "tl_admin-token-for-the-metrics-test-0000000"
		acmeAdmin = "tl_admin-of-one-tenant-only-000000000000000"
		pub       = "tl_publish-token-for-the-metrics-test-00000"
	)
	hook := authHook(t,
		tokenLine(t, admin, auth.Admin, "*"),
		tokenLine(t, acmeAdmin, auth.Publish|auth.Subscribe, "acme"), // admin on one tenant is refused by the file
		tokenLine(t, pub, auth.Publish|auth.Subscribe, "*"))
	r := startRelay(t, Config{Authorize: hook})
	admSrv := &http.Server{Handler: r.s.AdminHandler()}
	adm := serveOn(t, admSrv)

	tests := []struct {
		name, token string
		want        int
	}{
		{"no token", "", http.StatusUnauthorized},
		{"unknown token", "tl_nobody-knows-this-token-0000000000000000", http.StatusUnauthorized},
		{"publish and subscribe token", pub, http.StatusForbidden},
		{"token of one tenant only", acmeAdmin, http.StatusForbidden},
		{"admin on every tenant", admin, http.StatusOK},
	}
	for _, tt := range tests {
		for _, base := range []string{r.url, adm} {
			var hdr []string
			if tt.token != "" {
				hdr = []string{"Authorization", "Bearer " + tt.token}
			}
			code, fams := getMetrics(t, base+"/metrics", hdr...)
			if code != tt.want {
				t.Errorf("%s: GET %s/metrics = %d, want %d", tt.name, base, code, tt.want)
			}
			if code == http.StatusOK && metricValue(fams, "tl_relay_tenants") < 0 {
				t.Errorf("%s: GET %s/metrics has no tl_relay_tenants", tt.name, base)
			}
		}
		req, _ := http.NewRequest(http.MethodGet, adm+"/debug/pprof/cmdline", nil)
		if tt.token != "" {
			req.Header.Set("Authorization", "Bearer "+tt.token)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != tt.want {
			t.Errorf("%s: GET /debug/pprof/cmdline = %d, want %d", tt.name, res.StatusCode, tt.want)
		}
	}
	// Refusals of /metrics are not publish or subscribe refusals.
	_, fams := getMetrics(t, r.url+"/metrics", "Authorization", "Bearer "+admin)
	if got := metricValue(fams, "tl_relay_publish_refused_total", "reason", "unauthorized"); got != 0 {
		t.Errorf("publish refusals after /metrics refusals: %v", got)
	}
	if got := metricValue(fams, "tl_relay_http_requests_total", "route", routeMetrics, "code", "403"); got != 2 {
		t.Errorf("/metrics 403s counted: %v, want 2", got)
	}
}

// logRecords returns the JSON log records written to buf so far.
func logRecords(t *testing.T, buf *testkit.SyncBuffer) []map[string]any {
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		if len(l) == 0 {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q is not JSON: %v", l, err)
		}
		out = append(out, m)
	}
	return out
}

// TestLifecycleLogs: one log line per lifecycle event (tenant created and
// dropped, subscriber refused, slow subscriber out of the history), with
// tenant and remote address, and none per event.
func TestLifecycleLogs(t *testing.T) {
	var buf testkit.SyncBuffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	r := startRelay(t, Config{HistoryEvents: 100, Logger: log, TenantIdle: 50 * time.Millisecond})

	holder := r.dial("acme", "") // keeps the tenant from going idle until the end
	holder.hello()
	for range 20 {
		r.mustPost("acme", clicks(0, 10)) // 200 events: no line each
	}
	c := r.dial("acme", "since=1")
	c.hello()
	c.line() // the gap
	if res, err := http.Get(r.url + "/v1/tenants/acme/stream?type=nope"); err == nil {
		res.Body.Close()
	}
	c.c.Close()
	holder.c.Close()
	testkit.WaitFor(t, "the lifecycle lines", func() bool {
		seen := map[string]int{}
		for _, rec := range logRecords(t, &buf) {
			seen[rec["msg"].(string)]++
		}
		return seen["tenant created"] == 1 && seen["tenant dropped"] == 1 &&
			seen["subscriber refused"] == 1 && seen["slow subscriber fell out of the history"] >= 1
	})
	recs := logRecords(t, &buf)
	// At most one line per subscriber for its gaps (the holder, which does
	// not read, may fall behind too on a loaded machine).
	if len(recs) > 5 {
		t.Errorf("%d log lines for 200 events and 2 subscribers: %v", len(recs), recs)
	}
	for _, rec := range recs {
		switch rec["msg"] {
		case "subscriber refused", "slow subscriber fell out of the history":
			if rec["tenant"] != "acme" || !strings.HasPrefix(fmt.Sprint(rec["remote"]), "127.0.0.1:") {
				t.Errorf("%q without tenant and remote: %v", rec["msg"], rec)
			}
		case "tenant created", "tenant dropped":
			if rec["tenant"] != "acme" {
				t.Errorf("%q without tenant: %v", rec["msg"], rec)
			}
		}
	}
}

// serveOn serves srv on a loopback port until the test ends, and returns
// its base URL.
func serveOn(t *testing.T, srv *http.Server) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); srv.Serve(l) }()
	t.Cleanup(func() { srv.Close(); <-done })
	return "http://" + l.Addr().String()
}
