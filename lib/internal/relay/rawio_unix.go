//go:build unix

package relay

import "syscall"

// Raw descriptor I/O outside the epoll poller (poller_linux.go has the
// socket's): the pacer's pipe (pace.go), polled by the netpoller here.
const rawPipeIO = true

// rawRead reads once from the non-blocking descriptor fd (EINTR retried).
func rawRead(fd uintptr, p []byte) (int, error) {
	for {
		n, err := syscall.Read(int(fd), p)
		if err != syscall.EINTR {
			return n, err
		}
	}
}

// rawWrite writes once to the non-blocking descriptor fd (EINTR retried).
func rawWrite(fd uintptr, p []byte) (int, error) {
	for {
		n, err := syscall.Write(int(fd), p)
		if err != syscall.EINTR {
			return n, err
		}
	}
}
