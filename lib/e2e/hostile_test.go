package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// The hostile test's sizes. Generous memory bounds: the point is "bounded",
// not a number (and the race detector multiplies memory several times).
const (
	hostileGoodBatches   = 100  // batches the good publisher sends
	hostileGoodBatchSize = 20   // events per batch
	hostilePadding       = 8000 // bytes of metadata per good event: 16 MB in all, more than socket buffers hold
	hostileBadPublishes  = 3000
	hostileGarbageConns  = 200
	hostileSlowConns     = 100
	hostileFloodConns    = 500       // silent TCP connections held at once
	hostileSprayTenants  = 1000      // tenants that each get one event
	hostileRSSLimit      = 768 << 20 // without -race
	hostileRSSLimitRace  = 2 << 30   // with -race
)

// secObservations gathers what the relay answered each attack, for the log
// (and the security note).
type secObservations struct {
	mu sync.Mutex // guards m
	m  map[string]map[string]int
}

func (o *secObservations) add(attack, answer string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.m == nil {
		o.m = map[string]map[string]int{}
	}
	if o.m[attack] == nil {
		o.m[attack] = map[string]int{}
	}
	o.m[attack][answer]++
}

func (o *secObservations) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	var attacks []string
	for a := range o.m {
		attacks = append(attacks, a)
	}
	sort.Strings(attacks)
	var b strings.Builder
	for _, a := range attacks {
		var answers []string
		for ans, n := range o.m[a] {
			answers = append(answers, fmt.Sprintf("%s ×%d", ans, n))
		}
		sort.Strings(answers)
		fmt.Fprintf(&b, "  %-40s %s\n", a, strings.Join(answers, ", "))
	}
	return b.String()
}

