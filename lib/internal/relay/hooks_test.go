package relay

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// Tests of the hooks a command plugs into Config.

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

// /readyz is 503 while the backing names trouble (a tenant stopped by a
// failed write), and 200 again once it does not.
func TestReadyzTrouble(t *testing.T) {
	var trouble atomic.Value
	trouble.Store("")
	r := startRelay(t, Config{Trouble: func() string { return trouble.Load().(string) }})
	readyz := func() (int, string, string) {
		rec := httptest.NewRecorder()
		r.s.ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
		return rec.Code, strings.TrimSpace(rec.Body.String()), rec.Header().Get("Retry-After")
	}
	failed := "data directory: 1 tenant(s) stopped by a failed write or fsync until restart: acme (write x: input/output error)"
	tests := []struct {
		trouble string
		code    int
		body    string
	}{
		{"", 200, "ok"},
		{failed, 503, failed},
		{"", 200, "ok"},
	}
	for _, tt := range tests {
		trouble.Store(tt.trouble)
		if code, body, _ := readyz(); code != tt.code || body != tt.body {
			t.Errorf("trouble %q: /readyz %d %q; want %d %q", tt.trouble, code, body, tt.code, tt.body)
		}
	}
}
