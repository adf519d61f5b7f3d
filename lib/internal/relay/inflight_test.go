package relay

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/tl-sh/tl/lib/event"
	"github.com/tl-sh/tl/lib/internal/limit"
)

// sampleBody returns about size bytes of the sample events, addressed to
// tenant, as NDJSON.
func sampleBody(t testing.TB, tenant string, size int) []byte {
	lines := testEvents(t)["acme"]
	var v event.Validator
	var b []byte
	for i := 0; len(b) < size; i++ {
		if err := v.Validate(lines[i%len(lines)], ""); err != nil {
			t.Fatal(err)
		}
		b = v.AppendObject(b, tenant)
	}
	return b
}

// TestInflightCostFactor checks the factor a body with a Content-Length
// reserves at once against what the ingest really counts at its peak, for
// the sample events (~160 bytes a line): the reservation covers it, so such
// a POST takes the budget's lock once to reserve and once to release. For
// tiny events the cost is higher, and counted as it grows.
func TestInflightCostFactor(t *testing.T) {
	for _, tt := range []struct {
		name   string
		body   []byte
		covers bool
	}{
		{"one sample event", sampleBody(t, "acme", 1), true},
		{"one event without tenant_id", sampleBody(t, "", 1), true},
		{"ten sample events", sampleBody(t, "acme", 1500), true},
		{"sample 64 KiB", sampleBody(t, "acme", 64<<10), true},
		{"sample 2 MiB", sampleBody(t, "acme", 2<<20), true},
		{"sample 8 MiB", sampleBody(t, "acme", 8<<20-200), true},
		{"sample 2 MiB without tenant_id", sampleBody(t, "", 2<<20), false}, // 2.9x: each event gains its tenant_id
		{"tiny events 1 MiB", bytes.Repeat([]byte(`{"type":"click","path":"/"}`+"\n"), (1<<20)/28), false},
	} {
		in := ingestPool.New().(*ingest)                      // fresh, as under load
		in.buf = make([]byte, 0, len(tt.body)+len(tt.body)/8) // as ingest sizes it
		in.startCap = cap(in.buf)
		in.sc.Reset(bytes.NewReader(tt.body))
		var peak int64
		for in.sc.Scan() {
			if err := in.v.Validate(in.sc.Bytes(), "acme"); err != nil {
				t.Fatal(err)
			}
			in.add("acme", 1)
			peak = max(peak, in.cost(0))
		}
		ratio := float64(peak) / float64(len(tt.body))
		t.Logf("%s: %d bytes, %d events, peak cost %d (%.2fx), reserved at once %d", tt.name, len(tt.body), len(in.ends), peak, ratio, bodyCost(int64(len(tt.body))))
		if covers := peak <= bodyCost(int64(len(tt.body))); covers != tt.covers {
			t.Errorf("%s: the reservation by Content-Length covers the peak: %v, want %v", tt.name, covers, tt.covers)
		}
	}
}

// TestInflightHeap checks the count against the heap: posting a body, the
// bytes the relay allocates for it are within what the body reserved (the
// heap grows by what the request holds, and what it held and dropped).
func TestInflightHeap(t *testing.T) {
	r := startRelay(t, Config{HistoryBytes: 64 << 20})
	body := sampleBody(t, "acme", 4<<20)
	r.mustPost("warm", sampleBody(t, "warm", 4<<20)) // pools and the tenant map warmed up
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	r.mustPost("acme", body)
	runtime.ReadMemStats(&after)
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("a %d-byte body: %d bytes allocated (%.2fx), %d reserved", len(body), alloc, float64(alloc)/float64(len(body)), bodyCost(int64(len(body))))
	if int64(alloc) > 2*bodyCost(int64(len(body))) {
		t.Errorf("the POST allocated %d bytes, far over its reservation of %d", alloc, bodyCost(int64(len(body))))
	}
}