// TestHostile attacks a real relay from many sides at once while a good
// tenant publishes and subscribes, and checks that the relay stays up, its
// memory stays bounded, and the good tenant loses nothing.
func TestHostile(t *testing.T) {
	p := secStartRelay(t, "--insecure", "--ping-interval", "5s", "--max-body", "1MiB",
		"--header-timeout", "2s", "--body-timeout", "2s", "--history-bytes", "64MiB")
	host := strings.TrimPrefix(p.url, "http://")
	obs := &secObservations{}

	// Memory sampler.
	var maxRSS atomic.Int64
	sampleDone := make(chan struct{})
	stopSampling := make(chan struct{})
	go func() {
		defer close(sampleDone)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			if r, err := p.rss(); err == nil && r > maxRSS.Load() {
				maxRSS.Store(r)
			}
			select {
			case <-stopSampling:
				return
			case <-tick.C:
			}
		}
	}()
	baseRSS, _ := p.rss()

	// The good tenant: a fast WebSocket subscriber, an NDJSON one, and one
	// that never reads (with a tiny receive buffer so it blocks at once).
	good, st := secDialWS(t, p.url, "good", "", nil, nil)
	if good == nil {
		t.Fatalf("good subscriber: %d", st)
	}
	defer good.Close()
	stalled := secDialStalled(t, host, "good")
	defer stalled.Close()

	ndCtx, ndCancel := context.WithCancel(context.Background())
	defer ndCancel()
	ndReq, _ := http.NewRequestWithContext(ndCtx, "GET", p.url+"/v1/tenants/good/stream", nil)
	ndResp, err := http.DefaultClient.Do(ndReq)
	if err != nil || ndResp.StatusCode != 200 {
		t.Fatalf("NDJSON subscriber: %v %v", err, ndResp)
	}
	defer ndResp.Body.Close()

	totalGood := hostileGoodBatches * hostileGoodBatchSize
	wsSeqs := make(chan secCollected, 1)
	go func() { wsSeqs <- secCollectWS(good, totalGood) }()
	ndSeqs := make(chan secCollected, 1)
	go func() { ndSeqs <- secCollectNDJSON(ndResp.Body, totalGood) }()

	var wg sync.WaitGroup
	attack := func(f func()) {
		wg.Add(1)
		go func() { defer wg.Done(); f() }()
	}
	attack(func() { secGarbageHTTP(t, host, obs) })
	attack(func() { secSlowHeaders(t, host, obs) })
	attack(func() { secHugeHeaders(t, host, obs) })
	attack(func() { secBadFrames(t, p.url, obs) })
	attack(func() { secBadPublishes(t, p.url, obs) })
	attack(func() { secSilentWebSockets(t, p.url, obs) })
	attack(func() { secSlowBodies(t, host, obs) })
	attack(func() { secConnFlood(t, host, obs) })
	attack(func() { secTenantSpray(t, p.url, obs) })

	// The good publisher runs during the attacks.
	var accepted []int64
	client := secHTTPClient(nil)
	pad := strings.Repeat("x", hostilePadding)
	for b := 0; b < hostileGoodBatches; b++ {
		var body bytes.Buffer
		for i := 0; i < hostileGoodBatchSize; i++ {
			fmt.Fprintf(&body, `{"type":"custom","path":"/good/%d/%d","metadata":{"pad":"%s"}}`+"\n", b, i, pad)
		}
		st, _, resp := secDo(t, client, "POST", p.url+"/v1/tenants/good/events", "", "application/x-ndjson", body.Bytes())
		if st != http.StatusAccepted {
			t.Fatalf("good batch %d: %d %s", b, st, resp)
		}
		var r struct{ FirstSeq, LastSeq int64 }
		var raw map[string]any
		json.Unmarshal([]byte(resp), &raw)
		r.FirstSeq, r.LastSeq = int64(raw["first_seq"].(float64)), int64(raw["last_seq"].(float64))
		for s := r.FirstSeq; s <= r.LastSeq; s++ {
			accepted = append(accepted, s)
		}
	}
	wg.Wait()

	// Nothing accepted is lost, in order, to either live subscriber.
	for name, ch := range map[string]chan secCollected{"WebSocket": wsSeqs, "NDJSON": ndSeqs} {
		var got secCollected
		select {
		case got = <-ch:
		case <-time.After(120 * time.Second):
			t.Fatalf("the %s subscriber did not get all %d events", name, totalGood)
		}
		if fmt.Sprint(got.seqs) != fmt.Sprint(accepted) {
			t.Errorf("%s subscriber got %d seqs, accepted %d; first difference at %d; it stopped on %v",
				name, len(got.seqs), len(accepted), secFirstDiff(got.seqs, accepted), got.err)
		}
	}
	// The subscriber that never read held nobody up (checked above); the
	// relay dropped it once its writes blocked for two ping intervals.
	obs.add("ws: subscriber that never reads", secStalledOutcome(stalled))
	if !p.alive() {
		t.Fatal("the relay died")
	}
	if st, _, _ := secDo(t, client, "GET", p.url+"/healthz", "", "", nil); st != 200 {
		t.Fatalf("/healthz after the attacks: %d", st)
	}
	close(stopSampling)
	<-sampleDone
	limit := int64(hostileRSSLimit)
	if raceEnabled {
		limit = hostileRSSLimitRace
	}
	t.Logf("relay RSS: %d MiB at start, %d MiB at most during the attacks (bound %d MiB)", baseRSS>>20, maxRSS.Load()>>20, limit>>20)
	if maxRSS.Load() > limit {
		t.Errorf("relay RSS reached %d MiB, bound %d MiB", maxRSS.Load()>>20, limit>>20)
	}
	t.Logf("what the relay answered:\n%s", obs)
}

func secFirstDiff(a, b []int64) int {
	for i := range a {
		if i >= len(b) || a[i] != b[i] {
			return i
		}
	}
	return len(a)
}

// secCollectWS reads a WebSocket stream until it holds n deliveries, and
// returns their seqs. A gap line ends it early (the seqs then differ).
func secCollectWS(c *websocket.Conn, n int) secCollected {
	var got secCollected
	for len(got.seqs) < n {
		c.SetReadDeadline(time.Now().Add(90 * time.Second))
		_, msg, err := c.ReadMessage()
		if err != nil {
			got.err = err
			return got
		}
		for _, l := range bytes.SplitAfter(msg, []byte("\n")) {
			if !got.add(l) {
				return got
			}
		}
	}
	return got
}

// secCollected is what a good subscriber received: the seqs of its
// deliveries, in order, and why it stopped early if it did.
type secCollected struct {
	seqs []int64
	err  error
}

// add takes one line; it reads the seq by prefix, as tl-tail does (decoding
// 8 KB lines under the race detector would slow the reader enough for the
// relay to drop it as a slow subscriber). It returns false on a gap.
func (c *secCollected) add(line []byte) bool {
	if rest, ok := bytes.CutPrefix(line, []byte(`{"seq":`)); ok {
		i := bytes.IndexByte(rest, ',')
		if n, err := strconv.ParseInt(string(rest[:max(i, 0)]), 10, 64); err == nil {
			c.seqs = append(c.seqs, n)
		}
		return true
	}
	if bytes.HasPrefix(line, []byte(`{"control":"gap"`)) {
		c.err = fmt.Errorf("gap line %s", bytes.TrimSpace(line))
		return false
	}
	return true
}

