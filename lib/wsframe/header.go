// Package wsframe is tl's WebSocket codec (RFC 6455, 5): frame headers,
// masking, control and close frames, and a server's push parser for what a
// client sends. It is pure: it reads and writes bytes and io streams, and
// never a socket, a clock or a goroutine of its own, so the relay's epoll
// poller, its writer goroutines and the load generator share one codec
// and a test can drive it byte by byte. Its shape follows
// github.com/gobwas/ws (Header, ReadHeader, WriteHeader, OpCode,
// StatusCode); the relay keeps gorilla/websocket for its handshake and its
// goroutine engine.
package wsframe

import (
	"encoding/binary"
	"errors"
	"io"
)

// OpCode is a frame's opcode (RFC 6455, 5.2).
type OpCode byte

// The opcodes RFC 6455 defines; the others are reserved.
const (
	OpContinuation OpCode = 0x0
	OpText         OpCode = 0x1
	OpBinary       OpCode = 0x2
	OpClose        OpCode = 0x8
	OpPing         OpCode = 0x9
	OpPong         OpCode = 0xa
)

// IsControl reports whether c is a control opcode (close, ping, pong or a
// reserved one: the high bit of the four).
func (c OpCode) IsControl() bool { return c&0x8 != 0 }

// IsData reports whether c is a data opcode (continuation, text, binary).
func (c OpCode) IsData() bool { return c <= OpBinary }

// IsReserved reports whether c is an opcode RFC 6455 leaves undefined.
func (c OpCode) IsReserved() bool { return (c > OpBinary && c < OpClose) || c > OpPong }

// Sizes of a frame header (RFC 6455, 5.2) and of a control frame's payload
// (5.5).
const (
	MinHeaderSize = 2
	// MaxHeaderSize is a masked frame's with a 64-bit length.
	MaxHeaderSize = 14
	// MaxServerHeaderSize is an unmasked (server) frame's with a 64-bit
	// length: the room a writer leaves in front of a payload it frames in
	// place.
	MaxServerHeaderSize = 10
	// MaxControlPayloadSize bounds a ping's, pong's or close's payload.
	MaxControlPayloadSize = 125
)

// Header is a frame's header.
type Header struct {
	Fin    bool
	Rsv    byte // the three reserved bits, as the low bits (RSV1 is 4)
	OpCode OpCode
	Masked bool
	Mask   [4]byte
	Length int64 // the payload's
}

const (
	bitFin  = 0x80
	bitMask = 0x80
	len16   = 126 // the 7-bit length that says a 16-bit one follows
	len64   = 127 // the 7-bit length that says a 64-bit one follows
)

// ErrHeaderLengthMSB is a 64-bit payload length with its top bit set,
// which RFC 6455 forbids.
var ErrHeaderLengthMSB = &Error{Code: StatusProtocolError, Reason: "frame length with the top bit set"}

// HeaderSize is the encoded size of h: the length in its smallest form.
func HeaderSize(h Header) int {
	n := 2
	switch {
	case h.Length > 0xffff:
		n += 8
	case h.Length > 125:
		n += 2
	}
	if h.Masked {
		n += 4
	}
	return n
}

// PutHeader encodes h at the start of dst, which must hold HeaderSize(h)
// bytes, and returns how many it wrote.
func PutHeader(dst []byte, h Header) int {
	b0 := byte(h.OpCode&0xf) | (h.Rsv&7)<<4
	if h.Fin {
		b0 |= bitFin
	}
	var b1 byte
	n := 2
	switch l := h.Length; {
	case l <= 125:
		b1 = byte(l)
	case l <= 0xffff:
		_ = dst[3]
		b1, dst[2], dst[3] = len16, byte(l>>8), byte(l)
		n = 4
	default:
		b1 = len64
		binary.BigEndian.PutUint64(dst[2:10], uint64(l))
		n = 10
	}
	if h.Masked {
		b1 |= bitMask
		m := dst[n : n+4]
		m[0], m[1], m[2], m[3] = h.Mask[0], h.Mask[1], h.Mask[2], h.Mask[3]
		n += 4
	}
	dst[0], dst[1] = b0, b1
	return n
}

