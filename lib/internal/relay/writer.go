package relay

import (
	"errors"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/tl-sh/tl/lib/internal/tlog"
)

// Buffers shared by the writers and held only while a message is built and
// written, so an idle subscriber holds none.
var (
	linesPool = sync.Pool{New: func() any { b := make([][]byte, 0, maxMessageLines); return &b }}
	msgPool   = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}
)

// minWriteWait is the least time one write may block: with short ping
// intervals, a client on a loaded machine still gets time to read.
const minWriteWait = 10 * time.Second

// writerSub is a subscriber's state in the goroutine engine.
type writerSub struct {
	// turns is the relay's turns when this writer takes them (a WebSocket
	// on a plain socket); hasTurn says it holds one.
	turns      turns
	hasTurn    bool
	readerDone chan struct{} // closed when the WebSocket reader ends
}

// takeTurn waits for one of the relay's turns (see turns) when this writer
// uses them; giveTurn gives it back, once.
func (sub *subscriber) takeTurn() {
	if sub.turns != nil {
		sub.turns.take()
		sub.hasTurn = true
	}
}

func (sub *subscriber) giveTurn() {
	if sub.hasTurn {
		sub.hasTurn = false
		sub.turns.give()
	}
}

// writeWait is how long one write may block before the subscriber is
// dropped: two ping intervals (at least minWriteWait), so a client that
// stops reading for less than that (a paused pipe) lags in the log and gets
// a gap line instead.
func (s *Server) writeWait() time.Duration { return max(2*s.cfg.PingInterval, minWriteWait) }

// pump is the writer's loop: do what the cursor says (send what the log
// holds past it), else wait for an append, a tick, the relay's stop or the
// end of the connection. send writes one message; tick is called on each
// ping tick and reports false to end the stream; gone ends it. It returns
// the cursor's closing action, or ok false when the stream broke (the
// connection, the log).
func (sub *subscriber) pump(send func([]byte) error, tick func() bool, gone <-chan struct{}) (closing action, ok bool) {
	log := sub.log
	stop := sub.s.stop
	var v view // v.draining, v.target: see cursor.next
	for {
		notify := log.Notify()
		ticks := sub.s.ticks.C()
		v.epoch = log.Epoch()
		_, v.newest = log.Bounds()
		act := sub.next(v, sub.isRevoked())
		var more bool
		var err error
		switch act {
		case actWait:
		case actPending:
			sub.takeTurn()
			more, err = true, send(sub.takePending())
			sub.giveTurn()
		case actRead, actReadCold:
			more, err = sub.readSend(act == actReadCold, send)
		default:
			return act, true
		}
		if err != nil {
			return act, false
		}
		if more {
			// There may be more. A busy stream still pings on time, or
			// the client could not answer in time.
			select {
			case <-ticks:
				if !tick() {
					return act, false
				}
			default:
			}
			continue
		}
		select {
		case <-notify:
		case <-ticks:
			if !tick() {
				return act, false
			}
		case <-stop:
			stop, v.draining = nil, true
			_, v.target = log.Bounds()
		case <-gone:
			return act, false
		case <-sub.revoked:
		}
	}
}

// readSend reads the log past the cursor and sends the message. A read
// that may wait on I/O (cold) is made without a turn, which the other
// writers would wait for. It reports whether there may be more at once.
func (sub *subscriber) readSend(cold bool, send func([]byte) error) (more bool, err error) {
	// The lines buffer is held only while this batch is sent, so an idle
	// subscriber holds none.
	linesp := linesPool.Get().(*[][]byte)
	if !cold {
		sub.takeTurn()
	}
	lines, next, gap, err := sub.log.Read(sub.seq, (*linesp)[:0], maxMessageLines, maxMessageBytes)
	if cold {
		sub.takeTurn()
	}
	var d delivery
	switch {
	case err != nil:
		// The log closed: the relay is going away.
	case sub.log.Epoch() != sub.epoch:
		more = true // changed during the read: start over in the new one
	default:
		d, err = sub.sendLines(lines, next, gap, send)
	}
	sub.giveTurn()
	sub.s.pace.yield() // ingestion first (pace.go)
	clear(lines)       // drop the references to the log's lines
	*linesp = lines[:0]
	linesPool.Put(linesp)
	if err != nil || more {
		return more, err
	}
	sub.delivered(d)
	return d.any(), nil
}

// sendLines sends the message of lines, read from the log up to next after
// gap (see cursor.message), unless it is empty. send gets the message
// after frameHeadroom bytes of room for its framing.
func (sub *subscriber) sendLines(lines [][]byte, next uint64, gap tlog.Gap, send func([]byte) error) (d delivery, err error) {
	msgp := msgPool.Get().(*[]byte)
	msg, d := sub.message((*msgp)[:0], lines, next, gap)
	if len(msg) > frameHeadroom {
		err = send(msg)
	}
	if cap(msg) <= 2*maxMessageBytes {
		*msgp = msg[:0]
		msgPool.Put(msgp)
	}
	return d, err
}

