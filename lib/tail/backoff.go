package tail

import (
	"net/http"
	"strconv"
	"time"
)

// Reconnect waits: exponential backoff with full jitter, the wait before
// attempt n being uniform in [0, min(backoffCap, backoffBase·2^(n-1))], so
// that many tails cut off together by a relay restart come back spread out
// rather than in a herd.
const (
	backoffBase = 500 * time.Millisecond // the first wait's ceiling
	backoffCap  = 30 * time.Second       // no wait is longer (the cap)
)

// backoff computes reconnect waits.
type backoff struct {
	base, cap time.Duration
	rand      func(n int64) int64 // uniform in [0, n), n > 0
}

// delay returns the wait before reconnect attempt n (1 for the first).
func (b backoff) delay(n int) time.Duration {
	ceil := b.cap
	if shift := n - 1; shift < 62 && b.base<<shift > 0 && b.base<<shift < b.cap {
		ceil = b.base << shift
	}
	return time.Duration(b.rand(int64(ceil) + 1))
}

// retryAfter reads a Retry-After header: delay seconds or an HTTP date.
// It returns 0 when absent or unreadable.
func retryAfter(h http.Header, now time.Time) time.Duration {
	v := h.Get("Retry-After")
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}
