package relay

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tl-sh/tl/lib/event"
	"github.com/tl-sh/tl/lib/internal/testkit"
)

// TestLiveness: the heartbeat rule on a sequence of ticks. Times are in
// ping intervals after the connection opened (when it counts as answered
// and the hello went out).
func TestLiveness(t *testing.T) {
	type tick struct {
		at, pong, write float64 // the tick; the client's last answer; the last whole message
		alive           bool
	}
	tests := []struct {
		name  string
		ticks []tick
	}{
		{"answering", []tick{{1, 0, 0, true}, {2, 1.5, 0, true}, {3, 2.5, 0, true}, {4, 3.5, 0, true}, {9, 8.5, 0, true}}},
		{"silent and idle", []tick{{1, 0, 0, true}, {2, 0, 0, true}, {3, 0, 0, true}, {3.1, 0, 0, false}}},
		{"silent but taking messages", []tick{{1, 0, 0, true}, {2, 0, 1.5, true}, {3, 0, 2.5, true}, {4, 0, 3.5, true}, {9, 0, 8.5, true}}},
		{"silent, then no more messages", []tick{{1, 0, 0, true}, {2, 0, 2, true}, {4, 0, 2, true}, {4.5, 0, 2, false}}},
		// An answer restarts the count from the next ping.
		{"late answer", []tick{{1, 0, 0, true}, {3, 0, 0, true}, {3.5, 3.2, 0, true}, {5.5, 3.2, 0, true}, {5.6, 3.2, 0, false}}},
	}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(f float64) time.Time { return t0.Add(time.Duration(f * float64(time.Second))) }
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := liveness{interval: time.Second}
			for _, k := range tt.ticks {
				if got := l.tick(at(k.at), at(k.pong), at(k.write)); got != k.alive {
					t.Fatalf("tick at %v (answered at %v, wrote at %v): alive %v, want %v", k.at, k.pong, k.write, got, k.alive)
				}
			}
		})
	}
}

// fakeClock is the heartbeat's clock in a test: it moves only when the test
// moves it, so the rule is checked whatever the machine's load does to the
// goroutines' timing.
type fakeClock struct {
	mu sync.Mutex // guards t
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
	return c.t
}

// fakeInterval is the ping interval of a relay on a fakeClock: its own
// ticker never fires during a test; the test fires the ticks, each after
// moving the clock one interval on.
const fakeInterval = time.Hour

// startFakeHeartbeat starts a relay served by e whose heartbeat runs on clk and on the
// ticks the test fires.
func startFakeHeartbeat(t *testing.T, e engine, clk *fakeClock) *testRelay {
	return e.start(t, Config{PingInterval: fakeInterval, now: clk.now})
}

// readLines reads w in a goroutine of its own: the seqs of its deliveries
// go to got, and the error that ended the stream to ended. It ends when the
// connection does (the test's cleanup closes it).
func readLines(w *wsClient) (got <-chan uint64, ended <-chan error) {
	g, e := make(chan uint64, 1<<16), make(chan error, 1)
	go func() {
		for {
			l, err := w.next(time.Minute)
			if err != nil {
				e <- err
				return
			}
			s, ok := event.LineSeq([]byte(l))
			if !ok {
				e <- fmt.Errorf("not a delivery: %q", l)
				return
			}
			g <- s
		}
	}()
	return g, e
}

// TestBusySubscriberPinged: a subscriber that takes every message is kept
// however late its pongs are (here: never), as pings wait in the socket
// behind the data; once no message goes out either, it is closed two
// intervals after the last one at the earliest.
func TestBusySubscriberPinged(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		clk := newFakeClock()
		r := startFakeHeartbeat(t, e, clk)
		w := r.dial("acme", "")
		var pings atomic.Int64
		w.c.SetPingHandler(func(string) error { pings.Add(1); return nil }) // never answers
		w.hello()
		got, ended := readLines(w)

		// Busy: every interval a batch, taken whole before the next interval.
		const batches, batch = 20, 500
		want := uint64(1)
		for b := 0; b < batches; b++ {
			r.mustPost("acme", clicks(b*batch, batch))
			clk.advance(fakeInterval)
			r.s.ticks.fire()
			for i := 0; i < batch; i++ {
				select {
				case s := <-got:
					if s != want {
						t.Fatalf("got seq %d, want %d", s, want)
					}
					want++
				case err := <-ended:
					t.Fatalf("the relay dropped a subscriber taking every message, after seq %d: %v", want-1, err)
				}
			}
		}

		// Idle: nothing goes out, nothing comes back.
		var err error
		idle := 0
		for err == nil {
			clk.advance(fakeInterval)
			idle++
			r.s.ticks.fire() // a writer still finishing the last batch may miss a fire: then the next one
			select {
			case err = <-ended:
			case s := <-got:
				t.Fatalf("unexpected delivery %d", s)
			case <-time.After(50 * time.Millisecond): // the poll's pace, not a bound
			}
			if idle > 1000 {
				t.Fatal("the relay never closed a silent, idle subscriber")
			}
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("the relay did not close the silent subscriber: %v", err)
		}
		if idle < 2 {
			t.Errorf("closed %d intervals after the last message; the rule allows 2 at the earliest", idle)
		}
		if pings.Load() == 0 {
			t.Error("the subscriber was closed without a ping")
		}
		testkit.WaitFor(t, "the subscriber freed", func() bool { return r.s.Stats().Subscribers == 0 })
	})
}

// TestHeartbeatAnswered: a client that answers the pings is kept through
// any number of intervals without a message.
func TestHeartbeatAnswered(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		clk := newFakeClock()
		r := startFakeHeartbeat(t, e, clk)
		w := r.dial("acme", "")
		w.hello()
		got, ended := readLines(w) // gorilla's default ping handler answers
		var sub *subscriber
		testkit.WaitFor(t, "the subscriber", func() bool {
			r.s.mu.Lock()
			defer r.s.mu.Unlock()
			for s := range r.s.streams {
				sub = s
			}
			return sub != nil
		})
		for i := 0; i < 6; i++ {
			at := clk.advance(fakeInterval)
			// Fire until the relay has the answer to a ping of this interval
			// (a fire can come before the writer waits for it).
			for fires := 0; sub.pong().Before(at); fires++ {
				if fires > 1000 {
					t.Fatalf("interval %d: no answer to a ping reached the relay", i)
				}
				r.s.ticks.fire()
				select {
				case err := <-ended:
					t.Fatalf("a client answering pings was dropped after %d intervals: %v", i, err)
				case <-time.After(50 * time.Millisecond): // the poll's pace, not a bound
				}
			}
		}
		r.mustPost("acme", clicks(1, 1))
		select {
		case s := <-got:
			if s != 1 {
				t.Fatalf("got seq %d, want 1", s)
			}
		case err := <-ended:
			t.Fatalf("a client answering pings was dropped: %v", err)
		}
	})
}
