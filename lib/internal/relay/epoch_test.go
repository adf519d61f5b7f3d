package relay

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"sync"
	"testing"

	"github.com/gorilla/websocket"

	"github.com/tl-sh/tl/lib/internal/testkit"
	"github.com/tl-sh/tl/lib/internal/tlog"
)

// TestStreamStart: where a new subscriber starts, and the epoch gap line it
// is owed, which names A..B with A <= B or is not sent at all (tl-protocol(7):
// "events A..B will never reach this subscriber").
func TestStreamStart(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		tests := []struct {
			name           string
			query          string
			oldest, newest uint64
			cursor         uint64
			gap            *tlog.Gap
		}{
			{"live", "", 1, 10, 11, nil},
			{"last 3", "last=3", 1, 10, 8, nil},
			{"last more than held", "last=30", 5, 10, 5, nil},
			{"since", "since=4&epoch=e", 1, 10, 5, nil},
			{"since ahead goes live", "since=99&epoch=e", 1, 10, 11, nil},
			{"other epoch, nothing lost", "since=2&epoch=old", 1, 10, 1, nil},
			{"other epoch, empty history", "since=2&epoch=old", 1, 0, 1, nil},
			{"other epoch, part evicted", "since=2&epoch=old", 7, 10, 7, &tlog.Gap{From: 1, To: 6}},
			{"other epoch, oldest 2", "since=9&epoch=old", 2, 3, 2, &tlog.Gap{From: 1, To: 1}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				v, err := url.ParseQuery(tt.query)
				if err != nil {
					t.Fatal(err)
				}
				q, herr := parseStreamQuery(v)
				if herr != nil {
					t.Fatal(herr)
				}
				cursor, gap := q.start(tt.oldest, tt.newest, "e")
				if cursor != tt.cursor {
					t.Errorf("cursor %d, want %d", cursor, tt.cursor)
				}
				switch {
				case gap == nil && tt.gap == nil:
				case gap == nil || tt.gap == nil || *gap != *tt.gap:
					t.Errorf("epoch gap %v, want %v", gap, tt.gap)
				}
			})
		}
	})
}

// swapLog is a tenant log whose history the test replaces under live
// subscribers, as a shared broker that lost its data does: a new epoch.
type swapLog struct {
	mu   sync.Mutex // guards cur and old
	cur  *tlog.Memory
	old  []*tlog.Memory // replaced histories, closed with the log
	wake [][]byte       // a body appended to a replaced history to wake its waiters
}

func (l *swapLog) log() *tlog.Memory {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.cur
}

func (l *swapLog) Append(ctx context.Context, b tlog.Batch) (tlog.Appended, error) {
	return l.log().Append(ctx, b)
}
func (l *swapLog) Read(from uint64, dst [][]byte, maxLines, maxBytes int) ([][]byte, uint64, tlog.Gap, error) {
	return l.log().Read(from, dst, maxLines, maxBytes)
}
func (l *swapLog) Notify() <-chan struct{}         { return l.log().Notify() }
func (l *swapLog) Bounds() (oldest, newest uint64) { return l.log().Bounds() }
func (l *swapLog) Epoch() string                   { return l.log().Epoch() }

func (l *swapLog) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, m := range append(l.old, l.cur) {
		m.Close()
	}
	return nil
}

// swap puts next in place. The replaced history stays open (a reader still
// holding it must not fail) and gets one more line, which wakes the
// writers waiting on it; nobody reads that line.
func (l *swapLog) swap(next *tlog.Memory) {
	l.mu.Lock()
	prev := l.cur
	l.cur = next
	l.old = append(l.old, prev)
	l.mu.Unlock()
	appendBodies(prev, l.wake)
}

