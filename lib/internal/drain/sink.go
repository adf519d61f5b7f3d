package drain

import (
	"io"
	"os"
	"time"
)

// sink is where the flusher writes, with what the platform offers around it.
type sink struct {
	w        io.Writer
	deadline func(time.Time) error // interrupts a blocked write; nil when impossible
	pipe     *os.File              // the pipe to watch for its reader leaving; nil if none
	reopened *os.File              // a description this package opened and must close
	stop     func()                // ends the watcher; nil when none runs
	// storage is true for a regular file or a device like /dev/null:
	// nothing reads it at its own pace, so a full buffer only means the
	// flusher has not had the CPU yet, and the writer waits instead of
	// dropping (`tl-tail > capture.ndjson` must be complete).
	storage bool
}

// interrupt makes a blocked write return at once. It reports whether it could.
func (s *sink) interrupt() bool {
	return s.deadline != nil && s.deadline(time.Now()) == nil
}

// close stops the watcher and closes what openSink opened (never the
// caller's file).
func (s *sink) close() {
	if s.stop != nil {
		s.stop()
	}
	if s.reopened != nil {
		s.reopened.Close()
	}
}

// pollable reports whether f's writes accept deadlines (f is in the poller).
func pollable(f *os.File) bool { return f.SetWriteDeadline(time.Time{}) == nil }
