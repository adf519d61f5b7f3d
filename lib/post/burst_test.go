package post

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
)

// TestOverBurstSplits: a 429 with TL-Max-Batch (the batch exceeds the
// relay's rate burst) splits the batch into parts of that size, each a new
// batch under its own Idempotency-Key, in order; later batches are no
// larger, so the relay says it only once; everything is published once.
func TestOverBurstSplits(t *testing.T) {
	const burst = 30
	f := newFakeRelay()
	var mu sync.Mutex           // guards the three below
	var over int                // requests refused as over the burst
	keys := map[string]string{} // Idempotency-Key → the body sent under it
	var sizes []int             // events per request, in order
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			return
		}
		events := strings.Count(string(body), "\n")
		mu.Lock()
		key := r.Header.Get("Idempotency-Key")
		if prev, ok := keys[key]; ok && prev != string(body) {
			t.Errorf("key %s sent with two different bodies", key)
		}
		keys[key] = string(body)
		sizes = append(sizes, events)
		if events > burst {
			over++
			mu.Unlock()
			w.Header().Set("TL-Max-Batch", fmt.Sprint(burst))
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
			fmt.Fprintf(w, `{"error":"tenant acme: the batch exceeds the burst of %d events"}`+"\n", burst)
			return
		}
		mu.Unlock()
		r.Body = io.NopCloser(bytes.NewReader(body))
		f.ServeHTTP(w, r)
	}))
	defer srv.Close()
	// 200 events in batches of 100, each over the burst: the first is
	// refused and split; the second may be filled already, then it is
	// split before it is sent.
	r := runPost(t, nil, srv.URL, strings.NewReader(genEvents(200, "acme")), "--batch-events", "100", "--max-retries", "0")
	events, _, _, _ := f.snapshot()
	if r.code != 0 || len(events["acme"]) != 200 {
		t.Fatalf("exit %d, %d events published; stderr:\n%s", r.code, len(events["acme"]), r.stderr)
	}
	want := make([]string, 200)
	for i := range want {
		want[i] = fmt.Sprintf("/e/%d", i)
	}
	if got := paths(events["acme"]); !slices.Equal(got, want) {
		t.Errorf("published out of order or twice: %q", got)
	}
	mu.Lock()
	defer mu.Unlock()
	if over > 2 {
		t.Errorf("%d requests over the burst (sizes %v): the lower size was not kept", over, sizes)
	}
	for i, n := range sizes {
		if n > burst && i > 1 {
			t.Errorf("request %d held %d events after the relay said %d (sizes %v)", i, n, burst, sizes)
		}
	}
	if !strings.Contains(r.stderr, "the relay takes at most 30 events per batch") {
		t.Errorf("no note about the smaller batches:\n%s", r.stderr)
	}
}