// TestEpochChangeUnderSubscriber: when the numbering restarts under a live
// subscriber, it hears a new hello and then a gap line only when part of
// the new numbering is already gone; when nothing is, no gap line comes
// (never an inverted 1..0).
func TestEpochChangeUnderSubscriber(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		body := []byte(`"tenant_id":"acme","timestamp":1,"type":"click","path":"/new","metadata":{}}` + "\n")
		tests := []struct {
			name    string
			next    func() *tlog.Memory // the new history
			post    int                 // events posted after the swap
			gap     *gapLine
			wantSeq []uint64
		}{
			{"nothing lost", func() *tlog.Memory { return tlog.NewMemory(10, 1<<20) }, 2, nil, testkit.SeqRange(1, 2)},
			{"part evicted", func() *tlog.Memory {
				m := tlog.NewMemory(2, 1<<20)
				appendBodies(m, [][]byte{body, body, body, body, body}) // holds 4..5
				return m
			}, 0, &gapLine{"gap", 1, 3, "epoch"}, testkit.SeqRange(4, 5)},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				sl := &swapLog{cur: tlog.NewMemory(10, 1<<20), wake: [][]byte{body}}
				r := e.start(t, Config{OpenLog: func(string) (tlog.Log, error) { return sl, nil }})
				w := r.dial("acme", "")
				if h := w.hello(); h.Epoch != sl.Epoch() {
					t.Fatalf("hello %+v, want epoch %s", h, sl.Epoch())
				}
				r.mustPost("acme", clicks(1, 3))
				w.wantSeqs(1, 2, 3)
				next := tt.next()
				sl.swap(next)
				if tt.post > 0 {
					r.mustPost("acme", clicks(1, tt.post))
				}
				if h := w.hello(); h.Epoch != next.Epoch() {
					t.Fatalf("hello %+v after the restart, want epoch %s", h, next.Epoch())
				}
				if tt.gap != nil {
					if g := w.gap(); g != *tt.gap {
						t.Fatalf("gap %+v, want %+v", g, *tt.gap)
					}
				}
				w.wantSeqs(tt.wantSeq...) // a gap line here fails: it is not a delivery
			})
		}
	})
}

// resumeLog is a swapLog of a shared broker that started a new epoch this
// relay has not heard of yet: next takes its place when a subscriber's
// resume makes the relay ask (Resume), as redislog's does.
type resumeLog struct {
	swapLog
	next    *tlog.Memory
	down    bool     // the broker does not answer
	resumed []string // the epochs Resume was asked about
}

func (l *resumeLog) Resume(epoch string, since uint64) error {
	l.mu.Lock()
	l.resumed = append(l.resumed, epoch)
	if l.down {
		l.mu.Unlock()
		return errors.New("broker unavailable: not reachable")
	}
	next := l.next
	l.next = nil
	l.mu.Unlock()
	if next != nil {
		l.swap(next)
	}
	return nil
}

// TestResumeFromUnknownEpoch: a subscriber resuming from an epoch this
// relay does not know (another relay of the same broker started it, and
// this one's follower has not brought it yet) makes the relay ask the
// broker before the hello. It gets the new epoch's hello and the lines
// after its seq, not the old epoch's hello and then the new one's seqs
// again (the soak's broker-volatile run found that).
func TestResumeFromUnknownEpoch(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		body := []byte(`"tenant_id":"acme","timestamp":1,"type":"click","path":"/new","metadata":{}}` + "\n")
		next := tlog.NewMemory(10, 1<<20)
		appendBodies(next, [][]byte{body, body, body, body, body}) // the new epoch holds 1..5
		rl := &resumeLog{swapLog: swapLog{cur: tlog.NewMemory(10, 1<<20), wake: [][]byte{body}}, next: next}
		r := e.start(t, Config{OpenLog: func(string) (tlog.Log, error) { return rl, nil }})
		r.mustPost("acme", clicks(1, 3)) // the old epoch, as this relay knows it: 1..3
		w := r.dial("acme", "since=3&epoch="+next.Epoch())
		if h := w.hello(); h.Epoch != next.Epoch() || h.LastSeq != 5 {
			t.Fatalf("hello %+v, want epoch %s and last_seq 5", h, next.Epoch())
		}
		w.wantSeqs(4, 5)
		rl.mu.Lock()
		if len(rl.resumed) != 1 || rl.resumed[0] != next.Epoch() {
			t.Errorf("Resume asked about %q, want once about %s", rl.resumed, next.Epoch())
		}
		// A broker that does not answer: the relay cannot tell where the
		// client stands, so it says 503 (retry) rather than a hello that
		// may be stale. A client of the relay's own epoch is served.
		rl.down = true
		rl.mu.Unlock()
		_, res, err := websocket.DefaultDialer.Dial(r.ws+"/v1/tenants/acme/stream?since=3&epoch=elsewhere", nil)
		if err == nil || res == nil || res.StatusCode != http.StatusServiceUnavailable || res.Header.Get("Retry-After") == "" {
			t.Errorf("resume from another epoch with the broker down: %v %v, want 503 with Retry-After", err, res)
		}
		w2 := r.dial("acme", "since=4&epoch="+next.Epoch())
		if h := w2.hello(); h.Epoch != next.Epoch() {
			t.Errorf("hello %+v, want epoch %s", h, next.Epoch())
		}
	})
}
