package post

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tl-sh/tl/lib/cli"
)

func TestArgs(t *testing.T) {
	tests := []struct {
		args       []string
		tenant     string
		files      []string
		replay     float64
		wantUsage  bool
		wantOutput bool
	}{
		{args: nil},
		{args: []string{"staging"}, tenant: "staging"},
		{args: []string{"acme", "a.ndjson", "b"}, tenant: "acme", files: []string{"a.ndjson", "b"}},
		{args: []string{"events.ndjson"}, files: []string{"events.ndjson"}},
		{args: []string{"x.jsonl", "y.json"}, files: []string{"x.jsonl", "y.json"}},
		{args: []string{"./acme"}, files: []string{"./acme"}},
		{args: []string{"-"}, files: []string{"-"}},
		{args: []string{"-t", "logs.json", "a"}, tenant: "logs.json", files: []string{"a"}},
		{args: []string{"acme", "--replay", "10", "f.ndjson"}, tenant: "acme", files: []string{"f.ndjson"}, replay: 10},
		{args: []string{"--replay", "acme"}, tenant: "acme", replay: 1},
		{args: []string{"--replay=2.5"}, replay: 2.5},
		{args: []string{"--", "--replay", "5"}, tenant: "--replay", wantUsage: true},
		{args: []string{"bad tenant!"}, wantUsage: true},
		{args: []string{"--batch-events", "0"}, wantUsage: true},
		{args: []string{"--progress", "fancy"}, wantUsage: true},
		{args: []string{"--retarget"}, wantUsage: true},
		{args: []string{"--nope"}, wantUsage: true},
		{args: []string{"--replay=0"}, wantUsage: true},
		{args: []string{"--help"}, wantOutput: true},
		{args: []string{"--version"}, wantOutput: true},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var out strings.Builder
			env := &cli.Env{Stdout: &out, Stderr: io.Discard, Getenv: func(string) string { return "" }}
			o, _, err := parse(tt.args, env)
			if tt.wantOutput {
				if err != errHelp || out.Len() == 0 {
					t.Fatalf("parse(%q) = %v with output %q; want help or version on stdout", tt.args, err, out.String())
				}
				return
			}
			if tt.wantUsage {
				if code, _ := cli.Code(err); code != cli.ExitUsage {
					t.Fatalf("parse(%q) error = %v; want a usage error", tt.args, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if o.Tenant != tt.tenant || !slices.Equal(o.Files, tt.files) && len(o.Files)+len(tt.files) > 0 || o.Replay != tt.replay {
				t.Errorf("parse(%q) = tenant %q files %q replay %v; want %q %q %v", tt.args, o.Tenant, o.Files, o.Replay, tt.tenant, tt.files, tt.replay)
			}
		})
	}
}

// TestPublish publishes lines of three tenants and checks that every event
// arrives once, each tenant's in input order, over several batches.
func TestPublish(t *testing.T) {
	tests := []struct {
		name  string
		args  []string
		n     int
		batch int // most events one request may hold
	}{
		{"defaults", nil, 3000, defaultBatchEvents},
		{"small batches", []string{"-n", "7"}, 1000, 7},
		{"small bodies", []string{"--batch-bytes", fmt.Sprint(maxLine)}, 3000, maxLine / 60},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeRelay()
			srv := httptest.NewServer(f)
			defer srv.Close()
			in := genEvents(tt.n, "acme", "globex", "initech")
			r := runPost(t, nil, srv.URL, strings.NewReader(in), tt.args...)
			if r.code != 0 {
				t.Fatalf("exit %d, stderr:\n%s", r.code, r.stderr)
			}
			events, _, _, bodies := f.snapshot()
			for ti, tenant := range []string{"acme", "globex", "initech"} {
				var want []string
				for i := ti; i < tt.n; i += 3 {
					want = append(want, fmt.Sprintf("/e/%d", i))
				}
				if got := paths(events[tenant]); !slices.Equal(got, want) {
					t.Errorf("%s got %d events %.80q..., want %d in order", tenant, len(got), got, len(want))
				}
			}
			for _, b := range bodies {
				if b > tt.batch {
					t.Errorf("a batch held %d events, more than %d", b, tt.batch)
				}
			}
			if !strings.Contains(r.stderr, fmt.Sprintf("published %s events to 3 tenants", commas(int64(tt.n)))) {
				t.Errorf("summary missing from stderr:\n%s", r.stderr)
			}
			if r.stdout != "" {
				t.Errorf("stdout = %q, want nothing", r.stdout)
			}
		})
	}
}

