package metrics

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestCountersByValue runs a known workload through the hot-path API and
// checks every counter by value after a scrape over loopback.
func TestCountersByValue(t *testing.T) {
	m := New(Options{})
	acme, beta := m.Tenant("acme"), m.Tenant("beta")
	if again := m.Tenant("acme"); again != acme {
		t.Fatal("Tenant(acme) twice gave two counter sets")
	}

	acme.Accepted(3, 3)
	s1 := acme.Subscribe(3) // live from seq 4
	s2 := acme.Subscribe(3)
	s3 := beta.Subscribe(0)
	acme.Accepted(2, 5)
	beta.Accepted(1, 1)
	s1.Wrote(1, 4, 4) // live: one latency observation
	s3.Wrote(1, 1, 1) // live: another
	s2.Wrote(0, 0, 5) // control lines only: none
	s4 := acme.Subscribe(0)
	s4.Wrote(3, 1, 3) // a replay of history: deliveries, but no latency
	s4.Close()
	s1.Gap(GapEvicted, 5, 5) // lost seq 5; its cursor moves to 5
	s3.Gap(GapEpoch, 2, 1)   // an epoch gap with an empty range drops nothing
	s3.Gap("made-up", 7, 9)  // unknown reason: counted as other
	m.PublishRefused(ReasonInvalid)
	m.PublishRefused(ReasonInvalid)
	m.PublishRefused(ReasonTooLarge)
	m.PublishRefused("no such reason") // counted as other
	m.SubscribeRefused(ReasonForbidden)

	fams := scrape(t, metricsOnly(m))
	tests := []struct {
		name   string
		labels []string
		want   float64
	}{
		{"tl_relay_tenants", nil, 2},
		{"tl_relay_events_accepted_total", []string{"tenant", "acme"}, 5},
		{"tl_relay_events_accepted_total", []string{"tenant", "beta"}, 1},
		{"tl_relay_events_accepted_total", []string{"tenant", Other}, 0},
		{"tl_relay_deliveries_total", []string{"tenant", "acme"}, 4},
		{"tl_relay_deliveries_total", []string{"tenant", "beta"}, 1},
		{"tl_relay_subscribers", []string{"tenant", "acme"}, 2},
		{"tl_relay_subscribers", []string{"tenant", "beta"}, 1},
		{"tl_relay_subscriber_lag_max_events", []string{"tenant", "acme"}, 0}, // s1's gap moved it to 5
		{"tl_relay_gaps_total", []string{"tenant", "acme", "reason", GapEvicted}, 1},
		{"tl_relay_gaps_total", []string{"tenant", "beta", "reason", GapEpoch}, 1},
		{"tl_relay_gaps_total", []string{"tenant", "beta", "reason", GapOther}, 1},
		{"tl_relay_gaps_total", []string{"tenant", "beta", "reason", GapEvicted}, 0},
		{"tl_relay_events_dropped_total", []string{"tenant", "acme"}, 1},
		{"tl_relay_events_dropped_total", []string{"tenant", "beta"}, 3},
		{"tl_relay_publish_refused_total", []string{"reason", ReasonInvalid}, 2},
		{"tl_relay_publish_refused_total", []string{"reason", ReasonTooLarge}, 1},
		{"tl_relay_publish_refused_total", []string{"reason", ReasonOther}, 1},
		{"tl_relay_publish_refused_total", []string{"reason", ReasonRateLimited}, 0},
		{"tl_relay_subscribe_refused_total", []string{"reason", ReasonForbidden}, 1},
		{"tl_relay_delivery_latency_seconds", nil, 2}, // observations
	}
	for _, tt := range tests {
		if got := val(t, fams, tt.name, tt.labels...); got != tt.want {
			t.Errorf("%s%v = %v, want %v", tt.name, tt.labels, got, tt.want)
		}
	}
	for _, f := range []string{"go_goroutines", "go_memstats_alloc_bytes", "process_cpu_seconds_total"} {
		if _, ok := fams[f]; !ok {
			t.Errorf("no %s: runtime and process collectors missing", f)
		}
	}

	// Lag: a subscriber behind the head shows, and closing subscribers keeps
	// their deliveries in the count.
	acme.Accepted(10, 15)
	s1.Wrote(3, 6, 8)
	fams = scrape(t, metricsOnly(m))
	if got := val(t, fams, "tl_relay_subscriber_lag_max_events", "tenant", "acme"); got != 10 { // s2 at 5
		t.Errorf("lag max = %v, want 10", got)
	}
	if got := val(t, fams, "tl_relay_delivery_latency_seconds"); got != 3 {
		t.Errorf("latency observations = %v, want 3", got)
	}
	s1.Close()
	s1.Close() // twice is fine
	s2.Close()
	fams = scrape(t, metricsOnly(m))
	if got := val(t, fams, "tl_relay_deliveries_total", "tenant", "acme"); got != 7 {
		t.Errorf("deliveries after close = %v, want 7", got)
	}
	if got := val(t, fams, "tl_relay_subscribers", "tenant", "acme"); got != 0 {
		t.Errorf("subscribers after close = %v, want 0", got)
	}

	// Dropping a tenant keeps its counts, under _other.
	acme.Drop()
	acme.Drop()
	fams = scrape(t, metricsOnly(m))
	if got := val(t, fams, "tl_relay_tenants"); got != 1 {
		t.Errorf("tenants after drop = %v, want 1", got)
	}
	if got := val(t, fams, "tl_relay_events_accepted_total", "tenant", Other); got != 15 {
		t.Errorf("_other accepted after drop = %v, want 15", got)
	}
	if got := sumOver(fams, "tl_relay_deliveries_total"); got != 8 {
		t.Errorf("sum of deliveries after drop = %v, want 8", got)
	}
	if m.Tenant("acme") == acme {
		t.Error("Tenant(acme) after Drop returned the dropped counters")
	}
}

