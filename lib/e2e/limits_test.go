package e2e

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

func secEvents(n int) []byte {
	var b strings.Builder
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, `{"type":"click","path":"/e/%d"}`+"\n", i)
	}
	return []byte(b.String())
}

// TestSecurityRateLimit checks the per-tenant token bucket: a burst passes,
// the next event gets 429 with Retry-After, other tenants are untouched, a
// batch larger than the burst is refused even on a full bucket (429 with
// TL-Max-Batch, never accepted into debt), and a repeated Idempotency-Key is
// answered without being charged.
func TestSecurityRateLimit(t *testing.T) {
	// 0.1 event/s: the bucket refills one event every 10 s, so nothing the
	// test does depends on how fast the machine runs it.
	p := secStartRelay(t, "--rate-limit", "0.1", "--rate-burst", "10")
	c := secHTTPClient(nil)
	url := func(tenant string) string { return p.url + "/v1/tenants/" + tenant + "/events" }
	const nd = "application/x-ndjson"

	if st, _, body := secDo(t, c, "POST", url("acme"), "", nd, secEvents(10)); st != 202 {
		t.Fatalf("a burst of 10: %d %s", st, body)
	}
	st, h, body := secDo(t, c, "POST", url("acme"), "", nd, secEvents(1))
	if st != http.StatusTooManyRequests {
		t.Fatalf("the 11th event: %d %s, want 429", st, body)
	}
	ra, err := strconv.Atoi(h.Get("Retry-After"))
	if err != nil || ra < 1 {
		t.Errorf("Retry-After %q, want whole seconds >= 1", h.Get("Retry-After"))
	}
	if !strings.Contains(body, `"error":`) {
		t.Errorf("429 body %q is not {\"error\":...}", body)
	}
	// Once over its rate a tenant is refused before its body is read: even
	// a body that is not JSON gets 429, not 400.
	if st, h, body := secDo(t, c, "POST", url("acme"), "", nd, []byte("{not json at all")); st != 429 || h.Get("Retry-After") == "" {
		t.Errorf("garbage from a limited tenant: %d %s, want 429 with Retry-After", st, body)
	}
	if st, _, body := secDo(t, c, "POST", url("beta"), "", nd, secEvents(10)); st != 202 {
		t.Errorf("another tenant while acme is limited: %d %s", st, body)
	}
	// A batch over the burst never passes, even on a full bucket: 429 saying
	// so, with the largest batch allowed; it spends nothing, so the burst
	// itself goes next.
	for _, n := range []int{11, 25, 50_000} {
		st, h, body := secDo(t, c, "POST", url("gamma"), "", nd, secEvents(n))
		if st != 429 || h.Get("TL-Max-Batch") != "10" || h.Get("Retry-After") == "" || !strings.Contains(body, "exceeds the burst of 10 events") {
			t.Errorf("a batch of %d on a full bucket of 10: %d TL-Max-Batch %q Retry-After %q %s; want 429, 10", n, st, h.Get("TL-Max-Batch"), h.Get("Retry-After"), body)
		}
	}
	if st, _, body := secDo(t, c, "POST", url("gamma"), "", nd, secEvents(10)); st != 202 {
		t.Errorf("the burst after refused big batches: %d %s", st, body)
	}
	// A client retrying a batch whose 202 it lost gets the 202 again.
	st1, _, b1 := secDo(t, c, "POST", url("delta"), "", nd, secEvents(10), "Idempotency-Key", "k1")
	st2, _, b2 := secDo(t, c, "POST", url("delta"), "", nd, secEvents(10), "Idempotency-Key", "k1")
	if st1 != 202 || st2 != 202 || b1 != b2 {
		t.Errorf("idempotent retry over the limit: %d %s then %d %s", st1, b1, st2, b2)
	}
}

// TestSecurityConnectionLimits checks the subscriber limits, the body size
// and the body, header and idle timeouts.
func TestSecurityConnectionLimits(t *testing.T) {
	p := secStartRelay(t, "--max-tenant-subscribers", "2", "--max-subscribers", "3",
		"--max-body", "1KiB", "--body-timeout", "1s", "--header-timeout", "1s", "--idle-timeout", "1s")
	host := strings.TrimPrefix(p.url, "http://")
	c := secHTTPClient(nil)

	t.Run("subscribers", func(t *testing.T) {
		tests := []struct {
			tenant string
			want   int
		}{
			{"a", 101}, {"a", 101}, {"a", 503}, // per tenant
			{"b", 101}, {"c", 503}, // in total
		}
		for i, tt := range tests {
			conn, st := secDialWS(t, p.url, tt.tenant, "", nil, nil)
			if st != tt.want {
				t.Errorf("subscriber %d on %s: %d, want %d", i, tt.tenant, st, tt.want)
			}
			if conn != nil {
				defer conn.Close()
			}
		}
	})
	t.Run("body size", func(t *testing.T) {
		if st, _, body := secDo(t, c, "POST", p.url+"/v1/tenants/a/events", "", "application/x-ndjson", secEvents(100)); st != 413 {
			t.Errorf("a 3 KiB body over --max-body 1KiB: %d %s", st, body)
		}
	})
	t.Run("slow body", func(t *testing.T) {
		conn, err := net.Dial("tcp", host)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		fmt.Fprintf(conn, "POST /v1/tenants/a/events HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"type\":", host)
		if ans := secAnswerOf(conn); ans != "HTTP 408" {
			t.Errorf("a body that stops coming: %s, want HTTP 408", ans)
		}
	})
	t.Run("slow headers", func(t *testing.T) {
		conn, err := net.Dial("tcp", host)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		fmt.Fprintf(conn, "GET /healthz HTTP/1.1\r\nHost: %s\r\n", host)
		if ans := secAnswerOf(conn); ans != "closed" && ans != "HTTP 408" && ans != "reset" {
			t.Errorf("headers that never end: %s, want the connection closed", ans)
		}
	})
	t.Run("idle keep-alive", func(t *testing.T) {
		conn, err := net.Dial("tcp", host)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		fmt.Fprintf(conn, "GET /healthz HTTP/1.1\r\nHost: %s\r\n\r\n", host)
		br := bufio.NewReader(conn)
		resp, err := http.ReadResponse(br, nil)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("healthz: %v %v", resp, err)
		}
		resp.Body.Close()
		conn.SetReadDeadline(time.Now().Add(60 * time.Second))
		if _, err := br.ReadByte(); err == nil || secIsTimeout(err) {
			t.Errorf("an idle keep-alive connection: %v, want it closed by the relay", err)
		}
	})
}
