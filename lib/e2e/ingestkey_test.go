package e2e

import (
	"context"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestSecurityIngestKey drives the real tl-relay with a public ingest key
// made by the real `tl-relay token --scopes ingest`: CORS preflights, a
// sendBeacon-style text/plain POST with the key in ?key=, every refusal of
// the key, the limit per client address (from 127.0.0.1 and 127.0.0.2),
// and its revocation by SIGHUP.
func TestSecurityIngestKey(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "tokens")
	relayBin := filepath.Join(binDir, "tl-relay")
	out, err := exec.Command(relayBin, "token", "--scopes", "ingest", "--tenants", "acme", "--origin", "https://shop.example", "--name", "shop", "--append", file).Output()
	if err != nil {
		t.Fatalf("tl-relay token --scopes ingest: %v", err)
	}
	key := strings.TrimSpace(string(out))
	const backend = "tok-backend-0123456789abcdef012345"
	cmd := exec.Command(relayBin, "token", "--stdin", "--scopes", "publish,subscribe", "--tenants", "*", "--name", "backend", "--append", file)
	cmd.Stdin = strings.NewReader(backend + "\n")
	if err := cmd.Run(); err != nil {
		t.Fatalf("tl-relay token --stdin: %v", err)
	}
	// A rate so slow that nothing refills during the test: outcomes
	// depend on counts only.
	p := secStartRelay(t, "--tokens", file, "--allow-origin", "acme=https://blog.example", "--ingest-rate", "0.001", "--ingest-burst", "3")
	c := secHTTPClient(nil)
	events := p.url + "/v1/tenants/acme/events"
	const shop = "https://shop.example"
	ev := []byte(`{"type":"pageview","path":"/shoes"}`)

	// Preflights: the key's origin and the tenant's --allow-origin get
	// 204; another origin 403 with no CORS header.
	for _, origin := range []string{shop, "https://blog.example", "https://evil.example"} {
		st, h, _ := secDo(t, c, "OPTIONS", events, "", "", nil, "Origin", origin, "Access-Control-Request-Method", "POST", "Access-Control-Request-Headers", "content-type")
		if origin == "https://evil.example" {
			if st != 403 || h.Get("Access-Control-Allow-Origin") != "" {
				t.Errorf("preflight from %s: %d, Allow-Origin %q; want 403 without it", origin, st, h.Get("Access-Control-Allow-Origin"))
			}
			continue
		}
		if st != 204 || h.Get("Access-Control-Allow-Origin") != origin || h.Get("Access-Control-Allow-Methods") != "POST" ||
			h.Get("Access-Control-Allow-Headers") != "Content-Type, Authorization, Idempotency-Key" || h.Get("Access-Control-Max-Age") != "7200" || h.Get("Vary") != "Origin" {
			t.Errorf("preflight from %s: %d %v", origin, st, h)
		}
	}
	// sendBeacon: text/plain, the key in the URL, from the key's page.
	st, h, body := secDo(t, c, "POST", events+"?key="+key, "", "text/plain;charset=UTF-8", ev, "Origin", shop)
	if st != 202 || h.Get("Access-Control-Allow-Origin") != shop || !strings.Contains(body, `"first_seq":1`) {
		t.Fatalf("beacon: %d %q, Allow-Origin %q", st, body, h.Get("Access-Control-Allow-Origin"))
	}
	// Every other use of the key is refused.
	for _, tt := range []struct {
		name, method, url, ctype string
		token                    string // as a bearer token
		origin                   string
		want                     int
	}{
		{"no Origin", "POST", events + "?key=" + key, "text/plain", "", "", 403},
		{"no Origin, application/json", "POST", events + "?key=" + key, "application/json", "", "", 403},
		{"another page", "POST", events + "?key=" + key, "text/plain", "", "https://evil.example", 403},
		{"the tenant's other page", "POST", events + "?key=" + key, "text/plain", "", "https://blog.example", 403},
		{"another tenant", "POST", p.url + "/v1/tenants/beta/events?key=" + key, "text/plain", "", shop, 403},
		{"stream", "GET", p.url + "/v1/tenants/acme/stream?last=1", "", key, "", 403},
		{"stream, key=", "GET", p.url + "/v1/tenants/acme/stream?key=" + key, "", "", "", 403},
		{"tenant list", "GET", p.url + "/v1/tenants", "", key, "", 403},
		{"the backend token in key=", "POST", events + "?key=" + backend, "application/json", "", "", 403},
	} {
		hdr := []string{}
		if tt.origin != "" {
			hdr = append(hdr, "Origin", tt.origin)
		}
		if st, _, body := secDo(t, c, tt.method, tt.url, tt.token, tt.ctype, ev, hdr...); st != tt.want {
			t.Errorf("%s: %d %q, want %d", tt.name, st, body, tt.want)
		}
	}
	// The limit per address: 3 events from 127.0.0.1 (one taken above),
	// then 429; 127.0.0.2 has its own bucket.
	from := func(ip string) *http.Client {
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
		tr := &http.Transport{DialContext: func(ctx context.Context, n, a string) (net.Conn, error) { return d.DialContext(ctx, n, a) }}
		t.Cleanup(tr.CloseIdleConnections)
		return &http.Client{Transport: tr, Timeout: 30 * time.Second}
	}
	one, two := from("127.0.0.1"), from("127.0.0.2")
	beacon := func(c *http.Client) (int, http.Header, string) {
		return secDo(t, c, "POST", events+"?key="+key, "", "text/plain", ev, "Origin", shop)
	}
	for i := 0; i < 2; i++ {
		if st, _, body := beacon(one); st != 202 {
			t.Fatalf("127.0.0.1 beacon %d: %d %q", i+2, st, body)
		}
	}
	if st, h, body := beacon(one); st != 429 || h.Get("Retry-After") == "" || h.Get("Access-Control-Allow-Origin") != shop {
		t.Errorf("127.0.0.1 beacon 4: %d %q (Retry-After %q), want 429", st, body, h.Get("Retry-After"))
	}
	if st, _, body := beacon(two); st != 202 {
		t.Errorf("127.0.0.2 beacon: %d %q, want 202 (its own bucket)", st, body)
	}
	// Exactly the 4 accepted events are in the history.
	if st, _, body := secDo(t, c, "GET", p.url+"/v1/tenants/acme/stream?since=0&until=now", backend, "", nil); st != 200 || strings.Count(body, `"path":"/shoes"`) != 4 {
		t.Errorf("history: %d %q, want the 4 accepted events", st, body)
	}
	// Rotation: the old key's line deleted, a new key made, SIGHUP: the
	// old key is unknown, the new one works.
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var kept []string
	for _, l := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		if !strings.Contains(l, " ingest ") {
			kept = append(kept, l)
		}
	}
	secWriteFile(t, dir, "tokens", strings.Join(kept, "\n")+"\n")
	out, err = exec.Command(relayBin, "token", "--scopes", "ingest", "--tenants", "acme", "--origin", shop, "--append", file).Output()
	if err != nil {
		t.Fatalf("tl-relay token: %v", err)
	}
	newKey := strings.TrimSpace(string(out))
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitLog(t, p, "tokens reloaded")
	if st, _, body := beacon(two); st != 401 {
		t.Errorf("revoked key: %d %q, want 401", st, body)
	}
	if st, _, body := secDo(t, two, "POST", events+"?key="+newKey, "", "text/plain", ev, "Origin", shop); st != 202 {
		t.Errorf("new key: %d %q, want 202", st, body)
	}
	for _, k := range []string{key, newKey} {
		if strings.Contains(p.log.String(), k) {
			t.Error("an ingest key appears in the relay's log")
		}
	}
}

// waitLog waits until the relay's log holds s (bounded: the relay logs it
// as soon as it acts on the signal).
func waitLog(t *testing.T, p *secProc, s string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(p.log.String(), s) {
		if time.Now().After(deadline) {
			t.Fatalf("the relay never logged %q", s)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
