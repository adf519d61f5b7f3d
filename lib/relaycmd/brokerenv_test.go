package relaycmd

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/tl-sh/tl/lib/cli"
	"github.com/tl-sh/tl/lib/internal/redistest"
	"github.com/tl-sh/tl/lib/internal/testkit"
)

// TestBrokerURL: --broker wins, even empty (no broker); else TL_BROKER.
func TestBrokerURL(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		env      string
		url, src string
	}{
		{"neither", nil, "", "", ""},
		{"env", nil, "redis://:pw@r:6379/0", "redis://:pw@r:6379/0", "TL_BROKER"},
		{"env blank", nil, "  ", "", ""},
		{"flag", []string{"--broker", "redis://a:1/0"}, "", "redis://a:1/0", "--broker"},
		{"flag wins", []string{"--broker", "redis://a:1/0"}, "redis://b:2/0", "redis://a:1/0", "--broker"},
		{"empty flag turns env off", []string{"--broker", ""}, "redis://b:2/0", "", "--broker"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := pflag.NewFlagSet("tl-relay", pflag.ContinueOnError)
			flag := fs.String("broker", "", "")
			if err := fs.Parse(tt.args); err != nil {
				t.Fatal(err)
			}
			url, src := brokerURL(fs, *flag, func(k string) string {
				if k == "TL_BROKER" {
					return tt.env
				}
				return ""
			})
			if url != tt.url || src != tt.src {
				t.Errorf("brokerURL = %q from %q, want %q from %q", url, src, tt.url, tt.src)
			}
		})
	}
}

// TestBrokerEnvErrors: errors about a TL_BROKER name it, and never show
// the URL's password.
func TestBrokerEnvErrors(t *testing.T) {
	tests := []struct {
		broker string
		args   []string
		want   string
	}{
		{"redis://:s3cret@127.0.0.1:notaport/0", nil, "TL_BROKER: "},
		{"redis://:s3cret@127.0.0.1:6379/x", nil, "TL_BROKER: "},
		{"ftp://:s3cret@127.0.0.1:6379/0", nil, "TL_BROKER: "},
		{"redis://127.0.0.1:6379/0", []string{"--data-dir", "unused"}, "TL_BROKER and --data-dir exclude each other"},
	}
	for _, tt := range tests {
		var stderr testkit.SyncBuffer
		env := &cli.Env{Stdin: strings.NewReader(""), Stdout: io.Discard, Stderr: &stderr,
			Getenv: func(k string) string {
				if k == "TL_BROKER" {
					return tt.broker
				}
				return ""
			}}
		err := Run(context.Background(), append([]string{"--listen", "127.0.0.1:0"}, tt.args...), env)
		code, msg := cli.Code(err)
		if code != cli.ExitUsage || !strings.Contains(msg, tt.want) {
			t.Errorf("TL_BROKER=%s %v: exit %d %q, want %d with %q", tt.broker, tt.args, code, msg, cli.ExitUsage, tt.want)
		}
		if strings.Contains(msg+stderr.String(), "s3cret") {
			t.Errorf("TL_BROKER=%s: the password shows in %q", tt.broker, msg+stderr.String())
		}
	}
}

// TestRunBrokerFromEnv: two relays given only TL_BROKER share a tenant
// through a real redis-server: an event posted to one is replayed by the
// other.
func TestRunBrokerFromEnv(t *testing.T) {
	srv := redistest.New(t, redistest.Options{})
	vars := map[string]string{"TL_BROKER": srv.URL()}
	errA, _ := runRelayEnv(t, vars, "--listen", "127.0.0.1:0")
	errB, _ := runRelayEnv(t, vars, "--listen", "127.0.0.1:0")
	a, b := waitAddr(t, errA, "listening"), waitAddr(t, errB, "listening")
	testkit.WaitFor(t, "relay a's broker line", func() bool { return strings.Contains(errA.String(), `msg="broker connected" url=`+srv.URL()) })

	res, err := http.Post(a+"/v1/tenants/acme/events", "application/json", strings.NewReader(`{"type":"click","path":"/via-env"}`))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusAccepted {
		t.Fatalf("POST to relay a = %d, want 202", res.StatusCode)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, b+"/v1/tenants/acme/stream?last=1", nil)
	res, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	// The chunked stream's first line is the newest event.
	sc := bufio.NewScanner(res.Body)
	if !sc.Scan() || !strings.Contains(sc.Text(), `"path":"/via-env"`) {
		t.Fatalf("relay b replayed %q (%v), want the event posted to relay a", sc.Text(), sc.Err())
	}
}
