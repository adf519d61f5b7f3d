package post

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/tl-sh/tl/lib/internal/client"
)

const (
	// attemptTimeout bounds one HTTP request, so a relay that accepts the
	// connection and never answers costs a retry, not the whole deadline.
	attemptTimeout = 30 * time.Second
	// maxAnswer is as much of an error answer's body as we read.
	maxAnswer = 64 << 10
)

// retryBackoff spaces the retries of a batch (DESIGN.md: exponential
// backoff with full jitter, client.Backoff): the first waits up to 100 ms,
// none (without Retry-After) more than 10 s.
var retryBackoff = client.Backoff{Base: 100 * time.Millisecond, Cap: 10 * time.Second, Rand: mrand.Int64N}

// answer is what one attempt got back.
type answer struct {
	status     int           // 0 after a transport error
	retryAfter time.Duration // -1 when absent
	msg        string        // the relay's "error", or the transport error
	line       int           // the relay's "line" (1-based in the batch), 0 if none
	maxBatch   int           // a 429's TL-Max-Batch: the batch is over the relay's burst
	cut        bool          // abandoned after Ctrl-C: it may or may not have been published
	cert       bool          // the relay's TLS certificate failed verification: final
}

func (a answer) String() string {
	if a.status == 0 {
		return a.msg
	}
	s := fmt.Sprintf("%d %s", a.status, http.StatusText(a.status))
	if a.msg != "" {
		s += ": " + a.msg
	}
	return s
}

// newKey returns a fresh Idempotency-Key: 128 random bits, so keys of
// different runs and batches never meet.
func newKey() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// attempt POSTs body once.
func (p *poster) attempt(ctx context.Context, tenant string, body []byte, key string) answer {
	limit := attemptTimeout
	if dl, ok := ctx.Deadline(); ok {
		limit = min(limit, time.Until(dl)) // the batch's --timeout comes first
	}
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.cfg.URL(client.EventsPath(tenant), nil).String(), bytes.NewReader(body))
	if err != nil {
		return answer{retryAfter: -1, msg: err.Error()}
	}
	req.Header.Set("Content-Type", "application/x-ndjson")
	req.Header.Set("Idempotency-Key", key)
	p.cfg.Authorize(req.Header)
	resp, err := p.hc.Do(req)
	if err != nil {
		return answer{retryAfter: -1, msg: transportError(err, limit), cut: p.sendCtx.Err() != nil, cert: client.IsCertError(err)}
	}
	defer resp.Body.Close()
	a := answer{status: resp.StatusCode, retryAfter: -1}
	if d, ok := client.RetryAfter(resp.Header.Get("Retry-After"), p.now()); ok {
		a.retryAfter = d
	}
	if a.status == http.StatusTooManyRequests {
		a.maxBatch, _ = strconv.Atoi(resp.Header.Get("TL-Max-Batch"))
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil && a.status == http.StatusAccepted {
		// The 202 was cut short: we cannot tell what happened, so this is
		// a transport error; the Idempotency-Key makes the retry safe.
		return answer{retryAfter: -1, msg: transportError(err, limit)}
	}
	if a.status != http.StatusAccepted {
		var e struct {
			Error string `json:"error"`
			Line  int    `json:"line"`
		}
		if json.Unmarshal(data, &e) == nil && e.Error != "" {
			a.msg, a.line = e.Error, e.Line
		} else {
			a.msg = strings.TrimSpace(string(data))
			if len(a.msg) > 200 {
				a.msg = a.msg[:200] + "..."
			}
		}
	}
	return a
}

// transportError shortens an http.Client error to its cause; limit is how
// long the attempt was given.
func transportError(err error, limit time.Duration) string {
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Sprintf("no answer within %v", limit.Round(time.Millisecond))
	}
	var ue interface{ Unwrap() error }
	if errors.As(err, &ue) {
		if inner := ue.Unwrap(); inner != nil {
			return inner.Error()
		}
	}
	return err.Error()
}

// send publishes one batch, retrying as the relay allows. It is called by the
// tenant's sender goroutine only, so at most one call per tenant runs at a
// time. It accounts for every line of the batch in the stats.
func (p *poster) send(l *lane, b *batch) {
	if msg := l.refusal; msg != "" {
		// The relay refused this tenant's batch outright; one message per
		// later batch would flood, so count them and let the end say so.
		p.stats.refused.Add(int64(len(b.refs)))
		l.refusedMore += len(b.refs)
		return
	}
	body, refs := b.body, b.refs
	for m := p.batchEvents(); len(refs) > m && !p.stopped(); {
		// Filled before the relay said how large a batch may be.
		var first []byte
		var r []ref
		first, r, body, refs = split(body, refs, m)
		p.deliver(l, first, r)
	}
	p.deliver(l, body, refs)
}