// TestRelaysInOneProcess: each relay has its own registry, so two can run
// in one process (as tests do) without sharing or clashing.
func TestRelaysInOneProcess(t *testing.T) {
	a, b := New(Options{}), New(Options{})
	a.Tenant("acme").Accepted(7, 7)
	b.Tenant("acme").Accepted(1, 1)
	fa, fb := scrape(t, metricsOnly(a)), scrape(t, metricsOnly(b))
	if got := val(t, fa, "tl_relay_events_accepted_total", "tenant", "acme"); got != 7 {
		t.Errorf("relay a: accepted %v, want 7", got)
	}
	if got := val(t, fb, "tl_relay_events_accepted_total", "tenant", "acme"); got != 1 {
		t.Errorf("relay b: accepted %v, want 1", got)
	}
}

// TestTenantCardinality: with 10,000 tenants the tenant label takes at most
// top N + opt-in + 1 values, the busiest tenants get them, and the sum over
// the label is still the exact total.
func TestTenantCardinality(t *testing.T) {
	const tenants, top = 10_000, 10
	optIn := []string{"quiet-vip", "t-09999"}
	m := New(Options{TopTenants: top, Tenants: optIn})
	var total uint64
	subs := 0
	for i := range tenants {
		name := fmt.Sprintf("t-%05d", i)
		tn := m.Tenant(name)
		n := 1 + i%7
		if i%1000 == 3 { // ten heavy hitters: t-00003, t-01003, ...
			n = 10_000 + i
		}
		tn.Accepted(n, uint64(n))
		total += uint64(n)
		if i%10 == 0 {
			tn.Subscribe(0).Wrote(1, 1, 1)
			subs++
		}
	}
	m.Tenant("quiet-vip")
	fams := scrape(t, metricsOnly(m))

	got := labelValues(fams, "tenant")
	want := []string{Other, "quiet-vip", "t-00003"}
	for i := 1003; i < tenants; i += 1000 {
		want = append(want, fmt.Sprintf("t-%05d", i))
	}
	want = append(want, "t-09999")
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("tenant label values:\n got %v\nwant %v", got, want)
	}
	if n := seriesCount(fams); n > 1000 {
		t.Errorf("%d series for %d tenants: the scrape is not bounded", n, tenants)
	}
	if got := sumOver(fams, "tl_relay_events_accepted_total"); got != float64(total) {
		t.Errorf("sum of accepted over tenants = %v, want %v", got, total)
	}
	if got := sumOver(fams, "tl_relay_deliveries_total"); got != float64(subs) {
		t.Errorf("sum of deliveries = %v, want %d", got, subs)
	}
	if got := sumOver(fams, "tl_relay_subscribers"); got != float64(subs) {
		t.Errorf("sum of subscribers = %v, want %d", got, subs)
	}
	if got := val(t, fams, "tl_relay_tenants"); got != tenants+1 {
		t.Errorf("tenants = %v, want %d", got, tenants+1)
	}
	// The first tenants are labeled from birth, with their full counts; a
	// tenant labeled later starts its series at 0: what came before stays in
	// _other, so no series ever goes down.
	if got := val(t, fams, "tl_relay_events_accepted_total", "tenant", "t-00003"); got != 10_003 {
		t.Errorf("t-00003 (labeled from birth) accepted = %v, want 10003", got)
	}
	if got := val(t, fams, "tl_relay_events_accepted_total", "tenant", "t-01003"); got != 0 {
		t.Errorf("t-01003 accepted at first scrape = %v, want 0 (its history stays in _other)", got)
	}
	if got := val(t, fams, "tl_relay_events_accepted_total", "tenant", "t-09999"); got != float64(1+9999%7) {
		t.Errorf("opt-in t-09999 accepted = %v, want its full count", got)
	}
}