func secCollectNDJSON(r io.Reader, n int) secCollected {
	var got secCollected
	br := bufio.NewReaderSize(r, 64<<10)
	for len(got.seqs) < n {
		line, err := br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			got.err = err
			return got
		}
		if err != nil {
			got.err = err
			return got
		}
		got.add(line)
	}
	return got
}

// secDialStalled subscribes with a 4 KiB receive buffer and never reads.
func secDialStalled(t *testing.T, host, tenant string) *websocket.Conn {
	t.Helper()
	d := websocket.Dialer{
		HandshakeTimeout: 30 * time.Second,
		NetDial: func(network, addr string) (net.Conn, error) {
			nd := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
				var serr error
				c.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
				return serr
			}}
			return nd.Dial(network, addr)
		},
	}
	c, _, err := d.Dial("ws://"+host+"/v1/tenants/"+tenant+"/stream", nil)
	if err != nil {
		t.Fatalf("stalled subscriber: %v", err)
	}
	return c
}

// secAnswerOf reads what a server says on a raw connection: the HTTP status
// line, a WebSocket close code, or how the connection ended.
func secAnswerOf(c net.Conn) string {
	c.SetReadDeadline(time.Now().Add(60 * time.Second))
	br := bufio.NewReader(c)
	first, err := br.Peek(1)
	if err != nil {
		return secClassify(err)
	}
	if first[0] == 'H' {
		line, _ := br.ReadString('\n')
		if f := strings.Fields(line); len(f) >= 2 {
			return "HTTP " + f[1]
		}
		return "HTTP ?"
	}
	return "bytes"
}

func secClassify(err error) string {
	var ne net.Error
	switch {
	case err == io.EOF:
		return "closed"
	case strings.Contains(err.Error(), "reset"):
		return "reset"
	case secErrorsAs(err, &ne) && ne.Timeout():
		return "still open after 60s"
	default:
		return "error"
	}
}

func secErrorsAs(err error, ne *net.Error) bool {
	e, ok := err.(net.Error)
	if ok {
		*ne = e
	}
	return ok
}

// secGarbageHTTP sends junk where HTTP requests belong.
func secGarbageHTTP(t *testing.T, host string, obs *secObservations) {
	junk := []struct{ name, data string }{
		{"garbage: random bytes", ""},
		{"garbage: bad request line", "GARBAGE / HTTP/9.9\r\n\r\n"},
		{"garbage: no Host", "GET /healthz HTTP/1.1\r\n\r\n"},
		{"garbage: header without colon", "GET /healthz HTTP/1.1\r\nHost: x\r\nnocolon\r\n\r\n"},
		{"garbage: NUL in path", "GET /v1/tenants/a\x00b/events HTTP/1.1\r\nHost: x\r\n\r\n"},
		{"garbage: bad chunked body", "POST /v1/tenants/evil/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"},
		{"garbage: smuggling CL+TE", "POST /v1/tenants/evil/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /x HTTP/1.1\r\n\r\n"},
		{"garbage: path traversal tenant", "GET /v1/tenants/..%2f..%2fetc/stream HTTP/1.1\r\nHost: x\r\n\r\n"},
		{"garbage: HTTP/2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"},
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, 20)
	for i := 0; i < hostileGarbageConns; i++ {
		j := junk[i%len(junk)]
		data := []byte(j.data)
		if len(data) == 0 {
			data = make([]byte, 1024)
			rand.Read(data)
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			c, err := net.DialTimeout("tcp", host, 10*time.Second)
			if err != nil {
				obs.add(j.name, "dial failed")
				return
			}
			defer c.Close()
			c.SetWriteDeadline(time.Now().Add(10 * time.Second))
			c.Write(data)
			obs.add(j.name, secAnswerOf(c))
		}()
	}
	wg.Wait()
}

