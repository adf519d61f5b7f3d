package post

import (
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tl-sh/tl/lib/ndjson"
)

// TestByteOrderMark: a UTF-8 BOM at the start of a file or of stdin is
// skipped, as jq does; line 1 is published.
func TestByteOrderMark(t *testing.T) {
	f := newFakeRelay()
	srv := httptest.NewServer(f)
	defer srv.Close()
	file := filepath.Join(t.TempDir(), "bom.ndjson")
	os.WriteFile(file, []byte(ndjson.BOM+genEvents(2, "acme")), 0o644)
	r := runPost(t, nil, srv.URL, strings.NewReader(ndjson.BOM+genEvents(3, "acme")), "-", file)
	events, _, _, _ := f.snapshot()
	if got := paths(events["acme"]); r.code != 0 || !slices.Equal(got, []string{"/e/0", "/e/1", "/e/2", "/e/0", "/e/1"}) {
		t.Fatalf("exit %d, published %q; stderr:\n%s", r.code, got, r.stderr)
	}
}
