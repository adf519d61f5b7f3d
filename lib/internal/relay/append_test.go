package relay

import (
	"context"

	"github.com/tl-sh/tl/lib/internal/tlog"
)

// appendBodies appends bs to l without a key, the way tests fill a log.
func appendBodies(l tlog.Log, bs [][]byte) (first, last uint64, err error) {
	a, err := l.Append(context.Background(), tlog.Batch{Bodies: bs})
	return a.First, a.Last, err
}
