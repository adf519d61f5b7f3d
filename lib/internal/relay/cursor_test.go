package relay

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/gorilla/websocket"

	"github.com/tl-sh/tl/lib/event"
	"github.com/tl-sh/tl/lib/internal/tlog"
)

// coldMemory is a memory log whose seqs below lo read as cold (on disk, in
// Redis).
type coldMemory struct {
	*tlog.Memory
	lo uint64
}

func (l coldMemory) Cold(from uint64) bool { return from < l.lo }

// testLog returns a log holding n events, paths /p1.., clicks at odd seqs
// and pageviews at even ones, whose seqs below coldBelow read as cold.
func testLog(t *testing.T, n int, coldBelow uint64) coldMemory {
	t.Helper()
	m := tlog.NewMemory(1000, 1<<20)
	t.Cleanup(func() { m.Close() })
	var bodies [][]byte
	for i := 1; i <= n; i++ {
		typ := "click"
		if i%2 == 0 {
			typ = "pageview"
		}
		bodies = append(bodies, fmt.Appendf(nil, `"tenant_id":"acme","timestamp":1,"type":%q,"path":"/p%d","metadata":{}}`+"\n", typ, i))
	}
	if _, err := m.Append(context.Background(), tlog.Batch{Bodies: bodies}); err != nil {
		t.Fatal(err)
	}
	return coldMemory{m, coldBelow}
}

// TestCursorNext: the cursor's decision, state by state.
func TestCursorNext(t *testing.T) {
	const hello = `{"control":"hello"}` + "\n"
	tests := []struct {
		name    string
		c       cursor // log, tenant, controls and epoch filled in; limit -1 unless set
		noLimit bool   // c.limit stays as given
		v       view   // epoch and newest filled in when empty
		revoked bool
		want    action
	}{
		{name: "caught up", c: cursor{seq: 11}, want: actWait},
		{name: "behind", c: cursor{seq: 5}, want: actRead},
		{name: "behind, hello with the lines", c: cursor{seq: 5, pending: []byte(hello)}, want: actRead},
		{name: "caught up, hello owed", c: cursor{seq: 11, pending: []byte(hello)}, want: actPending},
		{name: "cold", c: cursor{seq: 2}, want: actReadCold},
		{name: "cold, hello first", c: cursor{seq: 2, pending: []byte(hello)}, want: actPending},
		{name: "revoked", c: cursor{seq: 5}, revoked: true, want: actCloseRevoked},
		{name: "revoked, hello first", c: cursor{seq: 5, pending: []byte(hello)}, revoked: true, want: actPending},
		{name: "revoked before an epoch change", c: cursor{seq: 5, epoch: "old"}, revoked: true, want: actCloseRevoked},
		{name: "limit reached", c: cursor{seq: 5, limit: 2, sent: 2}, noLimit: true, want: actCloseComplete},
		{name: "limit=0, hello first", c: cursor{seq: 5, limit: 0, pending: []byte(hello)}, noLimit: true, want: actPending},
		{name: "limit not reached", c: cursor{seq: 5, limit: 3, sent: 2}, noLimit: true, want: actRead},
		{name: "until passed", c: cursor{seq: 6, until: 5, hasUntil: true}, want: actCloseComplete},
		{name: "until ahead", c: cursor{seq: 5, until: 5, hasUntil: true}, want: actRead},
		{name: "until ahead of the log", c: cursor{seq: 11, until: 20, hasUntil: true}, want: actWait},
		{name: "drained", c: cursor{seq: 8}, v: view{draining: true, target: 7}, want: actCloseDrained},
		{name: "drained, hello first", c: cursor{seq: 11, pending: []byte(hello)}, v: view{draining: true, target: 10}, want: actPending},
		{name: "draining, behind the target", c: cursor{seq: 7}, v: view{draining: true, target: 7}, want: actRead},
		{name: "complete before drained", c: cursor{seq: 8, limit: 1, sent: 1}, noLimit: true, v: view{draining: true, target: 7}, want: actCloseComplete},
		// An epoch change restarts the cursor at the new epoch's oldest
		// line (1, cold here) with a hello owed (TestCursorEpochChange).
		{name: "epoch change", c: cursor{seq: 11, epoch: "old"}, want: actPending},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := testLog(t, 10, 3)
			c := tt.c
			c.log, c.tenant, c.controls = l, "acme", true
			if c.epoch == "" {
				c.epoch = l.Epoch()
			}
			if !tt.noLimit {
				c.limit = -1
			}
			v := tt.v
			v.epoch = l.Epoch()
			if v.newest == 0 {
				_, v.newest = l.Bounds()
			}
			if got := c.next(v, tt.revoked); got != tt.want {
				t.Errorf("next = %d, want %d", got, tt.want)
			}
		})
	}
}

