package relay

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/tl-sh/tl/lib/internal/metrics"
	"github.com/tl-sh/tl/lib/internal/snippet"
	"github.com/tl-sh/tl/lib/internal/tlog"
)

// The routes of tl-protocol(7), as the route label of the request metrics.
const (
	routeEvents  = "/v1/tenants/{tenant}/events"
	routeStream  = "/v1/tenants/{tenant}/stream"
	routeMetrics = "/metrics"
)

// routeOf names r's route from the fixed set above (plus /healthz and
// /readyz), never the raw path, so that the label stays bounded whatever
// clients ask for; "" is unmatched.
func routeOf(r *http.Request) string {
	p := r.URL.Path
	switch p {
	case "/healthz", "/readyz", routeMetrics, snippet.Path:
		return p
	}
	if rest, ok := strings.CutPrefix(p, "/v1/tenants/"); ok {
		switch {
		case strings.HasSuffix(rest, "/events"):
			return routeEvents
		case strings.HasSuffix(rest, "/stream"):
			return routeStream
		}
	}
	return ""
}

// tenantOf returns the tenant named in r's path, for logs ("" when none);
// an unchecked name is cut short, since the log is no place for junk.
func tenantOf(r *http.Request) string {
	rest, ok := strings.CutPrefix(r.URL.Path, "/v1/tenants/")
	i := strings.LastIndexByte(rest, '/')
	if !ok || i < 0 {
		return ""
	}
	if name := rest[:i]; len(name) <= 64 {
		return name
	}
	return rest[:64] + "..."
}

// reasonKey is the context key of a request's *reasonNote.
type reasonKey struct{}

// reasonNote carries a refusal reason finer than the status (a subscriber
// limit rather than an outage, both 503) from the handler to ended. Both
// run on the request's goroutine, one after the other: no lock.
type reasonNote struct{ reason string }

// withReasonNote gives each request a reasonNote; it wraps the metrics'
// Instrument, which passes the same request to the handler and to ended.
func withReasonNote(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), reasonKey{}, &reasonNote{})))
	})
}

// noteReason records reason (when not "") for ended.
func noteReason(r *http.Request, reason string) {
	if n, _ := r.Context().Value(reasonKey{}).(*reasonNote); n != nil && reason != "" {
		n.reason = reason
	}
}

// ended is called when a request ends, with its route and status: it counts
// refusals by reason, and logs a refused subscriber (one line per refused
// connection, never per event).
func (s *Server) ended(r *http.Request, route string, code int) {
	if code < 400 {
		return
	}
	switch route {
	case routeEvents:
		s.metrics.PublishRefused(metrics.ReasonFor(code))
	case routeStream:
		reason := metrics.ReasonFor(code)
		if n, _ := r.Context().Value(reasonKey{}).(*reasonNote); n != nil && n.reason != "" {
			reason = n.reason
		}
		s.metrics.SubscribeRefused(reason)
		s.log.Info("subscriber refused", "tenant", tenantOf(r), "remote", r.RemoteAddr, "status", code, "reason", reason)
	}
}

// authorizeAdmin checks the admin scope (on all tenants) when the relay has
// an Authorize hook; with none, everything is allowed, as for the tenants.
func (s *Server) authorizeAdmin(w http.ResponseWriter, r *http.Request) bool {
	if s.cfg.Authorize == nil {
		return true
	}
	if err := s.cfg.Authorize(r, "", ScopeAdmin); err != nil {
		var he *HTTPError
		if !errors.As(err, &he) {
			he = httpErrorf(http.StatusForbidden, "%v", err)
		}
		writeError(w, he)
		return false
	}
	return true
}

// serveMetrics serves GET /metrics (tl-protocol(7): behind the admin scope).
func (s *Server) serveMetrics(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		e := httpErrorf(http.StatusMethodNotAllowed, "method %s not allowed, use GET", r.Method)
		e.Header = http.Header{"Allow": {"GET, HEAD"}}
		writeError(w, e)
		return
	}
	if s.authorizeAdmin(w, r) {
		s.metricsHandler.ServeHTTP(w, r)
	}
}

// AdminHandler serves what --admin-listen exposes: /metrics and the Go
// profiler under /debug/pprof/, behind the admin scope like /metrics.
func (s *Server) AdminHandler() http.Handler {
	h := s.metrics.AdminHandler()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.authorizeAdmin(w, r) {
			h.ServeHTTP(w, r)
		}
	})
}

// Metrics returns the relay's metrics.
func (s *Server) Metrics() *metrics.Metrics { return s.metrics }

// gapLogEvery is how often a subscriber that keeps falling out of the
// history is logged again: the first time at once, then at most this often,
// with what it lost since, so that a stuck subscriber cannot turn into a log
// line per message.
const gapLogEvery = time.Minute

// gapLog is a subscriber's record of the gaps not yet logged; its writer
// owns it.
type gapLog struct {
	last    time.Time // when the last line was logged
	gaps    int       // gaps since then
	dropped uint64    // events lost in them
}

// wrote records a message sent to the subscriber: of the nlines lines read
// (seqs next-nlines to next-1), after gap (if any), n passed its filter and
// were sent, the first of them the line at index first.
func (sub *subscriber) wrote(nlines, n, first int, next uint64, gap tlog.Gap) {
	if !gap.Empty() {
		sub.m.Gap(metrics.GapEvicted, gap.From, gap.To)
		g := &sub.gapLog
		g.gaps++
		g.dropped += gap.To - gap.From + 1
		if now := time.Now(); g.last.IsZero() || now.Sub(g.last) >= gapLogEvery {
			sub.s.log.Warn("slow subscriber fell out of the history", "tenant", sub.t.name, "remote", sub.remote,
				"from_seq", gap.From, "to_seq", gap.To, "gaps", g.gaps, "dropped", g.dropped)
			*g = gapLog{last: now}
		}
	}
	var firstSeq uint64
	if n > 0 {
		firstSeq = next - uint64(nlines) + uint64(first)
	}
	sub.m.Wrote(n, firstSeq, next-1)
}
