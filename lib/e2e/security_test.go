package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/tl-sh/tl/lib/internal/auth"
	"github.com/tl-sh/tl/lib/relaycmd"
)

// secTokens are the tokens of the security tests and what each may do.
var secTokens = []struct {
	name, token, scopes, tenants string
}{
	{"pub", "tok-pub-0123456789abcdef01234567", "publish", "acme"},
	{"sub", "tok-sub-0123456789abcdef01234567", "subscribe", "acme-*"},
	{"both", "tok-both-0123456789abcdef0123456", "publish,subscribe", "*"},
	{"admin", "tok-admin-0123456789abcdef012345", "admin", "*"},
	{"all-acme", "tok-all-acme-0123456789abcdef0123", "publish,subscribe", "acme"},
}

func secToken(name string) string {
	for _, s := range secTokens {
		if s.name == name {
			return s.token
		}
	}
	panic(name)
}

// secTokenFile writes a token file granting the named tokens of secTokens.
func secTokenFile(t *testing.T, dir string, names ...string) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("# written by the security tests\n")
	for _, s := range secTokens {
		for _, n := range names {
			if n != s.name {
				continue
			}
			scopes, err := auth.ParseScopes(s.scopes)
			if err != nil {
				t.Fatal(err)
			}
			line, err := auth.Line(s.token, scopes, s.tenants, s.name)
			if err != nil {
				t.Fatal(err)
			}
			b.WriteString(line + "\n")
		}
	}
	return secWriteFile(t, dir, "tokens", b.String())
}

func secAllTokenNames() []string {
	var n []string
	for _, s := range secTokens {
		n = append(n, s.name)
	}
	return n
}

const secOneEvent = `{"type":"click","path":"/checkout"}`

// secWsURL turns the relay's http(s) URL into ws(s).
func secWsURL(base, tenant, query string) string {
	u := strings.Replace(strings.Replace(base, "https://", "wss://", 1), "http://", "ws://", 1)
	u += "/v1/tenants/" + tenant + "/stream"
	if query != "" {
		u += "?" + query
	}
	return u
}

// secDialWS opens a subscription; it returns the connection, or the HTTP
// status of a refused upgrade.
func secDialWS(t *testing.T, base, tenant, token string, hdr http.Header, tlsConf *tls.Config) (*websocket.Conn, int) {
	t.Helper()
	if hdr == nil {
		hdr = http.Header{}
	}
	if token != "" {
		hdr.Set("Authorization", "Bearer "+token)
	}
	d := websocket.Dialer{HandshakeTimeout: 30 * time.Second, TLSClientConfig: tlsConf}
	c, resp, err := d.Dial(secWsURL(base, tenant, ""), hdr)
	if err != nil {
		if resp == nil {
			t.Fatalf("dial %s: %v", tenant, err)
		}
		return nil, resp.StatusCode
	}
	return c, http.StatusSwitchingProtocols
}

// readLine reads the next line a subscriber gets, decoding it into a map.
// It fails the test on a close or after 30s.
func secReadLines(t *testing.T, c *websocket.Conn) []map[string]any {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	_, msg, err := c.ReadMessage()
	if err != nil {
		t.Fatalf("reading the stream: %v", err)
	}
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSuffix(string(msg), "\n"), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("stream line %q: %v", l, err)
		}
		out = append(out, m)
	}
	return out
}

