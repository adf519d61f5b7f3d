package relay

import "github.com/tl-sh/tl/lib/internal/wsframe"

// The parser's own tests are lib/internal/wsframe's; the hub's (through
// real sockets) are in hub_linux_test.go.

const opText = byte(wsframe.OpText)

// clientFrame builds a masked client frame.
func clientFrame(fin bool, op byte, payload []byte) []byte {
	h := wsframe.Header{Fin: fin, OpCode: wsframe.OpCode(op), Masked: true, Mask: [4]byte{0x37, 0xfa, 0x21, 0x3d}}
	return wsframe.AppendFrame(nil, h, payload)
}
