package wsframe

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strings"
	"testing"
)

// clientFrame builds a masked client frame.
func clientFrame(fin bool, op OpCode, payload []byte) []byte {
	return AppendFrame(nil, Header{Fin: fin, OpCode: op, Masked: true, Mask: [4]byte{0x37, 0xfa, 0x21, 0x3d}}, payload)
}

func closeBody(code StatusCode, reason string) []byte {
	return append(binary.BigEndian.AppendUint16(nil, uint16(code)), reason...)
}

// testLimit is the message bound of the tests (the relay's is 512).
const testLimit = 512

// feedAll feeds the chunks to ps and tells what it handed on: each control
// frame as "op:payload", each data message (with ps.Data) as
// "op=payload" once whole, and the error's code.
func feedAll(ps *Parser, chunks ...[]byte) (got []string, code StatusCode) {
	var msg []byte
	var msgOp OpCode
	frameStart := true // the next data piece starts a frame
	on := func(ev Event) {
		switch {
		case ev.Op.IsControl():
			got = append(got, fmt.Sprintf("%x:%s", byte(ev.Op), ev.Payload))
		default:
			if frameStart && ev.Op != OpContinuation {
				msgOp, msg = ev.Op, msg[:0]
			}
			frameStart = ev.Last
			msg = append(msg, ev.Payload...)
			if ev.Fin && ev.Last {
				got = append(got, fmt.Sprintf("%x=%s", byte(msgOp), msg))
			}
		}
	}
	for _, ch := range chunks {
		if err := ps.Feed(append([]byte(nil), ch...), on); err != nil {
			return got, err.Code
		}
	}
	return got, 0
}

var parserCases = []struct {
	name string
	in   []byte
	got  []string // with Data
	code StatusCode
}{
	{"pong", clientFrame(true, OpPong, []byte("x")), []string{"a:x"}, 0},
	{"ping with payload", clientFrame(true, OpPing, []byte("hello")), []string{"9:hello"}, 0},
	{"ping of 125", clientFrame(true, OpPing, bytes.Repeat([]byte("p"), 125)), []string{"9:" + strings.Repeat("p", 125)}, 0},
	{"empty close", clientFrame(true, OpClose, nil), []string{"8:"}, 0},
	{"close with code", clientFrame(true, OpClose, closeBody(1000, "bye")), []string{"8:" + string(closeBody(1000, "bye"))}, 0},
	{"nothing read after a close", append(clientFrame(true, OpClose, nil), clientFrame(true, OpPing, []byte("late"))...), []string{"8:"}, 0},
	{"no breach seen after a close", append(clientFrame(true, OpClose, nil), 0xff, 0xff), []string{"8:"}, 0},
	{"RFC 6455 5.7 masked Hello", []byte{0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58}, []string{"1=Hello"}, 0},
	{"text between pings", bytes.Join([][]byte{
		clientFrame(true, OpPing, []byte("a")), clientFrame(true, OpText, []byte("some text")), clientFrame(true, OpPing, []byte("b"))}, nil),
		[]string{"9:a", "1=some text", "9:b"}, 0},
	{"fragmented message with a pong inside", bytes.Join([][]byte{
		clientFrame(false, OpBinary, []byte("ab")), clientFrame(true, OpPong, nil), clientFrame(false, OpContinuation, nil), clientFrame(true, OpContinuation, []byte("cd"))}, nil),
		[]string{"a:", "2=abcd"}, 0},
	{"empty text", clientFrame(true, OpText, nil), []string{"1="}, 0},
	{"16-bit length", append(clientFrame(true, OpText, bytes.Repeat([]byte("z"), 300)), clientFrame(true, OpPong, []byte("p"))...),
		[]string{"1=" + strings.Repeat("z", 300), "a:p"}, 0},
	{"unmasked", []byte{0x89, 0x00}, nil, StatusProtocolError},
	{"unmasked, told by the first two bytes", []byte{0x81, 0x05}, nil, StatusProtocolError},
	{"reserved bit", func() []byte { f := clientFrame(true, OpPing, nil); f[0] |= 0x40; return f }(), nil, StatusProtocolError},
	{"unknown opcode", clientFrame(true, 0x3, nil), nil, StatusProtocolError},
	{"unknown control opcode", clientFrame(true, 0xb, nil), nil, StatusProtocolError},
	{"fragmented ping", clientFrame(false, OpPing, nil), nil, StatusProtocolError},
	{"long ping", clientFrame(true, OpPing, bytes.Repeat([]byte("p"), 126)), nil, StatusProtocolError},
	{"long ping, told by the first two bytes", []byte{0x89, 0x80 | 126}, nil, StatusProtocolError},
	{"continuation first", clientFrame(true, OpContinuation, []byte("x")), nil, StatusProtocolError},
	{"text inside a message", append(clientFrame(false, OpText, []byte("x")), clientFrame(true, OpText, []byte("y"))...), nil, StatusProtocolError},
	{"message over the limit", clientFrame(true, OpText, make([]byte, testLimit+1)), nil, StatusMessageTooBig},
	{"message over the limit, told by the head", []byte{0x82, 0x80 | 127, 0, 0, 0, 1, 0, 0, 0, 0, 1, 2, 3, 4}, nil, StatusMessageTooBig},
	{"fragmented message over the limit", append(clientFrame(false, OpText, make([]byte, testLimit)), clientFrame(true, OpContinuation, []byte("x"))...),
		[]string{}, StatusMessageTooBig},
	{"messages at the limit, one after another", append(clientFrame(true, OpText, bytes.Repeat([]byte("t"), testLimit)), clientFrame(true, OpBinary, bytes.Repeat([]byte("b"), testLimit))...),
		[]string{"1=" + strings.Repeat("t", testLimit), "2=" + strings.Repeat("b", testLimit)}, 0},
	{"64-bit length with the top bit", []byte{0x81, 0x80 | 127, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4}, nil, StatusProtocolError},
	{"one-byte close", clientFrame(true, OpClose, []byte{3}), nil, StatusProtocolError},
	{"reserved close code", clientFrame(true, OpClose, closeBody(1005, "")), nil, StatusProtocolError},
	{"close reason not UTF-8", clientFrame(true, OpClose, closeBody(1000, "\xff")), nil, StatusInvalidFramePayloadData},
	{"a breach after good frames", append(clientFrame(true, OpPing, []byte("ok")), 0x89, 0x00), []string{"9:ok"}, StatusProtocolError},
}

