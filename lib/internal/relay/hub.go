package relay

import (
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gorilla/websocket"

	"github.com/tl-sh/tl/lib/internal/tlog"
	"github.com/tl-sh/tl/lib/wsframe"
)

// A hub is one tenant's fan-out: a single goroutine that writes to every
// WebSocket subscriber of the tenant on a plain socket (on Linux; see
// poller). It wakes on an append, reads the new lines once, builds one
// message for all the subscribers at the same place with no filter, and
// writes it to each socket without blocking: a socket that takes only part
// of it keeps the rest in its subscriber until the poller says it has room,
// and the others go on. An idle subscriber therefore costs no goroutine at
// all, only its few hundred bytes of state, and a busy tenant costs one
// core at most, which leaves the others to the publishers. An append makes
// one hub runnable, however many subscribers the tenant has, so hubs need no
// turns (see turns): taking one, a hub that the system descheduled would
// hold up every other tenant.
//
// The hub ends when its last subscriber does; the tenant starts a new one
// for the next.
type hub struct {
	s    *Server
	t    *tenant
	wake chan struct{} // cap 1: the inbox has subscribers

	mu    sync.Mutex // guards inbox
	inbox []*subscriber

	// Owned by run:
	subs    []*subscriber
	closing int      // subscribers sent our close frame, waiting for the answer
	lines   [][]byte // the lines of one Read
	own     []byte   // a message for one subscriber (controls, a filter)
	share   shared   // the message for every unfiltered subscriber at one cursor
}

// shared is the message built once in a round for the subscribers at seq
// whose cursor is plain (see cursor.plain).
type shared struct {
	seq   uint64 // 0: none yet
	d     delivery
	frame []byte // frameHeadroom, then the message; the frame starts at start
	start int
}

// Events a hub's subscriber is kicked with.
const (
	evAttach   = 1 << iota // new: send the hello
	evRead                 // the poller heard something that needs an answer
	evWritable             // the socket has room again
	evRevoke               // the token no longer allows the stream: close with 1008
	evGone                 // close at once (the drain ran out of time)
	evFetched              // a read of old history (see fetch) is done
)

// hubSub is a subscriber's state in the hub engine.
type hubSub struct {
	conn      net.Conn
	fd        int // conn's descriptor: only the hub writes to it, and it alone closes conn
	rc        syscall.RawConn
	pollID    uint64        // its id in the poller
	events    atomic.Uint32 // the ev bits the hub has yet to see
	queued    atomic.Bool   // in the hub's inbox
	frames    clientFrames  // owned by the poller
	pollReady bool          // in the poller's ready list; owned by the poller
	readDone  bool          // nothing more to read (an error, the end); owned by the poller

	// Owned by the hub:
	hubIdx     int       // its index in hub.subs
	out        []byte    // frames the socket has yet to take
	pongLater  []byte    // a pong to send once out is written (see hub.control)
	outSince   time.Time // when out filled
	live       liveness
	lastWrite  time.Time // when a message last went out whole (the relay's clock)
	closeAt    time.Time // after our close frame: when to close the socket unanswered
	endFlushed bool      // close the socket once out is written (we answered the client's close)
	fetching   bool      // a fetch is reading old history for it
	fetched    atomic.Pointer[fetched]
	coldWait   <-chan struct{} // after a fetch that found nothing: fetch again once it is closed
	ended      bool

	// What the poller heard, guarded by subscriber.pongMu:
	pingData   []byte // the payload of a ping to answer
	pingOwed   bool
	peerClosed bool // the client sent a close frame
	peerCode   int  // its code (0: none)
	failCode   int  // the client broke the protocol: close with this code
	readGone   bool // the connection ended or broke
}

// kick tells sub's hub about ev.
func (sub *subscriber) kick(ev uint32) {
	sub.events.Or(ev)
	if sub.queued.CompareAndSwap(false, true) {
		h := sub.hub
		h.mu.Lock()
		h.inbox = append(h.inbox, sub)
		h.mu.Unlock()
		select {
		case h.wake <- struct{}{}:
		default:
		}
	}
}

// hubConn returns ws's socket and descriptor when a hub can serve it: a
// plain TCP connection, with the poller running.
func (s *Server) hubConn(ws *websocket.Conn) (net.Conn, int, bool) {
	if s.poller == nil {
		return nil, 0, false
	}
	tc, ok := ws.NetConn().(*net.TCPConn)
	if !ok {
		return nil, 0, false
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return nil, 0, false
	}
	fd := -1
	if rc.Control(func(f uintptr) { fd = int(f) }) != nil || fd < 0 {
		return nil, 0, false
	}
	return tc, fd, true
}

