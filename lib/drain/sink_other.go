//go:build !linux

package drain

import (
	"io"
	"os"
)

// openSink uses out as it is; writes get deadlines only when out is already
// in Go's poller. Without /proc, stdout cannot be given a description of its
// own safely, so a stalled reader may keep the flusher in a write until the
// process exits.
func openSink(out io.Writer) *sink {
	s := &sink{w: out}
	if f, ok := out.(*os.File); ok && pollable(f) {
		s.deadline = f.SetWriteDeadline
	}
	return s
}

// watch does nothing here: a write reports the reader leaving (EPIPE).
func (s *sink) watch(gone func()) {}
