package relay

import (
	"fmt"
	"sync"
	"testing"

	"github.com/tl-sh/tl/lib/internal/tlog"
)

// prevSwapLog is a swapLog that, like the Redis backing, says which epoch
// the current one replaced and the newest seq it knew there.
type prevSwapLog struct {
	*swapLog
	mu         sync.Mutex // guards prev and prevNewest
	prev       string
	prevNewest uint64
}

func (l *prevSwapLog) PreviousEpoch() (string, uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.prev, l.prevNewest
}

// swapKnown replaces the history as swap does, recording that the old
// epoch was known up to newest.
func (l *prevSwapLog) swapKnown(next *tlog.Memory, newest uint64) {
	l.mu.Lock()
	l.prev, l.prevNewest = l.Epoch(), newest
	l.mu.Unlock()
	l.swap(next)
}

// TestEpochChangeExactLines: the exact lines a subscriber gets when the
// numbering changes under it: a gap in the OLD epoch for the seqs it had
// not received of those the relay knew (they are gone), then the hello
// naming the new epoch's newest seq, then a gap in the NEW epoch only for
// the part already evicted, then the new epoch's lines from its oldest.
func TestEpochChangeExactLines(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		body := []byte(`"tenant_id":"acme","timestamp":1,"type":"click","path":"/new","metadata":{}}` + "\n")
		tests := []struct {
			name      string
			knownOld  uint64 // newest seq of the old epoch the relay knew
			newEvents int    // events the new epoch holds at the change
			newCap    int    // its history bound
			want      []string
		}{
			{"all received, nothing evicted", 3, 2, 10, []string{
				`{"control":"hello","tenant":"acme","epoch":"NEW","last_seq":2}`,
				`{"seq":1,`, `{"seq":2,`}},
			{"old tail lost", 5, 2, 10, []string{
				`{"control":"gap","from_seq":4,"to_seq":5,"reason":"epoch"}`,
				`{"control":"hello","tenant":"acme","epoch":"NEW","last_seq":2}`,
				`{"seq":1,`, `{"seq":2,`}},
			{"old tail lost and new part evicted", 7, 5, 2, []string{
				`{"control":"gap","from_seq":4,"to_seq":7,"reason":"epoch"}`,
				`{"control":"hello","tenant":"acme","epoch":"NEW","last_seq":5}`,
				`{"control":"gap","from_seq":1,"to_seq":3,"reason":"epoch"}`,
				`{"seq":4,`, `{"seq":5,`}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				sl := &prevSwapLog{swapLog: &swapLog{cur: tlog.NewMemory(10, 1<<20), wake: [][]byte{body}}}
				r := e.start(t, Config{OpenLog: func(string) (tlog.Log, error) { return sl, nil }})
				w := r.dial("acme", "")
				w.hello()
				r.mustPost("acme", clicks(1, 3))
				w.wantSeqs(1, 2, 3)
				next := tlog.NewMemory(tt.newCap, 1<<20)
				for i := 0; i < tt.newEvents; i++ {
					appendBodies(next, [][]byte{body})
				}
				sl.swapKnown(next, tt.knownOld)
				for i, want := range tt.want {
					want = replaceNew(want, next.Epoch())
					got := w.line()
					if len(want) < len(got) && want[len(want)-1] == ',' {
						got = got[:len(want)] // a delivery: its seq is what counts
					}
					if got != want {
						t.Fatalf("line %d after the change: %s\nwant %s", i+1, got, want)
					}
				}
			})
		}
	})
}

func replaceNew(s, epoch string) string {
	const ph = `"NEW"`
	for i := 0; i+len(ph) <= len(s); i++ {
		if s[i:i+len(ph)] == ph {
			return s[:i] + fmt.Sprintf("%q", epoch) + s[i+len(ph):]
		}
	}
	return s
}
