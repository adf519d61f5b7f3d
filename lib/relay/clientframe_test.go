package relay

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"testing"

	"github.com/gorilla/websocket"
)

// clientFrame builds a masked client frame.
func clientFrame(fin bool, op byte, payload []byte) []byte {
	b0 := op
	if fin {
		b0 |= 0x80
	}
	f := []byte{b0}
	switch n := len(payload); {
	case n <= 125:
		f = append(f, 0x80|byte(n))
	case n <= 0xffff:
		f = append(f, 0x80|126, byte(n>>8), byte(n))
	default:
		f = append(f, 0x80|127)
		f = binary.BigEndian.AppendUint64(f, uint64(n))
	}
	key := [4]byte{0x37, 0xfa, 0x21, 0x3d}
	f = append(f, key[:]...)
	for i, c := range payload {
		f = append(f, c^key[i&3])
	}
	return f
}

// got is what feed reported: the control frames, then the error's code.
func feedAll(c *clientFrames, chunks ...[]byte) (frames []string, code int) {
	on := func(op byte, p []byte) { frames = append(frames, fmt.Sprintf("%x:%s", op, p)) }
	for _, ch := range chunks {
		if err := c.feed(append([]byte(nil), ch...), on); err != nil {
			var fe *errFrame
			if !errors.As(err, &fe) {
				panic(err)
			}
			return frames, fe.code
		}
	}
	return frames, 0
}

// TestClientFrames: what a hub hears from a client, whole and split at
// every byte, and every breach of the protocol answered with its code.
func TestClientFrames(t *testing.T) {
	closeBody := func(code int, reason string) []byte {
		return append(binary.BigEndian.AppendUint16(nil, uint16(code)), reason...)
	}
	tests := []struct {
		name   string
		in     []byte
		frames []string
		code   int
	}{
		{"pong", clientFrame(true, opPong, []byte("x")), []string{"a:x"}, 0},
		{"ping with payload", clientFrame(true, opPing, []byte("hello")), []string{"9:hello"}, 0},
		{"empty close", clientFrame(true, opClose, nil), []string{"8:"}, 0},
		{"close with code", clientFrame(true, opClose, closeBody(1000, "bye")), []string{"8:" + string(closeBody(1000, "bye"))}, 0},
		{"text ignored between pings", bytes.Join([][]byte{
			clientFrame(true, opPing, []byte("a")), clientFrame(true, opText, []byte("some text")), clientFrame(true, opPing, []byte("b"))}, nil),
			[]string{"9:a", "9:b"}, 0},
		{"fragmented message ignored", bytes.Join([][]byte{
			clientFrame(false, opBinary, []byte("ab")), clientFrame(true, opPong, nil), clientFrame(true, opContinuation, []byte("cd"))}, nil),
			[]string{"a:"}, 0},
		{"16-bit length skipped", append(clientFrame(true, opText, bytes.Repeat([]byte("z"), 300)), clientFrame(true, opPong, []byte("p"))...),
			[]string{"a:p"}, 0},
		{"unmasked", []byte{0x89, 0x00}, nil, websocket.CloseProtocolError},
		{"reserved bit", func() []byte { f := clientFrame(true, opPing, nil); f[0] |= 0x40; return f }(), nil, websocket.CloseProtocolError},
		{"unknown opcode", clientFrame(true, 0x3, nil), nil, websocket.CloseProtocolError},
		{"fragmented ping", clientFrame(false, opPing, nil), nil, websocket.CloseProtocolError},
		{"long ping", clientFrame(true, opPing, bytes.Repeat([]byte("p"), 126)), nil, websocket.CloseProtocolError},
		{"continuation first", clientFrame(true, opContinuation, []byte("x")), nil, websocket.CloseProtocolError},
		{"text inside a message", append(clientFrame(false, opText, []byte("x")), clientFrame(true, opText, []byte("y"))...), nil, websocket.CloseProtocolError},
		{"message over the read limit", clientFrame(true, opText, make([]byte, wsReadLimit+1)), nil, websocket.CloseMessageTooBig},
		{"fragmented message over the read limit", append(clientFrame(false, opText, make([]byte, wsReadLimit)), clientFrame(true, opContinuation, []byte("x"))...),
			nil, websocket.CloseMessageTooBig},
		{"messages at the read limit, one after another", append(clientFrame(true, opText, make([]byte, wsReadLimit)), clientFrame(true, opBinary, make([]byte, wsReadLimit))...),
			nil, 0},
		{"64-bit length with the top bit", []byte{0x81, 0x80 | 127, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4}, nil, websocket.CloseProtocolError},
		{"one-byte close", clientFrame(true, opClose, []byte{3}), nil, websocket.CloseProtocolError},
		{"reserved close code", clientFrame(true, opClose, closeBody(1005, "")), nil, websocket.CloseProtocolError},
		{"close reason not UTF-8", clientFrame(true, opClose, closeBody(1000, "\xff")), nil, websocket.CloseInvalidFramePayloadData},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			frames, code := feedAll(&clientFrames{}, tt.in)
			if fmt.Sprint(frames) != fmt.Sprint(tt.frames) || code != tt.code {
				t.Fatalf("whole: frames %q code %d, want %q %d", frames, code, tt.frames, tt.code)
			}
			// Split in two at every byte, and one byte at a time.
			for i := 1; i < len(tt.in); i++ {
				frames, code := feedAll(&clientFrames{}, tt.in[:i], tt.in[i:])
				if fmt.Sprint(frames) != fmt.Sprint(tt.frames) || code != tt.code {
					t.Fatalf("split at %d: frames %q code %d, want %q %d", i, frames, code, tt.frames, tt.code)
				}
			}
			var bytewise [][]byte
			for i := range tt.in {
				bytewise = append(bytewise, tt.in[i:i+1])
			}
			if frames, code := feedAll(&clientFrames{}, bytewise...); fmt.Sprint(frames) != fmt.Sprint(tt.frames) || code != tt.code {
				t.Fatalf("byte by byte: frames %q code %d, want %q %d", frames, code, tt.frames, tt.code)
			}
		})
	}
}

