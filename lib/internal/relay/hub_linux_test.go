package relay

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/tl-sh/tl/lib/internal/disklog"
	"github.com/tl-sh/tl/lib/internal/testkit"
	"github.com/tl-sh/tl/lib/internal/tlog"
)

// goroutineIDs returns the ids of the goroutines that exist now.
func goroutineIDs() map[int]bool {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	ids := map[int]bool{}
	for _, l := range strings.Split(string(buf), "\n") {
		var id int
		if _, err := fmt.Sscanf(l, "goroutine %d [", &id); err == nil {
			ids[id] = true
		}
	}
	return ids
}

// TestIdleSubscribersHoldNoGoroutine: with hubs, a subscriber waiting for
// events costs no goroutine (one hub per tenant does); on the goroutine
// path it costs two, which is what the test tells apart.
func TestIdleSubscribersHoldNoGoroutine(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		const n = 200
		r := e.start(t, Config{})
		// Count the goroutines started from now on, by id: one that
		// was already ending (the previous subtest's, an idle HTTP
		// connection's) must not make up for a subscriber's.
		before := goroutineIDs()
		var subs []*wsClient
		for i := 0; i < n; i++ {
			w := r.dial(fmt.Sprintf("t%d", i%2), "")
			w.hello()
			subs = append(subs, w)
		}
		r.waitSubscribers(n)
		added := func() int {
			k := 0
			for id := range goroutineIDs() {
				if !before[id] {
					k++
				}
			}
			return k
		}
		if !e.hub() {
			if k := added(); k < 2*n {
				t.Fatalf("goroutine path: %d goroutines for %d subscribers, expected at least two each", k, n)
			}
			return
		}
		// net/http's connection goroutines end just after the upgrade.
		testkit.WaitFor(t, fmt.Sprintf("at most 4 new goroutines for %d idle subscribers on 2 tenants (one hub per tenant)", n),
			func() bool { return added() <= 4 })
		// And they are served: one post reaches them all.
		r.mustPost("t0", clicks(0, 1))
		r.mustPost("t1", clicks(0, 1))
		for _, w := range subs {
			w.wantSeqs(1)
		}
	})
}

// TestClientControlFrames: the relay answers a client's ping with its
// payload, ignores a data message, and answers a close with its code, then
// lets the subscriber go.
func TestClientControlFrames(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		r := e.start(t, Config{})
		w := r.dial("acme", "")
		w.hello()
		pong := make(chan string, 1)
		w.c.SetPongHandler(func(s string) error { pong <- s; return nil })
		if err := w.c.WriteControl(websocket.PingMessage, []byte("are you there"), time.Now().Add(5*time.Second)); err != nil {
			t.Fatal(err)
		}
		if err := w.c.WriteMessage(websocket.TextMessage, []byte("hello relay")); err != nil {
			t.Fatal(err)
		}
		// The client reads the pong on the way to a data message, but the
		// poller reads the ping while the hub writes: the pong may come after
		// any given message. Post one event at a time until a read brings it.
		var got string
		for seq := uint64(1); got == ""; seq++ {
			if seq > 200 {
				t.Fatal("no pong to the client's ping after 200 messages")
			}
			r.mustPost("acme", clicks(int(seq), 1))
			w.wantSeqs(seq)
			select {
			case got = <-pong:
			default:
				time.Sleep(10 * time.Millisecond)
			}
		}
		if got != "are you there" {
			t.Fatalf("pong %q", got)
		}
		msg := websocket.FormatCloseMessage(4001, "done")
		if err := w.c.WriteControl(websocket.CloseMessage, msg, time.Now().Add(5*time.Second)); err != nil {
			t.Fatal(err)
		}
		_, err := w.next(10 * time.Second)
		var ce *websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != 4001 {
			t.Fatalf("after the client's close: %v, want the relay's close 4001", err)
		}
		r.waitSubscribers(0)
	})
}

