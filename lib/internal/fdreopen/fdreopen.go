// Package fdreopen gives a pipe or terminal that Go's poller does not
// manage (stdin or stdout as the shell made it) an open file description of
// its own, by opening it again through /proc/self/fd/N (Linux). The new
// description is non-blocking and in the poller, so reads and writes on it
// can have deadlines, while the original, shared with the shell and other
// processes, stays as it was (blocking). tl-post reads stdin this way and
// tl-tail's stdout writer (lib/internal/drain) writes a pipe this way.
package fdreopen

import (
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"
)

// ErrNotPollable is returned when the reopened file is not managed by Go's
// poller: it would be no better than f.
var ErrNotPollable = errors.New("reopened file is not pollable")

// Reopen opens f's file again through /proc/self/fd with flag (os.O_RDONLY
// or os.O_WRONLY; O_NONBLOCK is added, so that reopening a named pipe whose
// other end is gone returns at once instead of waiting for a partner). It fails where there is no /proc,
// and with ErrNotPollable when the new file takes no deadline. Reopening a
// regular file would start at offset 0: callers reopen pipes and
// terminals only. f's descriptor is read without os.File.Fd, which would
// put a pollable f into blocking mode.
func Reopen(f *os.File, flag int) (*os.File, error) {
	sc, err := f.SyscallConn()
	if err != nil {
		return nil, err
	}
	var fd uintptr
	if err := sc.Control(func(x uintptr) { fd = x }); err != nil {
		return nil, err
	}
	g, err := os.OpenFile(fmt.Sprintf("/proc/self/fd/%d", fd), flag|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	if !Pollable(g) {
		g.Close()
		return nil, ErrNotPollable
	}
	return g, nil
}

// Pollable reports whether f is managed by Go's poller, that is, whether
// its reads and writes can have deadlines.
func Pollable(f *os.File) bool { return f.SetDeadline(time.Time{}) == nil }