// TestBadLines: every bad line is reported as FILE:LINE: reason, the good
// lines around it are published, and the exit status is 1.
func TestBadLines(t *testing.T) {
	long := `{"type":"click","path":"/` + strings.Repeat("x", 200<<10) + `"}`
	big := `{"type":"click","path":"/a","metadata":{"k":"` + strings.Repeat("x", 64<<10) + `"}}`
	tests := []struct {
		name   string
		tenant string // argument, or "" for tenants from lines
		bad    string
		reason string
	}{
		{"not json", "acme", `hello`, `invalid JSON`},
		{"unknown type", "acme", `{"type":"purchase","path":"/a"}`, `type must be one of`},
		{"unknown field", "acme", `{"type":"click","path":"/a","user":"bob"}`, `unknown field "user"`},
		{"tenant mismatch", "acme", `{"tenant_id":"globex","type":"click","path":"/a"}`, `does not match tenant "acme"`},
		{"no tenant_id", "", `{"type":"click","path":"/a"}`, `no tenant_id`},
		{"bad tenant_id", "", `{"tenant_id":"a b","type":"click","path":"/a"}`, `tenant_id: tenant name`},
		{"over-long line", "acme", long, `line is longer than`},
		{"event too large", "acme", big, `larger than 64 KiB`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeRelay()
			srv := httptest.NewServer(f)
			defer srv.Close()
			dir := t.TempDir()
			file := filepath.Join(dir, "in.ndjson")
			good := func(p string) string { return `{"tenant_id":"acme","type":"click","path":"` + p + `"}` }
			os.WriteFile(file, []byte(good("/1")+"\n\n"+tt.bad+"\n"+good("/2")+"\n"), 0o644)
			var args []string
			if tt.tenant != "" {
				args = append(args, tt.tenant)
			}
			r := runPost(t, nil, srv.URL, nil, append(args, file)...)
			if r.code != 1 {
				t.Errorf("exit %d, want 1", r.code)
			}
			want := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(file) + `:3: .*` + regexp.QuoteMeta(tt.reason))
			if !want.MatchString(r.stderr) {
				t.Errorf("stderr lacks %s:3: ...%s:\n%.500s", file, tt.reason, r.stderr)
			}
			events, _, _, _ := f.snapshot()
			if got := paths(events["acme"]); !slices.Equal(got, []string{"/1", "/2"}) {
				t.Errorf("published %q, want the two good lines", got)
			}
		})
	}
}

func TestStdinName(t *testing.T) {
	f := newFakeRelay()
	srv := httptest.NewServer(f)
	defer srv.Close()
	r := runPost(t, nil, srv.URL, strings.NewReader("{\"type\":\"click\",\"path\":\"/a\"}\nnope\n"), "acme")
	if r.code != 1 || !strings.Contains(r.stderr, "<stdin>:2: ") {
		t.Fatalf("exit %d, stderr:\n%s", r.code, r.stderr)
	}
}

func TestStrict(t *testing.T) {
	f := newFakeRelay()
	srv := httptest.NewServer(f)
	defer srv.Close()
	in := genEvents(100, "acme") + "nope\n" + genEvents(100, "acme")
	r := runPost(t, nil, srv.URL, strings.NewReader(in), "--strict")
	_, requests, _, _ := f.snapshot()
	if r.code != 1 || requests != 0 {
		t.Fatalf("exit %d after %d requests; want 1 after none. stderr:\n%s", r.code, requests, r.stderr)
	}
	if !strings.Contains(r.stderr, "<stdin>:101: ") || !strings.Contains(r.stderr, "nothing sent") {
		t.Errorf("stderr:\n%s", r.stderr)
	}
	// And with good input, --strict sends everything.
	r = runPost(t, nil, srv.URL, strings.NewReader(genEvents(100, "acme")), "--strict")
	events, _, _, _ := f.snapshot()
	if r.code != 0 || len(events["acme"]) != 100 {
		t.Fatalf("exit %d, %d events; stderr:\n%s", r.code, len(events["acme"]), r.stderr)
	}
}