// TestCursorEpochChange: next restarts a cursor whose epoch the log left:
// the new hello is owed, it goes on from the new epoch's oldest line, and
// an until of the old epoch becomes the new epoch's newest seq.
func TestCursorEpochChange(t *testing.T) {
	l := testLog(t, 10, 0)
	c := cursor{log: l, tenant: "acme", controls: true, seq: 40, epoch: "old", limit: -1, until: 50, hasUntil: true}
	if got := c.next(view{epoch: l.Epoch(), newest: 10}, false); got != actRead {
		t.Fatalf("next = %d, want actRead", got)
	}
	want := fmt.Sprintf(`{"control":"hello","tenant":"acme","epoch":%q,"last_seq":10}`+"\n", l.Epoch())
	if c.seq != 1 || c.epoch != l.Epoch() || string(c.pending) != want || c.until != 10 {
		t.Errorf("after the change: seq %d, epoch %s, pending %q, until %d; want 1, %s, %q, 10", c.seq, c.epoch, c.pending, c.until, l.Epoch(), want)
	}
	// Without controls (a chunked stream) nothing is owed.
	c = cursor{log: l, tenant: "acme", seq: 40, epoch: "old", limit: -1}
	if got := c.next(view{epoch: l.Epoch(), newest: 10}, false); got != actRead || c.seq != 1 || len(c.pending) != 0 {
		t.Errorf("chunked: next = %d, seq %d, pending %q; want actRead, 1, none", got, c.seq, c.pending)
	}
}

// TestCursorMessage: a message carries the pending lines, the gap line (on
// a WebSocket) and the lines that pass the filter up to the stream's end;
// advance moves past it, and next then closes a stream that reached its
// end.
func TestCursorMessage(t *testing.T) {
	l := testLog(t, 10, 0)
	read := func(c *cursor) ([][]byte, uint64) {
		lines, next, _, err := l.Read(c.seq, nil, maxMessageLines, maxMessageBytes)
		if err != nil {
			t.Fatal(err)
		}
		return lines, next
	}
	seqs := func(msg []byte) []string {
		var out []string
		for _, line := range strings.SplitAfter(string(msg[frameHeadroom:]), "\n") {
			if s, ok := event.LineSeq([]byte(line)); ok {
				out = append(out, fmt.Sprint(s))
			} else if line != "" {
				out = append(out, line)
			}
		}
		return out
	}
	v := view{epoch: l.Epoch(), newest: 10}

	// limit=2 of the clicks, after the hello and a gap.
	c := cursor{log: l, tenant: "acme", controls: true, seq: 3, epoch: l.Epoch(), limit: 2, pending: []byte("HELLO\n")}
	c.filter.types = 1 << event.ParseType("click")
	lines, next := read(&c)
	msg, d := c.message(nil, lines, next, tlog.Gap{From: 1, To: 2})
	got := strings.Join(seqs(msg), " ")
	want := `HELLO
 {"control":"gap","from_seq":1,"to_seq":2,"reason":"evicted"}
 3 5`
	if got != want {
		t.Errorf("message %q, want %q", got, want)
	}
	if d.next != 6 || d.lines != 3 || d.n != 2 || d.first != 0 || !d.any() {
		t.Errorf("delivery %+v, want next 6, 3 lines, 2 sent from index 0", d)
	}
	c.advance(d)
	if c.seq != 6 || c.sent != 2 || len(c.pending) != 0 {
		t.Errorf("after advance: seq %d, sent %d, pending %q", c.seq, c.sent, c.pending)
	}
	if a := c.next(v, false); a != actCloseComplete {
		t.Errorf("next = %d, want actCloseComplete", a)
	}

	// until=4 on a chunked stream: no gap line, nothing past 4.
	c = cursor{log: l, tenant: "acme", seq: 2, epoch: l.Epoch(), limit: -1, until: 4, hasUntil: true}
	lines, next = read(&c)
	msg, d = c.message(nil, lines, next, tlog.Gap{From: 1, To: 1})
	if got := strings.Join(seqs(msg), " "); got != "2 3 4" {
		t.Errorf("until=4: message %q, want 2 3 4", got)
	}
	c.advance(d)
	if a := c.next(v, false); a != actCloseComplete {
		t.Errorf("until=4: next = %d, want actCloseComplete", a)
	}

	// Lines that all fail the filter: nothing to send, yet progress.
	c = cursor{log: l, tenant: "acme", controls: true, seq: 10, epoch: l.Epoch(), limit: -1}
	c.filter.types = 1 << event.ParseType("click")
	lines, next = read(&c)
	msg, d = c.message(nil, lines, next, tlog.Gap{})
	if len(msg) != frameHeadroom || d.n != 0 || !d.any() {
		t.Errorf("filtered out: message %q, delivery %+v", msg[frameHeadroom:], d)
	}
	c.advance(d)
	if a := c.next(v, false); a != actWait || c.seq != 11 {
		t.Errorf("filtered out: next = %d at seq %d, want actWait at 11", a, c.seq)
	}
}

// TestCursorPlain: only a cursor with nothing pending, no filter and no end
// may share a message with others.
func TestCursorPlain(t *testing.T) {
	tests := []struct {
		c    cursor
		want bool
	}{
		{cursor{limit: -1}, true},
		{cursor{limit: -1, pending: []byte("x")}, false},
		{cursor{limit: -1, filter: filter{paths: []string{"/a"}}}, false},
		{cursor{limit: 5}, false},
		{cursor{limit: -1, hasUntil: true}, false},
	}
	for i, tt := range tests {
		if got := tt.c.plain(); got != tt.want {
			t.Errorf("%d: plain = %v, want %v", i, got, tt.want)
		}
	}
}

// TestActionCloseFrame: each close the cursor decides has its code.
func TestActionCloseFrame(t *testing.T) {
	for a, want := range map[action]int{
		actCloseComplete: websocket.CloseNormalClosure,
		actCloseDrained:  websocket.CloseGoingAway,
		actCloseRevoked:  websocket.ClosePolicyViolation,
	} {
		if code, _ := a.closeFrame(); code != want {
			t.Errorf("action %d: close %d, want %d", a, code, want)
		}
	}
}
