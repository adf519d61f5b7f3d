package wsframe

import (
	"encoding/binary"
	"unicode/utf8"
)

// StatusCode is a close frame's code (RFC 6455, 7.4).
type StatusCode uint16

// The close codes RFC 6455 (7.4.1) and IANA's registry define.
const (
	StatusNormalClosure           StatusCode = 1000
	StatusGoingAway               StatusCode = 1001
	StatusProtocolError           StatusCode = 1002
	StatusUnsupportedData         StatusCode = 1003
	StatusNoStatusRcvd            StatusCode = 1005 // never sent: "the close had no code"
	StatusAbnormalClosure         StatusCode = 1006 // never sent: "no close at all"
	StatusInvalidFramePayloadData StatusCode = 1007
	StatusPolicyViolation         StatusCode = 1008
	StatusMessageTooBig           StatusCode = 1009
	StatusMandatoryExt            StatusCode = 1010
	StatusInternalServerError     StatusCode = 1011
	StatusServiceRestart          StatusCode = 1012
	StatusTryAgainLater           StatusCode = 1013
	StatusBadGateway              StatusCode = 1014
	StatusTLSHandshake            StatusCode = 1015 // never sent
)

// ValidToReceive reports whether a peer may send c in a close frame: a
// code RFC 6455 or IANA assign for use on the wire, or one of the
// registered and private ranges 3000-4999 (7.4.2). It is gorilla's rule
// but for 1014 (bad gateway), which gorilla v1.5.3 refuses.
func (c StatusCode) ValidToReceive() bool {
	switch c {
	case 1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014:
		return true
	}
	return c >= 3000 && c <= 4999
}

// PutCloseBody encodes a close frame's payload into dst, which must hold
// 2+len(reason) bytes, and returns how many it wrote. Code 0 writes
// nothing: a close without a code (the answer to one).
func PutCloseBody(dst []byte, code StatusCode, reason string) int {
	if code == 0 {
		return 0
	}
	binary.BigEndian.PutUint16(dst, uint16(code))
	return 2 + copy(dst[2:], reason)
}

// ParseCloseBody splits a close frame's payload into its code and reason;
// an empty payload has code 0 (StatusNoStatusRcvd is the name a receiver
// gives it). It does not check them: CheckCloseBody does.
func ParseCloseBody(p []byte) (code StatusCode, reason []byte) {
	if len(p) < 2 {
		return 0, nil
	}
	return StatusCode(binary.BigEndian.Uint16(p)), p[2:]
}

// CheckCloseBody checks a close frame's payload as received: empty, or a
// code a peer may send and a UTF-8 reason (RFC 6455, 5.5.1, 7.4).
func CheckCloseBody(p []byte) *Error {
	switch {
	case len(p) == 0:
		return nil
	case len(p) == 1:
		return ErrCloseOneByte
	}
	code, reason := ParseCloseBody(p)
	if !code.ValidToReceive() {
		return ErrCloseCode
	}
	if !utf8.Valid(reason) {
		return ErrCloseReasonUTF8
	}
	return nil
}
