package relay

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// getStream opens a chunked subscription and returns its status, and the
// response to read and close (nil when refused; its body then).
func (r *testRelay) getStream(ctx context.Context, tenant, query string) (int, *http.Response, string) {
	r.t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.url+"/v1/tenants/"+tenant+"/stream?"+query, nil)
	if err != nil {
		r.t.Fatal(err)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		r.t.Fatal(err)
	}
	if res.StatusCode != http.StatusOK {
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, nil, string(b)
	}
	return res.StatusCode, res, ""
}

// TestMaxTenants: past MaxTenants a publish or a subscription that would
// create a tenant gets 503 with Retry-After and a body that says why; the
// tenants held keep working; dropping an idle tenant makes room.
func TestMaxTenants(t *testing.T) {
	r := startRelay(t, Config{MaxTenants: 2, TenantIdle: time.Hour})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r.mustPost("a", clicks(1, 1))
	r.mustPost("b", clicks(1, 1))

	wantFull := func(what string, code int, body string, hdr http.Header) {
		t.Helper()
		var eb errorBody
		json.Unmarshal([]byte(body), &eb)
		if code != http.StatusServiceUnavailable || !strings.Contains(eb.Error, "maximum of 2 tenants") {
			t.Errorf("%s: %d %q, want 503 naming the maximum of 2 tenants", what, code, body)
		}
		if hdr != nil && hdr.Get("Retry-After") == "" {
			t.Errorf("%s: 503 without Retry-After", what)
		}
	}
	code, body, hdr := r.post("c", "application/x-ndjson", clicks(1, 1))
	wantFull("POST to a third tenant", code, body, hdr)
	code, _, body = r.getStream(ctx, "c", "")
	wantFull("subscribing to a third tenant", code, body, nil)

	// The tenants held keep working: a publish and a subscription to a.
	if got := r.mustPost("a", clicks(2, 1)); got.LastSeq != 2 {
		t.Errorf("second POST to a: last_seq %d, want 2", got.LastSeq)
	}
	code, sub, body := r.getStream(ctx, "a", "last=2")
	if code != http.StatusOK {
		t.Fatalf("subscribing to a: %d %s", code, body)
	}
	defer sub.Body.Close()
	if lines := readNDJSON(t, sub.Body, 2); !strings.Contains(lines[1], `"path":"/p2"`) {
		t.Errorf("a's replay %q", lines)
	}
	if s := r.s.Stats(); s.Tenants != 2 {
		t.Errorf("%d tenants held, want 2", s.Tenants)
	}

	// Dropping the idle tenants (b; a has a subscriber) makes room for one.
	if n := r.s.reg.dropIdle(time.Now().Add(time.Hour)); n != 1 {
		t.Fatalf("dropIdle dropped %d tenants, want 1 (b)", n)
	}
	r.mustPost("c", clicks(1, 1))
	code, body, hdr = r.post("d", "application/x-ndjson", clicks(1, 1))
	wantFull("POST to a fourth tenant", code, body, hdr)
}

// TestMaxTenantsConcurrent: tenants created at once, with their logs being
// opened in parallel, never pass the limit: exactly MaxTenants of them
// are accepted.
func TestMaxTenantsConcurrent(t *testing.T) {
	const max, tries = 5, 24
	r := startRelay(t, Config{MaxTenants: max, TenantIdle: time.Hour})
	codes := make([]int, tries)
	var wg sync.WaitGroup
	for i := range tries {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := http.Post(fmt.Sprintf("%s/v1/tenants/t%d/events", r.url, i), "application/x-ndjson", strings.NewReader(string(clicks(1, 1))))
			if err != nil {
				t.Error(err)
				return
			}
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			codes[i] = res.StatusCode
		}()
	}
	wg.Wait()
	count := map[int]int{}
	for _, c := range codes {
		count[c]++
	}
	if count[http.StatusAccepted] != max || count[http.StatusServiceUnavailable] != tries-max {
		t.Errorf("status counts %v, want %d × 202 and %d × 503", count, max, tries-max)
	}
	if s := r.s.Stats(); s.Tenants != max {
		t.Errorf("%d tenants held, want %d", s.Tenants, max)
	}
}

// TestNoMaxTenants: a negative MaxTenants lifts the limit.
func TestNoMaxTenants(t *testing.T) {
	// No limit: more tenants than the default Config would ever refuse
	// is out of a test's reach, but a negative limit must not refuse any.
	r := startRelay(t, Config{MaxTenants: -1})
	for i := range 3 {
		r.mustPost(fmt.Sprintf("t%d", i), clicks(1, 1))
	}
}
