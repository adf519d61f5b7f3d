package post

import (
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Retry tuning (DESIGN.md: exponential backoff with full jitter).
const (
	backoffBase = 100 * time.Millisecond // the first retry waits up to this long
	backoffCap  = 10 * time.Second       // no single wait (without Retry-After) exceeds this
)

// backoff returns how long to wait before retry number n (0-based): a random
// duration in [0, min(cap, base·2^n)] ("full jitter"), so that many clients
// failing together do not retry together.
func backoff(n int) time.Duration {
	limit := backoffCap
	if n < 20 {
		if d := backoffBase << n; d < limit {
			limit = d
		}
	}
	return rand.N(limit + 1)
}

// retryable reports whether an answer with this status may succeed if the
// same batch is sent again: 408, 429 and the 5xx answers but 501 (the relay
// will not learn the method by being asked again).
func retryable(status int) bool {
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

// retryAfter parses a Retry-After header: delay-seconds or an HTTP date.
// It returns -1 when the header is absent or unreadable.
func retryAfter(h string, now time.Time) time.Duration {
	h = strings.TrimSpace(h)
	if h == "" {
		return -1
	}
	if secs, err := strconv.ParseInt(h, 10, 64); err == nil {
		if secs < 0 {
			return -1
		}
		if secs > int64(24*time.Hour/time.Second) {
			secs = int64(24 * time.Hour / time.Second)
		}
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(h); err == nil {
		if d := t.Sub(now); d > 0 {
			return d
		}
		return 0
	}
	return -1
}
