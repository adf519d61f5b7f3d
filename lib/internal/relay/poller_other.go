//go:build !linux

package relay

import (
	"errors"
	"syscall"
)

// poller is Linux's epoll reader of hub subscribers (poller_linux.go).
// Elsewhere there is none, and every WebSocket subscriber is served by
// goroutines of its own (serveWS).
type poller struct{}

func newPoller() (*poller, error) { return nil, errors.New("no epoll on this system") }

func (p *poller) add(*subscriber) error            { return errors.New("no poller") }
func (p *poller) watchOut(*subscriber, bool) error { return errors.New("no poller") }
func (p *poller) remove(*subscriber)               {}
func (p *poller) close()                           {}

// Raw socket I/O is Linux's, beside its poller (poller_linux.go): here no
// hub runs, and gorilla writes every frame (newFrameWriter returns nil).
const rawSocketIO = false

func writeFD(int, []byte) (int, error) { return 0, errors.New("no raw socket I/O") }

func readSocket(syscall.RawConn, []byte) (int, error) {
	return 0, errors.New("no raw socket I/O")
}