// TestCopyTenant: with TENANT, a tail's deliveries (seq first, another
// tenant_id) are re-addressed; a plain line naming another tenant is not.
func TestCopyTenant(t *testing.T) {
	tests := []struct {
		name string
		args []string
		line string
		ok   bool
	}{
		{"delivery", []string{"staging"}, `{"seq":41,"tenant_id":"acme","timestamp":1795824000000,"type":"click","path":"/a","metadata":{}}`, true},
		{"plain line of another tenant", []string{"staging"}, `{"tenant_id":"acme","type":"click","path":"/a"}`, false},
		{"--retarget", []string{"staging", "--retarget"}, `{"tenant_id":"acme","type":"click","path":"/a"}`, true},
		{"no tenant_id", []string{"staging"}, `{"type":"click","path":"/a"}`, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeRelay()
			srv := httptest.NewServer(f)
			defer srv.Close()
			r := runPost(t, nil, srv.URL, strings.NewReader(tt.line+"\n"), tt.args...)
			events, _, _, _ := f.snapshot()
			if got := len(events["staging"]) == 1 && r.code == 0; got != tt.ok {
				t.Fatalf("published to staging: %v, want %v (exit %d, stderr %s)", got, tt.ok, r.code, r.stderr)
			}
			if tt.ok && !strings.HasPrefix(events["staging"][0], `{"tenant_id":"staging",`) {
				t.Errorf("relay stored %s", events["staging"][0])
			}
		})
	}
}

// TestRetry: retryable answers are retried with the same Idempotency-Key
// until the relay recovers; every event is published once, in order.
func TestRetry(t *testing.T) {
	tests := []struct {
		name    string
		fail    func(w http.ResponseWriter, n int) bool // answers request n itself
		retries int
	}{
		{"503 then recovers", func(w http.ResponseWriter, n int) bool {
			if n > 3 {
				return false
			}
			w.Header().Set("Retry-After", "0")
			w.WriteHeader(http.StatusServiceUnavailable)
			io.WriteString(w, `{"error":"draining"}`)
			return true
		}, 3},
		{"429", func(w http.ResponseWriter, n int) bool {
			if n != 1 {
				return false
			}
			w.Header().Set("Retry-After", "0")
			w.WriteHeader(http.StatusTooManyRequests)
			return true
		}, 1},
		{"408 and 502 without Retry-After", func(w http.ResponseWriter, n int) bool {
			switch n {
			case 1:
				w.WriteHeader(http.StatusRequestTimeout)
			case 2:
				w.WriteHeader(http.StatusBadGateway)
			default:
				return false
			}
			return true
		}, 2},
		{"connection dropped", func(w http.ResponseWriter, n int) bool {
			if n != 1 {
				return false
			}
			conn, _, _ := http.NewResponseController(w).Hijack()
			conn.Close()
			return true
		}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeRelay()
			var mu sync.Mutex
			keys := map[int]string{}
			f.intercept = func(w http.ResponseWriter, r *http.Request, n int) bool {
				mu.Lock()
				keys[n] = r.Header.Get("Idempotency-Key")
				mu.Unlock()
				return tt.fail(w, n)
			}
			srv := httptest.NewServer(f)
			defer srv.Close()
			r := runPost(t, nil, srv.URL, strings.NewReader(genEvents(50, "acme")))
			if r.code != 0 {
				t.Fatalf("exit %d, stderr:\n%s", r.code, r.stderr)
			}
			events, requests, _, _ := f.snapshot()
			if len(events["acme"]) != 50 || requests != tt.retries+1 {
				t.Errorf("%d events after %d requests; want 50 after %d", len(events["acme"]), requests, tt.retries+1)
			}
			for n := 2; n <= requests; n++ {
				if keys[n] != keys[1] || len(keys[1]) < 16 {
					t.Errorf("request %d key %q, first %q: want the same key", n, keys[n], keys[1])
				}
			}
			if !strings.Contains(r.stderr, plural(tt.retries, "retry", "retries")) {
				t.Errorf("stderr lacks %q:\n%s", plural(tt.retries, "retry", "retries"), r.stderr)
			}
		})
	}
}

// TestSwallowed202: the relay publishes a batch but its 202 never arrives;
// the retry carries the same Idempotency-Key, so nothing is delivered twice.
func TestSwallowed202(t *testing.T) {
	f := newFakeRelay()
	srv := httptest.NewServer(swallow202(f, 3))
	defer srv.Close()
	r := runPost(t, nil, srv.URL, strings.NewReader(genEvents(300, "acme", "globex")), "-n", "50")
	if r.code != 0 {
		t.Fatalf("exit %d, stderr:\n%s", r.code, r.stderr)
	}
	events, _, repeats, _ := f.snapshot()
	for ti, tenant := range []string{"acme", "globex"} {
		var want []string
		for i := ti; i < 300; i += 2 {
			want = append(want, fmt.Sprintf("/e/%d", i))
		}
		if got := paths(events[tenant]); !slices.Equal(got, want) {
			t.Errorf("%s: got %d events, want %d once each in order", tenant, len(got), len(want))
		}
	}
	if repeats != 3 {
		t.Errorf("relay answered %d repeats from its key cache, want 3", repeats)
	}
}