// TestSecurityAuthMatrix drives the real relay with each token (and none,
// and unknown ones) against publish, subscribe (WebSocket and NDJSON) and
// /metrics, and checks 2xx/401/403 against what the token file grants.
func TestSecurityAuthMatrix(t *testing.T) {
	dir := t.TempDir()
	p := secStartRelay(t, "--log-level", "debug", "--tokens", secTokenFile(t, dir, secAllTokenNames()...), "--admin-listen", "127.0.0.1:0")
	c := secHTTPClient(nil)

	// grants[name] says whether that token may use scope on tenant.
	grants := func(name string, scope auth.Scope, tenant string) bool {
		for _, s := range secTokens {
			if s.name != name {
				continue
			}
			sc, _ := auth.ParseScopes(s.scopes)
			tab, err := auth.Parse("t", []byte(secMustLine(t, s.token, sc, s.tenants)))
			if err != nil {
				t.Fatal(err)
			}
			_, err = tab.Authorize(s.token, tenant, scope)
			return err == nil
		}
		return false
	}
	type who struct{ name, token string }
	var callers []who
	for _, s := range secTokens {
		callers = append(callers, who{s.name, s.token})
	}
	callers = append(callers, who{"none", ""}, who{"unknown", "tok-unknown-0123456789abcdef0123"},
		who{"hash as token", auth.Hash(secToken("both")).String()})

	for _, caller := range callers {
		for _, tenant := range []string{"acme", "acme-eu", "beta"} {
			want := func(scope auth.Scope, ok int) int {
				switch {
				case caller.name == "none" || caller.name == "unknown" || caller.name == "hash as token":
					return http.StatusUnauthorized
				case grants(caller.name, scope, tenant):
					return ok
				default:
					return http.StatusForbidden
				}
			}
			// Publish.
			st, _, body := secDo(t, c, "POST", p.url+"/v1/tenants/"+tenant+"/events", caller.token, "application/json", []byte(secOneEvent))
			if w := want(auth.Publish, http.StatusAccepted); st != w {
				t.Errorf("%s publishing to %s: %d %s, want %d", caller.name, tenant, st, body, w)
			}
			if st == 401 || st == 403 {
				var e struct{ Error string }
				if json.Unmarshal([]byte(body), &e) != nil || e.Error == "" {
					t.Errorf("%s publishing to %s: body %q is not {\"error\":...}", caller.name, tenant, body)
				}
			}
			// Subscribe over WebSocket.
			conn, st := secDialWS(t, p.url, tenant, caller.token, nil, nil)
			if w := want(auth.Subscribe, http.StatusSwitchingProtocols); st != w {
				t.Errorf("%s subscribing (WebSocket) to %s: %d, want %d", caller.name, tenant, st, w)
			}
			if conn != nil {
				if hello := secReadLines(t, conn)[0]; hello["control"] != "hello" {
					t.Errorf("first line %v, want hello", hello)
				}
				conn.Close()
			}
			// Subscribe as NDJSON: only the status matters.
			ctx, cancel := context.WithCancel(context.Background())
			req, _ := http.NewRequestWithContext(ctx, "GET", p.url+"/v1/tenants/"+tenant+"/stream", nil)
			if caller.token != "" {
				req.Header.Set("Authorization", "Bearer "+caller.token)
			}
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			if w := want(auth.Subscribe, http.StatusOK); resp.StatusCode != w {
				t.Errorf("%s subscribing (NDJSON) to %s: %d, want %d", caller.name, tenant, resp.StatusCode, w)
			}
			cancel()
			resp.Body.Close()
		}
	}
	// /metrics needs admin on every tenant.
	for _, caller := range callers {
		st, _, _ := secDo(t, c, "GET", p.url+"/metrics", caller.token, "", nil)
		want := http.StatusForbidden
		switch {
		case caller.name == "none" || caller.name == "unknown" || caller.name == "hash as token":
			want = http.StatusUnauthorized
		case grants(caller.name, auth.Admin, ""):
			want = http.StatusOK
		}
		if st != want {
			t.Errorf("%s reading /metrics: %d, want %d", caller.name, st, want)
		}
	}
	// The admin listener (pprof too) asks for the same scope.
	p.waitLog("admin on http://")
	admin := adminURLIn(t, p.log.String())
	for _, tt := range []struct {
		who  string
		want int
	}{{"none", 401}, {"unknown", 401}, {"both", 403}, {"all-acme", 403}, {"admin", 200}} {
		tok := ""
		for _, caller := range callers {
			if caller.name == tt.who {
				tok = caller.token
			}
		}
		for _, path := range []string{"/metrics", "/debug/pprof/cmdline"} {
			if st, _, _ := secDo(t, c, "GET", admin+path, tok, "", nil); st != tt.want {
				t.Errorf("%s on the admin listener's %s: %d, want %d", tt.who, path, st, tt.want)
			}
		}
	}
	_, _, metrics := secDo(t, c, "GET", p.url+"/metrics", secToken("admin"), "", nil)
	for _, caller := range callers {
		if caller.token != "" && strings.Contains(metrics, caller.token) {
			t.Errorf("the token of %s appears in /metrics", caller.name)
		}
	}
	// Health checks stay open: a load balancer has no token.
	if st, _, _ := secDo(t, c, "GET", p.url+"/healthz", "", "", nil); st != http.StatusOK {
		t.Errorf("/healthz without a token: %d", st)
	}
	// No token ever reaches the log.
	for _, caller := range callers {
		if caller.token != "" && strings.Contains(p.log.String(), caller.token) {
			t.Errorf("the token of %s appears in the relay's log", caller.name)
		}
	}
}

