package e2e

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tl-sh/tl/lib/internal/redistest"
)

// deadAddr returns a loopback address where nothing listens.
func deadAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// TestOpsListeningLineFirst: the first line on tl-relay's stderr is
// "tl-relay: listening on URL" even when opening the history logs (an
// unreachable broker, a damaged data directory), as tl-relay(1) promises.
func TestOpsListeningLineFirst(t *testing.T) {
	damaged := t.TempDir()
	acme := filepath.Join(damaged, "tenants", "acme")
	if err := os.MkdirAll(acme, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string]string{"meta.json": "{", "00000000000000000001.seg": "garbage line\n"} {
		if err := os.WriteFile(filepath.Join(acme, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, tt := range []struct {
		name   string
		args   []string
		logged string // what opening the history logs
	}{
		{"dead broker", []string{"--broker", "redis://:pw-0123@" + deadAddr(t) + "/0"}, "broker unreachable"},
		{"damaged data dir", []string{"--data-dir", damaged}, "damaged"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := secStartRelay(t, tt.args...)
			p.waitLog(tt.logged)
			log := p.log.String()
			if first, _, _ := strings.Cut(log, "\n"); !strings.HasPrefix(first, "tl-relay: listening on http://127.0.0.1:") {
				t.Errorf("first stderr line %q, want the listening line; log:\n%s", first, log)
			}
			if strings.Contains(log, "pw-0123") {
				t.Errorf("the broker password shows in the log:\n%s", log)
			}
		})
	}
}

// TestOpsBrokerRefused: a broker URL with a wrong password or database
// makes tl-relay exit 1 at once with a clear message (not run "unreachable"
// forever), without showing the password.
func TestOpsBrokerRefused(t *testing.T) {
	srv := redistest.New(t, redistest.Options{Password: "right-pw-0123"})
	for _, tt := range []struct{ name, url, want string }{
		{"wrong password", "redis://:wrong-pw-0123@" + srv.Addr() + "/0", "WRONGPASS"},
		{"no password", "redis://" + srv.Addr() + "/0", "NOAUTH"},
		{"database out of range", "redis://:right-pw-0123@" + srv.Addr() + "/999", "DB index"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, filepath.Join(binDir, "tl-relay"), "--listen", "127.0.0.1:0", "--broker", tt.url)
			out, err := cmd.CombinedOutput()
			ee, ok := err.(*exec.ExitError)
			if !ok || ee.ExitCode() != 1 {
				t.Fatalf("exit: %v, want 1; output:\n%s", err, out)
			}
			if !strings.Contains(string(out), "redis refused the connection") || !strings.Contains(string(out), tt.want) {
				t.Errorf("output %q, want the refusal and %q", out, tt.want)
			}
			if strings.Contains(string(out), "pw-0123") {
				t.Errorf("output %q shows the password", out)
			}
		})
	}
}
