package relay

import (
	"errors"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/tl-sh/tl/lib/event"
	"github.com/tl-sh/tl/lib/tlog"
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

// pump is the writer's loop: send what the log holds past the cursor, then
// wait for an append, a tick, the relay's stop or the end of the
// connection. send writes one message; tick is called on each ping tick and
// reports false to end the stream; gone ends it. It returns true when it
// stopped because the relay is shutting down (everything accepted sent), or
// because the stream reached its end (sub.complete).
func (sub *subscriber) pump(pending []byte, controls bool, send func([]byte) error, tick func() bool, gone <-chan struct{}) (draining bool) {
	log := sub.t.log
	stop := sub.s.stop
	var target uint64 // with stop == nil: the last seq to send before closing
	for {
		notify := log.Notify()
		ticks := sub.s.ticks.C()
		if e := log.Epoch(); e != sub.epoch {
			// The numbering restarted under this subscriber (a shared
			// broker lost its data): tell it as a new subscriber would
			// hear it, then follow the new epoch from its oldest line.
			var oldest, newest uint64
			pending, oldest, newest = sub.epochChange(pending, log, e, controls)
			sub.epoch, sub.cursor = e, oldest
			if sub.hasUntil {
				sub.until = newest // an until of the old epoch means now
			}
		}
		// The lines buffer is held only while this batch is sent, so an
		// idle subscriber holds none.
		linesp := linesPool.Get().(*[][]byte)
		// A read of old history may wait on I/O: not while holding a
		// turn, which the other writers would wait for.
		cold := tlog.IsCold(log, sub.cursor)
		if cold && len(pending) > 0 {
			// The hello goes out before the wait.
			sub.takeTurn()
			err := send(append(make([]byte, frameHeadroom), pending...))
			sub.giveTurn()
			if err != nil {
				linesPool.Put(linesp)
				return false
			}
			pending = nil
		}
		if !cold {
			sub.takeTurn()
		}
		lines, next, gap, err := log.Read(sub.cursor, (*linesp)[:0], maxMessageLines, maxMessageBytes)
		if cold {
			sub.takeTurn()
		}
		if err != nil {
			sub.giveTurn()
			linesPool.Put(linesp)
			return false // the log closed: the relay is going away
		}
		if log.Epoch() != sub.epoch {
			sub.giveTurn()
			clear(lines)
			*linesp = lines[:0]
			linesPool.Put(linesp)
			continue // changed during the read: start over in the new one
		}
		read := lines
		lines, next = sub.clip(lines, next)
		n := len(lines)
		var sent, first int
		if len(pending) > 0 || !gap.Empty() || n > 0 {
			sent, first, err = sub.sendLines(pending, controls, gap, lines, send)
		}
		sub.giveTurn()
		sub.s.pace.yield() // ingestion first (pace.go)
		clear(read)        // drop the references to the log's lines
		*linesp = read[:0]
		linesPool.Put(linesp)
		if err != nil {
			return false
		}
		pending = nil
		sub.cursor = next
		sub.sent += int64(sent)
		if n > 0 || !gap.Empty() {
			sub.wrote(n, sent, first, next, gap)
		}
		if sub.complete() {
			return true // the stream's end (limit, until): close it as finished
		}
		if n > 0 || !gap.Empty() {
			// There may be more. A busy stream still pings on time, or
			// the client could not answer in time.
			select {
			case <-ticks:
				if !tick() {
					return false
				}
			case <-sub.revoked:
				return false
			default:
			}
			continue
		}
		if stop == nil && sub.cursor > target {
			return true
		}
		select {
		case <-notify:
		case <-ticks:
			if !tick() {
				return false
			}
		case <-stop:
			stop = nil
			_, target = log.Bounds()
		case <-gone:
			return false
		case <-sub.revoked:
			return false
		}
	}
}

// sendLines writes the pending control lines, the gap line (with controls)
// and the lines that pass the filter as one message. It returns how many
// lines passed, and the index of the first. send gets the message after
// frameHeadroom bytes of room for its framing.
func (sub *subscriber) sendLines(pending []byte, controls bool, gap tlog.Gap, lines [][]byte, send func([]byte) error) (n, first int, err error) {
	msgp := msgPool.Get().(*[]byte)
	msg, n, first := appendMessage((*msgp)[:0], pending, controls, gap, lines, &sub.filter)
	if len(msg) > frameHeadroom {
		err = send(msg)
	}
	if cap(msg) <= 2*maxMessageBytes {
		*msgp = msg[:0]
		msgPool.Put(msgp)
	}
	return n, first, err
}

// appendMessage appends a message to dst: frameHeadroom bytes of room for
// its framing, the pending control lines, the gap line (with controls) and
// the lines that pass f. It returns how many lines passed, and the index of
// the first.
func appendMessage(dst, pending []byte, controls bool, gap tlog.Gap, lines [][]byte, f *filter) (msg []byte, n, first int) {
	msg = append(dst, make([]byte, frameHeadroom)...)
	msg = append(msg, pending...)
	if controls && !gap.Empty() {
		msg = event.AppendGap(msg, gap.From, gap.To, event.GapEvicted)
	}
	for i, l := range lines {
		if f.match(l) {
			if n == 0 {
				first = i
			}
			n++
			msg = append(msg, l...)
		}
	}
	return msg, n, first
}

// serveWS runs a WebSocket subscriber: this goroutine writes, a second one
// reads (clients send only control frames: pongs and close).
func (sub *subscriber) serveWS(hello []byte) {
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
	draining := sub.pump(hello, true, send, tick, sub.readerDone)
	code, reason := websocket.CloseGoingAway, "relay shutting down"
	if draining && sub.complete() {
		code, reason = closeComplete, closeCompleteReason
	}
	if sub.isRevoked() {
		draining, code, reason = true, websocket.ClosePolicyViolation, "token no longer allowed"
	}
	if draining {
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
	sub.pump(nil, false, send, tick, r.Context().Done())
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
