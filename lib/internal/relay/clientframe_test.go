package relay

import (
	"testing"

	"github.com/tl-sh/tl/lib/wsframe"
)

// The parser's own tests are lib/internal/wsframe's; the hub's (through
// real sockets) are in hub_linux_test.go.

const opText = byte(wsframe.OpText)

// clientFrame builds a masked client frame.
func clientFrame(fin bool, op byte, payload []byte) []byte {
	h := wsframe.Header{Fin: fin, OpCode: wsframe.OpCode(op), Masked: true, Mask: [4]byte{0x37, 0xfa, 0x21, 0x3d}}
	return wsframe.AppendFrame(nil, h, payload)
}

// BenchmarkClientFrames is the poller's parse of one read from a client:
// 16 small control frames (pongs with a payload, empty pings), as
// readClient feeds them. No allocation.
func BenchmarkClientFrames(b *testing.B) {
	var in []byte
	for range 8 {
		in = append(in, clientFrame(true, byte(wsframe.OpPong), []byte("0123456789"))...)
		in = append(in, clientFrame(true, byte(wsframe.OpPing), nil)...)
	}
	buf := make([]byte, len(in))
	c := clientFrames{Limit: wsReadLimit}
	n := 0
	on := func(ev wsframe.Event) { n += len(ev.Payload) }
	b.ReportAllocs()
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		copy(buf, in)
		if err := c.Feed(buf, on); err != nil {
			b.Fatal(err)
		}
	}
}
