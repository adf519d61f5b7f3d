package wsframe

// Error is a peer's breach of the protocol, and the close code to answer
// it with.
type Error struct {
	Code   StatusCode
	Reason string
}

func (e *Error) Error() string { return "websocket: " + e.Reason }

// The breaches the codec finds. Each is one value, so that a parser that
// meets one allocates nothing; compare them with ==.
var (
	ErrReservedBits      = protocolError("reserved bits set")
	ErrReservedOpCode    = protocolError("unknown opcode")
	ErrControlFragmented = protocolError("control frame fragmented")
	ErrControlTooLong    = protocolError("control frame over 125 bytes")
	ErrUnmasked          = protocolError("client frame not masked")
	ErrMasked            = protocolError("server frame masked")
	ErrDataOutOfSequence = protocolError("data frame out of sequence")
	ErrCloseOneByte      = protocolError("close frame of one byte")
	ErrCloseCode         = protocolError("invalid close code")
	ErrCloseReasonUTF8   = &Error{StatusInvalidFramePayloadData, "invalid UTF-8 in close reason"}
	ErrMessageTooBig     = &Error{StatusMessageTooBig, "message too big"}
)

func protocolError(reason string) *Error { return &Error{StatusProtocolError, reason} }
