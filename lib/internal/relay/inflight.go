package relay

import (
	"net/http"

	"github.com/tl-sh/tl/lib/internal/limit"
)

// The memory of request bodies in flight. A POST reserves, from the relay's
// budget (--max-inflight-bytes) and its tenant's share of it
// (--max-tenant-inflight-bytes), what it will hold before it buffers
// anything, and more as it grows; it gives everything back when it ends,
// however it ends. What it holds at its peak, counted by ingest.cost:
//
//   - the encoded batch: about the body's size (events already carrying
//     tenant_id and timestamp come out as they went in, others gain up to
//     50 bytes), in a buffer of an eighth more when the Content-Length is
//     known, else growing by a quarter at a time;
//   - the backing's copy of the batch, made by Append while the request
//     still holds its own (about the body's size again);
//   - per event, its end offset and view in the batch (32 bytes) and the
//     `{"seq":N,` the copy adds: inflightPerEvent;
//   - the line scanner's buffer (4 KiB, up to 64 KiB for long lines) and the
//     rest of the request's state: inflightState.
//
// So a body costs about 2.5 times its size for events of 160 bytes, more
// for tiny events (8 times for 28-byte events): the reservation follows the
// real cost, so a batch of tiny events reserves more as it is read. A body
// with a Content-Length has its batch's buffer sized for it at once (no
// copies as it grows, and no garbage from them).
const (
	// inflightFactorNum/Den is what a body with a Content-Length reserves
	// at once, per byte: 11/4, a little over the 2.4 to 2.6 measured for
	// the sample events (lib/event/testdata, 162 bytes a line) with and
	// without tenant_id (TestInflightCostFactor), so that such a POST
	// takes the budget's lock once to reserve and once to release.
	inflightFactorNum, inflightFactorDen = 11, 4
	// inflightState is what any POST holds besides its batch and its
	// line scanner's buffer: its request, answer and ingest state, and the
	// slack of a small batch's buffer.
	inflightState = 12 << 10
	// inflightBase is the least a POST holds: that, and the line scanner's
	// first buffer (4 KiB).
	inflightBase = inflightState + 4<<10
	// inflightSmall is what a small body may cost beyond its share of the
	// factor: an event gaining its tenant_id and timestamp (up to 100
	// bytes), and its buffer rounded up by the allocator.
	inflightSmall = 512
	// inflightPerEvent is the bookkeeping of one event (see above): 8 + 24
	// + a `{"seq":N,` for N of up to 16 digits.
	inflightPerEvent = 56
	// inflightStep is the most a reservation grows by beyond what the
	// body needs once it outgrows it (half of what it holds, up to 256
	// KiB), so that a chunked body takes the budget's lock once per 256
	// KiB, not once per line, while a small body outgrowing its estimate
	// by a few bytes takes only a little more.
	inflightStep = 256 << 10
	// inflightChunked is what a body of unknown length (chunked) reserves
	// before its first byte is read: the cost of 64 KiB of events.
	inflightChunked = 64 << 10
)

// bodyCost is what a body of n bytes is expected to hold in flight, with
// events of a usual size.
func bodyCost(n int64) int64 {
	return inflightBase + inflightSmall + n*inflightFactorNum/inflightFactorDen
}

// DefaultMaxInflightBytes bounds the memory of request bodies in flight,
// relay-wide: 256 MiB fits on a small machine (a 1 GiB VM keeps room for the
// histories and the runtime) and holds 14 bodies of the largest size
// (--max-body 8 MiB) being read at once, or a hundred of tl-post's 2 MiB
// batches.
const DefaultMaxInflightBytes = 256 << 20

// defaultTenantInflight is a tenant's share of the budget when not given: a
// quarter, so that one tenant publishing hard (or a client with one
// tenant's token flooding it) leaves three quarters to all the others,
// while a quarter of the default (64 MiB) still holds three of the largest
// bodies, or some thirty 2 MiB batches, of one tenant at once. It is at
// least one body of maxBody, so that such a body can ever pass.
func defaultTenantInflight(total, maxBody int64) int64 {
	return min(total, max(total/4, bodyCost(maxBody)))
}

// reservation is one request's part of the budget.
type reservation struct {
	b      *limit.Budget
	tenant string
	held   int64
}

// cover makes the reservation hold at least n bytes: it reserves more (by
// inflightStep at least, when that fits) or answers why it cannot: 413 when
// this request alone would pass the tenant's share (it can never fit:
// smaller batches can), 503 with Retry-After when others hold the room now.
func (r *reservation) cover(n int64) *HTTPError {
	if n <= r.held {
		return nil
	}
	total, share := r.b.Limits()
	if n > share {
		return httpErrorf(http.StatusRequestEntityTooLarge,
			"tenant %s: the batch would hold %d bytes of memory while it is read, more than one tenant may (%d, --max-tenant-inflight-bytes); send smaller batches", r.tenant, n, share)
	}
	want := n
	if r.held > 0 {
		want = min(max(n, r.held+min(inflightStep, r.held/2)), share)
	}
	ref := r.b.Reserve(r.tenant, want-r.held)
	if ref != limit.Granted && want > n {
		want = n
		ref = r.b.Reserve(r.tenant, want-r.held)
	}
	switch ref {
	case limit.OverKey:
		return busy("tenant %s: its request bodies in flight hold its whole share of the relay's memory (%d bytes, --max-tenant-inflight-bytes); retry in %s s", r.tenant, share, retryAfter)
	case limit.OverTotal:
		return busy("the relay's memory for request bodies in flight is taken (%d bytes, --max-inflight-bytes); retry in %s s", total, retryAfter)
	}
	r.held = want
	return nil
}

// release gives back everything the request reserved; safe to call twice.
func (r *reservation) release() {
	r.b.Release(r.tenant, r.held)
	r.held = 0
}

// busy is the 503 for a body refused for memory: Retry-After, and the
// connection closed, since its body may be unread (net/http would otherwise
// read up to 256 KiB of it first, waiting on a client that may stall).
func busy(format string, a ...any) *HTTPError {
	e := httpErrorf(http.StatusServiceUnavailable, format, a...)
	e.Header = http.Header{"Retry-After": {retryAfter}, "Connection": {"close"}}
	return e
}