// TestNotRetried: 4xx answers (but 408 and 429) and 501 are reported with
// the batch's line range and not retried; the tenant's later lines are not
// sent, other tenants go on.
func TestNotRetried(t *testing.T) {
	for _, status := range []int{http.StatusForbidden, http.StatusNotFound, http.StatusUnsupportedMediaType, http.StatusNotImplemented} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			f := newFakeRelay()
			f.intercept = func(w http.ResponseWriter, r *http.Request, n int) bool {
				if !strings.Contains(r.URL.Path, "/acme/") {
					return false
				}
				w.WriteHeader(status)
				io.WriteString(w, `{"error":"nope"}`)
				return true
			}
			srv := httptest.NewServer(f)
			defer srv.Close()
			r := runPost(t, nil, srv.URL, strings.NewReader(genEvents(40, "acme", "globex")), "-n", "10")
			events, requests, _, _ := f.snapshot()
			if r.code != 1 {
				t.Errorf("exit %d, want 1", r.code)
			}
			if len(events["globex"]) != 20 {
				t.Errorf("globex got %d events, want 20", len(events["globex"]))
			}
			// acme: one refused batch; globex: two batches.
			if requests != 3 {
				t.Errorf("%d requests, want 3 (no retry)", requests)
			}
			if !strings.Contains(r.stderr, fmt.Sprintf("<stdin>:1-19: the relay refused the batch (10 events, tenant acme): %d", status)) {
				t.Errorf("stderr lacks the batch's line range:\n%s", r.stderr)
			}
			if !strings.Contains(r.stderr, "tenant acme: 10 lines more not sent") {
				t.Errorf("stderr lacks the count of later lines:\n%s", r.stderr)
			}
		})
	}
}

// TestRelayRefusesLine: a 400 naming a line drops that line (reported as
// FILE:LINE) and publishes the rest of the batch.
func TestRelayRefusesLine(t *testing.T) {
	f := newFakeRelay()
	f.intercept = func(w http.ResponseWriter, r *http.Request, n int) bool {
		if n != 1 {
			return false
		}
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, `{"error":"line 3: path is forbidden here","line":3}`)
		return true
	}
	srv := httptest.NewServer(f)
	defer srv.Close()
	r := runPost(t, nil, srv.URL, strings.NewReader(genEvents(5, "acme")))
	events, _, _, _ := f.snapshot()
	if got := paths(events["acme"]); !slices.Equal(got, []string{"/e/0", "/e/1", "/e/3", "/e/4"}) {
		t.Errorf("published %q", got)
	}
	if r.code != 1 || !strings.Contains(r.stderr, "<stdin>:3: path is forbidden here") {
		t.Errorf("exit %d, stderr:\n%s", r.code, r.stderr)
	}
}

// TestTooLargeSplits: a 413 for a batch halves it until it fits.
func TestTooLargeSplits(t *testing.T) {
	f := newFakeRelay()
	f.intercept = func(w http.ResponseWriter, r *http.Request, n int) bool {
		if r.ContentLength <= 1000 {
			return false
		}
		w.WriteHeader(http.StatusRequestEntityTooLarge)
		return true
	}
	srv := httptest.NewServer(f)
	defer srv.Close()
	r := runPost(t, nil, srv.URL, strings.NewReader(genEvents(100, "acme")))
	events, _, _, _ := f.snapshot()
	if r.code != 0 || len(events["acme"]) != 100 {
		t.Fatalf("exit %d, %d events; stderr:\n%s", r.code, len(events["acme"]), r.stderr)
	}
	if got := paths(events["acme"]); got[0] != "/e/0" || got[99] != "/e/99" || !slices.IsSortedFunc(got, func(a, b string) int {
		var x, y int
		fmt.Sscanf(a, "/e/%d", &x)
		fmt.Sscanf(b, "/e/%d", &y)
		return x - y
	}) {
		t.Errorf("order lost: %q", got)
	}
}

