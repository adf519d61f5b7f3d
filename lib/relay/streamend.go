package relay

import "github.com/gorilla/websocket"

// A stream may end by itself (tl-protocol(7): limit=N, until=SEQ): the relay
// then closes it as a finished response, with 1000 on a WebSocket and by
// ending the body of a chunked one, so `curl -sN ...?last=5&limit=5` and
// `tl-tail --no-follow` end without waiting for anything.

// closeComplete is the close a WebSocket gets when its stream ended by
// itself.
const (
	closeComplete       = websocket.CloseNormalClosure
	closeCompleteReason = "end of stream"
)

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
