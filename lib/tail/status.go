package tail

import (
	"fmt"
	"io"
	"sync"
)

// status writes tl-tail's status lines to stderr: progress (hidden by -q)
// and losses (always shown, like errors: a user must know that events are
// missing from the output).
type status struct {
	quiet  bool
	prefix string // names the tenant when a run follows several
	// mu serialises whole lines to w: the drain's reporting goroutine and
	// the stream goroutines all write. It is held during the write, as
	// log.Logger does, because a status line must not interleave. The
	// statuses of one run share it.
	mu *sync.Mutex
	w  io.Writer
}

// about returns the status of one tenant's stream among several: its lines
// start with the tenant's name.
func (s *status) about(tenant string) *status {
	return &status{quiet: s.quiet, prefix: tenant + ": ", mu: s.mu, w: s.w}
}

func (s *status) print(format string, a ...any) {
	line := fmt.Sprintf(name+": "+s.prefix+format+"\n", a...)
	s.mu.Lock()
	defer s.mu.Unlock()
	io.WriteString(s.w, line)
}

// progress reports connecting, reconnecting and resuming.
func (s *status) progress(format string, a ...any) {
	if !s.quiet {
		s.print(format, a...)
	}
}

// loss reports events that will not be printed.
func (s *status) loss(format string, a ...any) { s.print(format, a...) }

// dropped is the drain's OnDrop: lines the stdout writer had to drop.
func (s *status) dropped(n, total int64) {
	s.loss("dropped %d %s: stdout did not keep up (%d in total; --lossless never drops)", n, plural(n, "line"), total)
}

func plural(n int64, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}
