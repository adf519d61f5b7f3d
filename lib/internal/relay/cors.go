package relay

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/tl-sh/tl/lib/event"
)

// CORS for publishing: a web page may POST events to a tenant when
// Config.PublishOrigin allows its Origin (tl-relay's --allow-origin, and the
// origins of the tenant's ingest keys). A browser first sends a preflight
// (OPTIONS) for a POST it cannot send plainly (application/json, an
// Authorization header); a text/plain POST (sendBeacon's) goes without one,
// and the relay reads its body as NDJSON. Every answer to an allowed page
// carries Access-Control-Allow-Origin, so the page can read its 202 or its
// error; a page from any other Origin gets 403 and no CORS header, so the
// browser shows it nothing. Streams are not CORS: WebSockets do not use it,
// and they keep the relay-wide Origin rule (Config.CheckOrigin, Authorize).

// Tuning constants of the CORS answers.
const (
	// corsMaxAge is how long (seconds) a browser may cache a preflight's
	// answer: two hours, the most Chromium honours (Firefox allows a day).
	corsMaxAge = 7200
	// corsAllowHeaders are the request headers a page may send: the
	// body's type, a token, and a retry's key (tl-protocol(7)).
	corsAllowHeaders = "Content-Type, Authorization, Idempotency-Key"
	// corsExposeHeaders are the answer headers a page may read besides
	// the safelisted ones: when to retry, and how large a batch may be.
	corsExposeHeaders = "Retry-After, TL-Max-Batch"
)

// cors handles the browser's side of a request to /v1/tenants/T/events
// before anything else: it answers a preflight (OPTIONS) or refuses a page
// whose Origin may not publish to the tenant, returning true; for an
// allowed page it sets the CORS headers of whatever answer follows, and for
// a request without Origin (not a web page) it does nothing.
func (s *Server) cors(w http.ResponseWriter, r *http.Request, tenant string) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		if r.Method != http.MethodOptions {
			return false
		}
		// Not a preflight: say what the endpoint takes.
		w.Header().Set("Allow", "OPTIONS, POST")
		w.WriteHeader(http.StatusNoContent)
		return true
	}
	h := w.Header()
	h.Add("Vary", "Origin")
	if !s.pageMayPublish(r, tenant) {
		if r.Method == http.MethodOptions || s.cfg.PublishOrigin != nil {
			writeError(w, httpErrorf(http.StatusForbidden, "Origin %.100q may not publish to this tenant (see --allow-origin)", origin))
			return true
		}
		return false // no CORS policy: the Authorize hook decides
	}
	h.Set("Access-Control-Allow-Origin", origin)
	if r.Method != http.MethodOptions {
		h.Set("Access-Control-Expose-Headers", corsExposeHeaders)
		return false
	}
	h.Set("Access-Control-Allow-Methods", http.MethodPost)
	h.Set("Access-Control-Allow-Headers", corsAllowHeaders)
	h.Set("Access-Control-Max-Age", strconv.Itoa(corsMaxAge))
	if r.Header.Get("Access-Control-Request-Private-Network") == "true" {
		// Chromium asks this before a public page reaches a private or
		// loopback address; the operator allowed this origin already.
		h.Set("Access-Control-Allow-Private-Network", "true")
	}
	w.WriteHeader(http.StatusNoContent)
	return true
}

// pageMayPublish reports whether r comes from a web page (it has an Origin)
// whose origin may publish to tenant.
func (s *Server) pageMayPublish(r *http.Request, tenant string) bool {
	origin := r.Header.Get("Origin")
	return origin != "" && s.cfg.PublishOrigin != nil && event.CheckTenant(tenant) == nil &&
		s.cfg.PublishOrigin(tenant, origin)
}

// beaconType is the media type a POST is read as: text/plain (what
// sendBeacon and a fetch with a string body send, without a preflight) is
// read as NDJSON when an allowed page sent it; from anyone else it stays
// text/plain, a 415, as before.
func (s *Server) beaconType(r *http.Request, tenant, ct string) string {
	if ct == "text/plain" && s.pageMayPublish(r, tenant) {
		return "application/x-ndjson"
	}
	return ct
}

// limitPublish asks Config.LimitPublish about a POST of n events.
func (s *Server) limitPublish(r *http.Request, tenant string, n int) *HTTPError {
	if s.cfg.LimitPublish == nil {
		return nil
	}
	err := s.cfg.LimitPublish(r, tenant, n)
	if err == nil {
		return nil
	}
	var he *HTTPError
	if !errors.As(err, &he) {
		he = httpErrorf(http.StatusTooManyRequests, "%v", err)
	}
	return he
}