// attach hands sub, upgraded on conn, to its tenant's hub, starting one if
// none runs. From now on the hub owns sub and closes conn.
func (s *Server) attach(sub *subscriber, conn net.Conn, fd int) {
	sub.conn, sub.fd = conn, fd
	sub.rc, _ = conn.(*net.TCPConn).SyscallConn()
	sub.frames.Limit = wsReadLimit
	sub.live = liveness{interval: s.cfg.PingInterval}
	now := s.cfg.now()
	sub.setPong(now)
	sub.lastWrite = now
	t := sub.t
	t.hubMu.Lock()
	defer t.hubMu.Unlock()
	if t.hub == nil {
		t.hub = &hub{s: s, t: t, wake: make(chan struct{}, 1)}
		s.hubs.Add(1)
		go t.hub.run()
	}
	// Under sub.mu, so that a revoke or a forced close (which kick the
	// hub) comes after the socket is in the poller.
	sub.mu.Lock()
	sub.hub = t.hub
	forced := sub.forced
	err := s.poller.add(sub)
	sub.mu.Unlock()
	if err != nil {
		s.log.Warn("watching a subscriber's socket", "tenant", t.name, "err", err)
	}
	if err != nil || forced { // forced: the drain ran out of time before it had a hub
		sub.kick(evGone)
		return
	}
	ev := uint32(evAttach)
	if sub.isRevoked() {
		ev |= evRevoke // revoked before it had a hub to tell
	}
	sub.kick(ev)
}

// run is the hub's loop.
func (h *hub) run() {
	defer h.s.hubs.Done()
	log := h.t.log
	stop := h.s.stop
	var v view // v.draining, v.target: see round
	var timer *time.Timer
	for {
		notify := log.Notify()
		ticks := h.s.ticks.C()
		h.takeInbox()
		if len(h.subs) == 0 && h.exit() {
			if timer != nil {
				timer.Stop()
			}
			return
		}
		var closeC <-chan time.Time
		if h.closing > 0 {
			at := h.nextClose()
			if timer == nil {
				timer = time.NewTimer(time.Until(at))
			} else {
				timer.Reset(time.Until(at))
			}
			closeC = timer.C
		}
		v.epoch = log.Epoch()
		_, v.newest = log.Bounds()
		if h.round(v) || len(h.subs) == 0 {
			// Some are still behind (or the round ended the last one):
			// go round again, after a look at what else is waiting.
			select {
			case <-ticks:
				h.tick()
			case <-stop:
				stop, v.draining = nil, true
				_, v.target = log.Bounds()
			case <-closeC:
				h.closeExpired()
			default:
			}
			continue
		}
		select {
		case <-notify:
		case <-h.wake:
		case <-ticks:
			h.tick()
		case <-stop:
			stop, v.draining = nil, true
			_, v.target = log.Bounds()
		case <-closeC:
			h.closeExpired()
		}
	}
}

// exit ends the hub if no subscriber waits in its inbox; a new subscriber
// then starts another.
func (h *hub) exit() bool {
	h.t.hubMu.Lock()
	defer h.t.hubMu.Unlock()
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.inbox) > 0 {
		return false
	}
	h.t.hub = nil
	return true
}

// takeInbox handles what the subscribers were kicked with.
func (h *hub) takeInbox() {
	h.mu.Lock()
	inbox := h.inbox
	h.inbox = nil
	h.mu.Unlock()
	for _, sub := range inbox {
		sub.queued.Store(false)
		ev := sub.events.Swap(0)
		if sub.ended {
			continue
		}
		if ev&evAttach != 0 {
			sub.hubIdx = len(h.subs)
			h.subs = append(h.subs, sub)
		}
		if ev&evGone != 0 {
			h.end(sub)
			continue
		}
		if ev&evRead != 0 && !h.answer(sub) {
			continue
		}
		if ev&evWritable != 0 {
			h.flush(sub)
		}
		// evRevoke: the next round closes it (see cursor.next).
	}
}