// AppendHeader appends h's encoding to dst.
func AppendHeader(dst []byte, h Header) []byte {
	var b [MaxHeaderSize]byte
	return append(dst, b[:PutHeader(b[:], h)]...)
}

// WriteHeader writes h to w.
func WriteHeader(w io.Writer, h Header) error {
	var b [MaxHeaderSize]byte
	_, err := w.Write(b[:PutHeader(b[:], h)])
	return err
}

// ParseHeader decodes the header at the start of b. It returns the header
// and its size, or a size of 0 when b does not hold all of it yet. It
// checks only what the encoding itself forbids (a 64-bit length with the
// top bit); CheckHeader checks the rest.
func ParseHeader(b []byte) (h Header, n int, err error) {
	if len(b) < 2 {
		return h, 0, nil
	}
	h.Fin = b[0]&bitFin != 0
	h.Rsv = (b[0] >> 4) & 7
	h.OpCode = OpCode(b[0] & 0xf)
	h.Masked = b[1]&bitMask != 0
	n = 2
	switch l := b[1] &^ bitMask; l {
	case len16:
		if len(b) < 4 {
			return h, 0, nil
		}
		h.Length, n = int64(binary.BigEndian.Uint16(b[2:])), 4
	case len64:
		if len(b) < 10 {
			return h, 0, nil
		}
		u := binary.BigEndian.Uint64(b[2:])
		if u>>63 != 0 {
			return h, 0, ErrHeaderLengthMSB
		}
		h.Length, n = int64(u), 10
	default:
		h.Length = int64(l)
	}
	if h.Masked {
		if len(b) < n+4 {
			return h, 0, nil
		}
		n += copy(h.Mask[:], b[n:n+4])
	}
	return h, n, nil
}

// ReadHeader reads one header from r.
func ReadHeader(r io.Reader) (Header, error) {
	var b [MaxHeaderSize]byte
	if _, err := io.ReadFull(r, b[:2]); err != nil {
		return Header{}, err
	}
	need := 0
	switch b[1] &^ bitMask {
	case len16:
		need = 2
	case len64:
		need = 8
	}
	if b[1]&bitMask != 0 {
		need += 4
	}
	if _, err := io.ReadFull(r, b[2:2+need]); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return Header{}, err
	}
	h, _, err := ParseHeader(b[:2+need])
	return h, err
}

// Side is the end of the connection a frame is read at: a server reads
// masked frames, a client unmasked ones (RFC 6455, 5.1).
type Side bool

const (
	ServerSide Side = true
	ClientSide Side = false
)

// CheckHeader checks h as a frame read at side, alone: reserved bits and
// opcodes, masking, and the limits of control frames (RFC 6455, 5.2, 5.5).
// The sequence of data frames is the Parser's to check.
func CheckHeader(h Header, side Side) *Error {
	switch {
	case h.Rsv != 0:
		return ErrReservedBits
	case h.OpCode.IsReserved():
		return ErrReservedOpCode
	case h.OpCode.IsControl() && !h.Fin:
		return ErrControlFragmented
	case h.OpCode.IsControl() && h.Length > MaxControlPayloadSize:
		return ErrControlTooLong
	case h.Masked != bool(side):
		if side == ServerSide {
			return ErrUnmasked
		}
		return ErrMasked
	}
	return nil
}

// Cipher masks or unmasks payload in place with mask, as the payload's
// bytes from offset on (RFC 6455, 5.3), and returns the offset after it.
func Cipher(payload []byte, mask [4]byte, offset int) int {
	if len(payload) < 8 {
		for i := range payload {
			payload[i] ^= mask[(offset+i)&3]
		}
		return (offset + len(payload)) & 3
	}
	// Eight bytes at a time: the mask rotated to start at offset, twice.
	var m [8]byte
	for i := range m {
		m[i] = mask[(offset+i)&3]
	}
	m64 := binary.LittleEndian.Uint64(m[:])
	i := 0
	for ; i+8 <= len(payload); i += 8 {
		v := binary.LittleEndian.Uint64(payload[i:])
		binary.LittleEndian.PutUint64(payload[i:], v^m64)
	}
	for ; i < len(payload); i++ {
		payload[i] ^= m[i&7]
	}
	return (offset + len(payload)) & 3
}