// deliver sends body (whose lines are described by refs) until it is
// published, refused or abandoned.
func (p *poster) deliver(l *lane, body []byte, refs []ref) {
	key := newKey()
	start := p.now()
	ctx := p.sendCtx
	if p.o.Timeout > 0 {
		// No attempt outlives the batch's --timeout either.
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, start.Add(p.o.Timeout))
		defer cancel()
	}
	for n := 0; ; n++ {
		if p.stopped() {
			p.stats.unsent.Add(int64(len(refs)))
			return
		}
		a := p.attempt(ctx, l.tenant, body, key)
		switch {
		case a.status == http.StatusAccepted:
			p.stats.sent.Add(int64(len(refs)))
			if !l.published {
				l.published = true
				p.stats.tenants.Add(1)
			}
			return

		case a.status == http.StatusBadRequest && a.line >= 1 && a.line <= len(refs):
			// One line is bad (the relay's rules differ from ours, say
			// an older or newer relay). Nothing was published: report
			// that line and send the others, under a new key since the
			// body changed.
			k := a.line - 1
			p.lineError(fmt.Sprintf("%s: %s", p.where(refs[k]), strings.TrimPrefix(a.msg, fmt.Sprintf("line %d: ", a.line))))
			p.stats.refused.Add(1)
			body, refs = without(body, refs, k)
			if len(refs) == 0 {
				return
			}
			key, n = newKey(), -1
			continue

		case a.status == http.StatusTooManyRequests && a.maxBatch > 0 && len(refs) > a.maxBatch:
			// The batch is over the relay's burst: it would be refused
			// for ever. Nothing of it was published (a 429), so its
			// parts are new batches, each under a key of its own; they
			// go in order, and later batches are no larger.
			p.lowerBatch(l.tenant, a.maxBatch)
			for len(refs) > 0 && !p.stopped() {
				var b []byte
				var r []ref
				b, r, body, refs = split(body, refs, min(a.maxBatch, len(refs)))
				p.deliver(l, b, r)
			}
			p.stats.unsent.Add(int64(len(refs)))
			return

		case a.status == http.StatusRequestEntityTooLarge && len(refs) > 1:
			// The relay's body limit (or its memory for one tenant's
			// bodies) is below ours: halve and go on.
			b1, r1, b2, r2 := split(body, refs, len(refs)/2)
			p.deliver(l, b1, r1)
			p.deliver(l, b2, r2)
			return

		case a.status == http.StatusRequestEntityTooLarge:
			p.lineError(fmt.Sprintf("%s: %s", p.where(refs[0]), a))
			p.stats.refused.Add(1)
			return

		case a.cert:
			// Retrying cannot make the certificate trusted.
			p.stats.unsent.Add(int64(len(refs)))
			p.fail(fmt.Errorf("%s: %s", a.msg, client.CertHint))
			return

		case a.status == http.StatusUnauthorized:
			p.con.printf("%s: the relay refused the token: %s", p.span(refs), a)
			p.stats.unsent.Add(int64(len(refs)))
			if p.cfg.Token == "" {
				p.fail(errors.New("the relay needs a token: set TL_TOKEN or use --token-file"))
			} else {
				p.fail(errors.New("the relay refused the token"))
			}
			return

		case a.status != 0 && !client.Retryable(a.status):
			p.con.printf("%s: the relay refused the batch (%s, tenant %s): %s", p.span(refs), plural(len(refs), "event", "events"), l.tenant, a)
			p.stats.refused.Add(int64(len(refs)))
			l.refusal = a.String()
			return
		}

		// Retryable: a transport error, 408, 429 or a 5xx but 501.
		if a.cut {
			p.con.printf("tl-post: %s: abandoned the batch in flight (tenant %s); it may or may not have been published", p.span(refs), l.tenant)
			p.stats.unsent.Add(int64(len(refs)))
			return
		}
		wait := a.retryAfter
		if wait < 0 {
			wait = retryBackoff.Delay(n + 1)
		}
		var why string
		elapsed := p.now().Sub(start)
		switch {
		case n >= p.o.MaxRetries:
			why = fmt.Sprintf("after %s", plural(n+1, "attempt", "attempts"))
		case p.o.Timeout > 0 && elapsed >= p.o.Timeout:
			why = fmt.Sprintf("within --timeout %v", p.o.Timeout)
		case p.o.Timeout > 0 && elapsed+wait > p.o.Timeout:
			// Waiting for a retry that the deadline would cut off is
			// pointless; say when we stopped, not just the deadline.
			why = fmt.Sprintf("within --timeout %v (gave up after %v: the next attempt was due in %v)",
				p.o.Timeout, elapsed.Round(time.Millisecond), wait.Round(time.Millisecond))
		}
		if why != "" {
			p.con.printf("%s: not published %s (tenant %s): %s", p.span(refs), why, l.tenant, a)
			p.stats.unsent.Add(int64(len(refs)))
			p.fail(fmt.Errorf("gave up on a batch for %s", l.tenant))
			return
		}
		p.stats.retried.Add(1)
		p.con.note(fmt.Sprintf("tl-post: %s: %s; retry %d in %v", l.tenant, a, n+1, wait.Round(time.Millisecond)))
		if !p.sleep(wait) {
			p.stats.unsent.Add(int64(len(refs)))
			return
		}
	}
}

// split cuts a batch after its first n lines into two, each with its refs.
func split(body []byte, refs []ref, n int) ([]byte, []ref, []byte, []ref) {
	cut := int(refs[n-1].end)
	first, second := refs[:n:n], append([]ref(nil), refs[n:]...)
	for i := range second {
		second[i].end -= int32(cut)
	}
	return body[:cut:cut], first, body[cut:], second
}

// without returns body and refs less line k.
func without(body []byte, refs []ref, k int) ([]byte, []ref) {
	from := int32(0)
	if k > 0 {
		from = refs[k-1].end
	}
	to := refs[k].end
	nb := make([]byte, 0, len(body)-int(to-from))
	nb = append(append(nb, body[:from]...), body[to:]...)
	nr := make([]ref, 0, len(refs)-1)
	nr = append(nr, refs[:k]...)
	for _, r := range refs[k+1:] {
		r.end -= to - from
		nr = append(nr, r)
	}
	return nb, nr
}

// plural says "1 event" or "1,234 events".
func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return commas(int64(n)) + " " + many
}
