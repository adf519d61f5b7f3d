package relay

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tl-sh/tl/lib/internal/limit"
)

// TestRateCountsEvents: --rate-limit counts a batch's events. A batch over
// the burst is refused with 429, TL-Max-Batch and a body saying so, even on
// a full bucket, and spends nothing; a batch within the burst but over the
// tokens left gets 429 with Retry-After from the rate.
func TestRateCountsEvents(t *testing.T) {
	// 1 event/s, burst 100: nothing here depends on the machine's speed
	// (the bucket gains one token a second).
	r := startRelay(t, Config{PublishRate: limit.NewRate(1, 100)})
	st, h, msg := postAnswer(t, r, "a", clicks(1, 50_000))
	if st != 429 || h.Get("TL-Max-Batch") != "100" || h.Get("Retry-After") == "" ||
		!strings.Contains(msg, "the batch exceeds the burst of 100 events") {
		t.Fatalf("50,000 events at a burst of 100: %d TL-Max-Batch %q Retry-After %q %q", st, h.Get("TL-Max-Batch"), h.Get("Retry-After"), msg)
	}
	waitInflight(t, r.s.inflight, "", "the refused batch released", released)
	if st, _, msg := postAnswer(t, r, "a", clicks(1, 101)); st != 429 || !strings.Contains(msg, "exceeds the burst") {
		t.Errorf("101 events: %d %q", st, msg)
	}
	if st, _, msg := postAnswer(t, r, "a", clicks(1, 100)); st != 202 {
		t.Fatalf("exactly the burst, after the refusals: %d %q", st, msg)
	}
	// The bucket is empty: refused before the body is read, until a token
	// is back (a second).
	st, h, msg = postAnswer(t, r, "a", clicks(1, 60))
	if st != 429 || h.Get("TL-Max-Batch") != "" || strings.Contains(msg, "burst") || h.Get("Retry-After") != "1" {
		t.Errorf("60 events on an empty bucket: %d TL-Max-Batch %q Retry-After %q %q; want a plain 429, 1 s", st, h.Get("TL-Max-Batch"), h.Get("Retry-After"), msg)
	}
	// Once a few tokens are back, the batch is read and counted: 60 events
	// need tens of seconds more at 1/s.
	time.Sleep(1100 * time.Millisecond)
	st, h, msg = postAnswer(t, r, "a", clicks(1, 60))
	ra, _ := strconv.Atoi(h.Get("Retry-After"))
	if st != 429 || h.Get("TL-Max-Batch") != "" || ra < 10 || ra > 60 {
		t.Errorf("60 events with a few tokens at 1/s: %d Retry-After %q %q; want 429 and about 58 s", st, h.Get("Retry-After"), msg)
	}
}
