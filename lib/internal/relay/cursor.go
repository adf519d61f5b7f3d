package relay

import (
	"github.com/gorilla/websocket"

	"github.com/tl-sh/tl/lib/event"
	"github.com/tl-sh/tl/lib/internal/metrics"
	"github.com/tl-sh/tl/lib/internal/tlog"
)

// A cursor is one subscriber's place in its tenant's log and the rule of
// what it is sent next: control lines (hello, gaps), the lines that pass its
// filter up to its end (limit=N, until=SEQ), or its close. Both engines (the
// hub, hub.go; a writer goroutine, writer.go) drive one, and keep only their
// I/O: next says what to do, message builds what they read, advance records
// it. The engine serving the subscriber owns its cursor.
type cursor struct {
	log      tlog.Log
	tenant   string       // the tenant's name, for a hello
	m        *metrics.Sub // the stream's counters
	filter   filter
	controls bool   // a WebSocket: hello and gap lines; a chunked stream gets deliveries only
	seq      uint64 // the next seq to send
	epoch    string // the epoch seq counts in
	pending  []byte // control lines to send before the next lines (the hello)

	// The stream's end, when it has one (see bounded): it closes once
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
		return websocket.CloseNormalClosure, "end of stream"
	case actCloseRevoked:
		return websocket.ClosePolicyViolation, "token no longer allowed"
	}
	return websocket.CloseGoingAway, "relay shutting down"
}

// view is what next looks at in the log and the relay, taken once by the
// engine (the hub, once per round for all its subscribers).
type view struct {
	epoch    string // the log's epoch
	newest   uint64 // its newest seq
	draining bool   // the relay is shutting down:
	target   uint64 // close once everything up to this seq went out
}

// next returns what to do next, after a restart if the log's epoch changed
// (see restart). Control lines owed go out first: with the lines read,
// else on their own (before a close, or a read that may wait).
func (c *cursor) next(v view, revoked bool) action {
	if !revoked && v.epoch != c.epoch {
		v.newest = max(v.newest, c.restart(v.epoch))
	}
	a := actRead
	switch {
	case revoked:
		a = actCloseRevoked // no more lines
	case c.complete():
		a = actCloseComplete
	case v.draining && c.seq > v.target:
		a = actCloseDrained
	case c.seq > v.newest:
		a = actWait
	case tlog.IsCold(c.log, c.seq):
		a = actReadCold
	}
	if a != actRead && len(c.pending) > 0 {
		return actPending
	}
	return a
}

// previousEpocher is a log whose epoch can change under a subscriber (a
// shared broker started a new one): it tells which epoch the current one
// replaced and the newest seq known in it.
type previousEpocher interface {
	PreviousEpoch() (epoch string, newest uint64)
}

// restart follows the log into its new epoch (a shared broker lost its
// data): the cursor goes on from the new epoch's oldest line, an until of
// the old epoch means the new one's newest seq (returned), and a WebSocket
// is told as a new subscriber would be, in order:
//   - a gap with reason epoch in the OLD numbering, from its cursor to the
//     newest seq the relay knew there, when it had not received them all:
//     those events existed and will never reach it;
//   - the new hello, with the new epoch's newest seq;
//   - a gap with reason epoch in the NEW numbering, 1..oldest-1, when part
//     of it is already gone (newEpochGap).
func (c *cursor) restart(epoch string) (newest uint64) {
	oldest, newest := c.log.Bounds()
	if c.controls {
		if pe, ok := c.log.(previousEpocher); ok {
			if was, known := pe.PreviousEpoch(); was == c.epoch && c.seq <= known {
				c.pending = event.AppendGap(c.pending, c.seq, known, event.GapEpoch)
				c.m.Gap(metrics.GapEpoch, c.seq, known)
			}
		}
		c.pending = event.AppendHello(c.pending, c.tenant, epoch, newest)
		if g := newEpochGap(oldest); g != nil {
			c.pending = event.AppendGap(c.pending, g.From, g.To, event.GapEpoch)
			c.m.Gap(metrics.GapEpoch, g.From, g.To)
		}
	}
	c.epoch, c.seq = epoch, oldest
	if c.hasUntil {
		c.until = newest
	}
	return newest
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
	next     uint64
	gap      tlog.Gap
	lines    int
	n, first int
}

// any reports whether the cursor moved on or was told of a gap: there may
// be more at once.
func (d *delivery) any() bool { return d.lines > 0 || !d.gap.Empty() }

// message appends to dst the message for lines, read from the log at seq
// up to next after gap: frameHeadroom bytes of room for its framing, the
// pending control lines, the gap line (with controls) and the lines, up to
// the stream's end, that pass the filter.
func (c *cursor) message(dst []byte, lines [][]byte, next uint64, gap tlog.Gap) ([]byte, delivery) {
	lines, next = c.clip(lines, next)
	d := delivery{next: next, gap: gap, lines: len(lines)}
	msg := append(append(dst, make([]byte, frameHeadroom)...), c.pending...)
	if c.controls && !gap.Empty() {
		msg = event.AppendGap(msg, gap.From, gap.To, event.GapEvicted)
	}
	for i, l := range lines {
		if c.filter.match(l) {
			if d.n == 0 {
				d.first = i
			}
			d.n++
			msg = append(msg, l...)
		}
	}
	return msg, d
}

// advance moves the cursor past a message sent.
func (c *cursor) advance(d delivery) {
	c.pending, c.seq, c.sent = nil, d.next, c.sent+int64(d.n)
}

// delivered moves sub's cursor past a message sent and counts it.
func (sub *subscriber) delivered(d delivery) {
	sub.advance(d)
	if d.any() {
		sub.wrote(d.lines, d.n, d.first, d.next, d.gap)
	}
}

// A stream may end by itself (tl-protocol(7): limit=N, until=SEQ): the relay
// then closes it as a finished response, with 1000 on a WebSocket and by
// ending the body of a chunked one, so `curl -sN ...?last=5&limit=5` and
// `tl-tail --no-follow` end without waiting for anything.

// bounded reports whether the stream has an end, so its messages are its
// own (the hub shares a message only between unbounded subscribers).
func (c *cursor) bounded() bool { return c.limit >= 0 || c.hasUntil }

// clip cuts lines, read from the log up to next, so that the message sends
// nothing past the stream's end: no line after until, and no more
// deliveries than limit allows. It returns the lines and the seq after the
// last one kept.
func (c *cursor) clip(lines [][]byte, next uint64) ([][]byte, uint64) {
	if !c.bounded() {
		return lines, next
	}
	first := next - uint64(len(lines))
	if c.hasUntil && next > c.until+1 {
		keep := 0
		if c.until+1 > first {
			keep = int(c.until + 1 - first)
		}
		lines, next = lines[:keep], first+uint64(keep)
	}
	if c.limit >= 0 {
		left := c.limit - c.sent
		for i, l := range lines {
			if left == 0 {
				lines, next = lines[:i], first+uint64(i)
				break
			}
			if c.filter.match(l) {
				left--
			}
		}
	}
	return lines, next
}

// complete reports whether the stream reached its end: everything it owes
// was sent (the hello included).
func (c *cursor) complete() bool {
	return (c.limit >= 0 && c.sent >= c.limit) || (c.hasUntil && c.seq > c.until)
}
