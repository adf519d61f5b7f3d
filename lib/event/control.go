package event

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
)

// Control lines (tl-protocol(7), "Lines"): the lines of a stream that are
// not deliveries, whose first key is "control". The relay writes them with
// AppendHello and AppendGap; tl-tail, the load generator and the tests'
// stream checker read them with IsControl and ParseControl. tl-fmt shows any
// object with a "control" key as one (ControlKey).
//
//	{"control":"hello","tenant":"acme","epoch":"E","last_seq":41}
//	{"control":"gap","from_seq":A,"to_seq":B,"reason":"R"}
const (
	ControlKey = "control"

	Hello = "hello" // the first line of every stream
	Gap   = "gap"   // events from_seq..to_seq will never reach this subscriber

	GapEvicted = "evicted" // a gap's reason: older than the history
	GapEpoch   = "epoch"   // a gap's reason: the numbering restarted
)

var controlPrefix = []byte(`{"control":`)

// Control is a decoded control line; the fields that its kind does not
// carry are zero.
type Control struct {
	Control string `json:"control"` // Hello or Gap (or a kind this version does not know)
	// A hello's.
	Tenant  string `json:"tenant"`
	Epoch   string `json:"epoch"`
	LastSeq uint64 `json:"last_seq"`
	// A gap's.
	FromSeq uint64 `json:"from_seq"`
	ToSeq   uint64 `json:"to_seq"`
	Reason  string `json:"reason"`
}

// AppendHello appends a hello line, with its newline. tenant must be a
// checked name (CheckTenant), which needs no escaping.
func AppendHello(dst []byte, tenant, epoch string, lastSeq uint64) []byte {
	dst = append(dst, `{"control":"hello","tenant":"`...)
	dst = append(dst, tenant...)
	dst = append(dst, `","epoch":`...)
	dst = strconv.AppendQuote(dst, epoch)
	dst = append(dst, `,"last_seq":`...)
	dst = strconv.AppendUint(dst, lastSeq, 10)
	return append(dst, "}\n"...)
}

// AppendGap appends a gap line for events from..to, with its newline;
// reason is GapEvicted or GapEpoch.
func AppendGap(dst []byte, from, to uint64, reason string) []byte {
	dst = append(dst, `{"control":"gap","from_seq":`...)
	dst = strconv.AppendUint(dst, from, 10)
	dst = append(dst, `,"to_seq":`...)
	dst = strconv.AppendUint(dst, to, 10)
	dst = append(dst, `,"reason":"`...)
	dst = append(dst, reason...)
	return append(dst, "\"}\n"...)
}

// IsControl reports whether line is a control line, without decoding it
// (a delivery starts `{"seq":`).
func IsControl(line []byte) bool { return bytes.HasPrefix(line, controlPrefix) }

// ParseControl decodes a control line. Unknown keys are ignored, and so is
// an unknown kind, which the caller sees in Control: later relays may send
// more.
func ParseControl(line []byte) (Control, error) {
	var c Control
	if !IsControl(line) {
		return c, fmt.Errorf("not a control line: %.80q", line)
	}
	if err := json.Unmarshal(line, &c); err != nil {
		return c, fmt.Errorf("unreadable control line %.80q: %w", line, err)
	}
	return c, nil
}
