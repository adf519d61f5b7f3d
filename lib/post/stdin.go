package post

import (
	"fmt"
	"io"
	"os"
	"time"
)

// openStdin returns a reader for stdin and a func that interrupts a read
// blocked on it (a quiet pipe or terminal after Ctrl-C). On Linux a pipe or
// terminal is reopened through /proc/self/fd: the new description is in
// Go's poller, so a read deadline can end a blocked read, while fd 0 itself
// stays as the shell left it. Elsewhere, or for a regular file (whose reads
// never block for long), stdin is used as it is.
func openStdin(r io.Reader) (io.Reader, func()) {
	f, ok := r.(*os.File)
	if !ok {
		return r, func() {}
	}
	fi, err := f.Stat()
	if err != nil || fi.Mode().IsRegular() {
		return r, func() {}
	}
	var fd uintptr
	sc, err := f.SyscallConn()
	if err != nil || sc.Control(func(x uintptr) { fd = x }) != nil {
		return r, func() {}
	}
	g, err := os.OpenFile(fmt.Sprintf("/proc/self/fd/%d", fd), os.O_RDONLY, 0)
	if err != nil {
		return r, func() {}
	}
	if g.SetReadDeadline(time.Time{}) != nil {
		// Not pollable: no better than stdin itself.
		g.Close()
		return r, func() {}
	}
	return g, func() { g.SetReadDeadline(time.Unix(1, 0)) }
}
