package tail

import (
	"net/http"
	"time"

	"github.com/tl-sh/tl/lib/client"
)

// Reconnect waits: exponential backoff with full jitter (client.Backoff,
// shared with tl-post), so that many tails cut off together by a relay
// restart come back spread out rather than in a herd.
const (
	backoffBase = 500 * time.Millisecond // the first wait's ceiling
	backoffCap  = 30 * time.Second       // no wait is longer (the cap)
)

// backoff computes reconnect waits; its fields are client.Backoff's.
type backoff struct {
	base, cap time.Duration
	rand      func(n int64) int64 // uniform in [0, n), n > 0
}

// delay returns the wait before reconnect attempt n (1 for the first).
func (b backoff) delay(n int) time.Duration {
	return client.Backoff{Base: b.base, Cap: b.cap, Rand: b.rand}.Delay(n)
}

// retryAfter reads a Retry-After header (client.RetryAfter). It returns 0
// when absent or unreadable.
func retryAfter(h http.Header, now time.Time) time.Duration {
	d, _ := client.RetryAfter(h.Get("Retry-After"), now)
	return d
}