// secSlowHeaders is slowloris: connections that send a header byte now and
// then and never finish, plus connections that send nothing at all. The
// relay must cut them off (read-header timeout).
func secSlowHeaders(t *testing.T, host string, obs *secObservations) {
	var wg sync.WaitGroup
	for i := 0; i < hostileSlowConns; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			c, err := net.DialTimeout("tcp", host, 10*time.Second)
			if err != nil {
				obs.add("slowloris", "dial failed")
				return
			}
			defer c.Close()
			name := "slowloris: trickled headers"
			if i%2 == 1 {
				name = "slowloris: silent connection"
			} else {
				c.Write([]byte("GET /healthz HTTP/1.1\r\nHost: x\r\n"))
			}
			end := time.Now().Add(60 * time.Second)
			buf := make([]byte, 512)
			for time.Now().Before(end) {
				if i%2 == 0 {
					c.SetWriteDeadline(time.Now().Add(5 * time.Second))
					if _, err := c.Write([]byte("X-Slow: a\r\n")); err != nil {
						obs.add(name, "cut off")
						return
					}
				}
				c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
				n, err := c.Read(buf)
				if n > 0 {
					obs.add(name, "answered "+strings.SplitN(string(buf[:n]), "\r\n", 2)[0]+", then cut off")
					return
				}
				if err != nil && !secIsTimeout(err) {
					obs.add(name, "cut off")
					return
				}
			}
			t.Errorf("%s: still open after 60s", name)
			obs.add(name, "still open after 60s")
		}(i)
	}
	wg.Wait()
}

func secIsTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

// secHugeHeaders sends request headers far over the limit.
func secHugeHeaders(t *testing.T, host string, obs *secObservations) {
	for i := 0; i < 20; i++ {
		c, err := net.DialTimeout("tcp", host, 10*time.Second)
		if err != nil {
			continue
		}
		go func() {
			c.SetWriteDeadline(time.Now().Add(10 * time.Second))
			fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: %s\r\n\r\n", strings.Repeat("a", 4<<20))
		}()
		ans := secAnswerOf(c)
		obs.add("4 MiB request header", ans)
		if ans != "HTTP 431" && ans != "closed" && ans != "reset" {
			t.Errorf("4 MiB header: %s, want 431 or a closed connection", ans)
		}
		c.Close()
	}
}

// secFrame encodes a client WebSocket frame (masked unless unmasked).
func secFrame(b0 byte, payload []byte, unmasked bool, declaredLen ...uint64) []byte {
	var f bytes.Buffer
	f.WriteByte(b0)
	mask := byte(0x80)
	if unmasked {
		mask = 0
	}
	n := uint64(len(payload))
	if len(declaredLen) > 0 {
		n = declaredLen[0]
	}
	switch {
	case n < 126:
		f.WriteByte(mask | byte(n))
	case n <= 0xffff:
		f.WriteByte(mask | 126)
		binary.Write(&f, binary.BigEndian, uint16(n))
	default:
		f.WriteByte(mask | 127)
		binary.Write(&f, binary.BigEndian, n)
	}
	key := []byte{1, 2, 3, 4}
	if !unmasked {
		f.Write(key)
	}
	for i, c := range payload {
		if !unmasked {
			c ^= key[i%4]
		}
		f.WriteByte(c)
	}
	return f.Bytes()
}

// secBadFrames opens subscriptions and sends malformed or oversized frames.
func secBadFrames(t *testing.T, base string, obs *secObservations) {
	big := bytes.Repeat([]byte("a"), 1<<20)
	tests := []struct {
		name string
		data []byte
	}{
		{"ws: unmasked text frame", secFrame(0x81, []byte("hello"), true)},
		{"ws: reserved bits set", secFrame(0xf1, []byte("hello"), false)},
		{"ws: unknown opcode 3", secFrame(0x83, []byte("hello"), false)},
		{"ws: 200-byte ping", secFrame(0x89, bytes.Repeat([]byte("p"), 200), false)},
		{"ws: fragmented ping", secFrame(0x09, nil, false)},
		{"ws: continuation first", secFrame(0x80, []byte("x"), false)},
		{"ws: declared 2^62-byte frame", secFrame(0x81, nil, false, 1<<62)},
		{"ws: 1 MiB text message", secFrame(0x81, big, false)},
		{"ws: 1 MiB binary message", secFrame(0x82, big, false)},
		{"ws: close with code 999", secFrame(0x88, []byte{0x03, 0xe7}, false)},
		{"ws: random bytes", func() []byte { b := make([]byte, 4096); rand.Read(b); return b }()},
	}
	for _, tt := range tests {
		for i := 0; i < 5; i++ {
			conn, st := secDialWS(t, base, "evil-frames", "", nil, nil)
			if conn == nil {
				obs.add(tt.name, fmt.Sprintf("upgrade refused %d", st))
				continue
			}
			raw := conn.UnderlyingConn()
			go func() {
				raw.SetWriteDeadline(time.Now().Add(10 * time.Second))
				raw.Write(tt.data)
			}()
			ans := "closed without a close frame"
			conn.SetReadDeadline(time.Now().Add(60 * time.Second))
			for {
				_, _, err := conn.ReadMessage()
				if err == nil {
					continue
				}
				var ce *websocket.CloseError
				switch {
				case secErrorsAsClose(err, &ce):
					ans = fmt.Sprintf("close %d", ce.Code)
				case secIsTimeout(err):
					ans = "still open after 60s"
					t.Errorf("%s: the relay kept the connection open", tt.name)
				}
				break
			}
			obs.add(tt.name, ans)
			conn.Close()
		}
	}
}

