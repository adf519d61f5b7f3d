package auth

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func writeTokens(t *testing.T, path string, lines ...string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
}

func line(t *testing.T, token string, scopes Scope, tenants, name string) string {
	t.Helper()
	l, err := Line(token, scopes, tenants, name)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func closed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func TestStoreReload(t *testing.T) {
	const (
		keep    = "tok-keep-0123456789abcdef0123"
		revoke  = "tok-revoke-0123456789abcdef01"
		narrow  = "tok-narrow-0123456789abcdef01"
		newcome = "tok-new-0123456789abcdef01234"
	)
	path := filepath.Join(t.TempDir(), "tokens")
	writeTokens(t, path,
		line(t, keep, Subscribe, "acme", "keep"),
		line(t, revoke, Subscribe, "acme", "revoke"),
		line(t, narrow, Subscribe, "acme,beta", "narrow"))
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]ID{}
	for _, tok := range []string{keep, revoke, narrow} {
		id, err := s.Authorize(tok, "acme", Subscribe)
		if err != nil {
			t.Fatalf("before reload: %v", err)
		}
		ids[tok] = id
	}
	if _, err := s.Authorize(newcome, "acme", Subscribe); Status(err) != http.StatusUnauthorized {
		t.Fatalf("new token before reload: %v, want 401", err)
	}
	ch := s.Changed()

	// Editing the file changes nothing until Reload.
	writeTokens(t, path,
		line(t, keep, Subscribe, "acme", "keep"),
		line(t, narrow, Subscribe, "beta", "narrow"),
		line(t, newcome, Subscribe, "acme", "new"))
	if closed(ch) || !s.Allowed(ids[revoke], "acme", Subscribe) {
		t.Fatal("the table changed before Reload")
	}
	n, err := s.Reload()
	if err != nil || n != 3 {
		t.Fatalf("Reload() = %d, %v", n, err)
	}
	if !closed(ch) {
		t.Fatal("Changed() channel not closed by Reload")
	}
	if closed(s.Changed()) {
		t.Fatal("the next Changed() channel is already closed")
	}
	tests := []struct {
		tok    string
		tenant string
		want   bool
	}{
		{keep, "acme", true},
		{revoke, "acme", false},
		{narrow, "acme", false},
		{narrow, "beta", true},
		{newcome, "acme", true},
	}
	for _, tt := range tests {
		id := ids[tt.tok]
		if id == (ID{}) {
			id = ID{Digest: Hash(tt.tok)}
		}
		if got := s.Allowed(id, tt.tenant, Subscribe); got != tt.want {
			t.Errorf("after reload Allowed(%s, %s) = %v, want %v", id, tt.tenant, got, tt.want)
		}
		_, err := s.Authorize(tt.tok, tt.tenant, Subscribe)
		if (err == nil) != tt.want {
			t.Errorf("after reload Authorize(%s, %s) = %v, want allowed=%v", id, tt.tenant, err, tt.want)
		}
	}

	// A broken file keeps the old table in force and wakes nobody.
	ch = s.Changed()
	os.WriteFile(path, []byte("garbage line here\n"), 0o600)
	if _, err := s.Reload(); err == nil || !strings.Contains(err.Error(), path+":1:") {
		t.Fatalf("Reload of a broken file: %v", err)
	}
	if closed(ch) || !s.Allowed(ids[keep], "acme", Subscribe) || s.Len() != 3 {
		t.Fatal("a failed reload changed the table")
	}
	os.Remove(path)
	if _, err := s.Reload(); err == nil {
		t.Fatal("Reload of a missing file succeeded")
	}
	if !s.Allowed(ids[keep], "acme", Subscribe) {
		t.Fatal("a failed reload changed the table")
	}
}

// TestStoreConcurrent runs lookups during reloads (meaningful under -race):
// every lookup sees either the old table or the new one.
func TestStoreConcurrent(t *testing.T) {
	const tok = "tok-concurrent-0123456789abcdef"
	a, _ := Parse("a", []byte(line(t, tok, Publish, "acme", "")))
	b, _ := Parse("b", []byte(line(t, tok, Publish, "acme,beta", "")))
	s := NewStore(a)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := s.Authorize(tok, "acme", Publish); err != nil {
					t.Errorf("acme refused during reloads: %v", err)
					return
				}
				select {
				case <-s.Changed():
				case <-stop:
					return
				}
			}
		}()
	}
	for i := 0; i < 200; i++ {
		if i%2 == 0 {
			s.Replace(b)
		} else {
			s.Replace(a)
		}
	}
	close(stop)
	wg.Wait()
}

func TestNilStore(t *testing.T) {
	var s *Store
	if _, err := s.Authorize("", "acme", Publish); err != nil {
		t.Errorf("nil store refused: %v", err)
	}
	if !s.Allowed(ID{}, "acme", Admin) || s.Changed() != nil || s.Len() != 0 {
		t.Error("nil store is not allow-all")
	}
	if _, err := s.Reload(); err != nil {
		t.Error(err)
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := Open(filepath.Join(dir, "missing")); err == nil {
		t.Error("Open(missing) succeeded")
	}
	bad := filepath.Join(dir, "bad")
	os.WriteFile(bad, []byte("# ok\nsha256:00 publish acme\n"), 0o600)
	_, err := Open(bad)
	if err == nil || !strings.HasPrefix(err.Error(), bad+":2: ") {
		t.Errorf("Open(bad) = %v, want a %s:2: error", err, bad)
	}
}
