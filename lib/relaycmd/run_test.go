package relaycmd

import (
	"bufio"
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tl-sh/tl/lib/cli"
	"github.com/tl-sh/tl/lib/internal/relay"
	"github.com/tl-sh/tl/lib/internal/testkit"
)

func testEnv() (*cli.Env, *bytes.Buffer, *testkit.SyncBuffer) {
	var out bytes.Buffer
	errb := &testkit.SyncBuffer{}
	return &cli.Env{Stdin: strings.NewReader(""), Stdout: &out, Stderr: errb, Getenv: func(string) string { return "" }}, &out, errb
}

func TestRunFlags(t *testing.T) {
	cases := []struct {
		args       []string
		code       int
		out, inErr string
	}{
		{[]string{"--help"}, 0, "usage: tl-relay", ""},
		{[]string{"--help"}, 0, `listen on ADDR (host:port; port 0 picks a free one) (default "127.0.0.1:8787")`, ""},
		{[]string{"-h"}, 0, "--history-bytes SIZE", ""},
		{[]string{"--version"}, 0, "tl-relay ", ""},
		{[]string{"--bogus"}, 2, "", "try 'tl-relay --help'"},
		{[]string{"extra"}, 2, "", `unexpected argument "extra"`},
		{[]string{"--history-bytes", "lots"}, 2, "", `"lots" is not a size`},
		{[]string{"--ping-interval", "0s"}, 2, "", "--ping-interval must be positive"},
		{[]string{"--log-level", "loud"}, 2, "", "--log-level"},
		{[]string{"--listen", "256.0.0.1:99999", "--insecure"}, 1, "", "listen"},
		{[]string{"--listen", "0.0.0.0:0"}, 2, "", "refusing to listen on 0.0.0.0:0 without --tokens"},
		{[]string{"--tls-cert", "c.pem"}, 2, "", "--tls-cert and --tls-key go together"},
		{[]string{"--allow-origin", "evil.com"}, 2, "", "--allow-origin"},
		{[]string{"--tokens", "/nonexistent/tokens"}, 1, "", "token file"},
	}
	for _, c := range cases {
		env, out, errb := testEnv()
		err := Run(context.Background(), c.args, env)
		code, msg := cli.Code(err)
		if code != c.code || !strings.Contains(out.String(), c.out) || !strings.Contains(msg+errb.String(), c.inErr) {
			t.Errorf("Run(%q) = %d %q, stdout %q, stderr %q", c.args, code, msg, out, errb)
		}
	}
}

// TestRunServesAndStops: the first stderr line names the address; a
// cancelled context (SIGTERM in cli.Main) drains and exits 0.
func TestRunServesAndStops(t *testing.T) {
	env, _, errb := testEnv()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, []string{"--listen", "127.0.0.1:0", "--drain-timeout", "5s"}, env) }()
	var first string
	testkit.WaitFor(t, "the listening line", func() bool {
		first, _, _ = strings.Cut(errb.String(), "\n")
		return strings.Contains(errb.String(), "\n")
	})
	url, ok := ListenURL(first)
	if !ok || !strings.HasPrefix(url, "http://127.0.0.1:") {
		t.Fatalf("first stderr line %q", first)
	}
	res, err := http.Post(url+"/v1/tenants/acme/events", "application/json", strings.NewReader(`{"type":"click","path":"/"}`))
	if err != nil || res.StatusCode != 202 {
		t.Fatalf("POST: %v %v", err, res)
	}
	res.Body.Close()
	cancel()
	select {
	case err := <-done:
		if code, _ := cli.Code(err); code != 0 {
			t.Errorf("Run after stop = %v (exit %d), want exit 0", err, code)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
	http.DefaultClient.CloseIdleConnections()
	var lines []string
	sc := bufio.NewScanner(strings.NewReader(errb.String()))
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	// One line per lifecycle event: listening, started, tenant created,
	// draining, drained, stopped.
	if len(lines) != 6 || !strings.Contains(lines[1], "msg=started") || !strings.Contains(lines[2], `msg="tenant created" tenant=acme`) ||
		!strings.Contains(lines[3], "msg=draining") || !strings.Contains(lines[5], "msg=stopped") {
		t.Errorf("stderr:\n%s", errb)
	}
}

func TestMemoryBudgetFlag(t *testing.T) {
	least := relay.MinMemoryBudget(relay.DefaultMaxBody)
	if _, _, err := memoryBudget(true, least-1, relay.DefaultMaxBody); err == nil {
		t.Error("a budget under one batch was accepted")
	}
	if got, from, err := memoryBudget(true, least, relay.DefaultMaxBody); err != nil || got != least || from != "--memory-budget" {
		t.Errorf("memoryBudget(least) = %d, %q, %v", got, from, err)
	}
	if got, _, err := memoryBudget(false, 0, 1<<40); err != nil || got != relay.MinMemoryBudget(1<<40) {
		t.Errorf("a default under one batch was not raised: %d, %v", got, err)
	}
}

// TestMaxTenantsFlag: --max-tenants N is Config.MaxTenants N, 0 lifts the
// limit (a negative Config value), a negative flag is a usage error.
func TestMaxTenantsFlag(t *testing.T) {
	tests := []struct {
		flag, want int
		bad        bool
	}{
		{relay.DefaultMaxTenants, relay.DefaultMaxTenants, false},
		{7, 7, false},
		{0, -1, false},
		{-1, 0, true},
	}
	for _, tt := range tests {
		got, err := tenantsLimit(tt.flag)
		if got != tt.want || (err != nil) != tt.bad {
			t.Errorf("tenantsLimit(%d) = %d, %v; want %d (error: %v)", tt.flag, got, err, tt.want, tt.bad)
		}
	}
	env, _, _ := testEnv()
	err := Run(context.Background(), []string{"--listen", "127.0.0.1:0", "--max-tenants", "-1"}, env)
	if code, msg := cli.Code(err); code != cli.ExitUsage || !strings.Contains(msg, "--max-tenants") {
		t.Errorf("--max-tenants -1: exit %d %q, want %d", code, msg, cli.ExitUsage)
	}
}
