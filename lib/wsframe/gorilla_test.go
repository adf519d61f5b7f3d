package wsframe

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// The differential test: the same client bytes fed to Parser and to
// gorilla/websocket's server-side reader (the one the relay's goroutine
// engine uses) must give the same outcome: the same control frames and
// data messages in the same order, then the same end: the stream runs out,
// the client closes, or a breach answered with the same close code.
//
// Where the two differ by design, outcome normalises (see there):
//   - a close frame of one byte: RFC 6455 (5.5.1) makes a close body a
//     code and a reason, so Parser refuses it (1002); gorilla takes it for a
//     close without a code (1005) and ends as if closed.
//   - a close reason that is not UTF-8: Parser answers 1007 (invalid frame
//     payload data, RFC 6455 7.4.1), gorilla 1002.
//   - close code 1014 (bad gateway, in IANA's registry since 2014): Parser
//     takes it; gorilla v1.5.3's list of valid codes leaves it out and
//     answers 1002. Found by this fuzz target.
//   - a 64-bit length with the top bit, or a length that overflows gorilla's
//     int64 message count: Parser answers 1002 and 1009; gorilla returns
//     ErrReadLimit without sending any close.

// gorillaLimit is the message bound given to both (gorilla's SetReadLimit).
const gorillaLimit = testLimit

// memConn is a net.Conn over memory: reads come from in, writes go to out.
type memConn struct {
	in  *bytes.Reader
	out bytes.Buffer
}

func (c *memConn) Read(p []byte) (int, error)         { return c.in.Read(p) }
func (c *memConn) Write(p []byte) (int, error)        { return c.out.Write(p) }
func (c *memConn) Close() error                       { return nil }
func (c *memConn) LocalAddr() net.Addr                { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1} }
func (c *memConn) RemoteAddr() net.Addr               { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 2} }
func (c *memConn) SetDeadline(t time.Time) error      { return nil }
func (c *memConn) SetReadDeadline(t time.Time) error  { return nil }
func (c *memConn) SetWriteDeadline(t time.Time) error { return nil }

// hijacker is the ResponseWriter an HTTP server hands websocket.Upgrader:
// it gives the upgrade the memConn.
type hijacker struct {
	conn *memConn
	h    http.Header
}

func (w *hijacker) Header() http.Header         { return w.h }
func (w *hijacker) Write(p []byte) (int, error) { return len(p), nil }
func (w *hijacker) WriteHeader(int)             {}
func (w *hijacker) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return w.conn, bufio.NewReadWriter(bufio.NewReader(w.conn), bufio.NewWriter(w.conn)), nil
}

// result is what one reader made of a stream.
type result struct {
	events []string // "op:payload" for control frames, "op=payload" for messages
	end    string   // "eof", "closed" or "fail <code>"
}

func (r result) String() string { return fmt.Sprintf("%q then %s", r.events, r.end) }

// byGorilla reads in as a gorilla server does.
func byGorilla(t *testing.T, in []byte) (r result, closeSent StatusCode, err error) {
	conn := &memConn{in: bytes.NewReader(in)}
	req, _ := http.NewRequest(http.MethodGet, "http://127.0.0.1/", nil)
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "websocket")
	req.Header.Set("Sec-WebSocket-Version", "13")
	req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
	ws, uerr := (&websocket.Upgrader{}).Upgrade(&hijacker{conn: conn, h: http.Header{}}, req, nil)
	if uerr != nil {
		t.Fatalf("upgrade: %v", uerr)
	}
	conn.out.Reset() // the 101 answer
	ws.SetReadLimit(gorillaLimit)
	ws.SetPingHandler(func(p string) error { r.events = append(r.events, "9:"+p); return nil })
	ws.SetPongHandler(func(p string) error { r.events = append(r.events, "a:"+p); return nil })
	// A close is recorded as its payload would read, and not answered, so
	// that what gorilla writes is only its answer to a breach.
	ws.SetCloseHandler(func(code int, text string) error {
		body := ""
		if code != websocket.CloseNoStatusReceived {
			body = string(closeBody(StatusCode(code), text))
		}
		r.events = append(r.events, "8:"+body)
		return nil
	})
	for {
		op, data, rerr := ws.ReadMessage()
		if rerr != nil {
			err = rerr
			break
		}
		r.events = append(r.events, fmt.Sprintf("%x=%s", op, data))
	}
	if out := conn.out.Bytes(); len(out) >= 4 && out[0] == 0x88 {
		closeSent, _ = ParseCloseBody(out[2 : 2+int(out[1]&0x7f)])
	}
	var ce *websocket.CloseError
	switch {
	case closeSent != 0:
		r.end = fmt.Sprintf("fail %d", closeSent)
	case errors.As(err, &ce) && ce.Code == websocket.CloseAbnormalClosure:
		r.end = "eof"
	case errors.As(err, &ce):
		r.end = "closed"
	default:
		r.end = "fail ?"
	}
	return r, closeSent, err
}

