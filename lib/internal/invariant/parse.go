package invariant

import (
	"encoding/json"
	"fmt"
)

// IDKey is the metadata key that carries an event's unique id.
const IDKey = "id"

// wireLine holds the fields of any line a relay sends: a delivery or a
// control line (tl-protocol(7), Subscribe).
type wireLine struct {
	Control  string            `json:"control"`
	Epoch    string            `json:"epoch"`
	LastSeq  uint64            `json:"last_seq"`
	FromSeq  uint64            `json:"from_seq"`
	ToSeq    uint64            `json:"to_seq"`
	Reason   string            `json:"reason"`
	Seq      uint64            `json:"seq"`
	Metadata map[string]string `json:"metadata"`
}

// ParseLine reads one line of a stream: a hello, a gap or a delivery,
// whose id is its metadata's IDKey.
func ParseLine(b []byte) (Line, error) {
	var w wireLine
	if err := json.Unmarshal(b, &w); err != nil {
		return Line{}, fmt.Errorf("unreadable line %.80q: %w", b, err)
	}
	switch w.Control {
	case "hello":
		return Line{Kind: Hello, Epoch: w.Epoch, LastSeq: w.LastSeq}, nil
	case "gap":
		return Line{Kind: Gap, From: w.FromSeq, To: w.ToSeq, Reason: w.Reason}, nil
	case "":
		if w.Seq == 0 {
			return Line{}, fmt.Errorf("a delivery without a seq: %.80q", b)
		}
		return Line{Kind: Delivery, Seq: w.Seq, ID: w.Metadata[IDKey]}, nil
	}
	return Line{}, fmt.Errorf("unknown control line %.80q", b)
}