// answer acts on what the poller heard from sub: a ping to answer, a close,
// a breach of the protocol or the end of the connection. It reports whether
// sub is still open.
func (h *hub) answer(sub *subscriber) bool {
	sub.pongMu.Lock()
	ping, owed := sub.pingData, sub.pingOwed
	sub.pingData, sub.pingOwed = nil, false
	closed, code, fail, gone := sub.peerClosed, sub.peerCode, sub.failCode, sub.readGone
	sub.pongMu.Unlock()
	closing := !sub.closeAt.IsZero() // our close went out: nothing more may (RFC 6455, 5.5.1)
	switch {
	case closed && !closing:
		// The client closes: answer with its code, after the frame in
		// progress, then close the socket.
		if !h.control(sub, wsframe.AppendClose(nil, wsframe.StatusCode(code), "")) {
			return false
		}
		if len(sub.out) > 0 && !gone {
			sub.closeAt = time.Now().Add(closeGrace)
			h.closing++
			sub.endFlushed = true
			return true
		}
		h.end(sub)
		return false
	case closed || gone:
		h.end(sub)
		return false
	case fail != 0:
		// As gorilla does: say why (unless we said goodbye already),
		// then close.
		if !closing {
			h.control(sub, wsframe.AppendClose(nil, wsframe.StatusCode(fail), ""))
		}
		h.end(sub)
		return false
	case owed && !closing:
		return h.control(sub, wsframe.AppendControl(nil, wsframe.OpPong, ping))
	}
	return true
}

// round gives every subscriber what its cursor says it is owed next: at
// most one message, or its close. It reports whether some may still be
// behind.
func (h *hub) round(v view) (again bool) {
	h.share.seq = 0
	for i := 0; i < len(h.subs); i++ {
		sub := h.subs[i]
		if !sub.closeAt.IsZero() {
			continue
		}
		if sub.epoch != v.epoch {
			sub.coldWait = nil // it waited for news of the old epoch
		}
		act := sub.next(v, sub.isRevoked())
		if len(sub.out) > 0 && act != actCloseComplete && act != actCloseRevoked {
			// The socket is full: it gets more once it has room. A
			// drain closes it once everything accepted went out.
			continue
		}
		more, alive := false, true
		switch act {
		case actWait:
		case actPending:
			msg := sub.takePending()
			more, alive = true, h.send(sub, msg[putFrameHeader(msg, len(msg)-frameHeadroom):], true)
		case actRead, actReadCold:
			more, alive = h.step(sub, act == actReadCold)
			h.s.pace.yield() // ingestion first (pace.go)
		default:
			alive = h.sendClose(sub, act)
		}
		if !alive {
			i-- // end moved the last subscriber here
		}
		again = again || more
	}
	h.share.frame = h.share.frame[:0]
	return again
}

// step sends sub one message of what the log holds past its cursor: read
// now, or by a fetch when the read may wait (cold). It reports whether
// there may be more, and whether sub is still open.
func (h *hub) step(sub *subscriber, cold bool) (more, alive bool) {
	f := sub.fetched.Swap(nil)
	if f != nil {
		sub.fetching = false
		if f.cursor != sub.seq || f.epoch != sub.epoch {
			f = nil // the subscriber moved on meanwhile
		}
	}
	if sub.fetching {
		return false, true // its fetch kicks the hub when done
	}
	if f == nil && cold {
		// Old history, on disk or in Redis: read it in a goroutine of
		// its own, so that the live subscribers do not wait. After a
		// read that found nothing (Redis away), the next waits for the
		// log to say there is news, as a writer goroutine waits on
		// Notify.
		if sub.coldWait != nil {
			select {
			case <-sub.coldWait:
				sub.coldWait = nil
			default:
				return false, true
			}
		}
		sub.fetching = true
		h.s.hubs.Add(1)
		go h.fetch(sub, sub.seq, sub.epoch)
		return false, true
	}
	var frame []byte
	var d delivery
	if sc := &h.share; f == nil && sc.seq == sub.seq && sub.plain() {
		frame, d = sc.frame[sc.start:], sc.d
	} else {
		var r fetched
		if f != nil {
			if r = *f; len(r.lines) == 0 && r.gap.Empty() {
				sub.coldWait = f.notify
			}
		} else {
			r.lines, r.next, r.gap, r.err = sub.log.Read(sub.seq, h.lines[:0], maxMessageLines, maxMessageBytes)
			h.lines = r.lines
		}
		if r.err != nil {
			// The log closed: the relay is going away.
			h.end(sub)
			return false, false
		}
		if sub.log.Epoch() != sub.epoch {
			clear(r.lines)
			return true, true // changed during the read: the next round starts over
		}
		shareable := f == nil && sub.plain()
		buf := &h.own
		if shareable {
			buf = &h.share.frame
		}
		var msg []byte
		msg, d = sub.message((*buf)[:0], r.lines, r.next, r.gap)
		clear(r.lines) // drop the references to the log's lines
		*buf = msg
		start := len(msg) // nothing to send: an empty frame
		if len(msg) > frameHeadroom {
			start = putFrameHeader(msg, len(msg)-frameHeadroom)
			frame = msg[start:]
		}
		if shareable {
			h.share = shared{seq: sub.seq, d: d, frame: msg, start: start}
		}
	}
	if len(frame) > 0 && !h.send(sub, frame, true) {
		return false, false
	}
	sub.delivered(d)
	return d.any(), true
}

