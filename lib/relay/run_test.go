package relay

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tl-sh/tl/lib/cli"
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

func TestSizeValue(t *testing.T) {
	cases := map[string]int64{"1048576": 1 << 20, "64KiB": 64 << 10, "64mib": 64 << 20, "8MiB": 8 << 20, "2GiB": 2 << 30, "3M": 3 << 20, "10 KB": 10 << 10, "7B": 7}
	for in, want := range cases {
		var v sizeValue
		if err := v.Set(in); err != nil || int64(v) != want {
			t.Errorf("Set(%q) = %d, %v; want %d", in, v, err, want)
		}
	}
	for _, bad := range []string{"", "x", "-1", "1.5MiB", "99999999999GiB"} {
		var v sizeValue
		if err := v.Set(bad); err == nil {
			t.Errorf("Set(%q) accepted", bad)
		}
	}
	v, w := sizeValue(64<<20), sizeValue(1000)
	if v.String() != "64MiB" || w.String() != "1000" {
		t.Errorf("String = %s, %s", v.String(), w.String())
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
	url, ok := strings.CutPrefix(first, "tl-relay: listening on ")
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

// TestAuthorizeHook: the hook sees the tenant and scope before any work,
// and its HTTPError status is the answer.
func TestAuthorizeHook(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	r := startRelay(t, Config{Authorize: func(req *http.Request, tenant string, scope Scope) error {
		mu.Lock()
		seen = append(seen, tenant+" "+string(scope))
		mu.Unlock()
		switch req.Header.Get("Authorization") {
		case "":
			return &HTTPError{Status: 401, Msg: "no token", Header: http.Header{"Www-Authenticate": {"Bearer"}}}
		case "Bearer good":
			return nil
		}
		return errors.New("token without this scope")
	}})
	code, body, hdr := r.post("acme", "application/json", []byte(`{"type":"click","path":"/"}`))
	if code != 401 || body != `{"error":"no token"}`+"\n" || hdr.Get("Www-Authenticate") != "Bearer" {
		t.Errorf("no token: %d %q %v", code, body, hdr)
	}
	code, body, _ = r.post("acme", "application/json", []byte(`{"type":"click","path":"/"}`), "Authorization", "Bearer bad")
	if code != 403 || !strings.Contains(body, "without this scope") {
		t.Errorf("bad token: %d %q", code, body)
	}
	code, _, _ = r.post("acme", "application/json", []byte(`{"type":"click","path":"/"}`), "Authorization", "Bearer good")
	if code != 202 {
		t.Errorf("good token: %d", code)
	}
	res, err := http.Get(r.url + "/v1/tenants/globex/stream")
	if err != nil || res.StatusCode != 401 {
		t.Errorf("subscribe without token: %v %v", err, res)
	}
	res.Body.Close()
	mu.Lock()
	defer mu.Unlock()
	if got := strings.Join(seen, ","); got != "acme publish,acme publish,acme publish,globex subscribe" {
		t.Errorf("hook saw %s", got)
	}
}

// TestHeaderLimit: request headers over the limit are refused (431).
func TestHeaderLimit(t *testing.T) {
	r := startRelay(t, Config{})
	req, _ := http.NewRequest("GET", r.url+"/healthz", nil)
	req.Header.Set("X-Big", strings.Repeat("h", maxHeaderBytes+8192))
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("big header: %d", res.StatusCode)
	}
}