// TestLabelsRotateMonotonically drives tenants whose volume shifts over many
// scrapes, with tenants dropped and created, and checks after every scrape
// that the label stays bounded, that no counter series goes down while it
// exists, and that the sum over tenants is the exact total.
func TestLabelsRotateMonotonically(t *testing.T) {
	const top = 3
	m := New(Options{TopTenants: top})
	rng := rand.New(rand.NewPCG(1, 2))
	live := map[string]*Tenant{}
	var total uint64
	prev := map[string]float64{}
	labelsSeen := map[string]bool{}
	for round := range 40 {
		// Each round a different band of tenants is busy.
		for i := range 30 {
			name := fmt.Sprintf("r%02d", i)
			tn, ok := live[name]
			if !ok {
				tn = m.Tenant(name)
				live[name] = tn
			}
			n := 1 + rng.IntN(5)
			if (i+round)%30 < 4 {
				n += 500 + rng.IntN(500)
			}
			tn.Accepted(n, 0)
			total += uint64(n)
		}
		if round%5 == 4 { // drop a few tenants now and then
			for _, name := range []string{"r00", fmt.Sprintf("r%02d", round%30)} {
				if tn, ok := live[name]; ok {
					tn.Drop()
					delete(live, name)
				}
			}
		}
		fams := scrape(t, metricsOnly(m))
		if got := sumOver(fams, "tl_relay_events_accepted_total"); got != float64(total) {
			t.Fatalf("round %d: sum of accepted = %v, want %d", round, got, total)
		}
		values := labelValues(fams, "tenant")
		if len(values) > top+1 {
			t.Fatalf("round %d: %d tenant label values %v, want at most %d", round, len(values), values, top+1)
		}
		cur := map[string]float64{}
		for _, s := range fams["tl_relay_events_accepted_total"].GetMetric() {
			name := s.GetLabel()[0].GetValue()
			v := s.Counter.GetValue()
			cur[name] = v
			labelsSeen[name] = true
			// A series may restart only if it vanished in between.
			if p, ok := prev[name]; ok && v < p {
				t.Fatalf("round %d: tl_relay_events_accepted_total{tenant=%q} went down from %v to %v", round, name, p, v)
			}
		}
		prev = cur
	}
	if len(labelsSeen) <= top+1 {
		t.Errorf("labels never rotated: only %v ever labeled", labelsSeen)
	}
}

func TestRefuseReasonsBounded(t *testing.T) {
	m := New(Options{})
	for i := range 1000 {
		m.PublishRefused(fmt.Sprintf("reason-%d", i))
		m.SubscribeRefused(fmt.Sprintf("reason-%d", i))
	}
	fams := scrape(t, metricsOnly(m))
	for _, name := range []string{"tl_relay_publish_refused_total", "tl_relay_subscribe_refused_total"} {
		if n := len(fams[name].GetMetric()); n != len(refuseReasons) {
			t.Errorf("%s has %d series, want %d", name, n, len(refuseReasons))
		}
		if got := val(t, fams, name, "reason", ReasonOther); got != 1000 {
			t.Errorf("%s{reason=other} = %v, want 1000", name, got)
		}
	}
}

