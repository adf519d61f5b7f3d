package wsframe

import (
	"bytes"
	"io"
	"testing"
)

// The examples of RFC 6455, 5.7, and the length forms around their bounds.
var headerCases = []struct {
	name  string
	h     Header
	bytes []byte
}{
	{"unmasked text Hello", Header{Fin: true, OpCode: OpText, Length: 5}, []byte{0x81, 0x05}},
	{"masked text Hello", Header{Fin: true, OpCode: OpText, Masked: true, Mask: [4]byte{0x37, 0xfa, 0x21, 0x3d}, Length: 5},
		[]byte{0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d}},
	{"first fragment Hel", Header{OpCode: OpText, Length: 3}, []byte{0x01, 0x03}},
	{"last fragment lo", Header{Fin: true, OpCode: OpContinuation, Length: 2}, []byte{0x80, 0x02}},
	{"unmasked ping", Header{Fin: true, OpCode: OpPing, Length: 5}, []byte{0x89, 0x05}},
	{"masked pong", Header{Fin: true, OpCode: OpPong, Masked: true, Mask: [4]byte{0x37, 0xfa, 0x21, 0x3d}, Length: 5},
		[]byte{0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d}},
	{"256 bytes binary", Header{Fin: true, OpCode: OpBinary, Length: 256}, []byte{0x82, 0x7e, 0x01, 0x00}},
	{"64 KiB binary", Header{Fin: true, OpCode: OpBinary, Length: 65536}, []byte{0x82, 0x7f, 0, 0, 0, 0, 0, 1, 0, 0}},
	{"125, the longest 7-bit", Header{Fin: true, OpCode: OpText, Length: 125}, []byte{0x81, 125}},
	{"126, the shortest 16-bit", Header{Fin: true, OpCode: OpText, Length: 126}, []byte{0x81, 126, 0, 126}},
	{"65535, the longest 16-bit", Header{Fin: true, OpCode: OpText, Length: 65535}, []byte{0x81, 126, 0xff, 0xff}},
	{"the longest 64-bit", Header{Fin: true, OpCode: OpBinary, Length: 1<<63 - 1}, []byte{0x82, 127, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}},
	{"reserved bits kept", Header{Fin: true, Rsv: 5, OpCode: OpText}, []byte{0xd1, 0x00}},
	{"empty close", Header{Fin: true, OpCode: OpClose}, []byte{0x88, 0x00}},
}

// TestHeaderRoundTrip: each header encodes to RFC 6455's bytes, of
// HeaderSize, and decodes back, by ParseHeader and ReadHeader alike.
func TestHeaderRoundTrip(t *testing.T) {
	for _, c := range headerCases {
		t.Run(c.name, func(t *testing.T) {
			if got := AppendHeader(nil, c.h); !bytes.Equal(got, c.bytes) {
				t.Fatalf("AppendHeader = % x, want % x", got, c.bytes)
			}
			if n := HeaderSize(c.h); n != len(c.bytes) {
				t.Fatalf("HeaderSize = %d, want %d", n, len(c.bytes))
			}
			var w bytes.Buffer
			if err := WriteHeader(&w, c.h); err != nil || !bytes.Equal(w.Bytes(), c.bytes) {
				t.Fatalf("WriteHeader = % x, %v", w.Bytes(), err)
			}
			h, n, err := ParseHeader(append(c.bytes, 0xee)) // and a payload byte
			if err != nil || n != len(c.bytes) || h != c.h {
				t.Fatalf("ParseHeader = %+v, %d, %v; want %+v, %d", h, n, err, c.h, len(c.bytes))
			}
			for i := range c.bytes {
				if _, n, err := ParseHeader(c.bytes[:i]); n != 0 || err != nil {
					t.Fatalf("ParseHeader of %d of %d bytes = %d, %v; want 0, nil", i, len(c.bytes), n, err)
				}
				if _, err := ReadHeader(bytes.NewReader(c.bytes[:i])); err == nil {
					t.Fatalf("ReadHeader of %d of %d bytes: no error", i, len(c.bytes))
				} else if i > 0 && err != io.ErrUnexpectedEOF {
					t.Fatalf("ReadHeader of %d of %d bytes: %v, want unexpected EOF", i, len(c.bytes), err)
				}
			}
			if h, err := ReadHeader(bytes.NewReader(c.bytes)); err != nil || h != c.h {
				t.Fatalf("ReadHeader = %+v, %v", h, err)
			}
		})
	}
}

