package relay

import (
	"encoding/binary"
	"errors"
	"unicode/utf8"

	"github.com/gorilla/websocket"
)

// WebSocket opcodes (RFC 6455, 5.2).
const (
	opContinuation = 0x0
	opText         = 0x1
	opBinary       = 0x2
	opClose        = 0x8
	opPing         = 0x9
	opPong         = 0xa
)

// maxClientFrameHead is the longest head of a client frame: 2 bytes, a
// 64-bit length and the mask key.
const maxClientFrameHead = 14

// clientFrames parses what a WebSocket client sends to a subscriber served
// by a hub (RFC 6455, 5): control frames, which it hands on, and data
// messages, which it discards (a subscriber has nothing to say; gorilla's
// reader in the goroutine path ignores them the same way). It keeps what it
// was given of an unfinished frame, at most one control frame's worth.
type clientFrames struct {
	partial   []byte // the start of an unfinished frame (head, or a whole control frame)
	skip      uint64 // bytes of a data frame's payload still to discard
	inMessage bool   // a fragmented data message has begun
	msgLen    uint64 // the bytes of the data message so far
}

// errFrame is a client's breach of the protocol; code is the close code to
// answer it with.
type errFrame struct {
	code int
	msg  string
}

func (e *errFrame) Error() string { return "websocket: " + e.msg }

func protocolError(msg string) *errFrame { return &errFrame{websocket.CloseProtocolError, msg} }

// feed parses p, calling on for each control frame (op is opClose, opPing or
// opPong; payload is unmasked and valid only during the call). It returns an
// *errFrame when the client breaks the protocol; what follows is then not
// read.
func (c *clientFrames) feed(p []byte, on func(op byte, payload []byte)) *errFrame {
	if len(c.partial) > 0 {
		// A frame split between reads (rare): parse it whole.
		p = append(c.partial, p...)
	}
	for len(p) > 0 {
		if c.skip > 0 {
			n := uint64(len(p))
			if n > c.skip {
				n = c.skip
			}
			p = p[n:]
			c.skip -= n
			continue
		}
		rest, err := c.frame(p, on)
		if err != nil {
			return err
		}
		if len(rest) == len(p) {
			// Not a whole head (or control frame) yet: keep it, at most
			// maxClientFrameHead+125 bytes.
			c.partial = append(c.partial[:0], p...)
			return nil
		}
		p = rest
	}
	c.partial = nil // an idle connection keeps no buffer
	return nil
}

// frame parses the frame at the start of w. It returns what follows it, or
// w itself when w holds less than its head (or, for a control frame, less
// than the whole frame). A data frame's payload is skipped: what of it is
// in w, and c.skip for the rest.
func (c *clientFrames) frame(w []byte, on func(op byte, payload []byte)) ([]byte, *errFrame) {
	if len(w) < 2 {
		return w, nil
	}
	b0, b1 := w[0], w[1]
	fin, op := b0&0x80 != 0, b0&0x0f
	if b0&0x70 != 0 {
		return nil, protocolError("reserved bits set")
	}
	if b1&0x80 == 0 {
		return nil, protocolError("client frame not masked")
	}
	hl := 2
	n := uint64(b1 & 0x7f)
	switch n {
	case 126:
		if len(w) < 4 {
			return w, nil
		}
		n, hl = uint64(binary.BigEndian.Uint16(w[2:])), 4
	case 127:
		if len(w) < 10 {
			return w, nil
		}
		n, hl = binary.BigEndian.Uint64(w[2:]), 10
		if n>>63 != 0 {
			return nil, protocolError("frame length with the top bit set")
		}
	}
	if len(w) < hl+4 {
		return w, nil
	}
	key := w[hl : hl+4]
	hl += 4
	switch op {
	case opClose, opPing, opPong:
		if !fin || n > 125 {
			return nil, protocolError("control frame fragmented or over 125 bytes")
		}
		if uint64(len(w)-hl) < n {
			return w, nil
		}
		payload := w[hl : hl+int(n)]
		for i := range payload {
			payload[i] ^= key[i&3]
		}
		if op == opClose {
			if err := checkClose(payload); err != nil {
				return nil, err
			}
		}
		on(op, payload)
		return w[hl+int(n):], nil
	case opText, opBinary, opContinuation:
		if (op == opContinuation) != c.inMessage {
			return nil, protocolError("data frame out of sequence")
		}
		if op != opContinuation {
			c.msgLen = 0
		}
		if c.msgLen += n; c.msgLen > wsReadLimit || n > wsReadLimit {
			return nil, &errFrame{websocket.CloseMessageTooBig, "message too big"}
		}
		c.inMessage = !fin
		body := uint64(len(w) - hl)
		if body >= n {
			return w[hl+int(n):], nil
		}
		c.skip = n - body
		return w[len(w):], nil
	default:
		return nil, protocolError("unknown opcode")
	}
}

// checkClose checks a close frame's payload: empty, or a valid code and a
// UTF-8 reason (RFC 6455, 5.5.1 and 7.4).
func checkClose(p []byte) *errFrame {
	switch {
	case len(p) == 0:
		return nil
	case len(p) == 1:
		return protocolError("close frame of one byte")
	}
	code := int(binary.BigEndian.Uint16(p))
	if !validCloseCode(code) {
		return protocolError("invalid close code")
	}
	if !utf8.Valid(p[2:]) {
		return &errFrame{websocket.CloseInvalidFramePayloadData, "invalid UTF-8 in close reason"}
	}
	return nil
}

// validCloseCode is gorilla's rule for a code a peer may send.
func validCloseCode(code int) bool {
	switch code {
	case 1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014:
		return true
	}
	return code >= 3000 && code <= 4999
}

// errPeerGone is a subscriber's connection closed or broken by the client.
var errPeerGone = errors.New("connection closed by the client")

// Server frames for a hub's subscribers: unmasked, final.

// appendControl appends a control frame (ping, pong, close) with payload
// (at most 125 bytes).
func appendControl(dst []byte, op byte, payload []byte) []byte {
	dst = append(dst, 0x80|op, byte(len(payload)))
	return append(dst, payload...)
}

// appendClose appends a close frame with code and reason; code 0 sends an
// empty one (the answer to a close without a code).
func appendClose(dst []byte, code int, reason string) []byte {
	if code == 0 {
		return appendControl(dst, opClose, nil)
	}
	var p [125]byte
	binary.BigEndian.PutUint16(p[:], uint16(code))
	n := 2 + copy(p[2:], reason)
	return appendControl(dst, opClose, p[:n])
}
