package post

import (
	"math/rand/v2"
	"time"

	"github.com/tl-sh/tl/lib/client"
)

// Retry tuning (DESIGN.md: exponential backoff with full jitter, shared with
// tl-tail in lib/client).
const (
	backoffBase = 100 * time.Millisecond // the first retry waits up to this long
	backoffCap  = 10 * time.Second       // no single wait (without Retry-After) exceeds this
)

// backoff returns how long to wait before retry number n (0-based): a random
// duration in [0, min(cap, base·2^n)].
func backoff(n int) time.Duration {
	return client.Backoff{Base: backoffBase, Cap: backoffCap, Rand: rand.Int64N}.Delay(n + 1)
}

// retryable reports whether an answer with this status may succeed if the
// same batch is sent again (client.Retryable).
func retryable(status int) bool { return client.Retryable(status) }

// retryAfter parses a Retry-After header (client.RetryAfter); it returns -1
// when the header is absent or unreadable.
func retryAfter(h string, now time.Time) time.Duration {
	if d, ok := client.RetryAfter(h, now); ok {
		return d
	}
	return -1
}