func secMustLine(t *testing.T, token string, scopes auth.Scope, tenants string) string {
	t.Helper()
	l, err := auth.Line(token, scopes, tenants, "")
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// TestSecurityReload checks SIGHUP: a rewritten token file takes effect
// without a restart, subscribers whose token lost the right are closed with
// 1008, the others keep receiving, and a broken file changes nothing.
func TestSecurityReload(t *testing.T) {
	dir := t.TempDir()
	// The lines come from the real `tl-relay token --stdin`.
	mk := func(token, scopes, tenants, name string) string {
		cmd := exec.Command(filepath.Join(binDir, "tl-relay"), "token", "--stdin", "--scopes", scopes, "--tenants", tenants, "--name", name)
		cmd.Stdin = strings.NewReader(token + "\n")
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("tl-relay token: %v", err)
		}
		if strings.Contains(string(out), token) {
			t.Fatal("tl-relay token printed the token into the file line")
		}
		return string(out)
	}
	const (
		keep   = "tok-keep-0123456789abcdef0123456"
		gone   = "tok-gone-0123456789abcdef0123456"
		narrow = "tok-narrow-0123456789abcdef01234"
		pub    = "tok-pub-0123456789abcdef01234567"
		later  = "tok-later-0123456789abcdef012345"
	)
	path := secWriteFile(t, dir, "tokens",
		mk(keep, "subscribe", "acme", "keep")+mk(gone, "subscribe", "acme", "gone")+
			mk(narrow, "subscribe", "acme,beta", "narrow")+mk(pub, "publish", "acme,beta", "pub"))
	p := secStartRelay(t, "--log-level", "debug", "--tokens", path)
	c := secHTTPClient(nil)

	subs := map[string]*websocket.Conn{}
	for _, s := range []struct{ key, token, tenant string }{
		{"keep@acme", keep, "acme"}, {"gone@acme", gone, "acme"},
		{"narrow@acme", narrow, "acme"}, {"narrow@beta", narrow, "beta"},
	} {
		conn, st := secDialWS(t, p.url, s.tenant, s.token, nil, nil)
		if conn == nil {
			t.Fatalf("%s: %d", s.key, st)
		}
		defer conn.Close()
		secReadLines(t, conn) // hello
		subs[s.key] = conn
	}
	// A chunked NDJSON subscriber with the token about to be revoked.
	ndReq, _ := http.NewRequest("GET", p.url+"/v1/tenants/acme/stream", nil)
	ndReq.Header.Set("Authorization", "Bearer "+gone)
	ndResp, err := c.Do(ndReq)
	if err != nil || ndResp.StatusCode != 200 {
		t.Fatalf("NDJSON subscriber: %v %v", ndResp, err)
	}
	defer ndResp.Body.Close()
	ndEnded := make(chan error, 1)
	go func() {
		_, err := io.Copy(io.Discard, ndResp.Body)
		ndEnded <- err
	}()
	if st, _, _ := secDo(t, c, "POST", p.url+"/v1/tenants/acme/events", later, "application/json", []byte(secOneEvent)); st != 401 {
		t.Fatalf("a token not yet in the file: %d, want 401", st)
	}

	os.WriteFile(path, []byte(mk(keep, "subscribe", "acme", "keep")+mk(narrow, "subscribe", "beta", "narrow")+
		mk(pub, "publish", "acme,beta", "pub")+mk(later, "publish", "acme", "later")), 0o600)
	p.signal(syscall.SIGHUP)

	for _, key := range []string{"gone@acme", "narrow@acme"} {
		conn := subs[key]
		conn.SetReadDeadline(time.Now().Add(30 * time.Second))
		for {
			_, _, err := conn.ReadMessage()
			if err == nil {
				continue // a delivery sent before the reload
			}
			if !websocket.IsCloseError(err, websocket.ClosePolicyViolation) {
				t.Errorf("%s after revocation: %v, want close 1008", key, err)
			}
			break
		}
	}
	select {
	case err := <-ndEnded:
		if err != nil {
			t.Errorf("the revoked NDJSON stream ended with %v, want a clean end", err)
		}
	case <-time.After(30 * time.Second):
		t.Error("the revoked NDJSON stream did not end")
	}
	// Publishing after the reload reaches the subscribers still allowed.
	for _, tenant := range []string{"acme", "beta"} {
		if st, _, body := secDo(t, c, "POST", p.url+"/v1/tenants/"+tenant+"/events", pub, "application/json", []byte(secOneEvent)); st != 202 {
			t.Fatalf("publish to %s after reload: %d %s", tenant, st, body)
		}
	}
	for _, key := range []string{"keep@acme", "narrow@beta"} {
		lines := secReadLines(t, subs[key])
		if lines[0]["path"] != "/checkout" {
			t.Errorf("%s after reload got %v, want the event", key, lines)
		}
	}
	if st, _, _ := secDo(t, c, "POST", p.url+"/v1/tenants/acme/events", later, "application/json", []byte(secOneEvent)); st != 202 {
		t.Errorf("a token added by the reload: %d, want 202", st)
	}
	if _, st := secDialWS(t, p.url, "acme", gone, nil, nil); st != 401 {
		t.Errorf("a revoked token subscribing again: %d, want 401", st)
	}

	// A broken file is refused: the old table stays, nobody is closed.
	os.WriteFile(path, []byte("this is not a token line\n"), 0o600)
	p.signal(syscall.SIGHUP)
	p.waitLog(path + ":1:")
	if st, _, _ := secDo(t, c, "POST", p.url+"/v1/tenants/acme/events", later, "application/json", []byte(secOneEvent)); st != 202 {
		t.Errorf("after a failed reload: %d, want 202 (old table)", st)
	}
	if lines := secReadLines(t, subs["keep@acme"]); lines[0]["path"] != "/checkout" {
		t.Errorf("keep@acme after a failed reload got %v", lines)
	}
	if !p.alive() {
		t.Fatal("the relay died on SIGHUP")
	}
	for _, tok := range []string{keep, gone, narrow, pub, later} {
		if strings.Contains(p.log.String(), tok) {
			t.Errorf("a token appears in the relay's log")
		}
	}
}