// fetched is what fetch read for a subscriber.
type fetched struct {
	cursor uint64
	epoch  string
	notify <-chan struct{} // the log's Notify, taken before the read
	lines  [][]byte
	next   uint64
	gap    tlog.Gap
	err    error
}

// fetch reads sub's log from cursor, which may wait on I/O (see
// tlog.ColdReader), and hands the lines to the hub. Its goroutine counts in
// Server.hubs.
func (h *hub) fetch(sub *subscriber, cursor uint64, epoch string) {
	defer h.s.hubs.Done()
	notify := h.t.log.Notify()
	lines, next, gap, err := h.t.log.Read(cursor, nil, maxMessageLines, maxMessageBytes)
	sub.fetched.Store(&fetched{cursor: cursor, epoch: epoch, notify: notify, lines: lines, next: next, gap: gap, err: err})
	sub.kick(evFetched)
}

// control sends a control frame: at once, or after the frame in progress.
// A pong that would wait behind it is kept aside instead, the latest
// replacing any earlier (RFC 6455, 5.5.3, lets a server answer only the
// most recent ping), and goes out with the next flush: a client that pings
// and reads nothing costs one pong, not one per ping. It reports whether
// sub is still open.
func (h *hub) control(sub *subscriber, frame []byte) bool {
	if len(sub.out) > 0 && wsframe.OpCode(frame[0]&0x0f) == wsframe.OpPong {
		sub.pongLater = append(sub.pongLater[:0], frame...)
		return true
	}
	return h.send(sub, frame, false)
}

// send writes frame on sub's socket without blocking, after whatever
// sub.out holds; what the socket does not take waits in sub.out for the
// poller to say there is room. A data message (message) that goes out whole
// counts for the heartbeat rule (lastWrite). It reports whether sub is
// still open.
func (h *hub) send(sub *subscriber, frame []byte, message bool) bool {
	if len(sub.out) > 0 {
		sub.out = append(sub.out, frame...)
		return true
	}
	n, err := writeFD(sub.fd, frame)
	if err != nil {
		h.end(sub)
		return false
	}
	if n == len(frame) {
		if message {
			sub.lastWrite = h.s.cfg.now()
		}
		return true
	}
	sub.out = append([]byte(nil), frame[n:]...)
	sub.outSince = time.Now()
	if h.s.poller.watchOut(sub, true) != nil {
		h.end(sub)
		return false
	}
	return true
}

// flush writes what sub.out holds, now that the socket has room. It
// reports whether sub is still open.
func (h *hub) flush(sub *subscriber) bool {
	if len(sub.out) == 0 {
		return true
	}
	if sub.pongLater != nil {
		if sub.closeAt.IsZero() { // nothing may follow our close frame
			sub.out = append(sub.out, sub.pongLater...)
		}
		sub.pongLater = nil
	}
	n, err := writeFD(sub.fd, sub.out)
	if err != nil {
		h.end(sub)
		return false
	}
	if n < len(sub.out) {
		sub.out = sub.out[n:]
		return true // the poller tells again
	}
	sub.out = nil
	sub.lastWrite = h.s.cfg.now()
	if sub.endFlushed || h.s.poller.watchOut(sub, false) != nil {
		h.end(sub) // the answer to the client's close is out
		return false
	}
	return true
}