// byParser reads in with a Parser fed in pieces of step bytes.
func byParser(in []byte, step int) (r result, perr *Error) {
	ps := &Parser{Limit: gorillaLimit, Data: true}
	var chunks [][]byte
	for i := 0; i < len(in); i += step {
		chunks = append(chunks, in[i:min(i+step, len(in))])
	}
	var code StatusCode
	r.events, code = feedAll(ps, chunks...)
	switch {
	case code != 0:
		perr = ps.err
		r.end = fmt.Sprintf("fail %d", code)
	case ps.Closed():
		r.end = "closed"
	default:
		r.end = "eof"
	}
	return r, perr
}

// compare checks the two results of in, normalising the differences by
// design.
func compare(t *testing.T, in []byte, step int) {
	t.Helper()
	want, sent, gerr := byGorilla(t, in)
	got, perr := byParser(in, step)
	switch {
	case perr == ErrCloseOneByte:
		// gorilla: a close without a code, and the end.
		n := len(want.events)
		if n == 0 || want.events[n-1] != "8:" || want.end != "closed" {
			t.Fatalf("one-byte close: gorilla %v, want a close without a code", want)
		}
		want.events, want.end = want.events[:n-1], got.end
	case got.end == "closed" && want.end == "fail 1002" && len(got.events) == len(want.events)+1 &&
		strings.HasPrefix(got.events[len(got.events)-1], "8:\x03\xf6"):
		// Close code 1014: the parser's last event and end, gorilla's 1002.
		want.events, want.end = append(want.events, got.events[len(got.events)-1]), got.end
	case perr == ErrCloseReasonUTF8 && want.end == "fail 1002":
		want.end = got.end
	case (perr == ErrHeaderLengthMSB || perr == ErrMessageTooBig) && errors.Is(gerr, websocket.ErrReadLimit) && sent == 0:
		want.end = got.end
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("in % .64x (%d bytes, in %d-byte pieces):\nparser  %.300v (%v)\ngorilla %.300v (%v)", in, len(in), step, got, perr, want, gerr)
	}
}

// TestParserVsGorilla: the parser's cases, and the ones by design, read
// alike by both.
func TestParserVsGorilla(t *testing.T) {
	extra := [][]byte{
		nil,
		{0x81},
		clientFrame(true, OpText, []byte(strings.Repeat("y", 200))),
		append(clientFrame(false, OpText, []byte("a")), clientFrame(true, OpClose, closeBody(4000, "x"))...),
		{0x82, 0xff, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4}, // overflows gorilla's count
		append(clientFrame(true, OpPing, nil), clientFrame(true, OpClose, closeBody(StatusBadGateway, "1014"))...),
	}
	for _, c := range parserCases {
		extra = append(extra, c.in)
	}
	for _, in := range extra {
		for _, step := range []int{1, 3, len(in) + 1} {
			compare(t, in, step)
		}
	}
}

// FuzzClientFramesVsGorilla is the differential fuzz target: any byte
// stream, read by Parser (in pieces) and by gorilla's server.
func FuzzClientFramesVsGorilla(f *testing.F) {
	for _, c := range parserCases {
		f.Add(c.in, uint8(0))
	}
	f.Add(append(clientFrame(false, OpText, []byte("a")), clientFrame(true, OpClose, closeBody(4000, "x"))...), uint8(2))
	f.Add([]byte{0x82, 0xff, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4}, uint8(1))
	f.Fuzz(func(t *testing.T, in []byte, step uint8) {
		compare(t, in, int(step)+1)
	})
}
