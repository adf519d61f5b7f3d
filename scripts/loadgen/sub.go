package main

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"sync/atomic"
	"time"

	"github.com/tl-sh/tl/lib/event"
	"github.com/tl-sh/tl/lib/wsframe"
)

// sub is one subscriber: a WebSocket client of its own (handshake and
// frame reader) that does no more per line than count it, check its seq
// and, when sampled, read its send time. gorilla's reader would cost the
// generator more CPU than the relay spends, and the two share the machine.
type sub struct {
	c      net.Conn
	tenant int
	buf    []byte // read buffer
	r, w   int    // buf[r:w] is unread
	carry  []byte // a line split across reads
	now    time.Time
	hist   *hist // latency of each delivery; nil when not sampled

	last      uint64 // the seq of the last line (or the hello's last_seq)
	delivered uint64
	gapEvents uint64
	lost      uint64 // seqs skipped without a gap line
	dup       uint64 // seqs at or below the last one

	// Published once per read for the scenario's progress check.
	accounted atomic.Uint64 // delivered + gapEvents + lost
	hello     atomic.Bool
	lastRecv  atomic.Int64 // unix ns of the last delivery
}

const wsKey = "dGhlIHNhbXBsZSBub25jZQ==" // any 16 bytes, base64

// dial connects from src and upgrades to a WebSocket stream of tenant,
// over TLS (wss://) when secure.
func dial(addr string, src net.IP, tenant string, bufSize int, secure bool) (net.Conn, []byte, int, error) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: src}, Timeout: 30 * time.Second}
	var c net.Conn
	var err error
	if secure {
		c, err = tls.DialWithDialer(&d, "tcp", addr, clientTLS())
	} else {
		c, err = d.Dial("tcp", addr)
	}
	if err != nil {
		return nil, nil, 0, err
	}
	req := "GET /v1/tenants/" + tenant + "/stream HTTP/1.1\r\nHost: " + addr +
		"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " + wsKey +
		"\r\nSec-WebSocket-Version: 13\r\n\r\n"
	c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.WriteString(c, req); err != nil {
		c.Close()
		return nil, nil, 0, err
	}
	buf := make([]byte, bufSize)
	n := 0
	for {
		k, err := c.Read(buf[n:])
		n += k
		if i := bytes.Index(buf[:n], []byte("\r\n\r\n")); i >= 0 {
			if !bytes.HasPrefix(buf, []byte("HTTP/1.1 101")) {
				c.Close()
				return nil, nil, 0, fmt.Errorf("upgrade refused: %q", buf[:bytes.IndexByte(buf, '\r')])
			}
			rest := copy(buf, buf[i+4:n])
			c.SetDeadline(time.Time{})
			return c, buf, rest, nil
		}
		if err != nil || n == len(buf) {
			c.Close()
			return nil, nil, 0, fmt.Errorf("upgrade: %v", err)
		}
	}
}

// fill reads more into buf, first publishing the counts.
func (s *sub) fill() error {
	s.accounted.Store(s.delivered + s.gapEvents + s.lost)
	if s.r > 0 {
		s.w = copy(s.buf, s.buf[s.r:s.w])
		s.r = 0
	}
	if s.w == len(s.buf) {
		return errors.New("frame header larger than the buffer")
	}
	n, err := s.c.Read(s.buf[s.w:])
	s.w += n
	if n > 0 {
		s.now = time.Now()
		return nil
	}
	return err
}

func (s *sub) need(n int) error {
	for s.w-s.r < n {
		if err := s.fill(); err != nil {
			return err
		}
	}
	return nil
}

// run reads frames until the connection ends.
func (s *sub) run() error {
	defer s.c.Close()
	for {
		h, hdr, err := wsframe.ParseHeader(s.buf[s.r:s.w])
		if err != nil {
			return err
		}
		if hdr == 0 { // not all of the header yet
			if err := s.fill(); err != nil {
				return err
			}
			continue
		}
		s.r += hdr
		n := uint64(h.Length)
		switch h.OpCode {
		case wsframe.OpContinuation, wsframe.OpText:
			for n > 0 {
				if s.r == s.w {
					if err := s.fill(); err != nil {
						return err
					}
				}
				k := min(int(min(n, uint64(len(s.buf)))), s.w-s.r)
				s.feed(s.buf[s.r : s.r+k])
				s.r += k
				n -= uint64(k)
			}
		case wsframe.OpClose:
			return io.EOF
		case wsframe.OpPing: // answer with a masked pong (a zero mask is allowed)
			if n > wsframe.MaxControlPayloadSize {
				return errors.New("ping payload too long")
			}
			if err := s.need(int(n)); err != nil {
				return err
			}
			pong := wsframe.AppendFrame(nil, wsframe.Header{Fin: true, OpCode: wsframe.OpPong, Masked: true}, s.buf[s.r:s.r+int(n)])
			s.r += int(n)
			if _, err := s.c.Write(pong); err != nil {
				return err
			}
		default: // pong, binary: skip
			if err := s.need(int(n)); err != nil {
				return err
			}
			s.r += int(n)
		}
	}
}

// feed takes a piece of a message's payload.
func (s *sub) feed(p []byte) {
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			s.carry = append(s.carry, p...)
			return
		}
		if len(s.carry) > 0 {
			s.carry = append(s.carry, p[:i+1]...)
			s.line(s.carry)
			s.carry = s.carry[:0]
		} else {
			s.line(p[:i+1])
		}
		p = p[i+1:]
	}
}

// line takes one line, newline included.
func (s *sub) line(l []byte) {
	if len(l) < 8 {
		return
	}
	switch {
	case l[2] == 's': // {"seq":N,...
		seq, _ := uintAt(l, 7)
		switch {
		case seq <= s.last:
			s.dup++
		case seq > s.last+1:
			s.lost += seq - s.last - 1
		}
		s.last = seq
		s.delivered++
		s.lastRecv.Store(s.now.UnixNano())
		if s.hist != nil {
			if sent, ok := sentNs(l); ok {
				s.hist.add(s.now.Sub(time.Unix(0, sent)))
			}
		}
	case event.IsControl(l):
		c, err := event.ParseControl(l)
		if err != nil {
			return
		}
		switch c.Control {
		case event.Gap:
			if from, to := c.FromSeq, c.ToSeq; to >= from && from > 0 {
				if from > s.last+1 {
					s.lost += from - s.last - 1
				}
				s.gapEvents += to - from + 1
				s.last = to
			}
		case event.Hello:
			s.last = c.LastSeq
			s.hello.Store(true)
		}
	}
}

func uintAt(l []byte, i int) (uint64, bool) {
	var n uint64
	j := i
	for ; j < len(l) && l[j] >= '0' && l[j] <= '9'; j++ {
		n = n*10 + uint64(l[j]-'0')
	}
	return n, j > i
}

// sentNs reads the send time the generator put last in the event:
// ...,"metadata":{"sent_ns":"1795824000000000000"}}\n
func sentNs(l []byte) (int64, bool) {
	end := len(l) - 4 // the closing quote
	start := end - 19
	if start < 0 || l[end] != '"' || l[start-1] != '"' {
		return 0, false
	}
	n, ok := uintAt(l[:end], start)
	return int64(n), ok
}
