package relay

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// TestPublishStatuses covers tl-protocol(7)'s table of answers.
func TestPublishStatuses(t *testing.T) {
	r := startRelay(t, Config{MaxBody: 4096})
	big := strings.Repeat(`{"type":"click","path":"/a"}`+"\n", 200) // 5,800 bytes
	cases := []struct {
		name, method, path, ctype, body string
		hdr                             []string
		status                          int
		want                            string // substring of the body
		header                          [2]string
	}{
		{"one json", "POST", "/v1/tenants/acme/events", "application/json", `{"type":"click","path":"/a"}`, nil, 202, `{"accepted":1,"first_seq":1,"last_seq":1,"epoch":"`, [2]string{}},
		{"json pretty", "POST", "/v1/tenants/acme/events", "application/json; charset=utf-8", "{\n  \"type\": \"click\",\n  \"path\": \"/a\"\n}\n", nil, 202, `"accepted":1,"first_seq":2`, [2]string{}},
		{"ndjson", "POST", "/v1/tenants/acme/events", "application/x-ndjson", "\n" + clicksS(1, 3) + "\n", nil, 202, `"accepted":3,"first_seq":3,"last_seq":5`, [2]string{}},
		{"bad line", "POST", "/v1/tenants/acme/events", "application/x-ndjson", clicksS(1, 2) + "\n" + `{"type":"x","path":"/"}`, nil, 400, `{"error":"line 4: type must be one of pageview, click, custom","line":4}`, [2]string{}},
		{"json bad", "POST", "/v1/tenants/acme/events", "application/json", `{"type":"click"}`, nil, 400, `{"error":"missing \"path\""}`, [2]string{}},
		{"json two", "POST", "/v1/tenants/acme/events", "application/json", clicksS(1, 2), nil, 400, `unexpected data after the event object`, [2]string{}},
		{"empty", "POST", "/v1/tenants/acme/events", "application/x-ndjson", "\n\n", nil, 400, `the body holds no event`, [2]string{}},
		{"body too large", "POST", "/v1/tenants/acme/events", "application/x-ndjson", big, nil, 413, `request body is larger than 4096 bytes`, [2]string{}},
		{"no content type", "POST", "/v1/tenants/acme/events", "", clicksS(1, 1), nil, 415, `Content-Type must be`, [2]string{}},
		{"form", "POST", "/v1/tenants/acme/events", "application/x-www-form-urlencoded", clicksS(1, 1), nil, 415, `Content-Type must be`, [2]string{}},
		{"get events", "GET", "/v1/tenants/acme/events", "", "", nil, 405, `method GET not allowed, use POST`, [2]string{"Allow", "POST"}},
		{"post stream", "POST", "/v1/tenants/acme/stream", "application/json", "{}", nil, 405, `use GET`, [2]string{"Allow", "GET"}},
		{"bad tenant", "POST", "/v1/tenants/-acme/events", "application/json", "{}", nil, 400, `tenant name`, [2]string{}},
		{"slash tenant", "POST", "/v1/tenants/a%2Fb/events", "application/json", "{}", nil, 400, `tenant name`, [2]string{}},
		{"bad tenant stream", "GET", "/v1/tenants/a%20b/stream", "", "", nil, 400, `tenant name`, [2]string{}},
		{"not found", "GET", "/v2/x", "", "", nil, 404, `no such endpoint`, [2]string{}},
		{"bad key", "POST", "/v1/tenants/acme/events", "application/json", `{"type":"click","path":"/a"}`, []string{"Idempotency-Key", strings.Repeat("k", 129)}, 400, `Idempotency-Key must be 1 to 128`, [2]string{}},
		{"bad query", "GET", "/v1/tenants/acme/stream?type=buy", "", "", nil, 400, `type must be one of`, [2]string{}},
		{"bad last", "GET", "/v1/tenants/acme/stream?last=-1", "", "", nil, 400, `last=\"-1\": must be a number of events >= 0`, [2]string{}},
		{"last and since", "GET", "/v1/tenants/acme/stream?last=1&since=2", "", "", nil, 400, `either last or since`, [2]string{}},
		{"healthz", "GET", "/healthz", "", "", nil, 200, "ok", [2]string{}},
		{"readyz", "GET", "/readyz", "", "", nil, 200, "ok", [2]string{}},
		{"post healthz", "POST", "/healthz", "", "", nil, 405, "use GET", [2]string{"Allow", "GET, HEAD"}},
	}
	for _, c := range cases {
		req, _ := http.NewRequest(c.method, r.url+c.path, strings.NewReader(c.body))
		if c.ctype != "" {
			req.Header.Set("Content-Type", c.ctype)
		}
		for i := 0; i+1 < len(c.hdr); i += 2 {
			req.Header.Set(c.hdr[i], c.hdr[i+1])
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		raw, _ := io.ReadAll(res.Body)
		res.Body.Close()
		body := string(raw)
		if res.StatusCode != c.status || !strings.Contains(body, c.want) {
			t.Errorf("%s: %d %s\nwant %d with %s", c.name, res.StatusCode, body, c.status, c.want)
		}
		if c.status >= 400 && c.status != 404 && !json.Valid([]byte(body)) && c.path[:3] == "/v1" {
			t.Errorf("%s: error body %q is not JSON", c.name, body)
		}
		if c.header[0] != "" && res.Header.Get(c.header[0]) != c.header[1] {
			t.Errorf("%s: %s = %q, want %q", c.name, c.header[0], res.Header.Get(c.header[0]), c.header[1])
		}
	}
}

func clicksS(from, n int) string { return string(clicks(from, n)) }

// TestBadFiles posts every shared bad file: each is refused with 400 (413
// for the large event) naming the problem and the line, and a subscriber
// receives none of their lines: the first delivery after them is seq 1.
func TestBadFiles(t *testing.T) {
	r := startRelay(t, Config{})
	sub := r.dial("acme", "")
	sub.hello()
	files, _ := filepath.Glob("../../event/testdata/bad/*.ndjson")
	if len(files) != 24 {
		t.Fatalf("%d bad files, want 24", len(files))
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		want, line := 400, 1
		switch filepath.Base(f) {
		case "20-event-too-large.ndjson":
			want = 413
		case "24-good-then-bad-batch.ndjson":
			line = 3
		}
		code, body, _ := r.post("acme", "application/x-ndjson", data)
		var e errorBody
		if err := json.Unmarshal([]byte(body), &e); err != nil {
			t.Errorf("%s: body %q: %v", f, body, err)
		}
		prefix := fmt.Sprintf("line %d: ", line)
		if code != want || e.Line != line || !strings.HasPrefix(e.Error, prefix) || len(e.Error) < len(prefix)+8 {
			t.Errorf("%s: %d %s, want %d naming line %d", filepath.Base(f), code, body, want, line)
		}
	}
	r.mustPost("acme", clicks(1, 1))
	if l := sub.line(); sub.seq(l) != 1 || !strings.Contains(l, `"path":"/p1"`) {
		t.Errorf("first delivery %q, want seq 1 /p1: a bad line got through", l)
	}
}

// TestEventsFilePerTenant posts the sample file tenant by tenant, in
// batches: each tenant's subscriber gets its events, in order, byte for
// byte (the samples are canonical) with seqs from 1.
func TestEventsFilePerTenant(t *testing.T) {
	r := startRelay(t, Config{})
	byTenant := testEvents(t)
	subs := map[string]*wsClient{}
	for name := range byTenant {
		subs[name] = r.dial(name, "")
		subs[name].hello()
	}
	var wg sync.WaitGroup
	for name, lines := range byTenant {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < len(lines); i += 700 {
				code, body, _ := r.post(name, "application/x-ndjson", joinLines(lines[i:min(i+700, len(lines))]))
				if code != 202 {
					t.Errorf("%s: %d %s", name, code, body)
					return
				}
			}
		}()
	}
	wg.Wait()
	total := 0
	for name, lines := range byTenant {
		sub := subs[name]
		for i, in := range lines {
			want := fmt.Sprintf(`{"seq":%d,%s`, i+1, in[1:])
			if got := sub.line(); got != want {
				t.Fatalf("%s event %d:\n got %s\nwant %s", name, i+1, got, want)
			}
		}
		total += len(lines)
	}
	if total != 10000 {
		t.Errorf("%d events, want 10000", total)
	}
}

