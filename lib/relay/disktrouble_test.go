package relay

import (
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

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
	failed := diskTrouble(map[string]string{"acme": "write x: input/output error"})
	tests := []struct {
		trouble string
		code    int
		body    string
	}{
		{"", 200, "ok"},
		{failed, 503, "data directory: 1 tenant(s) stopped by a failed write or fsync until restart: acme (write x: input/output error)"},
		{"", 200, "ok"},
	}
	for _, tt := range tests {
		trouble.Store(tt.trouble)
		if code, body, _ := readyz(); code != tt.code || body != tt.body {
			t.Errorf("trouble %q: /readyz %d %q; want %d %q", tt.trouble, code, body, tt.code, tt.body)
		}
	}
}

func TestDiskTrouble(t *testing.T) {
	tests := []struct {
		failed map[string]string
		want   string
	}{
		{nil, ""},
		{map[string]string{"b": "e2", "a": "e1"}, "data directory: 2 tenant(s) stopped by a failed write or fsync until restart: a (e1); b (e2)"},
		{map[string]string{"d": "4", "c": "3", "b": "2", "a": "1", "e": "5"},
			"data directory: 5 tenant(s) stopped by a failed write or fsync until restart: a (1); b (2); c (3); and 2 more"},
	}
	for _, tt := range tests {
		if got := diskTrouble(tt.failed); got != tt.want {
			t.Errorf("diskTrouble(%v) = %q, want %q", tt.failed, got, tt.want)
		}
	}
}