// TestSecurityListen checks the refusal to serve a public address without
// tokens, and that --tokens or --insecure lift it.
func TestSecurityListen(t *testing.T) {
	dir := t.TempDir()
	tokens := secTokenFile(t, dir, "both")
	tests := []struct {
		name string
		args []string
		ok   bool
	}{
		{"loopback", []string{"--listen", "127.0.0.1:0"}, true},
		{"all interfaces", []string{"--listen", "0.0.0.0:0"}, false},
		{"empty host", []string{"--listen", ":0"}, false},
		{"all interfaces with tokens", []string{"--listen", "0.0.0.0:0", "--tokens", tokens}, true},
		{"all interfaces, insecure", []string{"--listen", "0.0.0.0:0", "--insecure"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.ok {
				p := secStartRelay(t, tt.args...)
				p.signal(syscall.SIGTERM)
				<-p.done
				return
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, filepath.Join(binDir, "tl-relay"), tt.args...)
			out, err := cmd.CombinedOutput()
			if cmd.ProcessState == nil || cmd.ProcessState.ExitCode() != 2 {
				t.Fatalf("tl-relay %v: %v, want exit status 2\n%s", tt.args, err, out)
			}
			for _, w := range []string{"--tokens", "--insecure", "refusing to listen"} {
				if !strings.Contains(string(out), w) {
					t.Errorf("the error %q does not say %q", out, w)
				}
			}
		})
	}
}

