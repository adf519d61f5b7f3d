package client

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Backoff computes retry waits for both clients (DESIGN.md: exponential
// backoff with full jitter): the wait before retry n (1 for the first) is
// uniform in [0, min(Cap, Base·2^(n-1))], so that many clients failing
// together (a relay restart) do not come back together.
type Backoff struct {
	Base, Cap time.Duration
	Rand      func(n int64) int64 // uniform in [0, n), n > 0: math/rand/v2.Int64N
}

// Delay returns the wait before retry n (1 for the first).
func (b Backoff) Delay(n int) time.Duration {
	ceil := b.Cap
	if shift := n - 1; shift >= 0 && shift < 62 && b.Base<<shift > 0 && b.Base<<shift < b.Cap {
		ceil = b.Base << shift
	}
	return time.Duration(b.Rand(int64(ceil) + 1))
}

// maxRetryAfter bounds what a Retry-After may ask: a relay (or a proxy in
// front of it) asking for a week is taken to mean "a long time", not obeyed.
const maxRetryAfter = 24 * time.Hour

// RetryAfter reads a Retry-After header value: delay-seconds or an HTTP
// date (a date already past means now). ok is false when the value is
// absent or unreadable.
func RetryAfter(v string, now time.Time) (d time.Duration, ok bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs < 0 {
			return 0, false
		}
		return time.Duration(min(secs, int64(maxRetryAfter/time.Second))) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return min(max(t.Sub(now), 0), maxRetryAfter), true
	}
	return 0, false
}

// Retryable reports whether an answer with this status may succeed if the
// same request is sent again: 408, 429 and the 5xx answers but 501 (the
// relay will not learn the method by being asked again).
func Retryable(status int) bool {
	switch {
	case status == http.StatusRequestTimeout, status == http.StatusTooManyRequests:
		return true
	case status == http.StatusNotImplemented:
		return false
	case status >= 500 && status <= 599:
		return true
	}
	return false
}
