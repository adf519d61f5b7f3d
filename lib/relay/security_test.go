package relay

import (
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/gorilla/websocket"

	"github.com/tl-sh/tl/lib/auth"
)

// TestReauthorizeRace revokes a token at the worst moment: a subscriber has
// passed the token check, and the reload (with Reauthorize walking the
// registered streams) runs before the subscriber is registered. The relay
// must still refuse it rather than serve a revoked token for ever.
func TestReauthorizeRace(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
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
		sec, err := (&securityFlags{tokens: path}).setup(&cfg, "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		var srv atomic.Pointer[Server] // set once the relay runs
		var once sync.Once
		check := cfg.Authorize
		cfg.Authorize = func(r *http.Request, tenant string, scope Scope) error {
			err := check(r, tenant, scope)
			// The first check passes; then, before the subscriber goes on,
			// the token is revoked and the relay reloads.
			once.Do(func() {
				if err := os.WriteFile(path, []byte("# everyone revoked\n"), 0o600); err != nil {
					t.Error(err)
				}
				sec.reload(srv.Load(), slog.New(slog.DiscardHandler))
			})
			return err
		}
		r := e.start(t, cfg)
		srv.Store(r.s)

		c, resp, err := websocket.DefaultDialer.Dial(r.ws+"/v1/tenants/acme/stream", http.Header{"Authorization": {"Bearer " + token}})
		if err == nil {
			c.Close()
			t.Fatal("a subscriber whose token was revoked during its check was let in")
		}
		if resp == nil || resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("dial: %v (%v), want 401", err, resp)
		}
	})
}
