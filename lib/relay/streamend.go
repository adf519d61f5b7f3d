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
func (sub *subscriber) bounded() bool { return sub.limit >= 0 || sub.hasUntil }

// clip cuts lines, read from the log up to next, so that the message sends
// nothing past the stream's end: no line after until, and no more
// deliveries than limit allows. It returns the lines and the seq after the
// last one kept.
func (sub *subscriber) clip(lines [][]byte, next uint64) ([][]byte, uint64) {
	if !sub.bounded() {
		return lines, next
	}
	first := next - uint64(len(lines))
	if sub.hasUntil && next > sub.until+1 {
		keep := 0
		if sub.until+1 > first {
			keep = int(sub.until + 1 - first)
		}
		lines, next = lines[:keep], first+uint64(keep)
	}
	if sub.limit >= 0 {
		left := sub.limit - sub.sent
		for i, l := range lines {
			if left == 0 {
				lines, next = lines[:i], first+uint64(i)
				break
			}
			if sub.filter.match(l) {
				left--
			}
		}
	}
	return lines, next
}

// complete reports whether the stream reached its end: everything it owes
// was sent (the hello included).
func (sub *subscriber) complete() bool {
	return (sub.limit >= 0 && sub.sent >= sub.limit) || (sub.hasUntil && sub.cursor > sub.until)
}