// TestInstrument: requests count by route pattern and status, never by raw
// path; WebSocket-style hijacks count as 101.
func TestInstrument(t *testing.T) {
	m := New(Options{})
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/tenants/{tenant}/events", func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("tenant") == "bad" {
			http.Error(w, "no", http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusAccepted)
	})
	mux.HandleFunc("GET /v1/tenants/{tenant}/stream", func(w http.ResponseWriter, r *http.Request) {
		c, rw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Errorf("hijack through the instrumented writer: %v", err)
			return
		}
		rw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		rw.Flush()
		c.Close()
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok\n")) })
	mux.Handle("GET /metrics", m.Handler())
	type ended struct {
		route string
		code  int
	}
	var mu sync.Mutex
	var ends []ended
	done := func(r *http.Request, route string, code int) {
		mu.Lock()
		ends = append(ends, ended{route, code})
		mu.Unlock()
	}
	srv := httptest.NewServer(m.Instrument(mux, nil, done))
	defer srv.Close()

	do := func(method, path string) {
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader("{}"))
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		resp.Body.Close()
	}
	for i := range 5 {
		do("POST", fmt.Sprintf("/v1/tenants/t%d/events", i))
	}
	do("POST", "/v1/tenants/bad/events")
	do("GET", "/healthz")
	do("GET", "/healthz")
	do("GET", "/v1/tenants/acme/stream")
	do("GET", "/no/such/path/1")
	do("GET", "/no/such/path/2")
	do("DELETE", "/healthz")

	// A hijacked request's handler may end after its client has moved on:
	// wait for all 12 to end, then compare them in any order.
	deadline := time.Now().Add(20 * time.Second)
	for {
		mu.Lock()
		n := len(ends)
		mu.Unlock()
		if n >= 12 || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	mu.Lock()
	seen := map[ended]int{}
	for _, e := range ends {
		seen[e]++
	}
	mu.Unlock()
	wantEnds := map[ended]int{
		{"POST /v1/tenants/{tenant}/events", 202}: 5, {"POST /v1/tenants/{tenant}/events", 400}: 1,
		{"GET /healthz", 200}: 2, {"GET /v1/tenants/{tenant}/stream", 101}: 1, {Unmatched, 404}: 2, {Unmatched, 405}: 1,
	}
	if fmt.Sprint(seen) != fmt.Sprint(wantEnds) {
		t.Errorf("done hook saw %v, want %v", seen, wantEnds)
	}
	fams := scrape(t, m.Instrument(mux, nil, nil))
	tests := []struct {
		route, code string
		want        float64
	}{
		{"POST /v1/tenants/{tenant}/events", "202", 5},
		{"POST /v1/tenants/{tenant}/events", "400", 1},
		{"GET /healthz", "200", 2},
		{"GET /v1/tenants/{tenant}/stream", "101", 1},
		{Unmatched, "404", 2},
		{Unmatched, "405", 1},
	}
	for _, tt := range tests {
		if got := val(t, fams, "tl_relay_http_requests_total", "route", tt.route, "code", tt.code); got != tt.want {
			t.Errorf("requests{route=%q,code=%s} = %v, want %v", tt.route, tt.code, got, tt.want)
		}
	}
	for _, r := range labelValues(fams, "route") {
		if strings.Contains(r, "/t1/") || strings.Contains(r, "/no/such") || strings.Contains(r, "acme") {
			t.Errorf("raw path %q became a route label", r)
		}
	}
}

