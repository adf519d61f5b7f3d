package post

import (
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/tl-sh/tl/lib/internal/testkit"
)

// TestUntrustedCertificateIsFinal: a relay whose certificate does not
// verify (signed by a CA tl-post was not given) is not retried: one
// connection, exit 1, a hint about --ca-file.
func TestUntrustedCertificateIsFinal(t *testing.T) {
	var requests atomic.Int32
	srv, conns := testkit.UntrustedTLSServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	r := runPost(t, nil, srv.URL, strings.NewReader(genEvents(1, "acme")), "--max-retries", "5")
	if r.code != 1 || !strings.Contains(r.stderr, "certificate") || !strings.Contains(r.stderr, "--ca-file") {
		t.Fatalf("exit %d, stderr %q: want 1 naming the certificate and --ca-file", r.code, r.stderr)
	}
	if n := conns.Load(); n != 1 || requests.Load() != 0 {
		t.Errorf("%d connections, %d requests: want 1 and 0 (no retry)", n, requests.Load())
	}
}