// TestClientBreaksProtocol: a client frame that breaks RFC 6455 (or a
// message over the read limit) is answered with a close frame naming why,
// and the subscriber is let go; the others carry on.
func TestClientBreaksProtocol(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		tests := []struct {
			name  string
			frame []byte
			code  int
		}{
			{"unmasked", []byte{0x89, 0x00}, websocket.CloseProtocolError},
			{"unknown opcode", clientFrame(true, 0x3, nil), websocket.CloseProtocolError},
			{"too big", clientFrame(true, opText, make([]byte, 4096)), websocket.CloseMessageTooBig},
		}
		r := e.start(t, Config{})
		good := r.dial("acme", "")
		good.hello()
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				w := r.dial("acme", "")
				w.hello()
				if _, err := w.c.NetConn().Write(tt.frame); err != nil {
					t.Fatal(err)
				}
				_, err := w.next(10 * time.Second)
				var ce *websocket.CloseError
				if !errors.As(err, &ce) || ce.Code != tt.code {
					t.Fatalf("got %v, want a close %d", err, tt.code)
				}
				r.waitSubscribers(1)
			})
		}
		r.mustPost("acme", clicks(0, 1))
		good.wantSeqs(1)
	})
}

// TestMixedCursors: on one tenant, subscribers at different places in the
// log, with and without filters, joining while events flow, each get
// exactly their lines in order (the hub shares one message among those at
// the same cursor with no filter, and builds the others their own).
func TestMixedCursors(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		r := e.start(t, Config{})
		r.mustPost("acme", clicks(0, 10)) // seqs 1..10: clicks /p0../p9
		live1 := r.dial("acme", "")
		live2 := r.dial("acme", "")
		last3 := r.dial("acme", "last=3")
		from5 := r.dial("acme", "since=5")
		views := r.dial("acme", "type=pageview")
		paths := r.dial("acme", "path=/p1&last=100")
		for _, w := range []*wsClient{live1, live2, last3, from5, views, paths} {
			w.hello()
		}
		var body strings.Builder
		for i := 10; i < 40; i++ {
			typ := "click"
			if i%3 == 0 {
				typ = "pageview"
			}
			fmt.Fprintf(&body, `{"type":%q,"path":"/p%d","timestamp":1}`+"\n", typ, i)
			if i%7 == 0 { // several posts, so the subscribers meet again and part
				r.mustPost("acme", []byte(body.String()))
				body.Reset()
			}
		}
		r.mustPost("acme", []byte(body.String()))
		live1.wantSeqs(testkit.SeqRange(11, 40)...)
		live2.wantSeqs(testkit.SeqRange(11, 40)...)
		last3.wantSeqs(testkit.SeqRange(8, 40)...)
		from5.wantSeqs(testkit.SeqRange(6, 40)...)
		var pv []uint64
		for i := 10; i < 40; i++ {
			if i%3 == 0 {
				pv = append(pv, uint64(i+1))
			}
		}
		views.wantSeqs(pv...)
		// /p1 is a prefix of /p1 and /p10../p19 (seqs 2 and 11..20).
		paths.wantSeqs(append([]uint64{2}, testkit.SeqRange(11, 20)...)...)
	})
}

// BenchmarkHubFanout is one append fanned out by a tenant's hub to subs
// WebSocket subscribers on real loopback sockets, each read by a client
// goroutine that counts lines: ns/delivery is the relay's and the readers'
// time together (they share the machine). Allocations per op are the
// append's own (its buffer and the notify channel), whatever subs is: the
// fan-out itself allocates nothing per delivery.
func BenchmarkHubFanout(b *testing.B) {
	for _, subs := range []int{1, 100, 1000} {
		for _, filtered := range []bool{false, true} {
			name := fmt.Sprintf("subs=%d", subs)
			if filtered {
				name += "/filtered"
			}
			b.Run(name, func(b *testing.B) { benchHubFanout(b, subs, filtered) })
		}
	}
}

func benchHubFanout(b *testing.B, subs int, filtered bool) {
	s := New(Config{MaxSubscribers: subs + 10, MaxTenantSubscribers: subs + 10})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go s.Serve(l)
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s.Shutdown(ctx)
	}()
	query := ""
	if filtered {
		query = "?type=click" // each subscriber gets a message of its own
	}
	lines := make(chan int, subs)
	var readers sync.WaitGroup
	var conns []*websocket.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
		readers.Wait()
	}()
	for i := 0; i < subs; i++ {
		c, _, err := websocket.DefaultDialer.Dial("ws://"+l.Addr().String()+"/v1/tenants/bench/stream"+query, nil)
		if err != nil {
			b.Fatal(err)
		}
		conns = append(conns, c)
		if _, _, err := c.ReadMessage(); err != nil { // the hello
			b.Fatal(err)
		}
		readers.Add(1)
		go func() {
			defer readers.Done()
			raw := c.NetConn() // frames of whole lines: count the newlines
			buf := make([]byte, 64<<10)
			for {
				n, err := raw.Read(buf)
				if err != nil {
					return
				}
				if k := bytes.Count(buf[:n], []byte{'\n'}); k > 0 {
					lines <- k
				}
			}
		}()
	}
	t, herr := s.reg.acquire("bench", false)
	if herr != nil {
		b.Fatal(herr)
	}
	defer s.reg.release(t, false)
	body := [][]byte{[]byte(`"tenant_id":"bench","timestamp":1732740000123,"type":"click","path":"/checkout","metadata":{"button":"buy"}}` + "\n")}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, _, err := appendBodies(t.log, body); err != nil {
			b.Fatal(err)
		}
		for got := 0; got < subs; {
			got += <-lines
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*subs), "ns/delivery")
}