// tick is the ping tick: close the subscribers that are dead by the
// heartbeat rule (see liveness) or whose socket has been full for a whole
// write wait, and ping the others.
func (h *hub) tick() {
	now := h.s.cfg.now()
	wait := h.s.writeWait()
	for i := 0; i < len(h.subs); i++ {
		sub := h.subs[i]
		switch {
		case !sub.closeAt.IsZero():
			continue
		case len(sub.out) > 0 && time.Since(sub.outSince) > wait:
			h.s.log.Debug("subscriber's socket full for too long, closing", "tenant", h.t.name, "remote", sub.remote)
		case !sub.live.tick(now, sub.pong(), sub.lastWrite):
			h.s.log.Debug("subscriber missed two pings, closing", "tenant", h.t.name, "remote", sub.remote)
		default:
			if !h.control(sub, wsframe.AppendControl(nil, wsframe.OpPing, nil)) {
				i--
			}
			continue
		}
		h.end(sub)
		i--
	}
}

// sendClose starts the closing handshake for act (see action.closeFrame):
// the close frame goes out after anything in progress, and the socket
// closes when the client answers or closeGrace has passed. It reports
// whether sub is still open.
func (h *hub) sendClose(sub *subscriber, act action) bool {
	code, reason := act.closeFrame()
	sub.closeAt = time.Now().Add(closeGrace)
	h.closing++
	return h.control(sub, wsframe.AppendClose(nil, wsframe.StatusCode(code), reason))
}

// nextClose returns the earliest closeGrace deadline (h.closing > 0).
func (h *hub) nextClose() time.Time {
	var at time.Time
	for _, sub := range h.subs {
		if !sub.closeAt.IsZero() && (at.IsZero() || sub.closeAt.Before(at)) {
			at = sub.closeAt
		}
	}
	return at
}

// closeExpired closes the sockets whose client did not answer our close.
func (h *hub) closeExpired() {
	now := time.Now()
	for i := 0; i < len(h.subs); i++ {
		if sub := h.subs[i]; !sub.closeAt.IsZero() && !now.Before(sub.closeAt) {
			h.end(sub)
			i--
		}
	}
}

// end closes sub's socket and lets it go.
func (h *hub) end(sub *subscriber) {
	if sub.ended {
		return
	}
	sub.ended = true
	if !sub.closeAt.IsZero() {
		h.closing--
	}
	h.s.poller.remove(sub)
	sub.conn.Close()
	if i := sub.hubIdx; i < len(h.subs) && h.subs[i] == sub {
		last := len(h.subs) - 1
		h.subs[i] = h.subs[last]
		h.subs[i].hubIdx = i
		h.subs[last] = nil
		h.subs = h.subs[:last]
	}
	sub.out, sub.pending, sub.pongLater = nil, nil, nil
	sub.finish()
}

// readShare is how many reads readClient makes of one socket at a time.
const readShare = 16

// readClient reads what the client sent on sub's socket, for the poller:
// it records pongs, and kicks the hub for pings to answer, a close, a
// breach of the protocol and the end of the connection. It reads at most
// readShare buffers, and reports whether there may be more.
func (sub *subscriber) readClient(buf []byte) (more bool) {
	if sub.readDone {
		return false // it broke the protocol, or ended: the hub closes it
	}
	now := sub.s.cfg.now()
	heard, kick := false, false
	var rerr error
	onFrame := func(ev wsframe.Event) {
		heard = true
		sub.pongMu.Lock()
		defer sub.pongMu.Unlock()
		switch ev.Op {
		case wsframe.OpPing:
			sub.pingData = append(sub.pingData[:0], ev.Payload...)
			sub.pingOwed = true
			kick = true
		case wsframe.OpClose:
			sub.peerClosed = true
			code, _ := wsframe.ParseCloseBody(ev.Payload)
			sub.peerCode = int(code)
			kick = true
		}
	}
	for reads := 0; rerr == nil; reads++ {
		if reads == readShare {
			more = true
			break
		}
		var n int
		if n, rerr = readSocket(sub.rc, buf); n < 0 || rerr != nil {
			break
		}
		heard = true
		if fe := sub.frames.Feed(buf[:n], onFrame); fe != nil {
			sub.pongMu.Lock()
			sub.failCode = int(fe.Code)
			sub.pongMu.Unlock()
			sub.readDone = true
			kick = true
			break
		}
	}
	if heard {
		sub.setPong(now) // any frame counts as an answer
	}
	if rerr != nil {
		sub.readDone = true
		sub.pongMu.Lock()
		sub.readGone = true
		sub.pongMu.Unlock()
		kick = true
	}
	if kick {
		sub.kick(evRead)
	}
	return more && rerr == nil
}