// TestParser: what a server hears from a client, whole, split at every
// byte and byte by byte, with and without the data; every breach answered
// with its code.
func TestParser(t *testing.T) {
	for _, tt := range parserCases {
		t.Run(tt.name, func(t *testing.T) {
			for _, data := range []bool{true, false} {
				want := []string{}
				for _, g := range tt.got {
					if data || g[1] == ':' {
						want = append(want, g)
					}
				}
				newParser := func() *Parser { return &Parser{Limit: testLimit, Data: data} }
				check := func(how string, got []string, code StatusCode) {
					t.Helper()
					if fmt.Sprint(got) != fmt.Sprint(want) || code != tt.code {
						t.Fatalf("data=%v %s: %q code %d, want %q %d", data, how, got, code, want, tt.code)
					}
				}
				got, code := feedAll(newParser(), tt.in)
				check("whole", got, code)
				for i := 1; i < len(tt.in); i++ {
					got, code := feedAll(newParser(), tt.in[:i], tt.in[i:])
					check(fmt.Sprintf("split at %d", i), got, code)
				}
				var bytewise [][]byte
				for i := range tt.in {
					bytewise = append(bytewise, tt.in[i:i+1])
				}
				got, code = feedAll(newParser(), bytewise...)
				check("byte by byte", got, code)
			}
		})
	}
}

// TestParserStops: a breach is returned again on every later feed, and a
// close ends the reading.
func TestParserStops(t *testing.T) {
	ps := &Parser{}
	err := ps.Feed([]byte{0x89, 0x00}, func(Event) { t.Fatal("an event from an unmasked frame") })
	if err != ErrUnmasked {
		t.Fatalf("got %v, want %v", err, ErrUnmasked)
	}
	if again := ps.Feed(clientFrame(true, OpPing, nil), func(Event) { t.Fatal("an event after a breach") }); again != err {
		t.Fatalf("after a breach: %v", again)
	}
	ps = &Parser{}
	if err := ps.Feed(clientFrame(true, OpClose, nil), func(Event) {}); err != nil || !ps.Closed() {
		t.Fatalf("close: %v, closed %v", err, ps.Closed())
	}
	if err := ps.Feed(clientFrame(true, OpPing, nil), func(Event) { t.Fatal("an event after a close") }); err != nil {
		t.Fatal(err)
	}
}