// TestSecurityOrigin checks the WebSocket Origin policy.
func TestSecurityOrigin(t *testing.T) {
	p := secStartRelay(t, "--allow-origin", "https://dash.example.com")
	u := strings.TrimPrefix(p.url, "http://")
	tests := []struct {
		origin string
		want   int
	}{
		{"", http.StatusSwitchingProtocols}, // the CLI clients
		{"https://dash.example.com", http.StatusSwitchingProtocols},
		{"https://evil.example.com", http.StatusForbidden},
		{"http://" + u, http.StatusForbidden}, // same host (DNS rebinding)
		{"null", http.StatusForbidden},
	}
	for _, tt := range tests {
		h := http.Header{}
		if tt.origin != "" {
			h.Set("Origin", tt.origin)
		}
		conn, st := secDialWS(t, p.url, "acme", "", h, nil)
		if st != tt.want {
			t.Errorf("Origin %q: %d, want %d", tt.origin, st, tt.want)
		}
		if conn != nil {
			conn.Close()
		}
	}
	// Without --allow-origin every Origin is refused and the CLI still works.
	p2 := secStartRelay(t)
	h := http.Header{}
	h.Set("Origin", "https://dash.example.com")
	if _, st := secDialWS(t, p2.url, "acme", "", h, nil); st != http.StatusForbidden {
		t.Errorf("no --allow-origin, Origin set: %d, want 403", st)
	}
	if conn, st := secDialWS(t, p2.url, "acme", "", nil, nil); conn == nil {
		t.Errorf("no --allow-origin, no Origin: %d, want 101", st)
	} else {
		conn.Close()
	}
	// The Origin check covers publishing and chunked streams too, and a
	// loopback relay without tokens refuses a Host that is not loopback
	// (a page whose name was rebound to 127.0.0.1 sends its own name).
	// With --tokens the Host is free (a proxy may set it).
	p3 := secStartRelay(t, "--tokens", secTokenFile(t, t.TempDir(), "both"))
	c := secHTTPClient(nil)
	port := p2.url[strings.LastIndex(p2.url, ":"):]
	tests2 := []struct {
		name   string
		base   string
		method string
		path   string
		token  string
		hdr    []string
		want   int
	}{
		{"publish with a foreign Origin", p2.url, "POST", "/v1/tenants/acme/events", "", []string{"Origin", "https://evil.example"}, 403},
		{"publish without Origin", p2.url, "POST", "/v1/tenants/acme/events", "", nil, 202},
		{"NDJSON stream with a foreign Origin", p2.url, "GET", "/v1/tenants/acme/stream?last=0", "", []string{"Origin", "https://evil.example"}, 403},
		{"rebound Host, no tokens", p2.url, "POST", "/v1/tenants/acme/events", "", []string{"Host", "evil.example" + port}, 403},
		{"localhost Host, no tokens", p2.url, "POST", "/v1/tenants/acme/events", "", []string{"Host", "localhost" + port}, 202},
		{"any Host with tokens", p3.url, "POST", "/v1/tenants/acme/events", secToken("both"), []string{"Host", "relay.example.com"}, 202},
	}
	for _, tt := range tests2 {
		if tt.method == "GET" {
			// A refused stream answers at once; an accepted one would not end.
			req, _ := http.NewRequest("GET", tt.base+tt.path, nil)
			req.Header.Set(tt.hdr[0], tt.hdr[1])
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.want {
				t.Errorf("%s: %d, want %d", tt.name, resp.StatusCode, tt.want)
			}
			continue
		}
		req, _ := http.NewRequest(tt.method, tt.base+tt.path, strings.NewReader(secOneEvent))
		req.Header.Set("Content-Type", "application/json")
		if tt.token != "" {
			req.Header.Set("Authorization", "Bearer "+tt.token)
		}
		if len(tt.hdr) == 2 {
			if tt.hdr[0] == "Host" {
				req.Host = tt.hdr[1]
			} else {
				req.Header.Set(tt.hdr[0], tt.hdr[1])
			}
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tt.want {
			t.Errorf("%s: %d, want %d", tt.name, resp.StatusCode, tt.want)
		}
	}
}

// TestSecurityTLS serves over TLS with a CA made by the test: a client that
// trusts the CA publishes and subscribes over https and wss; one that does
// not is refused by its own TLS check; plain http to the TLS port fails.
func TestSecurityTLS(t *testing.T) {
	dir := t.TempDir()
	ca, cert, key, err := writeCerts(dir)
	if err != nil {
		t.Fatal(err)
	}
	p := secStartRelay(t, "--tls-cert", cert, "--tls-key", key, "--tokens", secTokenFile(t, dir, "both", "admin"),
		"--admin-listen", "127.0.0.1:0", "--header-timeout", "1s")
	if !strings.HasPrefix(p.url, "https://") {
		t.Fatalf("relay URL %q, want https", p.url)
	}
	pem, _ := os.ReadFile(ca)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	conf := &tls.Config{RootCAs: pool}

	conn, st := secDialWS(t, p.url, "acme", secToken("both"), nil, conf)
	if conn == nil {
		t.Fatalf("wss dial: %d", st)
	}
	defer conn.Close()
	secReadLines(t, conn)
	c := secHTTPClient(conf)
	if st, _, body := secDo(t, c, "POST", p.url+"/v1/tenants/acme/events", secToken("both"), "application/json", []byte(secOneEvent)); st != 202 {
		t.Fatalf("https publish: %d %s", st, body)
	}
	if l := secReadLines(t, conn); l[0]["path"] != "/checkout" {
		t.Fatalf("wss got %v", l)
	}
	// The admin listener serves TLS too.
	p.waitLog("admin on https://")
	admin := adminURLIn(t, p.log.String())
	if st, _, body := secDo(t, c, "GET", admin+"/metrics", secToken("admin"), "", nil); st != 200 {
		t.Errorf("https admin /metrics: %d %s", st, body)
	}
	// A client without the CA refuses the relay's certificate.
	if _, err := secHTTPClient(nil).Get(p.url + "/healthz"); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("a client without the CA: %v, want a certificate error", err)
	}
	// A connection that never starts its TLS handshake is closed after
	// --header-timeout (slowloris on the handshake).
	raw, err := net.Dial("tcp", strings.TrimPrefix(p.url, "https://"))
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if ans := secAnswerOf(raw); ans != "closed" && ans != "reset" {
		t.Errorf("a connection silent before its TLS handshake: %s, want closed", ans)
	}
	// Plain HTTP to the TLS port gets no service.
	plain := "http://" + strings.TrimPrefix(p.url, "https://")
	if resp, err := secHTTPClient(nil).Get(plain + "/healthz"); err == nil {
		if resp.StatusCode == 200 {
			t.Errorf("plain http to the TLS port answered 200")
		}
		resp.Body.Close()
	}

	// SIGHUP reloads the certificate: after a rotation to one from another
	// CA, new connections get the new one; the live wss stream goes on.
	dir2 := t.TempDir()
	ca2, cert2, key2, err := writeCerts(dir2)
	if err != nil {
		t.Fatal(err)
	}
	for src, dst := range map[string]string{cert2: cert, key2: key} {
		data, _ := os.ReadFile(src)
		if err := os.WriteFile(dst, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	p.signal(syscall.SIGHUP)
	p.waitLog("TLS certificate reloaded")
	pem2, _ := os.ReadFile(ca2)
	pool2 := x509.NewCertPool()
	pool2.AppendCertsFromPEM(pem2)
	if st, _, _ := secDo(t, secHTTPClient(&tls.Config{RootCAs: pool2}), "GET", p.url+"/healthz", "", "", nil); st != 200 {
		t.Errorf("after rotation, a client trusting the new CA: %d", st)
	}
	if _, err := secHTTPClient(conf).Get(p.url + "/healthz"); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("after rotation, a client trusting only the old CA: %v, want a certificate error", err)
	}
	if st, _, body := secDo(t, secHTTPClient(&tls.Config{RootCAs: pool2}), "POST", p.url+"/v1/tenants/acme/events", secToken("both"), "application/json", []byte(secOneEvent)); st != 202 {
		t.Fatalf("publish after rotation: %d %s", st, body)
	}
	if l := secReadLines(t, conn); l[0]["path"] != "/checkout" {
		t.Errorf("the wss stream opened before the rotation got %v", l)
	}
}

// adminURLIn returns the URL of the admin line in a relay's log.
func adminURLIn(t *testing.T, log string) string {
	t.Helper()
	for _, line := range strings.Split(log, "\n") {
		if u, ok := relaycmd.AdminURL(line); ok {
			return u
		}
	}
	t.Fatalf("no admin line in:\n%s", log)
	return ""
}