// TestAdminHandler: the admin listener serves the metrics and the Go
// profiler.
func TestAdminHandler(t *testing.T) {
	m := New(Options{})
	m.Tenant("acme").Accepted(2, 2)
	h := m.AdminHandler()
	fams := scrape(t, h)
	if got := val(t, fams, "tl_relay_events_accepted_total", "tenant", "acme"); got != 2 {
		t.Errorf("admin /metrics: accepted = %v, want 2", got)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	tests := []struct {
		path, want string
	}{
		{"/debug/pprof/", "goroutine"},
		{"/debug/pprof/goroutine?debug=1", "goroutine profile:"},
		{"/debug/pprof/heap?debug=1", "heap profile:"},
		{"/debug/pprof/cmdline", ""},
		{"/debug/pprof/profile?seconds=1", ""},
	}
	for _, tt := range tests {
		resp, err := srv.Client().Get(srv.URL + tt.path)
		if err != nil {
			t.Fatalf("GET %s: %v", tt.path, err)
		}
		var b strings.Builder
		_, err = fmt.Fprint(&b, readAll(t, resp))
		if resp.StatusCode != 200 || err != nil {
			t.Errorf("GET %s: %s", tt.path, resp.Status)
		}
		if !strings.Contains(b.String(), tt.want) {
			t.Errorf("GET %s: body lacks %q", tt.path, tt.want)
		}
		if b.Len() == 0 {
			t.Errorf("GET %s: empty body", tt.path)
		}
	}
}

// TestInstrumentRouteFunc: a handler that routes by itself (no ServeMux)
// names its routes through the route function.
func TestInstrumentRouteFunc(t *testing.T) {
	m := New(Options{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/events") {
			w.WriteHeader(http.StatusTooManyRequests)
		}
	})
	route := func(r *http.Request) string {
		if strings.HasPrefix(r.URL.Path, "/v1/tenants/") {
			return "/v1/tenants/{tenant}/events"
		}
		return ""
	}
	srv := httptest.NewServer(m.Instrument(h, route, nil))
	defer srv.Close()
	for _, p := range []string{"/v1/tenants/a/events", "/v1/tenants/b/events", "/elsewhere"} {
		resp, err := srv.Client().Get(srv.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	fams := scrape(t, metricsOnly(m))
	for _, tt := range []struct {
		route, code string
		want        float64
	}{
		{"/v1/tenants/{tenant}/events", "429", 2},
		{Unmatched, "200", 1},
	} {
		if got := val(t, fams, "tl_relay_http_requests_total", "route", tt.route, "code", tt.code); got != tt.want {
			t.Errorf("requests{route=%q,code=%s} = %v, want %v", tt.route, tt.code, got, tt.want)
		}
	}
}

func TestReasonFor(t *testing.T) {
	for _, tt := range []struct {
		code int
		want string
	}{
		{400, ReasonInvalid}, {401, ReasonUnauthorized}, {403, ReasonForbidden}, {405, ReasonMethod},
		{413, ReasonTooLarge}, {415, ReasonUnsupported}, {429, ReasonRateLimited}, {503, ReasonUnavailable}, // a subscriber limit's 503 is told apart by the relay (ReasonLimit)
		{500, ReasonOther}, {418, ReasonOther},
	} {
		if got := ReasonFor(tt.code); got != tt.want {
			t.Errorf("ReasonFor(%d) = %q, want %q", tt.code, got, tt.want)
		}
	}
}

// TestHeadFromReaders: with a log shared by several relays, appends made
// elsewhere reach this relay only through its subscribers' reads; the head,
// and so the lag, follows the furthest reader and never moves back.
func TestHeadFromReaders(t *testing.T) {
	m := New(Options{})
	tn := m.Tenant("shared")
	fast, slow := tn.Subscribe(0), tn.Subscribe(0)
	fast.Wrote(20, 1, 20) // read seqs 1..20, appended by another relay
	slow.Wrote(5, 1, 5)
	tn.Accepted(1, 3) // a late report of an older append
	fams := scrape(t, metricsOnly(m))
	if got := val(t, fams, "tl_relay_subscriber_lag_max_events", "tenant", "shared"); got != 15 {
		t.Errorf("lag = %v, want 15", got)
	}
}

// TestRankByVolume: a tenant's volume is what it publishes plus what its
// subscribers receive, so a fan-out tenant with few events outranks a
// tenant that publishes more but is read by nobody.
func TestRankByVolume(t *testing.T) {
	m := New(Options{TopTenants: 1})
	m.Tenant("first") // takes the one slot at birth, then stays quiet
	pub := m.Tenant("pub")
	pub.Accepted(300, 300)
	fan := m.Tenant("fan")
	s := fan.Subscribe(0)
	fan.Accepted(10, 10)
	for range 100 {
		s.Wrote(10, 0, 10)
	}
	got := labelValues(scrape(t, metricsOnly(m)), "tenant")
	if strings.Join(got, " ") != "_other fan" {
		t.Errorf("tenant label values %v, want [_other fan]", got)
	}
}