func secErrorsAsClose(err error, ce **websocket.CloseError) bool {
	c, ok := err.(*websocket.CloseError)
	if ok {
		*ce = c
	}
	return ok
}

// secSilentWebSockets subscribe and never answer pings (the relay pings every
// 5 s in this test): it must close them.
func secSilentWebSockets(t *testing.T, base string, obs *secObservations) {
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		conn, st := secDialWS(t, base, "evil-silent", "", nil, nil)
		if conn == nil {
			obs.add("ws: never answers pings", fmt.Sprintf("upgrade refused %d", st))
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer conn.Close()
			// Swallow pings without answering; read the raw socket.
			raw := conn.UnderlyingConn()
			raw.SetReadDeadline(time.Now().Add(60 * time.Second))
			buf := make([]byte, 4096)
			for {
				if _, err := raw.Read(buf); err != nil {
					if secIsTimeout(err) {
						t.Errorf("a subscriber that never answers pings is still connected after 60s")
						obs.add("ws: never answers pings", "still open after 60s")
					} else {
						obs.add("ws: never answers pings", "closed by the relay")
					}
					return
				}
			}
		}()
	}
	wg.Wait()
}

// secBadPublishes sends thousands of invalid publishes; each must be refused
// with a 4xx and none may be accepted.
func secBadPublishes(t *testing.T, base string, obs *secObservations) {
	client := secHTTPClient(nil)
	huge := strings.Repeat("x", 2<<20)
	overEvent := `{"type":"click","path":"/","metadata":{"k":"` + strings.Repeat("x", 65<<10) + `"}}`
	var manyKeys strings.Builder
	manyKeys.WriteString(`{"type":"click","path":"/","metadata":{`)
	for i := 0; i < 100; i++ {
		if i > 0 {
			manyKeys.WriteString(",")
		}
		fmt.Fprintf(&manyKeys, `"k%d":"v"`, i)
	}
	manyKeys.WriteString("}}")
	deep := strings.Repeat(`{"a":`, 10000) + "1" + strings.Repeat("}", 10000)
	cases := []struct {
		name, method, tenant, ctype, body string
	}{
		{"publish: not JSON", "POST", "evil", "application/json", "{nope"},
		{"publish: bad type", "POST", "evil", "application/json", `{"type":"hack","path":"/"}`},
		{"publish: no path", "POST", "evil", "application/json", `{"type":"click"}`},
		{"publish: foreign tenant_id", "POST", "evil", "application/json", `{"tenant_id":"good","type":"click","path":"/"}`},
		{"publish: unknown field", "POST", "evil", "application/json", `{"type":"click","path":"/","admin":true}`},
		{"publish: 100 metadata keys", "POST", "evil", "application/json", manyKeys.String()},
		{"publish: 10000-deep nesting", "POST", "evil", "application/json", deep},
		{"publish: event over 64 KiB", "POST", "evil", "application/json", overEvent},
		{"publish: body over --max-body", "POST", "evil", "application/json", huge},
		{"publish: batch with one bad line", "POST", "evil", "application/x-ndjson", secOneEvent + "\n" + secOneEvent + "\n{bad\n"},
		{"publish: text/plain", "POST", "evil", "text/plain", secOneEvent},
		{"publish: PUT", "PUT", "evil", "application/json", secOneEvent},
		{"publish: bad tenant name", "POST", "-evil", "application/json", secOneEvent},
		{"publish: tenant name 65 chars", "POST", strings.Repeat("e", 65), "application/json", secOneEvent},
		{"publish: invalid UTF-8", "POST", "evil", "application/json", "{\"type\":\"click\",\"path\":\"/\xff\xfe\"}"},
		{"publish: NUL bytes", "POST", "evil", "application/json", "\x00\x00\x00"},
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	for i := 0; i < hostileBadPublishes; i++ {
		c := cases[i%len(cases)]
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, c.method, base+"/v1/tenants/"+c.tenant+"/events", strings.NewReader(c.body))
			req.Header.Set("Content-Type", c.ctype)
			resp, err := client.Do(req)
			if err != nil {
				// A relay may cut off an oversized upload mid-body.
				obs.add(c.name, "connection closed")
				return
			}
			io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
			obs.add(c.name, fmt.Sprint(resp.StatusCode))
			if resp.StatusCode < 400 || resp.StatusCode >= 500 {
				t.Errorf("%s: %d, want a 4xx", c.name, resp.StatusCode)
			}
		}()
	}
	wg.Wait()
	// None of it was accepted: the evil tenant's history is empty.
	conn, st := secDialWS(t, base, "evil", "", nil, nil)
	if conn == nil {
		t.Errorf("subscribing to evil: %d", st)
		return
	}
	defer conn.Close()
	conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	_, msg, err := conn.ReadMessage()
	if err != nil {
		t.Errorf("reading evil's hello: %v", err)
		return
	}
	var hello struct {
		LastSeq int64 `json:"last_seq"`
	}
	json.Unmarshal(bytes.SplitN(msg, []byte("\n"), 2)[0], &hello)
	if hello.LastSeq != 0 {
		t.Errorf("the evil tenant's history holds %d events after only bad publishes", hello.LastSeq)
	}
}

