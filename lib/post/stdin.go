package post

import (
	"io"
	"os"
	"time"

	"github.com/tl-sh/tl/lib/internal/fdreopen"
)

// openStdin returns a reader for stdin and a func that interrupts a read
// blocked on it (a quiet pipe or terminal after Ctrl-C). On Linux a pipe or
// terminal is reopened through /proc/self/fd (lib/internal/fdreopen): the
// new description is in
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
	g, err := fdreopen.Reopen(f, os.O_RDONLY)
	if err != nil {
		return r, func() {} // no /proc, or not pollable: stdin as it is
	}
	return g, func() { g.SetReadDeadline(time.Unix(1, 0)) }
}