// stallPost sends the headers of a POST and head of its body to tenant,
// then stops sending: the relay holds the request until its body timeout
// or until the connection is closed. With length < 0 the body is chunked.
func stallPost(t *testing.T, r *testRelay, tenant string, length int, headSize int) net.Conn {
	t.Helper()
	head := sampleBody(t, tenant, headSize)
	host := strings.TrimPrefix(r.url, "http://")
	conn, err := net.Dial("tcp", host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	framing := fmt.Sprintf("Content-Length: %d", length)
	if length < 0 {
		framing = "Transfer-Encoding: chunked"
		head = fmt.Appendf(nil, "%x\r\n%s\r\n", len(head), head)
	}
	fmt.Fprintf(conn, "POST /v1/tenants/%s/events HTTP/1.1\r\nHost: %s\r\nContent-Type: application/x-ndjson\r\n%s\r\n\r\n", tenant, host, framing)
	if _, err := conn.Write(head); err != nil {
		t.Fatal(err)
	}
	return conn
}

// waitInflight waits until the budget's use satisfies ok, and returns it.
func waitInflight(t *testing.T, b *limit.Budget, tenant string, what string, ok func(total, byTenant int64) bool) (int64, int64) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		total, by := b.Used(tenant)
		if ok(total, by) {
			return total, by
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: in flight %d, tenant %s %d", what, total, tenant, by)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func released(total, _ int64) bool { return total == 0 }

// postAnswer posts body and returns the status, headers and decoded error.
func postAnswer(t *testing.T, r *testRelay, tenant string, body []byte) (int, http.Header, string) {
	t.Helper()
	st, raw, h := r.post(tenant, "application/x-ndjson", body)
	var e struct{ Error string }
	if st != http.StatusAccepted {
		if err := json.Unmarshal([]byte(raw), &e); err != nil {
			t.Errorf("error body %q is not JSON: %v", raw, err)
		}
	}
	return st, h, e.Error
}

// TestInflightBudget: stalled bodies hold their reservation; a POST that
// does not fit gets 503 with Retry-After and a JSON error before its body
// is read, on the whole budget and on a tenant's share; a tenant whose share
// is full leaves the others publishing; everything is given back when the
// stalled clients go.
func TestInflightBudget(t *testing.T) {
	const body = 256 << 10
	share := bodyCost(body) * 2   // a tenant holds two stalled bodies
	total := bodyCost(body)*5 + 1 // the relay five
	r := startRelay(t, Config{MaxInflightBytes: total, MaxTenantInflightBytes: share})
	const head = 16 << 10

	// Tenant a fills its share with two stalled bodies; a third is refused.
	a1 := stallPost(t, r, "a", body, head)
	a2 := stallPost(t, r, "a", body, head)
	waitInflight(t, r.s.inflight, "a", "a's two bodies", func(_, by int64) bool { return by == share })
	st, h, msg := postAnswer(t, r, "a", sampleBody(t, "a", body))
	if st != 503 || h.Get("Retry-After") != "1" || !strings.Contains(msg, "tenant a: its request bodies in flight hold its whole share") {
		t.Errorf("a third body for a: %d Retry-After %q %q", st, h.Get("Retry-After"), msg)
	}
	// Others are untouched by a's share being full.
	if st, _, msg := postAnswer(t, r, "b", sampleBody(t, "b", body)); st != 202 {
		t.Errorf("b while a's share is full: %d %s", st, msg)
	}
	// Now the whole budget: b and c stall three more; the sixth is refused
	// whoever sends it.
	stallPost(t, r, "b", body, head)
	stallPost(t, r, "c", body, head)
	stallPost(t, r, "c", -1, head) // chunked: a first part only
	waitInflight(t, r.s.inflight, "c", "five stalled bodies", func(all, _ int64) bool {
		return all == 4*bodyCost(body)+bodyCost(inflightChunked)
	})
	st, h, msg = postAnswer(t, r, "d", sampleBody(t, "d", body))
	if st != 503 || h.Get("Retry-After") != "1" || !strings.Contains(msg, "the relay's memory for request bodies in flight is taken") {
		t.Errorf("a body for d with the budget full: %d Retry-After %q %q", st, h.Get("Retry-After"), msg)
	}
	req, _ := http.NewRequest("POST", r.url+"/v1/tenants/d/events", bytes.NewReader(sampleBody(t, "d", body)))
	req.Header.Set("Content-Type", "application/x-ndjson")
	if res, err := http.DefaultClient.Do(req); err != nil {
		t.Error(err)
	} else {
		res.Body.Close()
		if res.StatusCode != 503 || !res.Close {
			t.Errorf("a refused body: %d, connection closed %v; want 503, closed (its body is not read)", res.StatusCode, res.Close)
		}
	}
	// The stalled clients going away gives everything back.
	a1.Close()
	a2.Close()
	waitInflight(t, r.s.inflight, "a", "a's bodies released", func(_, by int64) bool { return by == 0 })
	if st, _, msg := postAnswer(t, r, "d", sampleBody(t, "d", body)); st != 202 {
		t.Errorf("d after a's clients left: %d %s", st, msg)
	}
}

// TestInflightReleased checks that every way a POST can end gives its
// reservation back: 202, a bad line, a line too long, a body over the
// limit, a body that stops (408), a client gone mid-body, a chunked body
// outgrowing the budget (413 alone, 503 when others hold it), a repeated
// Idempotency-Key, a batch over the rate's burst.
func TestInflightReleased(t *testing.T) {
	total := bodyCost(1 << 20)
	r := startRelay(t, Config{
		MaxBody: 4 << 20, MaxInflightBytes: total, MaxTenantInflightBytes: total,
	})
	b := r.s.inflight
	check := func(what string, wantStatus int, st int) {
		t.Helper()
		if st != wantStatus {
			t.Errorf("%s: status %d, want %d", what, st, wantStatus)
		}
		waitInflight(t, b, "", what+": released", released)
	}
	st, _, _ := postAnswer(t, r, "a", sampleBody(t, "a", 100<<10))
	check("202", 202, st)
	st, _, _ = postAnswer(t, r, "a", []byte(`{"type":"click","path":"/"}`+"\n"+`{"type":"x","path":"/"}`+"\n"))
	check("bad line", 400, st)
	st, _, _ = postAnswer(t, r, "a", append(bytes.Repeat([]byte("x"), 70<<10), '\n'))
	check("line too long", 413, st)
	st, _, _ = postAnswer(t, r, "a", bytes.Repeat(sampleBody(t, "a", 1<<20), 5))
	check("over --max-body", 413, st)
	st, _, _ = r.post("a", "application/x-ndjson", sampleBody(t, "a", 1000), "Idempotency-Key", "k")
	st2, _, _ := r.post("a", "application/x-ndjson", sampleBody(t, "a", 1000), "Idempotency-Key", "k")
	check("a repeated key", 202, min(st, st2))

	// A body that stops: 408 after the body timeout, and released (on a
	// relay of its own, whose short timeout the large bodies below would
	// risk on a loaded machine).
	r2 := startRelay(t, Config{BodyTimeout: 300 * time.Millisecond})
	conn := stallPost(t, r2, "a", 100<<10, 8<<10)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 408 {
		t.Errorf("a stalled body: %d, want 408", resp.StatusCode)
	}
	waitInflight(t, r2.s.inflight, "", "408: released", released)

	// A client gone mid-body.
	conn = stallPost(t, r, "a", -1, 8<<10)
	waitInflight(t, b, "a", "the chunked body's reservation", func(all, _ int64) bool { return all > 0 })
	conn.Close()
	waitInflight(t, b, "", "a client gone", released)

	// A chunked body that outgrows the budget alone: 413 (it can never fit).
	st, _, msg := chunkedPost(t, r, "a", sampleBody(t, "a", 2<<20))
	if !strings.Contains(msg, "send smaller batches") {
		t.Errorf("a chunked body over the share: %q", msg)
	}
	check("chunked over the share", 413, st)

	// A chunked body outgrowing what others leave: 503, mid-body.
	conn = stallPost(t, r, "b", 512<<10, 8<<10)
	waitInflight(t, b, "b", "b's stalled body", func(_, by int64) bool { return by > 0 })
	st, _, msg = chunkedPost(t, r, "a", sampleBody(t, "a", 600<<10))
	if st != 503 || !strings.Contains(msg, "--max-inflight-bytes") {
		t.Errorf("a chunked body outgrowing the room left: %d %q, want 503", st, msg)
	}
	conn.Close()
	waitInflight(t, b, "", "everything released", released)
	if n := b.Keys(); n != 0 {
		t.Errorf("%d tenants still hold reservations", n)
	}
}

// chunkedPost posts body with chunked framing (no Content-Length).
func chunkedPost(t *testing.T, r *testRelay, tenant string, body []byte) (int, http.Header, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", r.url+"/v1/tenants/"+tenant+"/events", io.MultiReader(bytes.NewReader(body)))
	req.Header.Set("Content-Type", "application/x-ndjson")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	var e struct{ Error string }
	json.Unmarshal(raw, &e)
	if req.ContentLength > 0 {
		t.Fatal("the request was not chunked")
	}
	return res.StatusCode, res.Header, e.Error
}
