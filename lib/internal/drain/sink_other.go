//go:build !linux

package drain

import (
	"io"
	"os"
)

// openSink uses out as it is; writes get deadlines only when out is already
// in Go's poller. Without /proc, stdout cannot be given a description of its
// own safely, so a stalled reader may keep the flusher in a write until the
// process exits. Only regular files count as storage here: telling a
// terminal from /dev/null needs a platform's ioctl.
func openSink(out io.Writer) *sink {
	s := &sink{w: out}
	if f, ok := out.(*os.File); ok {
		if pollable(f) {
			s.deadline = f.SetWriteDeadline
		}
		fi, err := f.Stat()
		s.storage = err == nil && fi.Mode().IsRegular()
	}
	return s
}

// watch does nothing here: a write reports the reader leaving (EPIPE).
func (s *sink) watch(gone func()) {}