// lagLog reports one line more than Read can return yet, as a disk log
// does between a batch turning durable and reaching its hot cache.
type lagLog struct {
	*tlog.Memory
	lag *atomic.Bool
}

func (l lagLog) Bounds() (uint64, uint64) {
	o, n := l.Memory.Bounds()
	if l.lag.Load() {
		n++
	}
	return o, n
}

// TestEmptyReadSendsNothing: when the log announces a line that Read cannot
// return yet, subscribers sharing a message get nothing (not an empty
// frame, which would break their stream), then the line when it comes.
func TestEmptyReadSendsNothing(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		var lag atomic.Bool
		r := e.start(t, Config{OpenLog: func(string) (tlog.Log, error) {
			return lagLog{tlog.NewMemory(1000, 1<<20), &lag}, nil
		}})
		a, b := r.dial("acme", ""), r.dial("acme", "")
		a.hello()
		b.hello()
		lag.Store(true)
		r.mustPost("acme", clicks(0, 1))
		a.wantSeqs(1)
		b.wantSeqs(1)
		lag.Store(false)
		r.mustPost("acme", clicks(1, 1))
		a.wantSeqs(2)
		b.wantSeqs(2)
	})
}

// coldLog reads seqs below lo only once release is closed, as a log reading
// old history from disk or Redis might take its time.
type coldLog struct {
	*tlog.Memory
	lo      *atomic.Uint64
	release chan struct{}
}

func (l coldLog) Cold(from uint64) bool { return from < l.lo.Load() }

func (l coldLog) Read(from uint64, dst [][]byte, maxLines, maxBytes int) ([][]byte, uint64, tlog.Gap, error) {
	if l.Cold(from) {
		<-l.release
	}
	return l.Memory.Read(from, dst, maxLines, maxBytes)
}

// TestColdReadsDelayNoOne: subscribers replaying old history that is slow
// to read (here: not until the test says) do not delay a live subscriber of
// the same tenant, nor one of another tenant; they get their history in
// order once it can be read.
func TestColdReadsDelayNoOne(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		var lo atomic.Uint64
		release := make(chan struct{})
		r := e.start(t, Config{OpenLog: func(name string) (tlog.Log, error) {
			if name != "acme" {
				return coldLog{tlog.NewMemory(1000, 1<<20), new(atomic.Uint64), release}, nil
			}
			return coldLog{tlog.NewMemory(1000, 1<<20), &lo, release}, nil
		}})
		released := false
		defer func() {
			if !released {
				close(release)
			}
		}()
		r.mustPost("acme", clicks(0, 20))
		lo.Store(21)
		live := r.dial("acme", "")
		live.hello()
		other := r.dial("other", "")
		other.hello()
		var replays []*wsClient
		for i := 0; i < 3; i++ {
			w := r.dial("acme", "since=0")
			w.hello()
			replays = append(replays, w)
		}
		r.waitSubscribers(5)
		r.mustPost("acme", clicks(20, 1))
		r.mustPost("other", clicks(0, 1))
		live.wantSeqs(21) // while the replays' reads wait
		other.wantSeqs(1)
		close(release)
		released = true
		for _, w := range replays {
			w.wantSeqs(testkit.SeqRange(1, 21)...)
		}
	})
}

// failLog's Read returns nothing (mode 1, as redislog does while Redis is
// away) or fails (mode 2, an I/O error).
type failLog struct {
	*tlog.Memory
	mode *atomic.Int32
}

