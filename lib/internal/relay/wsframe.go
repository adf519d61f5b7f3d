package relay

import (
	"errors"
	"net"
	"os"
	"runtime"
	"sync"
	"syscall"
	"time"

	"github.com/gorilla/websocket"

	"github.com/tl-sh/tl/lib/wsframe"
)

// frameHeadroom is the space a writer leaves in front of each message it
// builds, where the WebSocket frame header goes, so that header and payload
// leave in one write(2) with no copy.
const frameHeadroom = wsframe.MaxServerHeaderSize

// putFrameHeader writes the header of an unmasked, final text frame with
// an n-byte payload just before frame[frameHeadroom:] and returns where
// the frame starts.
func putFrameHeader(frame []byte, n int) int {
	h := wsframe.Header{Fin: true, OpCode: wsframe.OpText, Length: int64(n)}
	i := frameHeadroom - wsframe.HeaderSize(h)
	wsframe.PutHeader(frame[i:], h)
	return i
}

// turns bounds how many writer goroutines (the streams no hub serves: TLS,
// chunked NDJSON, systems without epoll) read the log and write to their
// socket at once. Without it an append to a tenant with 10,000 subscribers
// makes 10,000 goroutines runnable, and the goroutine serving the next POST
// queues behind all of them (Go's run queues are FIFO): publishers would
// wait on subscribers. A writer takes a turn before it reads, gives it back
// once its message is in the socket, and never holds one while it waits
// (for an append, or for a slow client's socket to drain). Waiting for a
// turn parks the goroutine in a channel's FIFO queue, so turns go round
// fairly.
type turns chan struct{}

// newTurns sizes the turns to keep every core busy with a few to spare.
func newTurns() turns { return make(turns, 2*runtime.GOMAXPROCS(0)) }

func (t turns) take() { t <- struct{}{} }
func (t turns) give() { <-t }

// frameWriter writes a WebSocket's data messages straight to its TCP socket:
// one write(2) per message, no copy into gorilla's buffer, no deadline
// (timer) per message, and when the socket is full it gives its turn back
// before it waits. Control frames (ping, pong, close) still go through
// gorilla; mu keeps the two from interleaving.
type frameWriter struct {
	conn net.Conn
	rc   syscall.RawConn
	wait time.Duration // how long a full socket may block a message
	give func()        // gives the writer's turn back (before a wait)

	// mu serialises whole frames on the socket: the writer's messages and
	// the control frames the reader answers (pong, close). It is held for
	// one frame's write, which a full socket bounds by wait. It also guards
	// the state of the write in progress below.
	mu     sync.Mutex
	p      []byte                // what is left of the frame being written
	werr   error                 // the write's error
	tryFn  func(fd uintptr) bool // fw.try, made once (a method value allocates)
	onceFn func(fd uintptr) bool // fw.try without waiting, made once
}

// newFrameWriter returns a frameWriter for ws, or nil when its connection
// is not a plain socket (TLS), or the system has no raw socket I/O here
// (rawSocketIO): gorilla writes those.
func newFrameWriter(ws *websocket.Conn, wait time.Duration, give func()) *frameWriter {
	sc, ok := ws.NetConn().(syscall.Conn)
	if !ok || !rawSocketIO {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	fw := &frameWriter{conn: ws.NetConn(), rc: rc, wait: wait, give: give}
	fw.tryFn = fw.try
	fw.onceFn = func(fd uintptr) bool { fw.try(fd); return true }
	return fw
}

// try writes what is left of the frame to fd; it reports false when the
// socket is full (RawConn.Write then waits for room and calls it again).
func (fw *frameWriter) try(fd uintptr) bool {
	n, err := writeFD(int(fd), fw.p)
	fw.p = fw.p[n:]
	if err != nil {
		fw.werr = err
		return true
	}
	return len(fw.p) == 0
}

// write sends frame[frameHeadroom:] as one text message.
func (fw *frameWriter) write(frame []byte) error {
	fw.mu.Lock()
	defer fw.mu.Unlock()
	fw.p, fw.werr = frame[putFrameHeader(frame, len(frame)-frameHeadroom):], nil
	defer func() { fw.p = nil }() // keep no reference to the pooled buffer
	// First without waiting: a client that keeps up has room in its socket.
	// A deadline left by gorilla's last control frame may have passed:
	// clear it and try again.
	err := fw.rc.Write(fw.onceFn)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		fw.conn.SetWriteDeadline(time.Time{})
		err = fw.rc.Write(fw.onceFn)
	}
	if err != nil {
		return err
	}
	if fw.werr != nil || len(fw.p) == 0 {
		return fw.werr
	}
	// The socket is full: a slow client. Give the turn back and wait for
	// room, at most fw.wait.
	fw.give()
	fw.conn.SetWriteDeadline(time.Now().Add(fw.wait))
	err = fw.rc.Write(fw.tryFn)
	fw.conn.SetWriteDeadline(time.Time{})
	if err != nil {
		return err
	}
	return fw.werr
}

// control writes a control frame through gorilla, between whole messages.
func (fw *frameWriter) control(ws *websocket.Conn, messageType int, data []byte, deadline time.Time) error {
	fw.mu.Lock()
	defer fw.mu.Unlock()
	return ws.WriteControl(messageType, data, deadline)
}
