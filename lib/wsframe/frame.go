package wsframe

import "unicode/utf8"

// AppendFrame appends a frame with h's flags and opcode and payload to dst;
// h.Length is set from payload. A masked frame (a client's) has its payload
// masked with h.Mask in dst; payload itself is left as it is.
func AppendFrame(dst []byte, h Header, payload []byte) []byte {
	h.Length = int64(len(payload))
	dst = AppendHeader(dst, h)
	start := len(dst)
	dst = append(dst, payload...)
	if h.Masked {
		Cipher(dst[start:], h.Mask, 0)
	}
	return dst
}

// AppendControl appends a server's control frame (unmasked, final) with
// payload, which must be at most MaxControlPayloadSize bytes.
func AppendControl(dst []byte, op OpCode, payload []byte) []byte {
	return AppendFrame(dst, Header{Fin: true, OpCode: op}, payload)
}

// AppendClose appends a server's close frame with code and reason (cut to
// fit the 125 bytes of a control frame, between two characters); code 0
// sends an empty one, the answer to a close without a code.
func AppendClose(dst []byte, code StatusCode, reason string) []byte {
	var p [MaxControlPayloadSize]byte
	if n := len(p) - 2; len(reason) > n {
		for n > 0 && !utf8.RuneStart(reason[n]) {
			n--
		}
		reason = reason[:n]
	}
	return AppendControl(dst, OpClose, p[:PutCloseBody(p[:], code, reason)])
}
