package tail

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tl-sh/tl/lib/cli"
	"github.com/tl-sh/tl/lib/internal/testkit"
)

// TestUntrustedCertificateIsFinal: a relay whose certificate does not
// verify (here: signed by a CA the client was not given) ends the run at
// once with status 1 and a hint about --ca-file, after one connection,
// however many retries are allowed.
func TestUntrustedCertificateIsFinal(t *testing.T) {
	for _, args := range [][]string{{"acme"}, {"acme", "--max-retries", "5"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			srv, conns := testkit.UntrustedTLSServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(http.StatusServiceUnavailable)
			}))
			var stdout, stderr testkit.SyncBuffer
			env := &cli.Env{Stdout: &stdout, Stderr: &stderr, Getenv: func(k string) string {
				if k == "TL_RELAY" {
					return srv.URL
				}
				return ""
			}}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			code, msg := cli.Code(Run(ctx, args, env))
			if code != cli.ExitFailure || !strings.Contains(msg, "certificate") || !strings.Contains(msg, "--ca-file") {
				t.Fatalf("exit %d %q, want 1 naming the certificate and --ca-file", code, msg)
			}
			if n := conns.Load(); n != 1 {
				t.Errorf("%d connections, want 1 (no retry)", n)
			}
			if stdout.String() != "" {
				t.Errorf("stdout %q", stdout.String())
			}
		})
	}
}
