package relay

import (
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// pacer puts ingestion first when the CPU is short. A busy fan-out (a hub
// writing to 10,000 sockets, or the writer goroutines of TLS streams) is
// always runnable, and Go's scheduler looks at the network only when it has
// nothing else to run, or every 10 ms from its monitor thread: with one CPU
// for the relay (GOMAXPROCS=1 under taskset, or a box whose other core is
// busy), a POST's connection waited that long each time it became readable,
// and then again in the run queue behind the fan-out's time slice. B's POST
// p99 was 94 ms pinned to one core. So the fan-out gives way every
// paceSlice: the goroutine that finds the slice used up parks until the
// netpoller sees a byte it wrote into a pipe of its own. Parking runs
// every goroutine already queued, and makes the scheduler poll the network
// (the byte's readiness comes only from a poll), so the POSTs that arrived
// in the meantime run before the fan-out goes on. With a core to spare, the
// poll happens at once on an idle thread and the pause costs a few
// microseconds; when the CPU is short the fan-out lags, and since a hub
// sends each subscriber everything that arrived since its last message, it
// packs more lines per message instead of slowing the publishers.
//
// One pacer serves the whole relay: the slice is the fan-out's together,
// since the POSTs wait on all of it, not on one hub.
type pacer struct {
	slice  time.Duration // how long the fan-out runs between two yields
	last   atomic.Int64  // when the last yield ended, unix ns
	yields atomic.Int64  // yields made (for tests)

	mu     sync.Mutex // held by the goroutine yielding; guards the fields below
	r, w   *os.File   // the pipe, made by the first yield
	rc, wc syscall.RawConn
	broken bool // no pollable pipe here: yield with runtime.Gosched
	closed bool
	buf    [64]byte
}

// paceSlice is the fan-out's share between two looks at the network: a POST
// arriving while the fan-out runs waits at most about this long for the CPU
// (B's goal is a POST p99 under 10 ms), and each yield costs two system
// calls and a poll, under 1% of the slice.
const paceSlice = time.Millisecond

// yield gives way to ingestion if the fan-out has run for a slice since the
// last yield. The fan-out calls it after each message, holding no lock and
// no turn. Only one goroutine yields at a time: the others go on, since the
// poll that one yield causes serves them all.
func (p *pacer) yield() {
	slice := p.slice
	if slice == 0 {
		slice = paceSlice
	}
	now := time.Now().UnixNano()
	last := p.last.Load()
	if last == 0 {
		p.last.CompareAndSwap(0, now) // the first call starts the clock
		return
	}
	if now-last < int64(slice) || !p.mu.TryLock() {
		return
	}
	defer p.mu.Unlock()
	p.yields.Add(1)
	p.wait()
	p.last.Store(time.Now().UnixNano())
}

// wait parks until the netpoller has run (p.mu held).
func (p *pacer) wait() {
	if p.closed || p.broken || (p.r == nil && !p.open()) {
		runtime.Gosched()
		return
	}
	parked := false
	p.rc.Read(func(fd uintptr) bool {
		if !parked {
			// The byte is written here, after Read has reset the
			// descriptor's readiness, and then waited for even though it
			// is there to read: the wait for the netpoller to report it
			// is the point. Written before Read, a poll in between could
			// report it and Read forget it (the pipe is edge-triggered):
			// the wait would never end.
			parked = true
			p.wc.Write(func(wfd uintptr) bool {
				rawWrite(wfd, p.buf[:1])
				return true
			})
			return false
		}
		for {
			if n, _ := rawRead(fd, p.buf[:]); n < len(p.buf) {
				return true // drained (EAGAIN or a short read)
			}
		}
	})
}

// open makes the pipe (p.mu held). It reports false when the platform
// cannot wait on one through the netpoller.
func (p *pacer) open() bool {
	if !rawPipeIO {
		p.broken = true
		return false
	}
	r, w, err := os.Pipe()
	if err != nil {
		p.broken = true
		return false
	}
	rc, err := r.SyscallConn()
	wc, err2 := w.SyscallConn()
	if err != nil || err2 != nil {
		r.Close()
		w.Close()
		p.broken = true
		return false
	}
	p.r, p.w, p.rc, p.wc = r, w, rc, wc
	return true
}

// close releases the pipe once the fan-out has ended (Shutdown).
func (p *pacer) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	if p.r != nil {
		p.r.Close()
		p.w.Close()
		p.r, p.w, p.rc, p.wc = nil, nil, nil, nil
	}
}
