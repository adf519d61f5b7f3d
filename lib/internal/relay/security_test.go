package relay

import (
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/gorilla/websocket"

	"github.com/tl-sh/tl/lib/internal/auth"
	"github.com/tl-sh/tl/lib/internal/limit"
)

// TestReauthorizeRace revokes a token at the worst moment: a subscriber has
// passed the token check, and the reload (with Reauthorize walking the
// registered streams) runs before the subscriber is registered. The relay
// must still refuse it rather than serve a revoked token for ever.
func TestReauthorizeRace(t *testing.T) {
	const token = "tok-race-0123456789abcdef0123456"
	path := filepath.Join(t.TempDir(), "tokens")
	line, err := auth.Line(token, auth.Subscribe, "acme", "racer")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(line+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var cfg Config
	store := installAccess(t, &cfg, path, nil, DefaultIngestRate, DefaultIngestBurst)
	var srv atomic.Pointer[Server] // set once the relay runs
	var once sync.Once
	check := cfg.Authorize
	cfg.Authorize = func(r *http.Request, tenant string, scope Scope) error {
		err := check(r, tenant, scope)
		// The first check passes; then, before the subscriber goes on,
		// the token is revoked and the relay reloads (as on SIGHUP).
		once.Do(func() {
			if err := os.WriteFile(path, []byte("# everyone revoked\n"), 0o600); err != nil {
				t.Error(err)
			}
			if _, err := store.Reload(); err != nil {
				t.Error(err)
			}
			srv.Load().Reauthorize()
		})
		return err
	}
	r := startRelay(t, cfg)
	srv.Store(r.s)

	c, resp, err := websocket.DefaultDialer.Dial(r.ws+"/v1/tenants/acme/stream", http.Header{"Authorization": {"Bearer " + token}})
	if err == nil {
		c.Close()
		t.Fatal("a subscriber whose token was revoked during its check was let in")
	}
	if resp == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("dial: %v (%v), want 401", err, resp)
	}
}

// installAccess plugs into cfg the access policy of tl-relay --tokens
// tokens --allow-origin allow --ingest-rate rate --ingest-burst burst
// (on a loopback address), and returns the token store.
func installAccess(t testing.TB, cfg *Config, tokens string, allow []string, rate float64, burst int) *auth.Store {
	t.Helper()
	store, err := auth.Open(tokens)
	if err != nil {
		t.Fatal(err)
	}
	origins, err := auth.ParseOrigins(allow)
	if err != nil {
		t.Fatal(err)
	}
	(&Access{Tokens: store, Origins: origins, IngestRate: limit.NewRate(rate, burst)}).Install(cfg)
	return store
}