// secStalledOutcome reads what the never-reading subscriber was sent, to see
// whether the relay dropped it.
func secStalledOutcome(c *websocket.Conn) string {
	raw := c.UnderlyingConn()
	raw.SetReadDeadline(time.Now().Add(60 * time.Second))
	n, err := io.Copy(io.Discard, raw)
	if err != nil && secIsTimeout(err) {
		return fmt.Sprintf("still connected after %d MiB (not dropped)", n>>20)
	}
	return fmt.Sprintf("dropped by the relay after %d MiB", n>>20)
}

// secSlowBodies send a POST whose body comes a byte at a time and stops:
// the relay must answer 408 after --body-timeout.
func secSlowBodies(t *testing.T, host string, obs *secObservations) {
	var wg sync.WaitGroup
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.DialTimeout("tcp", host, 10*time.Second)
			if err != nil {
				obs.add("slow body", "dial failed")
				return
			}
			defer c.Close()
			fmt.Fprintf(c, "POST /v1/tenants/evil/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{")
			go func() {
				for j := 0; j < 20; j++ {
					time.Sleep(200 * time.Millisecond)
					if _, err := c.Write([]byte(" ")); err != nil {
						return
					}
				}
			}()
			ans := secAnswerOf(c)
			obs.add("slow body (a byte every 200ms)", ans)
			if ans != "HTTP 408" {
				t.Errorf("slow body: %s, want HTTP 408", ans)
			}
		}()
	}
	wg.Wait()
}

// secConnFlood opens many TCP connections at once and sends nothing: the
// relay must close them all after --header-timeout.
func secConnFlood(t *testing.T, host string, obs *secObservations) {
	var conns []net.Conn
	for i := 0; i < hostileFloodConns; i++ {
		c, err := net.DialTimeout("tcp", host, 10*time.Second)
		if err != nil {
			obs.add("connection flood (silent)", "dial failed")
			continue
		}
		conns = append(conns, c)
	}
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.Close()
			ans := secAnswerOf(c)
			obs.add(fmt.Sprintf("connection flood (%d silent)", hostileFloodConns), ans)
			if ans == "still open after 60s" {
				t.Errorf("a silent connection was never closed")
			}
		}()
	}
	wg.Wait()
}

// secTenantSpray publishes one valid event to each of many new tenants:
// every one is accepted and memory stays bounded.
func secTenantSpray(t *testing.T, base string, obs *secObservations) {
	client := secHTTPClient(nil)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i := 0; i < hostileSprayTenants; i++ {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			req, _ := http.NewRequest("POST", fmt.Sprintf("%s/v1/tenants/spray-%d/events", base, i), strings.NewReader(secOneEvent))
			req.Header.Set("Content-Type", "application/json")
			resp, err := client.Do(req)
			if err != nil {
				obs.add("tenant spray", "error")
				return
			}
			resp.Body.Close()
			obs.add(fmt.Sprintf("tenant spray (%d new tenants)", hostileSprayTenants), fmt.Sprint(resp.StatusCode))
		}()
	}
	wg.Wait()
}