func (l failLog) Read(from uint64, dst [][]byte, maxLines, maxBytes int) ([][]byte, uint64, tlog.Gap, error) {
	switch l.mode.Load() {
	case 1:
		return dst, from, tlog.Gap{}, nil
	case 2:
		return dst, from, tlog.Gap{}, errors.New("input/output error")
	}
	return l.Memory.Read(from, dst, maxLines, maxBytes)
}

// TestHubEndsWithItsLastSubscriber: a drain whose last subscriber ends on a
// failed read finishes then, not at the next ping tick (here an hour away).
func TestHubEndsWithItsLastSubscriber(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		var mode atomic.Int32
		var mem *tlog.Memory
		r := e.start(t, Config{PingInterval: fakeInterval, OpenLog: func(string) (tlog.Log, error) {
			mem = tlog.NewMemory(1000, 1<<20)
			return failLog{mem, &mode}, nil
		}})
		w := r.dial("acme", "")
		w.hello()
		mode.Store(1)
		r.mustPost("acme", clicks(0, 1)) // the hub cannot read it: its subscriber waits
		done := make(chan error, 1)
		go func() { done <- r.s.Shutdown(context.Background()) }()
		// Let the hub take the stop (if it has not, the test passes anyway).
		time.Sleep(100 * time.Millisecond)
		mode.Store(2)
		appendBodies(mem, [][]byte{[]byte(`"type":"click","path":"/x","timestamp":1}` + "\n")})
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Fatal("Shutdown still waiting for a hub with no subscriber")
		}
	})
}

// TestDiskLogSubscribers: several subscribers on a tenant with a data
// directory, while four writers append: each gets every line, whole (a
// disk log counts a line durable a moment before Read can return it).
func TestDiskLogSubscribers(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		ds, err := disklog.OpenTL(t.TempDir(), disklog.TLOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer ds.Close()
		logs := make(chan tlog.Log, 1)
		r := e.start(t, Config{OpenLog: func(name string) (tlog.Log, error) {
			l, err := ds.Log(name)
			if err == nil {
				logs <- l
			}
			return l, err
		}})
		var subs []*wsClient
		for i := 0; i < 4; i++ {
			w := r.dial("acme", "")
			w.hello()
			subs = append(subs, w)
		}
		l := <-logs
		const writers, each = 4, 400
		var wg sync.WaitGroup
		for g := 0; g < writers; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < each; i++ {
					if _, _, err := appendBodies(l, [][]byte{[]byte(`"type":"click","path":"/x","timestamp":1}` + "\n")}); err != nil {
						t.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
		for _, w := range subs {
			w.wantSeqs(testkit.SeqRange(1, writers*each)...)
		}
	})
}

// awayLog's reads of seqs below lo find nothing and no error, as redislog's
// do while Redis is away; it counts them.
type awayLog struct {
	*tlog.Memory
	lo    uint64
	reads *atomic.Int64
}

func (l awayLog) Cold(from uint64) bool { return from < l.lo }

func (l awayLog) Read(from uint64, dst [][]byte, maxLines, maxBytes int) ([][]byte, uint64, tlog.Gap, error) {
	if l.Cold(from) {
		l.reads.Add(1)
		return dst, from, tlog.Gap{}, nil
	}
	return l.Memory.Read(from, dst, maxLines, maxBytes)
}

// TestColdReadsWaitForNews: a read of old history that found nothing is
// tried again when the log says something changed, not at once: two
// replaying subscribers do not set each other reading in a loop.
func TestColdReadsWaitForNews(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		var reads atomic.Int64
		var mem *tlog.Memory
		r := e.start(t, Config{OpenLog: func(string) (tlog.Log, error) {
			mem = tlog.NewMemory(1000, 1<<20)
			return awayLog{mem, 11, &reads}, nil
		}})
		r.mustPost("acme", clicks(0, 20))
		a, b := r.dial("acme", "since=0"), r.dial("acme", "since=0")
		a.hello()
		b.hello()
		testkit.WaitFor(t, "a read each", func() bool { return reads.Load() >= 2 })
		time.Sleep(300 * time.Millisecond) // a loop would read thousands of times meanwhile
		if n := reads.Load(); n > 4 {
			t.Fatalf("%d reads of old history with nothing new in the log", n)
		}
		// News: they read again (and find nothing again).
		r.mustPost("acme", clicks(20, 1))
		testkit.WaitFor(t, "a read each after the news", func() bool { return reads.Load() >= 4 })
	})
}

