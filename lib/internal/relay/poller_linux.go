package relay

import (
	"sync"
	"syscall"
)

// poller is the relay's one reader of its hub subscribers' sockets: an
// epoll instance watching them all, so that an idle subscriber needs no
// goroutine of its own (a goroutine blocked in a read holds a stack of 2 to
// 8 KiB). It reads what the clients send (pongs, pings, close frames) and
// tells a subscriber's hub when its socket has room again after a short
// write. Its goroutine is owned by the Server: it ends in close, which
// Shutdown calls once every subscriber has ended.
type poller struct {
	epfd int
	wake [2]int // a pipe: close writes to it to end run

	mu   sync.Mutex // guards subs and next
	subs map[uint64]*subscriber
	next uint64 // the id of the next subscriber added

	done chan struct{} // closed when run returns
}

const (
	epollET  = 1 << 31 // syscall.EPOLLET, which syscall declares negative
	epollIn  = syscall.EPOLLIN | syscall.EPOLLRDHUP | epollET
	epollOut = syscall.EPOLLOUT
)

// newPoller returns a running poller.
func newPoller() (*poller, error) {
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	p := &poller{epfd: epfd, subs: map[uint64]*subscriber{}, done: make(chan struct{})}
	if err := syscall.Pipe2(p.wake[:], syscall.O_CLOEXEC|syscall.O_NONBLOCK); err != nil {
		syscall.Close(epfd)
		return nil, err
	}
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN} // id 0: the wake pipe
	if err := syscall.EpollCtl(epfd, syscall.EPOLL_CTL_ADD, p.wake[0], &ev); err != nil {
		syscall.Close(epfd)
		syscall.Close(p.wake[0])
		syscall.Close(p.wake[1])
		return nil, err
	}
	go p.run()
	return p, nil
}

// setID and getID keep a subscriber's id in an event's data.
func setID(ev *syscall.EpollEvent, id uint64) {
	ev.Fd, ev.Pad = int32(uint32(id)), int32(uint32(id>>32))
}
func getID(ev *syscall.EpollEvent) uint64 { return uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32 }

// add starts watching sub's socket for reads.
func (p *poller) add(sub *subscriber) error {
	p.mu.Lock()
	p.next++
	sub.pollID = p.next
	p.subs[sub.pollID] = sub
	p.mu.Unlock()
	if err := p.ctl(sub, syscall.EPOLL_CTL_ADD, epollIn); err != nil {
		p.mu.Lock()
		delete(p.subs, sub.pollID)
		p.mu.Unlock()
		return err
	}
	return nil
}

// watchOut asks (on) or stops asking to hear when sub's socket has room.
func (p *poller) watchOut(sub *subscriber, on bool) error {
	events := uint32(epollIn)
	if on {
		events |= epollOut
	}
	return p.ctl(sub, syscall.EPOLL_CTL_MOD, events)
}

// remove stops watching sub; call it before the socket closes. A socket
// closed already has left the epoll set with its descriptor.
func (p *poller) remove(sub *subscriber) {
	p.ctl(sub, syscall.EPOLL_CTL_DEL, 0)
	p.mu.Lock()
	delete(p.subs, sub.pollID)
	p.mu.Unlock()
}

func (p *poller) ctl(sub *subscriber, op int, events uint32) error {
	ev := syscall.EpollEvent{Events: events}
	setID(&ev, sub.pollID)
	var err error
	cerr := sub.rc.Control(func(fd uintptr) { err = syscall.EpollCtl(p.epfd, op, int(fd), &ev) })
	if cerr != nil {
		return cerr
	}
	return err
}

// run waits for events until close.
func (p *poller) run() {
	defer close(p.done)
	events := make([]syscall.EpollEvent, 256)
	var buf [1024]byte
	// ready holds the sockets left with data to read after their share
	// (see readClient), so that a client sending a flood does not keep the
	// others waiting: each gets a share per pass.
	var ready []*subscriber
	for {
		timeout := -1
		if len(ready) > 0 {
			timeout = 0
		}
		n, err := syscall.EpollWait(p.epfd, events, timeout)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return
		}
		still := ready[:0]
		for _, sub := range ready {
			if sub.readClient(buf[:]) {
				still = append(still, sub)
			} else {
				sub.pollReady = false
			}
		}
		clear(ready[len(still):])
		ready = still
		for i := range events[:n] {
			ev := &events[i]
			id := getID(ev)
			if id == 0 {
				return // close
			}
			p.mu.Lock()
			sub := p.subs[id]
			p.mu.Unlock()
			if sub == nil {
				continue // removed since
			}
			if ev.Events&^epollOut != 0 && !sub.pollReady && sub.readClient(buf[:]) {
				sub.pollReady = true
				ready = append(ready, sub)
			}
			if ev.Events&(epollOut|syscall.EPOLLERR|syscall.EPOLLHUP) != 0 {
				sub.kick(evWritable)
			}
		}
	}
}

// close ends run and releases the epoll instance. Call it once, after every
// subscriber was removed.
func (p *poller) close() {
	syscall.Write(p.wake[1], []byte{0})
	<-p.done
	syscall.Close(p.epfd)
	syscall.Close(p.wake[0])
	syscall.Close(p.wake[1])
}

// The relay's raw socket I/O lives here, beside the poller that tells when
// to do it: the hub's writes and reads, and frameWriter's writes, go
// straight to the descriptor, with no copy and no deadline (see hub and
// frameWriter). Elsewhere (poller_other.go) there is none: no hub runs,
// and gorilla writes every frame.
const rawSocketIO = true

// writeFD writes p to the non-blocking socket fd until it is full. It
// returns how much it took.
func writeFD(fd int, p []byte) (int, error) {
	n := 0
	for n < len(p) {
		k, err := syscall.Write(fd, p[n:])
		if k > 0 {
			n += k
		}
		switch {
		case err == syscall.EINTR:
			continue
		case err == syscall.EAGAIN:
			return n, nil
		case err != nil:
			return n, err
		case k <= 0:
			return n, nil
		}
	}
	return n, nil
}

// readSocket reads once from the non-blocking socket rc into buf. It
// returns -1 when there is nothing to read, and errPeerGone at the end.
func readSocket(rc syscall.RawConn, buf []byte) (n int, err error) {
	cerr := rc.Control(func(fd uintptr) {
		for {
			n, err = syscall.Read(int(fd), buf)
			if err != syscall.EINTR {
				return
			}
		}
	})
	switch {
	case cerr != nil:
		return 0, cerr
	case err == syscall.EAGAIN:
		return -1, nil
	case err != nil:
		return 0, err
	case n == 0:
		return 0, errPeerGone
	}
	return n, nil
}
