package client

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/spf13/pflag"

	"github.com/tl-sh/tl/lib/cli"
)

func env(vars map[string]string) *cli.Env {
	return &cli.Env{Getenv: func(k string) string { return vars[k] }}
}

func TestResolve(t *testing.T) {
	dir := t.TempDir()
	tok := filepath.Join(dir, "tok")
	os.WriteFile(tok, []byte("s3cret\n"), 0o600)
	empty := filepath.Join(dir, "empty")
	os.WriteFile(empty, nil, 0o600)

	tests := []struct {
		name      string
		args      []string
		vars      map[string]string
		wantURL   string
		wantToken string
		wantUsage bool
	}{
		{"default", nil, nil, "http://127.0.0.1:8787", "", false},
		{"env", nil, map[string]string{"TL_RELAY": "http://10.0.0.1:9/", "TL_TOKEN": "t"}, "http://10.0.0.1:9", "t", false},
		{"flag wins", []string{"--relay", "https://r.example/x/"}, map[string]string{"TL_RELAY": "http://a"}, "https://r.example/x", "", false},
		{"no scheme", []string{"--relay", "127.0.0.1:1234"}, nil, "http://127.0.0.1:1234", "", false},
		{"token file", []string{"--token-file", tok}, map[string]string{"TL_TOKEN": "other"}, "http://127.0.0.1:8787", "s3cret", false},
		{"empty token file", []string{"--token-file", empty}, nil, "", "", true},
		{"missing token file", []string{"--token-file", filepath.Join(dir, "nope")}, nil, "", "", true},
		{"bad scheme", []string{"--relay", "ftp://x"}, nil, "", "", true},
		{"ws", nil, map[string]string{"TL_RELAY": "ws://127.0.0.1:8787"}, "http://127.0.0.1:8787", "", false},
		{"wss", []string{"--relay", "wss://r.example/x/"}, nil, "https://r.example/x", "", false},
		{"bad CA", []string{"--ca-file", tok}, nil, "", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := pflag.NewFlagSet("x", pflag.ContinueOnError)
			f := AddFlags(fs)
			if err := fs.Parse(tt.args); err != nil {
				t.Fatal(err)
			}
			c, err := f.Resolve(env(tt.vars))
			if tt.wantUsage {
				var ee *cli.ExitError
				if !errors.As(err, &ee) || ee.Code != cli.ExitUsage {
					t.Fatalf("Resolve() error = %v, want a usage error", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := c.Relay.String(); got != tt.wantURL {
				t.Errorf("relay = %q, want %q", got, tt.wantURL)
			}
			if c.Token != tt.wantToken {
				t.Errorf("token = %q, want %q", c.Token, tt.wantToken)
			}
		})
	}
}

// TestPlainHTTPTokenWarning: a token headed over plain http to a host
// other than loopback earns one warning line on stderr, named after the
// command; loopback, https and no token stay quiet.
func TestPlainHTTPTokenWarning(t *testing.T) {
	tests := []struct {
		relay, token string
		warnHost     string // "": no warning
	}{
		{"http://relay.example.com:8787", "t", "relay.example.com"},
		{"10.1.2.3:8787", "t", "10.1.2.3"},
		{"http://[2001:db8::1]:8787/", "t", "2001:db8::1"},
		{"http://127.0.0.1:8787", "t", ""},
		{"http://127.3.4.5:8787", "t", ""},
		{"http://[::1]:8787", "t", ""},
		{"http://localhost:8787", "t", ""},
		{"http://LocalHost", "t", ""},
		{"https://relay.example.com", "t", ""},
		{"http://relay.example.com", "", ""},
	}
	for _, cmd := range []string{"tl-tail", "tl-post"} {
		for _, tt := range tests {
			t.Run(cmd+" "+tt.relay+" "+tt.token, func(t *testing.T) {
				fs := pflag.NewFlagSet(cmd, pflag.ContinueOnError)
				f := AddFlags(fs)
				if err := fs.Parse([]string{"--relay", tt.relay}); err != nil {
					t.Fatal(err)
				}
				var stderr bytes.Buffer
				e := env(map[string]string{"TL_TOKEN": tt.token})
				e.Stderr = &stderr
				c, err := f.Resolve(e)
				if err != nil {
					t.Fatal(err)
				}
				want := ""
				if tt.warnHost != "" {
					want = cmd + ": warning: sending a token over plain http to " + tt.warnHost + "; use https\n"
				}
				if stderr.String() != want {
					t.Errorf("stderr = %q, want %q", stderr.String(), want)
				}
				if (c.Warning != "") != (want != "") {
					t.Errorf("Config.Warning = %q, want it set: %v", c.Warning, want != "")
				}
			})
		}
	}
}

func TestPaths(t *testing.T) {
	if got := EventsPath("acme"); got != "/v1/tenants/acme/events" {
		t.Errorf("EventsPath = %q", got)
	}
	if got := StreamPath("a.b"); got != "/v1/tenants/a.b/stream" {
		t.Errorf("StreamPath = %q", got)
	}
}
