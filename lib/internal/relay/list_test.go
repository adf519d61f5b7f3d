package relay

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tl-sh/tl/lib/internal/auth"
	"github.com/tl-sh/tl/lib/internal/disklog"
	"github.com/tl-sh/tl/lib/internal/tlog"
)

// getTenants GETs /v1/tenants with the query and token, and returns the
// status and the names (or the body, on an error).
func (r *testRelay) getTenants(query, token string) (int, []string, string) {
	r.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, r.url+"/v1/tenants?"+query, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		r.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	var v struct {
		Tenants []string `json:"tenants"`
	}
	if res.StatusCode == 200 {
		if err := json.Unmarshal(b, &v); err != nil || v.Tenants == nil {
			r.t.Fatalf("body %q: %v", b, err)
		}
	}
	return res.StatusCode, v.Tenants, string(b)
}

// TestListTenants: GET /v1/tenants?match=PATTERN answers the tenants the
// relay knows that match and that the token may subscribe to, sorted; a
// token that is not valid is a 401, a bad pattern or parameter a 400.
func TestListTenants(t *testing.T) {
	const reader, other = "tok-reader-0123456789abcdef012345", "tok-other-0123456789abcdef0123456"
	path := filepath.Join(t.TempDir(), "tokens")
	var lines []string
	for _, g := range []struct {
		tok     string
		scope   auth.Scope
		tenants string
	}{{reader, auth.Subscribe, "acme-*"}, {reader, auth.Publish, "*"}, {other, auth.Publish | auth.Subscribe, "globex"}} {
		l, err := auth.Line(g.tok, g.scope, g.tenants, "t")
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, l)
	}
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var cfg Config
	installAccess(t, &cfg, path, nil, DefaultIngestRate, DefaultIngestBurst)
	r := startRelay(t, cfg)
	for _, tenant := range []string{"acme-us", "acme-eu", "acme", "globex"} {
		if code, b, _ := r.post(tenant, "application/x-ndjson", clicks(1, 1), "Authorization", "Bearer "+reader); code != 202 {
			t.Fatalf("post %s: %d %s", tenant, code, b)
		}
	}
	cases := []struct {
		query, token string
		code         int
		want         string
	}{
		{"match=acme-*", reader, 200, "[acme-eu acme-us]"},
		{"", reader, 200, "[acme-eu acme-us]"}, // acme and globex: publish only
		{"match=acme", reader, 200, "[]"},
		{"match=*", other, 200, "[globex]"},
		{"match=acme-e?", reader, 200, "[acme-eu]"},
		{"match=*", "tok-nobody-0123456789abcdef0123456", 401, ""},
		{"match=*", "", 401, ""},
		{"match=[", reader, 400, "syntax error in pattern"},
		{"pattern=*", reader, 400, `unknown parameter \"pattern\"`},
	}
	for _, c := range cases {
		code, names, body := r.getTenants(c.query, c.token)
		if code != c.code {
			t.Errorf("?%s: %d %s, want %d", c.query, code, body, c.code)
			continue
		}
		if code == 200 && strings.Join(strings.Fields(strings.Trim(c.want, "[]")), " ") != strings.Join(names, " ") {
			t.Errorf("?%s: %v, want %s", c.query, names, c.want)
		}
		if code != 200 && !strings.Contains(body, c.want) {
			t.Errorf("?%s: body %s, want %q in it", c.query, body, c.want)
		}
	}
}

// TestListTenantsOnDisk: with a data directory, tenants whose history is
// on disk are listed though the relay holds none of them open.
func TestListTenantsOnDisk(t *testing.T) {
	dir := t.TempDir()
	ds, err := disklog.OpenTL(dir, disklog.TLOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer ds.Close()
	cfg := Config{ListTenants: ds.Tenants, OpenLog: func(tenant string) (tlog.Log, error) { return ds.Log(tenant) }}
	r := startRelay(t, cfg)
	r.mustPost("acme-1", clicks(1, 1))
	r.mustPost("acme-2", clicks(1, 1))
	if n := r.s.reg.dropIdle(time.Now().Add(time.Hour)); n != 2 {
		t.Fatalf("dropped %d idle tenants, want 2", n)
	}
	if _, names, _ := r.getTenants("match=acme-*", ""); strings.Join(names, " ") != "acme-1 acme-2" {
		t.Fatalf("names %v", names)
	}
}