// TestGiveUp: --max-retries and --timeout end a batch that cannot be
// delivered; the run stops, says what was not published, and exits 1.
func TestGiveUp(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		after    string
		requests int
	}{
		{"max retries", []string{"--max-retries", "2"}, "after 3 attempts", 3},
		{"timeout", []string{"--timeout", "1s"}, "within --timeout 1s (gave up after ", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeRelay()
			f.intercept = func(w http.ResponseWriter, r *http.Request, n int) bool {
				// Retry-After 0 for the retries test; an hour for the
				// deadline test, which must give up at once.
				if slices.Contains(tt.args, "--timeout") {
					w.Header().Set("Retry-After", "3600")
				} else {
					w.Header().Set("Retry-After", "0")
				}
				w.WriteHeader(http.StatusServiceUnavailable)
				return true
			}
			srv := httptest.NewServer(f)
			defer srv.Close()
			r := runPost(t, nil, srv.URL, strings.NewReader(genEvents(10, "acme")), tt.args...)
			_, requests, _, _ := f.snapshot()
			if r.code != 1 || requests != tt.requests {
				t.Errorf("exit %d after %d requests, want 1 after %d", r.code, requests, tt.requests)
			}
			if !strings.Contains(r.stderr, "<stdin>:1-10: not published "+tt.after) || !strings.Contains(r.stderr, "10 not sent") {
				t.Errorf("stderr:\n%s", r.stderr)
			}
		})
	}
}

// TestLinger: a live stream is published within the linger, while its
// input is still open.
func TestLinger(t *testing.T) {
	f := newFakeRelay()
	got := make(chan struct{}, 10)
	f.intercept = func(w http.ResponseWriter, r *http.Request, n int) bool {
		got <- struct{}{}
		return false
	}
	srv := httptest.NewServer(f)
	defer srv.Close()
	pr, pw := io.Pipe()
	done := make(chan result, 1)
	go func() { done <- runPost(t, nil, srv.URL, pr, "acme", "--linger", "50ms") }()
	io.WriteString(pw, genEvents(3, "acme"))
	select {
	case <-got:
	case <-time.After(30 * time.Second):
		t.Fatal("nothing published while the input stayed open")
	}
	pw.Close()
	r := <-done
	events, _, _, _ := f.snapshot()
	if r.code != 0 || len(events["acme"]) != 3 {
		t.Fatalf("exit %d, %d events; stderr:\n%s", r.code, len(events["acme"]), r.stderr)
	}
}

// TestInterrupt: Ctrl-C stops reading a stream that is still open, lets the
// batch in flight finish, reports what was published, and exits 130.
func TestInterrupt(t *testing.T) {
	f := newFakeRelay()
	got := make(chan struct{}, 10)
	f.intercept = func(w http.ResponseWriter, r *http.Request, n int) bool {
		got <- struct{}{}
		return false
	}
	srv := httptest.NewServer(f)
	defer srv.Close()
	pr, pw := io.Pipe()
	defer pw.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan result, 1)
	go func() { done <- runPost(t, ctx, srv.URL, pr, "acme", "--linger", "10ms") }()
	io.WriteString(pw, genEvents(5, "acme"))
	select {
	case <-got:
	case <-time.After(30 * time.Second):
		t.Fatal("nothing published")
	}
	cancel()
	var r result
	select {
	case r = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("tl-post did not stop after Ctrl-C")
	}
	if !errors.Is(r.err, cli.Interrupted) { // cli.Main turns it into 130
		t.Errorf("Run() = %v, want cli.Interrupted", r.err)
	}
	if !strings.Contains(r.stderr, "interrupted: published 5 events") {
		t.Errorf("stderr:\n%s", r.stderr)
	}
}

// TestQuiet: -q prints no summary; a failure still says why.
func TestQuiet(t *testing.T) {
	f := newFakeRelay()
	srv := httptest.NewServer(f)
	defer srv.Close()
	r := runPost(t, nil, srv.URL, strings.NewReader(genEvents(5, "acme")), "-q")
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("exit %d, stderr %q; want 0 and nothing", r.code, r.stderr)
	}
	r = runPost(t, nil, srv.URL, strings.NewReader("nope\n"), "-q", "acme")
	if r.code != 1 || r.stderr != "<stdin>:1: invalid JSON at byte 1: event must be a JSON object\ntl-post: 1 line refused\n" {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
}

// TestMissingFile: an input that cannot be opened is reported; the others
// are still published; exit 1.
func TestMissingFile(t *testing.T) {
	f := newFakeRelay()
	srv := httptest.NewServer(f)
	defer srv.Close()
	dir := t.TempDir()
	good := filepath.Join(dir, "good.ndjson")
	os.WriteFile(good, []byte(genEvents(3, "acme")), 0o644)
	r := runPost(t, nil, srv.URL, nil, filepath.Join(dir, "missing.ndjson"), good)
	events, _, _, _ := f.snapshot()
	if r.code != 1 || len(events["acme"]) != 3 || !strings.Contains(r.stderr, "missing.ndjson: no such file") {
		t.Fatalf("exit %d, %d events, stderr:\n%s", r.code, len(events["acme"]), r.stderr)
	}
}