// TestClientFramesKeepNothingIdle: between frames the parser holds no buffer.
func TestClientFramesKeepNothingIdle(t *testing.T) {
	var c clientFrames
	f := clientFrame(true, opPong, []byte("abc"))
	feedAll(&c, f[:3])
	if len(c.partial) == 0 {
		t.Fatal("a split frame was not kept")
	}
	feedAll(&c, f[3:])
	if c.partial != nil {
		t.Fatalf("%d bytes kept after a whole frame", cap(c.partial))
	}
}

// FuzzClientFrames: however the bytes are split, the parser reports the
// same frames and the same error, and never keeps more than one control
// frame's worth.
func FuzzClientFrames(f *testing.F) {
	f.Add(clientFrame(true, opPing, []byte("hi")), uint8(3))
	f.Add(append(clientFrame(false, opText, []byte("ab")), clientFrame(true, opContinuation, []byte("c"))...), uint8(1))
	f.Add(clientFrame(true, opClose, []byte{0x03, 0xe8, 'o', 'k'}), uint8(5))
	f.Add([]byte{0x81, 0xfe, 0x01, 0x00, 1, 2, 3, 4}, uint8(2))
	f.Fuzz(func(t *testing.T, in []byte, step uint8) {
		wantFrames, wantCode := feedAll(&clientFrames{}, in)
		k := int(step%16) + 1
		var chunks [][]byte
		for i := 0; i < len(in); i += k {
			chunks = append(chunks, in[i:min(i+k, len(in))])
		}
		c := &clientFrames{}
		frames, code := feedAll(c, chunks...)
		if fmt.Sprint(frames) != fmt.Sprint(wantFrames) || code != wantCode {
			t.Fatalf("in %d-byte chunks: %q %d; whole: %q %d", k, frames, code, wantFrames, wantCode)
		}
		if len(c.partial) > maxClientFrameHead+125 {
			t.Fatalf("kept %d bytes", len(c.partial))
		}
	})
}
