package relay

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/tl-sh/tl/lib/internal/tlog"
)

// TestFrameWriter: messages of every header size (7-bit, 16-bit and 64-bit
// lengths) written by frameWriter, with control frames between them, read
// back whole and in order by gorilla's client.
func TestFrameWriter(t *testing.T) {
	sizes := []int{1, 125, 126, 65535, 65536, 300 << 10}
	msg := func(n int) []byte { return bytes.Repeat([]byte{'a' + byte(n%26)}, n) }
	srvErr := make(chan error, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
		if err != nil {
			srvErr <- err
			return
		}
		defer ws.Close()
		gave := 0
		fw := newFrameWriter(ws, 5*time.Second, func() { gave++ })
		if fw == nil {
			srvErr <- errString("no frameWriter on a TCP connection")
			return
		}
		for _, n := range sizes {
			frame := append(make([]byte, frameHeadroom), msg(n)...)
			if err := fw.write(frame); err != nil {
				srvErr <- err
				return
			}
			if err := fw.control(ws, websocket.PingMessage, []byte("p"), time.Now().Add(time.Second)); err != nil {
				srvErr <- err
				return
			}
		}
		srvErr <- nil
		ws.ReadMessage() // until the client closes
	}))
	defer srv.Close()

	c, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	pings := 0
	c.SetPingHandler(func(string) error { pings++; return nil })
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	for _, n := range sizes {
		typ, got, err := c.ReadMessage()
		if err != nil {
			t.Fatalf("message of %d bytes: %v", n, err)
		}
		if typ != websocket.TextMessage || !bytes.Equal(got, msg(n)) {
			t.Fatalf("message of %d bytes: got type %d, %d bytes", n, typ, len(got))
		}
	}
	if err := <-srvErr; err != nil {
		t.Fatal(err)
	}
	if pings < len(sizes)-1 {
		t.Errorf("got %d pings between the messages, want at least %d", pings, len(sizes)-1)
	}
}

type errString string

func (e errString) Error() string { return string(e) }

// TestPutFrameHeader: the header sits right before the payload, with the
// length in the smallest form RFC 6455 allows.
func TestPutFrameHeader(t *testing.T) {
	for _, c := range []struct {
		n    int
		want []byte
	}{
		{0, []byte{0x81, 0}},
		{125, []byte{0x81, 125}},
		{126, []byte{0x81, 126, 0, 126}},
		{65535, []byte{0x81, 126, 0xff, 0xff}},
		{65536, []byte{0x81, 127, 0, 0, 0, 0, 0, 1, 0, 0}},
	} {
		frame := make([]byte, frameHeadroom+c.n)
		i := putFrameHeader(frame, c.n)
		if got := frame[i:frameHeadroom]; !bytes.Equal(got, c.want) {
			t.Errorf("n=%d: header %x, want %x", c.n, got, c.want)
		}
	}
}

// BenchmarkSendLines is the writer's batching: 64 waiting lines packed
// into one message and written to a socket that keeps up.
func BenchmarkSendLines(b *testing.B) {
	sub := &subscriber{cursor: cursor{controls: true, limit: -1}}
	line := []byte(`{"seq":123456,"tenant_id":"acme","timestamp":1732740000123,"type":"click","path":"/checkout","metadata":{"button":"buy"}}` + "\n")
	lines := make([][]byte, 64)
	for i := range lines {
		lines[i] = line
	}
	var sent int
	send := func(frame []byte) error { sent += len(frame); return nil }
	b.ReportAllocs()
	b.SetBytes(int64(len(line) * len(lines)))
	for b.Loop() {
		sub.sendLines(lines, uint64(len(lines)), tlog.Gap{}, send)
	}
}

// BenchmarkFrameWrite is one small message written to a socket whose reader
// keeps up: one write(2) and no allocation (the one reported is the gorilla
// client's message reader, in the same process).
func BenchmarkFrameWrite(b *testing.B) {
	stop := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer ws.Close()
		fw := newFrameWriter(ws, 5*time.Second, func() {})
		frame := append(make([]byte, frameHeadroom), `{"seq":1,"tenant_id":"acme","timestamp":1,"type":"click","path":"/","metadata":{}}`+"\n"...)
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			if err := fw.write(frame); err != nil {
				b.Error(err)
				break
			}
		}
		b.StopTimer()
		close(stop)
	}))
	defer srv.Close()
	c, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	go func() {
		for {
			if _, _, err := c.NextReader(); err != nil {
				return
			}
		}
	}()
	<-stop
}
