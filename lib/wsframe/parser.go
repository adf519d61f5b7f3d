package wsframe

import "encoding/binary"

// Parser is a server's push parser for what a WebSocket client sends: it
// is fed the bytes as they come, in pieces of any size, and hands on each
// control frame whole and, when asked, each data frame's payload as it
// arrives. It checks everything RFC 6455 asks of a client's frames:
// masking, reserved bits and opcodes, control frames (final, at most 125
// bytes, a valid close code and a UTF-8 reason) and the sequence of a
// fragmented message, and bounds a message's length. It stops at the
// first breach, which carries the close code to answer, and after a close
// frame, after which a client sends nothing (RFC 6455, 5.5.1).
//
// It keeps what it was given of an unfinished frame only until the frame
// is whole, at most a control frame's worth (MaxHeaderSize +
// MaxControlPayloadSize bytes): a data frame's payload passes through.
// Between frames it holds no buffer at all, and it allocates only to keep
// a frame split between two feeds.
type Parser struct {
	// Limit bounds a data message's length, the sum of its frames'; 0 is
	// no bound.
	Limit uint64
	// Data asks for the data frames' payloads. Without it they are
	// skipped unread and unmasked, which is what a server that expects
	// nothing but control frames wants.
	Data bool

	partial   []byte  // the start of an unfinished frame (head, or a whole control frame)
	remain    uint64  // bytes of a data frame's payload still to come
	op        OpCode  // the data frame's opcode
	fin       bool    // the data frame's FIN bit
	mask      [4]byte // the data frame's mask
	maskPos   int     // where in the mask the next payload byte is
	inMessage bool    // a fragmented data message has begun
	msgLen    uint64  // the bytes of the data message so far
	closed    bool    // a close frame came: nothing more is read
	err       *Error  // the breach that stopped it
}

// Event is what Parser.Feed hands on: a control frame, or a piece of a
// data frame's payload (only with Parser.Data).
type Event struct {
	// Op is the frame's opcode: a control opcode, or a data frame's
	// (OpContinuation for a message's frames after the first).
	Op OpCode
	// Fin is the frame's FIN bit: a data message ends with the Last piece
	// of a frame with Fin.
	Fin bool
	// Payload is a control frame's payload, or a piece of a data frame's,
	// unmasked. It is valid only during the call.
	Payload []byte
	// Last says Payload ends the frame's payload (always, for a control
	// frame). An empty data frame is one Event with an empty Payload.
	Last bool
}

// Feed parses p, calling on for each Event in order. It unmasks the
// payloads in place, in p. It returns the breach that stops the parser,
// the same one on every later call; after a close frame it returns nil
// and reads nothing more (Closed says so).
func (ps *Parser) Feed(p []byte, on func(Event)) *Error {
	if ps.err != nil {
		return ps.err
	}
	if len(ps.partial) > 0 {
		// A frame split between feeds (rare): parse it whole.
		p = append(ps.partial, p...)
	}
	for len(p) > 0 && !ps.closed {
		if ps.remain > 0 {
			n := uint64(len(p))
			if n > ps.remain {
				n = ps.remain
			}
			piece := p[:n]
			p = p[n:]
			ps.remain -= n
			if ps.Data {
				ps.maskPos = Cipher(piece, ps.mask, ps.maskPos)
				on(Event{Op: ps.op, Fin: ps.fin, Payload: piece, Last: ps.remain == 0})
			}
			continue
		}
		n, err := ps.frame(p, on)
		if err != nil {
			ps.err, ps.partial = err, nil
			return err
		}
		if n == 0 {
			// Not a whole head (or control frame) yet: keep it.
			ps.partial = append(ps.partial[:0], p...)
			return nil
		}
		p = p[n:]
	}
	ps.partial = nil // an idle connection keeps no buffer
	return nil
}

// Closed reports whether a close frame came.
func (ps *Parser) Closed() bool { return ps.closed }

// Buffered is how many bytes of an unfinished frame the parser keeps.
func (ps *Parser) Buffered() int { return len(ps.partial) }

// InFrame reports whether the bytes so far end inside a frame or a
// fragmented message: a connection that ends there ends uncleanly.
func (ps *Parser) InFrame() bool { return len(ps.partial) > 0 || ps.remain > 0 || ps.inMessage }

// frame parses the frame at the start of w and returns its size, or 0 when
// w holds less than its head (for a control frame, less than all of it).
// A data frame's size is its head's: its payload follows in Feed.
func (ps *Parser) frame(w []byte, on func(Event)) (int, *Error) {
	if len(w) < 2 {
		return 0, nil
	}
	// What the first two bytes tell is checked at once, as gorilla does,
	// so that a breach is answered even if the rest never comes.
	op, fin := OpCode(w[0]&0xf), w[0]&bitFin != 0
	switch {
	case w[0]&0x70 != 0:
		return 0, ErrReservedBits
	case op.IsReserved():
		return 0, ErrReservedOpCode
	case op.IsControl() && !fin:
		return 0, ErrControlFragmented
	case op.IsControl() && w[1]&^bitMask > MaxControlPayloadSize:
		return 0, ErrControlTooLong
	case op.IsData() && (op == OpContinuation) != ps.inMessage:
		return 0, ErrDataOutOfSequence
	case w[1]&bitMask == 0:
		return 0, ErrUnmasked
	}
	// The rest of the head, parsed here rather than by ParseHeader: this
	// is the poller's hot path, a few small control frames per read.
	hl := 2
	n := uint64(w[1] &^ bitMask)
	switch n {
	case len16:
		if len(w) < 4 {
			return 0, nil
		}
		n, hl = uint64(binary.BigEndian.Uint16(w[2:])), 4
	case len64:
		if len(w) < 10 {
			return 0, nil
		}
		n, hl = binary.BigEndian.Uint64(w[2:]), 10
		if n>>63 != 0 {
			return 0, ErrHeaderLengthMSB
		}
	}
	if len(w) < hl+4 {
		return 0, nil
	}
	mask := [4]byte(w[hl : hl+4])
	hl += 4
	if op.IsControl() {
		if uint64(len(w)-hl) < n {
			return 0, nil
		}
		payload := w[hl : hl+int(n)]
		for i := range payload { // at most 125 bytes: no need for Cipher's setup
			payload[i] ^= mask[i&3]
		}
		if op == OpClose {
			if err := CheckCloseBody(payload); err != nil {
				return 0, err
			}
			ps.closed = true
		}
		on(Event{Op: op, Fin: true, Payload: payload, Last: true})
		return hl + int(n), nil
	}
	if op != OpContinuation {
		ps.msgLen = 0
	}
	if ps.msgLen += n; ps.msgLen < n || (ps.Limit > 0 && ps.msgLen > ps.Limit) {
		return 0, ErrMessageTooBig
	}
	ps.inMessage = !fin
	ps.op, ps.fin, ps.mask, ps.maskPos, ps.remain = op, fin, mask, 0, n
	if n == 0 && ps.Data {
		on(Event{Op: op, Fin: fin, Payload: w[hl:hl], Last: true})
	}
	return hl, nil
}