// TestIdempotency: a repeated key answers the first 202 and publishes
// nothing; keys are per tenant; a failed request does not keep its key.
func TestIdempotency(t *testing.T) {
	r := startRelay(t, Config{})
	sub := r.dial("acme", "")
	sub.hello()
	code1, body1, _ := r.post("acme", "application/x-ndjson", clicks(1, 3), "Idempotency-Key", "k1")
	code2, body2, _ := r.post("acme", "application/x-ndjson", clicks(1, 3), "Idempotency-Key", "k1")
	if code1 != 202 || code2 != 202 || body1 != body2 {
		t.Fatalf("repeat answered %d %s, first %d %s", code2, body2, code1, body1)
	}
	code, body, _ := r.post("globex", "application/x-ndjson", clicks(1, 1), "Idempotency-Key", "k1")
	if code != 202 || !strings.Contains(body, `"first_seq":1`) {
		t.Errorf("same key, other tenant: %d %s", code, body)
	}
	code, _, _ = r.post("acme", "application/x-ndjson", []byte(`{"type":"no"}`), "Idempotency-Key", "k2")
	if code != 400 {
		t.Errorf("bad batch: %d", code)
	}
	code, body, _ = r.post("acme", "application/x-ndjson", clicks(4, 1), "Idempotency-Key", "k2")
	if code != 202 || !strings.Contains(body, `"first_seq":4`) {
		t.Errorf("retry after a 400: %d %s", code, body)
	}
	// Concurrent repeats publish once.
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if code, body, _ := r.post("acme", "application/x-ndjson", clicks(5, 2), "Idempotency-Key", "k3"); code != 202 || !strings.Contains(body, `"first_seq":5,"last_seq":6`) {
				t.Errorf("concurrent repeat: %d %s", code, body)
			}
		}()
	}
	wg.Wait()
	for want := uint64(1); want <= 6; want++ {
		if got := sub.seq(sub.line()); got != want {
			t.Fatalf("seq %d, want %d", got, want)
		}
	}
	r.mustPost("acme", clicks(7, 1))
	if got := sub.seq(sub.line()); got != 7 {
		t.Fatalf("seq %d after the repeats, want 7: a repeat was published", got)
	}
}