// flipLog starts a new epoch (a new memory log) in the middle of a Read,
// once flip is set: the race a writer checks for after each read.
type flipLog struct {
	cur  atomic.Pointer[tlog.Memory]
	flip atomic.Bool
}

func (l *flipLog) Append(ctx context.Context, b tlog.Batch) (tlog.Appended, error) {
	return l.cur.Load().Append(ctx, b)
}
func (l *flipLog) Notify() <-chan struct{}  { return l.cur.Load().Notify() }
func (l *flipLog) Bounds() (uint64, uint64) { return l.cur.Load().Bounds() }
func (l *flipLog) Epoch() string            { return l.cur.Load().Epoch() }
func (l *flipLog) Close() error             { return l.cur.Load().Close() }
func (l *flipLog) Read(from uint64, dst [][]byte, maxLines, maxBytes int) ([][]byte, uint64, tlog.Gap, error) {
	m := l.cur.Load()
	lines, next, gap, err := m.Read(from, dst, maxLines, maxBytes)
	if l.flip.CompareAndSwap(true, false) {
		old := l.cur.Swap(tlog.NewMemory(1000, 1<<20))
		old.Close()
	}
	return lines, next, gap, err
}

// TestWriterTurnsAfterEpochChange: a writer goroutine whose read raced an
// epoch change gives its turn back (else, after a few, every writer
// goroutine would wait for a turn forever). Hubs take no turns: on the hub
// engine it checks that a read that raced the change starts over in the new
// epoch.
func TestWriterTurnsAfterEpochChange(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		fl := &flipLog{}
		fl.cur.Store(tlog.NewMemory(1000, 1<<20))
		r := e.start(t, Config{noHubs: true, OpenLog: func(string) (tlog.Log, error) { return fl, nil }})
		w := r.dial("acme", "")
		w.hello()
		for i := 0; i < 2*cap(r.s.turns)+1; i++ {
			fl.flip.Store(true)
			r.mustPost("acme", clicks(i, 1))
			if h := w.hello(); h.Epoch != fl.Epoch() { // the new epoch, told mid-stream
				t.Fatalf("hello with epoch %s, want %s", h.Epoch, fl.Epoch())
			}
			testkit.WaitFor(t, "every turn given back", func() bool { return len(r.s.turns) == 0 })
		}
		r.mustPost("acme", clicks(100, 1))
		w.wantSeqs(1)
	})
}

// holdAtUpgrade makes the next subscriber wait between its upgrade and its
// handing to a hub or a writer: entered is closed when it gets there, and
// it goes on once release is called (at the latest when the test ends).
func holdAtUpgrade(t *testing.T) (entered <-chan struct{}, release func()) {
	in, out := make(chan struct{}), make(chan struct{})
	var enter, leave sync.Once
	hook := func() {
		enter.Do(func() { close(in) })
		<-out
	}
	release = func() { leave.Do(func() { close(out) }) }
	testHookUpgraded.Store(&hook)
	t.Cleanup(func() {
		testHookUpgraded.Store(nil)
		release()
	})
	return in, release
}

// dialAsync subscribes in a goroutine (the dial returns only once the
// relay lets the subscriber on).
func dialAsync(t *testing.T, d *websocket.Dialer, url string) <-chan *websocket.Conn {
	c := make(chan *websocket.Conn, 1)
	go func() {
		conn, _, err := d.Dial(url, nil)
		if err != nil {
			t.Errorf("dial %s: %v", url, err)
		}
		c <- conn
	}()
	return c
}

// fillSocket posts 100 events of 60 KB: far more than a subscriber that
// reads nothing can take.
func fillSocket(r *testRelay) {
	blob := strings.Repeat("y", 60000)
	for range 100 {
		r.mustPost("acme", []byte(`{"type":"custom","path":"/","metadata":{"b":"`+blob+`"}}`))
	}
}