// serveWS runs a WebSocket subscriber: this goroutine writes, a second one
// reads (clients send only control frames: pongs and close).
func (sub *subscriber) serveWS() {
	ws := sub.ws
	s := sub.s
	now := s.cfg.now
	sub.setPong(now())
	sub.readerDone = make(chan struct{})
	ws.SetReadLimit(wsReadLimit)
	ws.SetPongHandler(func(string) error { sub.setPong(now()); return nil })
	go func() {
		defer close(sub.readerDone)
		for {
			if _, _, err := ws.NextReader(); err != nil {
				return
			}
			sub.setPong(now())
		}
	}()

	// lastWrite is when a message last went out whole (writer-owned).
	var lastWrite time.Time
	fw := newFrameWriter(ws, s.writeWait(), sub.giveTurn)
	control := ws.WriteControl
	write := func(frame []byte) error {
		ws.SetWriteDeadline(time.Now().Add(s.writeWait()))
		return ws.WriteMessage(websocket.TextMessage, frame[frameHeadroom:])
	}
	if fw != nil {
		sub.turns = s.turns
		write = fw.write
		control = func(messageType int, data []byte, deadline time.Time) error {
			return fw.control(ws, messageType, data, deadline)
		}
	}
	send := func(frame []byte) error {
		if err := write(frame); err != nil {
			return err
		}
		lastWrite = now()
		return nil
	}
	// The reader answers pings and a close as gorilla would, but through
	// control, so that its frames never land inside one of ours.
	ws.SetPingHandler(func(data string) error {
		err := control(websocket.PongMessage, []byte(data), time.Now().Add(closeGrace))
		if err == websocket.ErrCloseSent || errors.Is(err, os.ErrDeadlineExceeded) {
			return nil
		}
		return err
	})
	ws.SetCloseHandler(func(code int, _ string) error {
		control(websocket.CloseMessage, websocket.FormatCloseMessage(code, ""), time.Now().Add(closeGrace))
		return nil
	})
	live := liveness{interval: s.cfg.PingInterval}
	tick := func() bool {
		if !live.tick(now(), sub.pong(), lastWrite) {
			s.log.Debug("subscriber missed two pings, closing", "tenant", sub.t.name)
			return false
		}
		return control(websocket.PingMessage, nil, time.Now().Add(s.writeWait())) == nil
	}
	if act, ok := sub.pump(send, tick, sub.readerDone); ok {
		code, reason := act.closeFrame()
		msg := websocket.FormatCloseMessage(code, reason)
		if control(websocket.CloseMessage, msg, time.Now().Add(closeGrace)) == nil {
			t := time.NewTimer(closeGrace)
			select {
			case <-sub.readerDone:
			case <-t.C:
			}
			t.Stop()
		}
	}
	ws.Close()
	<-sub.readerDone
}

// serveNDJSON runs a chunked NDJSON subscriber (deliveries only, a blank
// keep-alive line every ping interval), for curl -N.
func (sub *subscriber) serveNDJSON(w http.ResponseWriter, r *http.Request) {
	s := sub.s
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "application/x-ndjson")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no") // proxies: do not buffer the stream
	w.WriteHeader(http.StatusOK)
	if rc.Flush() != nil {
		return
	}
	send := func(frame []byte) error {
		rc.SetWriteDeadline(time.Now().Add(s.writeWait()))
		if _, err := w.Write(frame[frameHeadroom:]); err != nil {
			return err
		}
		return rc.Flush()
	}
	keepAlive := make([]byte, frameHeadroom+1)
	keepAlive[frameHeadroom] = '\n'
	tick := func() bool { return send(keepAlive) == nil }
	sub.pump(send, tick, r.Context().Done())
}

// liveness is a WebSocket subscriber's heartbeat rule, applied on each ping
// tick: the connection is dead when the oldest ping not answered yet went
// out more than two intervals ago and no message went out whole for two
// intervals either. A ping waits in the socket behind the data before it,
// so a client busy reading a backlog answers late; while our writes
// complete it is alive (a dead one stops taking them, and the write
// deadline ends it). Owned by the subscriber's writer.
type liveness struct {
	interval time.Duration
	pingSent time.Time // when the oldest ping not answered yet went out; zero: none
}

// tick takes a ping tick at now, given when the client last answered (a
// pong or any frame) and when a message last went out whole. It reports
// whether the connection is alive, and then a ping is to go out.
func (l *liveness) tick(now, lastPong, lastWrite time.Time) bool {
	if l.pingSent.IsZero() || !lastPong.Before(l.pingSent) {
		l.pingSent = now // every ping answered: this one is the oldest
		return true
	}
	return now.Sub(l.pingSent) <= 2*l.interval || now.Sub(lastWrite) <= 2*l.interval
}

func (sub *subscriber) setPong(t time.Time) {
	sub.pongMu.Lock()
	sub.lastPong = t
	sub.pongMu.Unlock()
}

func (sub *subscriber) pong() time.Time {
	sub.pongMu.Lock()
	defer sub.pongMu.Unlock()
	return sub.lastPong
}

// broadcast wakes every waiter at once: C returns a channel that the next
// fire closes. The relay's one ping ticker fires it, so a connection needs
// no timer of its own.
type broadcast struct {
	mu sync.Mutex // guards ch
	ch chan struct{}
}

func newBroadcast() *broadcast { return &broadcast{ch: make(chan struct{})} }

// C returns the channel the next fire closes.
func (b *broadcast) C() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.ch
}

func (b *broadcast) fire() {
	b.mu.Lock()
	ch := b.ch
	b.ch = make(chan struct{})
	b.mu.Unlock()
	close(ch)
}

// pinger fires the shared tick every ping interval until Shutdown.
func (s *Server) pinger() {
	defer s.bg.Done()
	t := time.NewTicker(s.cfg.PingInterval)
	defer t.Stop()
	for {
		select {
		case <-s.quit:
			return
		case <-t.C:
			s.ticks.fire()
		}
	}
}
