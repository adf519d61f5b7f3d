package metrics

import (
	"bufio"
	"errors"
	"net"
	"net/http"
	"strconv"
)

// Unmatched is the route label of a request that matched no pattern (the
// mux answered 404 or 405 itself). Raw paths never become labels: a scanner
// walking random URLs would otherwise grow a series per path.
const Unmatched = "unmatched"

// Instrument wraps the relay's handler and counts each request when it
// ends, by route and status code. route names a request's route, from a
// small fixed set (a pattern like "POST /v1/tenants/{tenant}/events", never
// the raw path); nil takes Request.Pattern, which an *http.ServeMux sets when
// next is the mux itself. An empty route counts as Unmatched. done, if not
// nil, is called after each request with its route and status, so that the
// caller can count or log refusals in one place. A hijacked request (a
// WebSocket) counts as 101 once its connection is handed over.
func (m *Metrics) Instrument(next http.Handler, route func(*http.Request) string, done func(r *http.Request, route string, code int)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w}
		defer func() {
			var rt string
			if route != nil {
				rt = route(r)
			} else {
				rt = r.Pattern
			}
			if rt == "" {
				rt = Unmatched
			}
			code := sw.code
			if code == 0 {
				code = http.StatusOK // nothing written: net/http answers 200
			}
			m.requests.WithLabelValues(rt, statusText(code)).Inc()
			if done != nil {
				done(r, rt, code)
			}
		}()
		next.ServeHTTP(sw, r)
	})
}

// ReasonFor maps an HTTP status of a refusal to its reason label.
func ReasonFor(code int) string {
	switch code {
	case http.StatusBadRequest:
		return ReasonInvalid
	case http.StatusUnauthorized:
		return ReasonUnauthorized
	case http.StatusForbidden:
		return ReasonForbidden
	case http.StatusMethodNotAllowed:
		return ReasonMethod
	case http.StatusRequestEntityTooLarge:
		return ReasonTooLarge
	case http.StatusUnsupportedMediaType:
		return ReasonUnsupported
	case http.StatusTooManyRequests:
		return ReasonRateLimited
	case http.StatusServiceUnavailable:
		return ReasonUnavailable
	}
	return ReasonOther
}

// statusText formats a status code without allocating for the usual ones.
func statusText(code int) string {
	switch code {
	case 101:
		return "101"
	case 200:
		return "200"
	case 202:
		return "202"
	case 400:
		return "400"
	case 401:
		return "401"
	case 403:
		return "403"
	case 404:
		return "404"
	case 405:
		return "405"
	case 413:
		return "413"
	case 415:
		return "415"
	case 429:
		return "429"
	case 500:
		return "500"
	case 503:
		return "503"
	}
	return strconv.Itoa(code)
}

// statusWriter remembers the status a handler wrote. It passes Flush and
// Hijack through (streams and WebSocket upgrades need them) and Unwrap for
// http.ResponseController.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 && (code >= 200 || code == http.StatusSwitchingProtocols) {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(p)
}

func (w *statusWriter) Flush() { w.FlushError() }

// FlushError lets http.ResponseController see a failed flush (a stream
// writer learns of a gone client this way).
func (w *statusWriter) FlushError() error {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return http.NewResponseController(w.ResponseWriter).Flush()
}

func (w *statusWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	h, ok := w.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("metrics: response writer cannot hijack")
	}
	c, rw, err := h.Hijack()
	if err == nil && w.code == 0 {
		w.code = http.StatusSwitchingProtocols
	}
	return c, rw, err
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
