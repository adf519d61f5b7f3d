package invariant

import (
	"encoding/json"
	"fmt"

	tlevent "github.com/tl-sh/tl/lib/event"
)

// IDKey is the metadata key that carries an event's unique id.
const IDKey = "id"

// delivery holds the fields of a delivered line that the checks use.
type delivery struct {
	Seq      uint64            `json:"seq"`
	Metadata map[string]string `json:"metadata"`
}

// ParseLine reads one line of a stream: a hello, a gap (event.ParseControl)
// or a delivery, whose id is its metadata's IDKey.
func ParseLine(b []byte) (Line, error) {
	if tlevent.IsControl(b) {
		c, err := tlevent.ParseControl(b)
		if err != nil {
			return Line{}, err
		}
		switch c.Control {
		case tlevent.Hello:
			return Line{Kind: Hello, Epoch: c.Epoch, LastSeq: c.LastSeq}, nil
		case tlevent.Gap:
			return Line{Kind: Gap, From: c.FromSeq, To: c.ToSeq, Reason: c.Reason}, nil
		}
		return Line{}, fmt.Errorf("unknown control line %.80q", b)
	}
	var d delivery
	if err := json.Unmarshal(b, &d); err != nil {
		return Line{}, fmt.Errorf("unreadable line %.80q: %w", b, err)
	}
	if d.Seq == 0 {
		return Line{}, fmt.Errorf("a delivery without a seq: %.80q", b)
	}
	return Line{Kind: Delivery, Seq: d.Seq, ID: d.Metadata[IDKey]}, nil
}
