package relaycmd

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tl-sh/tl/lib/cli"
	"github.com/tl-sh/tl/lib/internal/testkit"
)

// runRelay runs tl-relay's Run with args until the test stops it, and
// returns its stderr and the stop function (which returns Run's exit code).
func runRelay(t *testing.T, args ...string) (*testkit.SyncBuffer, func() int) {
	t.Helper()
	return runRelayEnv(t, nil, args...)
}

// runRelayEnv is runRelay with the environment variables vars.
func runRelayEnv(t *testing.T, vars map[string]string, args ...string) (*testkit.SyncBuffer, func() int) {
	t.Helper()
	var stderr testkit.SyncBuffer
	env := &cli.Env{Stdin: strings.NewReader(""), Stdout: io.Discard, Stderr: &stderr, Getenv: func(k string) string { return vars[k] }}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, args, env) }()
	stopped := false
	var code int
	stop := func() int {
		if !stopped {
			stopped = true
			cancel()
			select {
			case err := <-done:
				code, _ = cli.Code(err)
			case <-time.After(20 * time.Second):
				t.Fatal("Run did not return after cancel")
			}
		}
		return code
	}
	t.Cleanup(func() { stop() })
	return &stderr, stop
}

// waitAddr waits for the stderr line "tl-relay: WHAT on http://ADDR".
func waitAddr(t *testing.T, stderr *testkit.SyncBuffer, what string) string {
	t.Helper()
	re := regexp.MustCompile(`tl-relay: ` + what + ` on (http://\S+)`)
	var url string
	testkit.WaitFor(t, what+" address on stderr", func() bool {
		m := re.FindStringSubmatch(stderr.String())
		if m != nil {
			url = m[1]
		}
		return m != nil
	})
	return url
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// TestAdminListen: --admin-listen serves /metrics and net/http/pprof on an
// address of its own; the main listener serves /metrics but not pprof;
// --log-format json logs the lifecycle as JSON lines.
func TestAdminListen(t *testing.T) {
	stderr, stop := runRelay(t, "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0",
		"--log-format", "json", "--metrics-tenants", "1", "--metrics-tenant", "vip")
	main := waitAddr(t, stderr, "listening")
	admin := waitAddr(t, stderr, "admin")
	if main == admin {
		t.Fatalf("admin listener on the main address %s", main)
	}

	// --metrics-tenants 1: acme (the first) gets a label, beta does not,
	// vip does (--metrics-tenant).
	for _, tenant := range []string{"acme", "beta", "vip"} {
		res, err := http.Post(main+"/v1/tenants/"+tenant+"/events", "application/json", strings.NewReader(`{"type":"click","path":"/"}`))
		if err != nil || res.StatusCode != http.StatusAccepted {
			t.Fatalf("POST: %v %v", res, err)
		}
		res.Body.Close()
	}

	tests := []struct {
		url      string
		want     int
		contains string
	}{
		{admin + "/debug/pprof/", 200, "goroutine"},
		{admin + "/debug/pprof/goroutine?debug=1", 200, "goroutine profile:"},
		{admin + "/debug/pprof/heap?debug=1", 200, "heap profile:"},
		{admin + "/debug/pprof/cmdline", 200, ""},
		{admin + "/metrics", 200, `tl_relay_events_accepted_total{tenant="acme"} 1`},
		{admin + "/metrics", 200, `tl_relay_events_accepted_total{tenant="vip"} 1`},
		{admin + "/metrics", 200, `tl_relay_events_accepted_total{tenant="_other"} 1`},
		{main + "/metrics", 200, `tl_relay_events_accepted_total{tenant="acme"} 1`},
		{main + "/debug/pprof/", 404, ""},
	}
	if _, body := get(t, admin+"/metrics"); strings.Contains(body, `tenant="beta"`) {
		t.Error("beta has a label of its own beyond --metrics-tenants 1")
	}
	for _, tt := range tests {
		code, body := get(t, tt.url)
		if code != tt.want || !strings.Contains(body, tt.contains) {
			t.Errorf("GET %s = %d (body has %q: %v), want %d", tt.url, code, tt.contains, strings.Contains(body, tt.contains), tt.want)
		}
	}
	if code := stop(); code != cli.ExitOK {
		t.Errorf("exit code %d", code)
	}
	out := stderr.String()
	msgs := map[string]map[string]any{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if strings.HasPrefix(line, "tl-relay: ") {
			continue // the address lines scripts read
		}
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("--log-format json: line %q is not JSON", line)
		}
		msgs[rec["msg"].(string)] = rec
	}
	for _, m := range []string{"started", "tenant created", "stopped"} {
		if msgs[m] == nil {
			t.Errorf("no %q line in %s", m, out)
		}
	}
	if s := msgs["started"]; s != nil && (s["listen"] != strings.TrimPrefix(main, "http://") || s["admin"] != strings.TrimPrefix(admin, "http://")) {
		t.Errorf("started line %v does not name both addresses", s)
	}
}

// TestAdminHeaderLimits: the admin listener refuses oversized request
// headers with 431, as the main listener does (net/http's own default
// would let 1 MiB through).
func TestAdminHeaderLimits(t *testing.T) {
	stderr, stop := runRelay(t, "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0")
	listeners := []struct {
		name, url string
	}{
		{"main", waitAddr(t, stderr, "listening")},
		{"admin", waitAddr(t, stderr, "admin")},
	}
	// Past the relay's 32 KiB plus net/http's 4 KiB of slack, far below
	// net/http's default 1 MiB.
	big := strings.Repeat("x", 48<<10)
	for _, l := range listeners {
		for _, tt := range []struct {
			header string
			want   int
		}{
			{"small", http.StatusOK},
			{big, http.StatusRequestHeaderFieldsTooLarge},
		} {
			req, err := http.NewRequest(http.MethodGet, l.url+"/metrics", nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("X-Filler", tt.header)
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatalf("%s: GET /metrics with a %d-byte header: %v", l.name, len(tt.header), err)
			}
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode != tt.want {
				t.Errorf("%s: GET /metrics with a %d-byte header = %d, want %d", l.name, len(tt.header), res.StatusCode, tt.want)
			}
		}
	}
	if code := stop(); code != cli.ExitOK {
		t.Errorf("exit code %d", code)
	}
}

// TestObsFlagErrors: bad values of the operating flags are usage errors.
func TestObsFlagErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--log-format", "xml"}, "--log-format"},
		{[]string{"--log-level", "loud"}, "--log-level"},
		{[]string{"--metrics-tenants", "-1"}, "--metrics-tenants"},
		{[]string{"--metrics-tenants", "1001"}, "--metrics-tenants must be 0 to 1000"},
		{[]string{"--metrics-tenant", "bad!name"}, "--metrics-tenant"},
		{[]string{"--admin-listen", "0.0.0.0:0"}, "--admin-listen"},
	}
	for _, tt := range tests {
		var stderr testkit.SyncBuffer
		env := &cli.Env{Stdin: strings.NewReader(""), Stdout: io.Discard, Stderr: &stderr, Getenv: func(string) string { return "" }}
		err := Run(context.Background(), append([]string{"--listen", "127.0.0.1:0"}, tt.args...), env)
		code, msg := cli.Code(err)
		if code != cli.ExitUsage || !strings.Contains(msg, tt.want) {
			t.Errorf("%v: exit %d %q, want %d naming %s", tt.args, code, msg, cli.ExitUsage, tt.want)
		}
	}
}
