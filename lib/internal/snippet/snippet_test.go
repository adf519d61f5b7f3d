package snippet

import (
	"bytes"
	"flag"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"

	"github.com/evanw/esbuild/pkg/api"
)

var update = flag.Bool("update", false, "rewrite tl.min.js from tl.js")

// maxMin is the most the minified snippet may weigh (issue 19: under 2 KB).
const maxMin = 2048

// minify is the one way tl.min.js is made from tl.js.
func minify(t *testing.T, src []byte) []byte {
	t.Helper()
	res := api.Transform(string(src), api.TransformOptions{
		Loader:            api.LoaderJS,
		Target:            api.ES2017,
		MinifyWhitespace:  true,
		MinifyIdentifiers: true,
		MinifySyntax:      true,
		LegalComments:     api.LegalCommentsNone,
		Charset:           api.CharsetUTF8,
	})
	for _, m := range res.Errors {
		t.Errorf("esbuild: %s", m.Text)
	}
	if len(res.Errors) > 0 {
		t.FailNow()
	}
	return res.Code
}

// TestMinified checks that the embedded tl.min.js is esbuild's output of
// tl.js (so nobody edits one without the other) and that it stays under
// 2 KB; with -update it rewrites tl.min.js.
func TestMinified(t *testing.T) {
	src, err := os.ReadFile("tl.js")
	if err != nil {
		t.Fatal(err)
	}
	want := minify(t, src)
	if *update {
		if err := os.WriteFile("tl.min.js", want, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("tl.min.js: %d bytes", len(want))
		return
	}
	if !bytes.Equal(Min, want) {
		t.Errorf("tl.min.js is not esbuild's output of tl.js: run go generate ./lib/internal/snippet")
	}
	if len(want) >= maxMin {
		t.Errorf("tl.min.js is %d bytes, want under %d", len(want), maxMin)
	}
	if bytes.Contains(want, []byte("import")) || bytes.Contains(want, []byte("require(")) {
		t.Errorf("tl.min.js depends on something: %s", want)
	}
}

func TestServe(t *testing.T) {
	for _, tt := range []struct {
		name, method, inm string
		status            int
		body              []byte
	}{
		{"GET", "GET", "", 200, Min},
		{"HEAD", "HEAD", "", 200, nil},
		{"current copy", "GET", etag, 304, nil},
		{"one of several tags, weak", "GET", `"x", W/` + etag, 304, nil},
		{"stale copy", "GET", `"0123"`, 200, Min},
		{"POST", "POST", "", 405, []byte(`{"error":"method not allowed, use GET"}` + "\n")},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(tt.method, Path, nil)
			if tt.inm != "" {
				r.Header.Set("If-None-Match", tt.inm)
			}
			w := httptest.NewRecorder()
			Serve(w, r)
			if w.Code != tt.status || !bytes.Equal(w.Body.Bytes(), tt.body) {
				t.Fatalf("%d %q, want %d %q", w.Code, w.Body, tt.status, tt.body)
			}
			h := w.Header()
			switch tt.status {
			case http.StatusOK:
				if h.Get("Content-Type") != "application/javascript; charset=utf-8" || h.Get("ETag") != etag ||
					h.Get("Cache-Control") != cacheControl || h.Get("Content-Length") == "" {
					t.Errorf("headers %v", h)
				}
			case http.StatusNotModified:
				if h.Get("ETag") != etag || h.Get("Cache-Control") != cacheControl {
					t.Errorf("headers %v", h)
				}
			case http.StatusMethodNotAllowed:
				if h.Get("Allow") != "GET, HEAD" {
					t.Errorf("headers %v", h)
				}
			}
		})
	}
}
