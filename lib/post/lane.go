package post

import (
	"sync"
	"time"
)

// ref says where a line of a batch came from, and where it ends in the body.
type ref struct {
	file int32 // index into poster.names
	end  int32 // offset just past the line's '\n' in batch.body
	line int64 // 1-based line number in that file
}

// batch is a request body being filled or sent: events joined by '\n'.
type batch struct {
	body  []byte
	refs  []ref
	start time.Time // when its first line arrived (for the linger)
}

func (b *batch) reset() {
	b.body = b.body[:0]
	b.refs = b.refs[:0]
}

// lane is one tenant's queue. The reader fills lane.cur; the lane's own
// sender goroutine takes it when it is full, when its linger has passed, or
// when the lane is closed, and sends it while the reader fills the next one.
// So at most one batch per tenant is in flight (the tenant's order is kept)
// and reading overlaps sending.
type lane struct {
	tenant string
	p      *poster

	mu     sync.Mutex // guards cur, free, closed; never held during I/O
	cur    *batch     // being filled; nil when empty
	free   []*batch   // bodies to reuse
	closed bool       // no more lines will come

	wake  chan struct{} // cap 1: cur became non-empty or full, or the lane closed
	space chan struct{} // cap 1: the sender took a full cur
	done  chan struct{} // closed when the sender has ended

	// Owned by the sender goroutine (read by others only after done).
	published   bool   // a batch of this tenant was accepted
	refusal     string // the relay refused a whole batch: later ones are not sent
	refusedMore int    // lines not sent because of refusal
}

func newLane(p *poster, tenant string) *lane {
	l := &lane{
		tenant: tenant,
		p:      p,
		wake:   make(chan struct{}, 1),
		space:  make(chan struct{}, 1),
		done:   make(chan struct{}),
	}
	go l.sender()
	return l
}

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// full reports whether b cannot take a line of n more bytes.
func (l *lane) full(b *batch, n int) bool {
	return len(b.refs) >= l.p.batchEvents() || len(b.body)+n+1 > int(l.p.o.BatchBytes)
}

// add appends one event (without its newline) to the lane. It blocks while
// the current batch is full and the previous one is still in flight, and
// returns false if the run is stopping.
func (l *lane) add(line []byte, r ref) bool {
	for {
		l.mu.Lock()
		b := l.cur
		if b != nil && l.full(b, len(line)) {
			l.mu.Unlock()
			signal(l.wake)
			select {
			case <-l.space:
				continue
			case <-l.p.stop:
				return false
			}
		}
		if b == nil {
			if n := len(l.free); n > 0 {
				b, l.free = l.free[n-1], l.free[:n-1]
			} else {
				b = &batch{}
			}
			b.start = l.p.now()
			l.cur = b
		}
		b.body = append(b.body, line...)
		b.body = append(b.body, '\n')
		r.end = int32(len(b.body))
		b.refs = append(b.refs, r)
		first := len(b.refs) == 1
		nowFull := l.full(b, 0)
		l.mu.Unlock()
		if first || nowFull {
			signal(l.wake)
		}
		return true
	}
}

// close tells the sender that no more lines will come; it sends what is
// left and ends.
func (l *lane) close() {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	signal(l.wake)
}

// sender is the lane's goroutine, owned by the lane: it ends once the lane is
// closed and empty, or once the run stops.
func (l *lane) sender() {
	defer close(l.done)
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		l.mu.Lock()
		b, closed := l.cur, l.closed
		var wait time.Duration
		if b != nil && !closed && !l.full(b, 0) {
			wait = l.p.o.Linger - l.p.now().Sub(b.start)
		}
		if b != nil && wait <= 0 {
			l.cur = nil
		}
		l.mu.Unlock()

		switch {
		case b == nil && closed:
			return
		case b == nil:
			select {
			case <-l.wake:
			case <-l.p.stop:
				return
			}
		case wait > 0:
			if timer == nil {
				timer = time.NewTimer(wait)
			} else {
				timer.Reset(wait)
			}
			select {
			case <-l.wake:
				timer.Stop() // Go ≥1.23: no stale tick can be received after Stop
			case <-timer.C:
			case <-l.p.stop:
				return
			}
		default:
			signal(l.space)
			l.p.send(l, b)
			b.reset()
			l.mu.Lock()
			l.free = append(l.free, b)
			l.mu.Unlock()
		}
	}
}

// pending counts the lines still queued in the lane (after it has ended).
func (l *lane) pending() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cur == nil {
		return 0
	}
	return len(l.cur.refs)
}
