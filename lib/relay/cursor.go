package relay

import (
	"github.com/gorilla/websocket"

	"github.com/tl-sh/tl/lib/metrics"
	"github.com/tl-sh/tl/lib/tlog"
)

// A cursor is one subscriber's place in its tenant's log and the rule of
// what it is sent next: the control lines it is owed (the hello, an epoch
// change), the lines past its place that pass its filter, up to its end
// (limit=N, until=SEQ), a gap line for what it missed, and when its stream
// closes. Both engines drive one (the hub, hub.go, for WebSockets on plain
// sockets on Linux; a writer goroutine, writer.go, for the others) and keep
// only their I/O: they ask next what to do, read the log when told, build
// the message with message and record it with advance. The engine serving
// the subscriber owns its cursor.
type cursor struct {
	log      tlog.Log
	tenant   string       // the tenant's name, for a hello
	m        *metrics.Sub // the stream's counters
	filter   filter
	controls bool   // a WebSocket: hello and gap lines; a chunked stream gets deliveries only
	seq      uint64 // the next seq to send
	epoch    string // the epoch seq counts in
	pending  []byte // control lines to send before the next lines (the hello)

	// The stream's end, when it has one (see streamend.go): it closes once
	// sent reaches limit (-1: no limit), or seq passed until.
	limit    int64
	sent     int64
	until    uint64
	hasUntil bool

	gapLog gapLog // see wrote
}

// action is what a cursor's engine does next for it.
type action uint8

const (
	actWait          action = iota // nothing to send until the log has news
	actRead                        // read the log at seq and send a message
	actReadCold                    // the same, but the read may wait on I/O (tlog.ColdReader): read where no other stream waits for it
	actPending                     // send the pending control lines on their own
	actCloseComplete               // close, 1000: the stream reached its end
	actCloseDrained                // close, 1001: the relay is shutting down and everything up to the drain target went out
	actCloseRevoked                // close, 1008: the token no longer allows the stream
)

// closeFrame returns the close code and reason of a closing action.
func (a action) closeFrame() (code int, reason string) {
	switch a {
	case actCloseComplete:
		return closeComplete, closeCompleteReason
	case actCloseRevoked:
		return websocket.ClosePolicyViolation, "token no longer allowed"
	}
	return websocket.CloseGoingAway, "relay shutting down"
}

func (a action) closes() bool { return a >= actCloseComplete }

// view is what next looks at in the log and the relay, taken once by the
// engine (the hub, once per round for all its subscribers).
type view struct {
	epoch    string // the log's epoch
	newest   uint64 // its newest seq
	draining bool   // the relay is shutting down:
	target   uint64 // close once everything up to this seq went out
}

// next returns what to do next. A change of the log's epoch (a shared
// broker lost its data) restarts the cursor first: the subscriber is told
// as a new one would be (epochChange), then follows the new epoch from its
// oldest line.
func (c *cursor) next(v view, revoked bool) action {
	if revoked {
		// The hello (if it has not gone out yet) first; no more lines.
		return c.pendingOr(actCloseRevoked)
	}
	if v.epoch != c.epoch {
		var newest uint64
		c.pending, c.seq, newest = c.epochChange(c.pending, c.log, v.epoch, c.controls)
		c.epoch = v.epoch
		if c.hasUntil {
			c.until = newest // an until of the old epoch means now
		}
		v.newest = max(v.newest, newest)
	}
	switch {
	case c.complete():
		return c.pendingOr(actCloseComplete)
	case v.draining && c.seq > v.target:
		return c.pendingOr(actCloseDrained)
	case c.seq > v.newest:
		return c.pendingOr(actWait)
	case tlog.IsCold(c.log, c.seq):
		// The hello goes out before a read that may wait.
		return c.pendingOr(actReadCold)
	}
	return actRead
}

// pendingOr returns actPending while control lines wait, else a.
func (c *cursor) pendingOr(a action) action {
	if len(c.pending) > 0 {
		return actPending
	}
	return a
}

// takePending returns a message of the pending control lines alone, after
// frameHeadroom bytes of room for its framing (see actPending).
func (c *cursor) takePending() []byte {
	msg := append(make([]byte, frameHeadroom, frameHeadroom+len(c.pending)), c.pending...)
	c.pending = nil
	return msg
}

// plain reports whether the cursor's next message is the same as any other
// plain cursor's at the same seq, so that the hub may build it once for
// all: nothing pending, no filter, no end.
func (c *cursor) plain() bool { return len(c.pending) == 0 && c.filter.all() && !c.bounded() }

// delivery is what one message carried: lines read from the log up to
// next (after gap), of which lines were kept (see clip) and n passed the
// filter, the first at index first.
type delivery struct {
	next         uint64
	gap          tlog.Gap
	lines        int
	n, first     int
	withControls bool // it carried pending control lines
}

// any reports whether the message had anything in it: the engine sends it
// and may go on at once.
func (d *delivery) any() bool { return d.lines > 0 || !d.gap.Empty() || d.withControls }

// message appends to dst the message for lines, read from the log at seq
// up to next after gap: frameHeadroom bytes of room for its framing, the
// pending control lines, the gap line (with controls) and the lines, up to
// the stream's end, that pass the filter.
func (c *cursor) message(dst []byte, lines [][]byte, next uint64, gap tlog.Gap) ([]byte, delivery) {
	lines, next = c.clip(lines, next)
	msg, n, first := appendMessage(dst, c.pending, c.controls, gap, lines, &c.filter)
	return msg, delivery{next: next, gap: gap, lines: len(lines), n: n, first: first, withControls: len(c.pending) > 0}
}

// advance moves the cursor past a message sent.
func (c *cursor) advance(d delivery) {
	c.pending = nil
	c.seq = d.next
	c.sent += int64(d.n)
}

// delivered moves sub's cursor past a message sent and counts it.
func (sub *subscriber) delivered(d delivery) {
	sub.advance(d)
	if d.lines > 0 || !d.gap.Empty() {
		sub.wrote(d.lines, d.n, d.first, d.next, d.gap)
	}
}

// appendMessage appends a message to dst: frameHeadroom bytes of room for
// its framing, the pending control lines, the gap line (with controls) and
// the lines that pass f. It returns how many lines passed, and the index of
// the first.
func appendMessage(dst, pending []byte, controls bool, gap tlog.Gap, lines [][]byte, f *filter) (msg []byte, n, first int) {
	msg = append(dst, make([]byte, frameHeadroom)...)
	msg = append(msg, pending...)
	if controls && !gap.Empty() {
		msg = appendGap(msg, gap, "evicted")
	}
	for i, l := range lines {
		if f.match(l) {
			if n == 0 {
				first = i
			}
			n++
			msg = append(msg, l...)
		}
	}
	return msg, n, first
}