// TestDrainClosesLateSubscriber: a subscriber that reaches its tenant's
// hub after the drain began still gets its 1001 close once its hello is
// out, though nothing else wakes the hub (no appends while draining, no
// ping for an hour; the tenant's other subscriber reads nothing).
func TestDrainClosesLateSubscriber(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		r := e.start(t, Config{PingInterval: time.Hour})
		stuck, _, err := smallBufDialer().Dial(r.ws+"/v1/tenants/acme/stream", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer stuck.Close()
		fillSocket(r)
		entered, release := holdAtUpgrade(t)
		late := dialAsync(t, websocket.DefaultDialer, r.ws+"/v1/tenants/acme/stream")
		<-entered
		stopped := r.shutdownAsync(10 * time.Second)
		<-r.s.stop
		// The hub takes the stop: nothing shows when, so give it a
		// moment. Should it come later, the test passes without having
		// reached the case it is for; it cannot fail for that.
		time.Sleep(100 * time.Millisecond)
		release()
		c := <-late
		if c == nil {
			return
		}
		defer c.Close()
		w := &wsClient{t: t, c: c}
		w.hello()
		_, err = w.next(20 * time.Second)
		var ce *websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != websocket.CloseGoingAway {
			t.Errorf("after the hello: %v, want a 1001 close while the drain runs", err)
		}
		stuck.Close() // the drain can end now
		if err := <-stopped; err != nil {
			t.Errorf("Shutdown = %v", err)
		}
	})
}

// TestDrainCutAtUpgrade: when the drain runs out of time while a
// subscriber is between its upgrade and its hub or writer, that
// subscriber is closed too (it gets nothing, not even its hello), and
// Shutdown returns with the deadline instead of waiting for it to drain.
func TestDrainCutAtUpgrade(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		r := e.start(t, Config{PingInterval: time.Hour}) // no write timeout to end it either
		fillSocket(r)
		entered, release := holdAtUpgrade(t)
		late := dialAsync(t, smallBufDialer(), r.ws+"/v1/tenants/acme/stream?last=100")
		<-entered
		stopped := r.shutdownAsync(300 * time.Millisecond)
		testkit.WaitFor(t, "the drain to run out of time", func() bool {
			r.s.mu.Lock()
			defer r.s.mu.Unlock()
			for sub := range r.s.streams {
				sub.mu.Lock()
				forced := sub.forced
				sub.mu.Unlock()
				if !forced {
					return false
				}
			}
			return true
		})
		release()
		c := <-late
		if c == nil {
			return
		}
		defer c.Close()
		c.SetReadDeadline(time.Now().Add(20 * time.Second))
		if _, msg, err := c.ReadMessage(); err == nil {
			t.Errorf("the subscriber cut at its upgrade got %.40q", msg)
		}
		select {
		case err := <-stopped:
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("Shutdown = %v, want the deadline", err)
			}
		case <-time.After(30 * time.Second):
			c.Close()
			t.Fatalf("Shutdown still waits for the subscriber cut at its upgrade (%v later)", <-stopped)
		}
	})
}

// TestPongsWhileNotReading: a client that reads nothing and keeps pinging
// gets one pong for all those pings, the answer to its latest, once it
// reads again; the relay keeps no pong per ping meanwhile. Hub engine only:
// on the goroutine engine the reader answers each ping in turn, through a
// socket that is full, and the relay drops such a client (the test sees
// its connection reset), which the pong coalescing here is for.
func TestPongsWhileNotReading(t *testing.T) {
	r := startRelay(t, Config{})
	c, _, err := smallBufDialer().Dial(r.ws+"/v1/tenants/acme/stream", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fillSocket(r) // 6 MB: the socket is full long before the last post returns
	const pings = 1000
	for i := range pings {
		if err := c.WriteControl(websocket.PingMessage, fmt.Appendf(nil, "ping %d", i), time.Now().Add(5*time.Second)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Microsecond) // time for the hub to wake between pings
	}
	var pongs []string
	c.SetPongHandler(func(s string) error { pongs = append(pongs, s); return nil })
	w := &wsClient{t: t, c: c}
	w.hello()
	w.wantSeqs(testkit.SeqRange(1, 100)...)
	// The pong goes out with the first flush, before any later message; a
	// read that brings one more event brings it if it came after seq 100.
	last := fmt.Sprintf("ping %d", pings-1)
	for seq := uint64(101); len(pongs) == 0 || pongs[len(pongs)-1] != last; seq++ {
		if seq > 300 {
			t.Fatalf("no pong to the latest ping; pongs: %q", pongs)
		}
		r.mustPost("acme", clicks(int(seq), 1))
		w.wantSeqs(seq)
	}
	// A ping the hub took while the socket still had room is answered
	// at once; after that, one pong waits at a time.
	if len(pongs) > 10 {
		t.Errorf("%d pongs for %d pings sent while not reading, want the latest only (and any sent before the socket filled)", len(pongs), pings)
	}
}
