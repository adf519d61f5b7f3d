package relay

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"path"
	"slices"
	"strconv"

	"github.com/tl-sh/tl/lib/event"
)

// routeTenants lists the tenants a token may subscribe to: what tl-tail
// resolves `tl-tail 'acme-*'` against.
const routeTenants = "/v1/tenants"

// maxListed bounds the names one listing answers; a relay holds at most
// --max-tenants open, but a data directory may keep many more.
const maxListed = 10000

// listTenants serves GET /v1/tenants?match=PATTERN: the names of the
// tenants the relay knows (those it holds open, and those whose history a
// data directory keeps) that match PATTERN (a shell pattern, path.Match's
// syntax; default *) and that the request's token may subscribe to, sorted,
// as {"tenants":[...]}. A token that is not valid at all is a 401, as on a
// stream; tenants it may not read are left out, not refused.
func (s *Server) listTenants(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		e := httpErrorf(http.StatusMethodNotAllowed, "method %s not allowed, use GET", r.Method)
		e.Header = http.Header{"Allow": {"GET, HEAD"}}
		writeError(w, e)
		return
	}
	q := r.URL.Query()
	for k := range q {
		if k != "match" {
			writeError(w, httpErrorf(http.StatusBadRequest, "unknown parameter %q: the tenant list takes match", k))
			return
		}
	}
	pattern := q.Get("match")
	if pattern == "" {
		pattern = "*"
	}
	if _, err := path.Match(pattern, ""); err != nil {
		writeError(w, httpErrorf(http.StatusBadRequest, "match=%q: %v", pattern, err))
		return
	}
	if s.cfg.Authorize != nil {
		// A token that is not valid at all is refused whatever the names
		// (asked once, with a name of no tenant in particular).
		if err := s.cfg.Authorize(r, "tl-list", ScopeSubscribe); err != nil {
			var he *HTTPError
			if errors.As(err, &he) && (he.Status != http.StatusForbidden || he.Everywhere) {
				writeError(w, he)
				return
			}
		}
	}
	names := s.reg.names()
	if s.cfg.ListTenants != nil {
		names = append(names, s.cfg.ListTenants()...)
	}
	slices.Sort(names)
	names = slices.Compact(names)
	out := []string{}
	for _, n := range names {
		if ok, _ := path.Match(pattern, n); !ok || event.CheckTenant(n) != nil {
			continue
		}
		if s.cfg.Authorize != nil && s.cfg.Authorize(r, n, ScopeSubscribe) != nil {
			continue // not this token's to read: left out, not named
		}
		if out = append(out, n); len(out) == maxListed {
			break
		}
	}
	var b bytes.Buffer
	json.NewEncoder(&b).Encode(struct {
		Tenants []string `json:"tenants"`
	}{out})
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Length", strconv.Itoa(b.Len()))
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		w.Write(b.Bytes())
	}
}

// names returns the names of the tenants the registry holds.
func (g *registry) names() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	names := make([]string, 0, len(g.tenants))
	for n := range g.tenants {
		names = append(names, n)
	}
	return names
}