// TestHeaderLengthMSB: a 64-bit length with its top bit is refused.
func TestHeaderLengthMSB(t *testing.T) {
	b := []byte{0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 0}
	if _, _, err := ParseHeader(b); err != ErrHeaderLengthMSB {
		t.Fatalf("ParseHeader: %v, want %v", err, ErrHeaderLengthMSB)
	}
	if _, err := ReadHeader(bytes.NewReader(b)); err != ErrHeaderLengthMSB {
		t.Fatalf("ReadHeader: %v, want %v", err, ErrHeaderLengthMSB)
	}
}

// TestCheckHeader: every rule of RFC 6455, 5.2 and 5.5, that one header
// shows.
func TestCheckHeader(t *testing.T) {
	for _, c := range []struct {
		name string
		h    Header
		side Side
		want *Error
	}{
		{"masked text at the server", Header{Fin: true, OpCode: OpText, Masked: true}, ServerSide, nil},
		{"unmasked text at the client", Header{Fin: true, OpCode: OpText}, ClientSide, nil},
		{"unmasked at the server", Header{Fin: true, OpCode: OpText}, ServerSide, ErrUnmasked},
		{"masked at the client", Header{Fin: true, OpCode: OpText, Masked: true}, ClientSide, ErrMasked},
		{"RSV1", Header{Fin: true, Rsv: 4, OpCode: OpText, Masked: true}, ServerSide, ErrReservedBits},
		{"RSV3", Header{Fin: true, Rsv: 1, OpCode: OpText, Masked: true}, ServerSide, ErrReservedBits},
		{"opcode 3", Header{Fin: true, OpCode: 3, Masked: true}, ServerSide, ErrReservedOpCode},
		{"opcode 0xb", Header{Fin: true, OpCode: 0xb, Masked: true}, ServerSide, ErrReservedOpCode},
		{"fragmented ping", Header{OpCode: OpPing, Masked: true}, ServerSide, ErrControlFragmented},
		{"close of 125", Header{Fin: true, OpCode: OpClose, Masked: true, Length: 125}, ServerSide, nil},
		{"pong of 126", Header{Fin: true, OpCode: OpPong, Masked: true, Length: 126}, ServerSide, ErrControlTooLong},
		{"unfinished text", Header{OpCode: OpText, Masked: true, Length: 1 << 40}, ServerSide, nil},
	} {
		if got := CheckHeader(c.h, c.side); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}

// TestCipher: masking twice gives the payload back, at every offset and
// length, and agrees with the byte-by-byte rule (RFC 6455, 5.3), including
// the RFC's masked "Hello".
func TestCipher(t *testing.T) {
	key := [4]byte{0x37, 0xfa, 0x21, 0x3d}
	hello := []byte("Hello")
	Cipher(hello, key, 0)
	if want := []byte{0x7f, 0x9f, 0x4d, 0x51, 0x58}; !bytes.Equal(hello, want) {
		t.Fatalf("masked Hello % x, want % x", hello, want)
	}
	for n := 0; n < 40; n++ {
		for off := 0; off < 4; off++ {
			p := make([]byte, n)
			for i := range p {
				p[i] = byte(i * 7)
			}
			want := make([]byte, n)
			for i := range want {
				want[i] = p[i] ^ key[(off+i)&3]
			}
			if next := Cipher(p, key, off); !bytes.Equal(p, want) || next != (off+n)&3 {
				t.Fatalf("n=%d off=%d: % x (next %d), want % x", n, off, p, next, want)
			}
			// In two pieces, carrying the offset.
			q := make([]byte, n)
			for i := range q {
				q[i] = byte(i * 7)
			}
			k := n / 3
			Cipher(q[k:], key, Cipher(q[:k], key, off))
			if !bytes.Equal(q, want) {
				t.Fatalf("n=%d off=%d in two: % x, want % x", n, off, q, want)
			}
		}
	}
}

// TestOpCodes: the classes of every opcode.
func TestOpCodes(t *testing.T) {
	for c := OpCode(0); c < 16; c++ {
		data, control := c <= 2, c >= 8 && c <= 10
		if c.IsData() != data || (c.IsControl() && !c.IsReserved()) != control || c.IsReserved() != (!data && !control) {
			t.Errorf("opcode %#x: data %v control %v reserved %v", byte(c), c.IsData(), c.IsControl(), c.IsReserved())
		}
	}
}

// TestCloseBody: codes and reasons as sent and as checked on receipt.
func TestCloseBody(t *testing.T) {
	if got := AppendClose(nil, 0, ""); !bytes.Equal(got, []byte{0x88, 0}) {
		t.Errorf("empty close % x", got)
	}
	if got := AppendClose(nil, StatusGoingAway, "bye"); !bytes.Equal(got, []byte{0x88, 5, 0x03, 0xe9, 'b', 'y', 'e'}) {
		t.Errorf("close 1001 bye % x", got)
	}
	// A reason too long is cut to fit, between two characters.
	long := string(bytes.Repeat([]byte("é"), 100))
	f := AppendClose(nil, StatusNormalClosure, long)
	if len(f) > 2+MaxControlPayloadSize || CheckCloseBody(f[2:]) != nil {
		t.Errorf("long reason: %d bytes, check %v", len(f), CheckCloseBody(f[2:]))
	}
	for _, c := range []struct {
		name string
		body []byte
		want *Error
	}{
		{"empty", nil, nil},
		{"one byte", []byte{3}, ErrCloseOneByte},
		{"1000", []byte{0x03, 0xe8}, nil},
		{"1000 with reason", []byte{0x03, 0xe8, 'o', 'k'}, nil},
		{"1004 reserved", []byte{0x03, 0xec}, ErrCloseCode},
		{"1005 never sent", []byte{0x03, 0xed}, ErrCloseCode},
		{"1006 never sent", []byte{0x03, 0xee}, ErrCloseCode},
		{"1014", []byte{0x03, 0xf6}, nil},
		{"1015 never sent", []byte{0x03, 0xf7}, ErrCloseCode},
		{"999", []byte{0x03, 0xe7}, ErrCloseCode},
		{"2999", []byte{0x0b, 0xb7}, ErrCloseCode},
		{"3000", []byte{0x0b, 0xb8}, nil},
		{"4999", []byte{0x13, 0x87}, nil},
		{"5000", []byte{0x13, 0x88}, ErrCloseCode},
		{"reason not UTF-8", []byte{0x03, 0xe8, 0xff}, ErrCloseReasonUTF8},
	} {
		if got := CheckCloseBody(c.body); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
	if ErrCloseReasonUTF8.Code != StatusInvalidFramePayloadData || ErrMessageTooBig.Code != StatusMessageTooBig || ErrUnmasked.Code != StatusProtocolError {
		t.Error("close codes of the errors")
	}
}

// TestAppendFrameMasked: a client's frame is masked in dst and its payload
// left as it was.
func TestAppendFrameMasked(t *testing.T) {
	payload := []byte("Hello")
	got := AppendFrame(nil, Header{Fin: true, OpCode: OpText, Masked: true, Mask: [4]byte{0x37, 0xfa, 0x21, 0x3d}}, payload)
	want := []byte{0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58}
	if !bytes.Equal(got, want) || string(payload) != "Hello" {
		t.Fatalf("% x, want % x (payload %q)", got, want, payload)
	}
}
