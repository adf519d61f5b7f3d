// Package snippet owns tl's browser snippet: tl.js, the script a web page
// includes to send its pageviews and clicks to a tenant, and its handler,
// which tl-relay serves at GET /v1/tl.js. The binary embeds tl.min.js,
// esbuild's minified output of the readable tl.js (snippet_test.go checks
// that the two agree; go generate rebuilds it).
package snippet

import (
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"net/http"
	"strconv"
	"strings"
)

//go:generate go test -run TestMinified -update

// Path is where the relay serves the snippet.
const Path = "/v1/tl.js"

// cacheControl lets browsers and CDNs keep the snippet an hour, then ask
// again with If-None-Match: a new relay version reaches pages within the
// hour, and an unchanged one costs a 304.
const cacheControl = "public, max-age=3600"

// Min is the minified snippet, as served.
//
//go:embed tl.min.js
var Min []byte

// etag names Min's content: a new build with the same snippet keeps it.
var etag = func() string {
	sum := sha256.Sum256(Min)
	return `"` + hex.EncodeToString(sum[:12]) + `"`
}()

// Serve answers a GET or HEAD of Path with the snippet, or 304 when the
// browser's copy (If-None-Match) is current.
func Serve(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		h.Set("Allow", "GET, HEAD")
		h.Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusMethodNotAllowed)
		w.Write([]byte(`{"error":"method not allowed, use GET"}` + "\n"))
		return
	}
	h.Set("Cache-Control", cacheControl)
	h.Set("ETag", etag)
	// Any page may include it (the events it sends are checked against
	// the tenant's origins), also one that isolates itself with COEP.
	h.Set("Cross-Origin-Resource-Policy", "cross-origin")
	h.Set("X-Content-Type-Options", "nosniff")
	if matchETag(r.Header.Get("If-None-Match")) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	h.Set("Content-Type", "application/javascript; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(len(Min)))
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		w.Write(Min)
	}
}

// matchETag reports whether an If-None-Match header names the snippet
// (RFC 9110: a list of tags, weak ones compared weakly, or "*").
func matchETag(inm string) bool {
	for _, t := range strings.Split(inm, ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if t == etag || t == "*" {
			return true
		}
	}
	return false
}