// TestParserKeepsNothingIdle: between frames the parser holds no buffer,
// and within a long data frame it keeps no more than the head.
func TestParserKeepsNothingIdle(t *testing.T) {
	var ps Parser
	f := clientFrame(true, OpPong, []byte("abc"))
	feedAll(&ps, f[:3])
	if ps.Buffered() != 3 || !ps.InFrame() {
		t.Fatalf("a split frame was not kept: %d bytes", ps.Buffered())
	}
	feedAll(&ps, f[3:])
	if ps.partial != nil || ps.InFrame() {
		t.Fatalf("%d bytes kept after a whole frame", cap(ps.partial))
	}
	big := clientFrame(true, OpBinary, make([]byte, 100000))
	feedAll(&ps, big[:50000])
	if ps.partial != nil || !ps.InFrame() {
		t.Fatalf("%d bytes kept inside a data frame", cap(ps.partial))
	}
}

// FuzzParserSplit: however the bytes are split, the parser hands on the
// same frames and messages and stops with the same error, and never keeps
// more than one control frame's worth.
func FuzzParserSplit(f *testing.F) {
	for _, c := range parserCases {
		f.Add(c.in, uint8(3))
	}
	f.Fuzz(func(t *testing.T, in []byte, step uint8) {
		for _, data := range []bool{true, false} {
			want, wantCode := feedAll(&Parser{Limit: testLimit, Data: data}, in)
			k := int(step%16) + 1
			var chunks [][]byte
			for i := 0; i < len(in); i += k {
				chunks = append(chunks, in[i:min(i+k, len(in))])
			}
			ps := &Parser{Limit: testLimit, Data: data}
			got, code := feedAll(ps, chunks...)
			if fmt.Sprint(got) != fmt.Sprint(want) || code != wantCode {
				t.Fatalf("data=%v in %d-byte chunks: %q %d; whole: %q %d", data, k, got, code, want, wantCode)
			}
			if ps.Buffered() > MaxHeaderSize+MaxControlPayloadSize {
				t.Fatalf("kept %d bytes", ps.Buffered())
			}
		}
	})
}

// BenchmarkParserControl is the relay's case: a client's pongs and pings,
// a read of 16 frames at a time, data skipped. No allocation.
func BenchmarkParserControl(b *testing.B) {
	var in []byte
	for range 8 {
		in = append(in, clientFrame(true, OpPong, []byte("0123456789"))...)
		in = append(in, clientFrame(true, OpPing, nil)...)
	}
	buf := make([]byte, len(in))
	var ps Parser
	n := 0
	on := func(ev Event) { n += len(ev.Payload) }
	b.ReportAllocs()
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		copy(buf, in)
		if err := ps.Feed(buf, on); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParserData is a stream of 1 KiB binary messages in 4 KiB reads,
// unmasked and handed on: the Cipher's speed. No allocation.
func BenchmarkParserData(b *testing.B) {
	var in []byte
	for len(in) < 64<<10 {
		in = append(in, clientFrame(true, OpBinary, bytes.Repeat([]byte("x"), 1024))...)
	}
	buf := make([]byte, len(in))
	ps := Parser{Data: true}
	n := 0
	on := func(ev Event) { n += len(ev.Payload) }
	b.ReportAllocs()
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		copy(buf, in)
		for p := buf; len(p) > 0; {
			k := min(4096, len(p))
			if err := ps.Feed(p[:k], on); err != nil {
				b.Fatal(err)
			}
			p = p[k:]
		}
	}
}

// BenchmarkPutHeader is a server frame's header, put in front of its
// payload (the relay's writers, per message).
func BenchmarkPutHeader(b *testing.B) {
	frame := make([]byte, MaxServerHeaderSize+300)
	b.ReportAllocs()
	for b.Loop() {
		h := Header{Fin: true, OpCode: OpText, Length: 300}
		PutHeader(frame[MaxServerHeaderSize-HeaderSize(h):], h)
	}
}
