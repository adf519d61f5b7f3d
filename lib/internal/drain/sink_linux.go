package drain

import (
	"io"
	"os"

	"golang.org/x/sys/unix"

	"github.com/tl-sh/tl/lib/internal/fdreopen"
)

// openSink prepares out. A pipe that is not in Go's poller (os.Stdout as a
// shell made it) is reopened through /proc/self/fd/N (lib/internal/fdreopen):
// the new open file description is non-blocking and poller-managed, so
// writes can have deadlines, while fd 1's own description, shared with the
// shell and other processes, stays blocking. Terminals, regular files and sockets are used as
// they are: they need no such care (and reopening a regular file would start
// at offset 0). Regular files and devices other than terminals are storage
// (see sink).
func openSink(out io.Writer) *sink {
	f, ok := out.(*os.File)
	if !ok {
		return &sink{w: out}
	}
	fi, err := f.Stat()
	if err != nil {
		return &sink{w: f}
	}
	switch m := fi.Mode(); {
	case m.IsRegular():
		return &sink{w: f, storage: true}
	case m&os.ModeCharDevice != 0:
		// f.Fd is harmless: a device file is not in the poller.
		_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
		return &sink{w: f, storage: err != nil} // a terminal, or /dev/null and its kin
	case m&os.ModeNamedPipe == 0:
		return &sink{w: f} // a socket
	}
	s := &sink{w: f, pipe: f}
	if pollable(f) {
		s.deadline = f.SetWriteDeadline
		return s
	}
	rf, err := fdreopen.Reopen(f, os.O_WRONLY)
	if err != nil {
		return s // no /proc, or not pollable: blocking writes on f still work
	}
	s.w, s.deadline, s.pipe, s.reopened = rf, rf.SetWriteDeadline, rf, rf
	return s
}

// watch calls gone, once, when the pipe's last reader has left. poll(2)
// reports POLLERR on a pipe's write end without readers whatever events are
// asked for, so the watcher sleeps in poll on the pipe and on a wake-up pipe
// that stop writes to.
func (s *sink) watch(gone func()) {
	if s.pipe == nil {
		return
	}
	rc, err := s.pipe.SyscallConn()
	if err != nil {
		return
	}
	var wake [2]int
	if err := unix.Pipe2(wake[:], unix.O_CLOEXEC); err != nil {
		return
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		// Control lends the fd without changing its blocking mode, and
		// keeps it open until the callback returns.
		rc.Control(func(fd uintptr) {
			fds := []unix.PollFd{{Fd: int32(fd)}, {Fd: int32(wake[0]), Events: unix.POLLIN}}
			for {
				_, err := unix.Poll(fds, -1)
				if err == unix.EINTR {
					continue
				}
				if err != nil || fds[1].Revents != 0 || fds[0].Revents&unix.POLLNVAL != 0 {
					return
				}
				if fds[0].Revents&(unix.POLLERR|unix.POLLHUP) != 0 {
					gone()
					return
				}
			}
		})
	}()
	s.stop = func() {
		unix.Write(wake[1], []byte{0})
		<-done
		unix.Close(wake[0])
		unix.Close(wake[1])
	}
}
