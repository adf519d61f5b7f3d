package relay

import (
	"testing"
	"time"

	"github.com/tl-sh/tl/lib/internal/testkit"
)

// TestPacedFanoutKeepsEveryLine: with the pacer yielding after every
// message (a slice of 1 ns), on both engines, every subscriber still gets
// every line, in order, with no gap, while POSTs and the fan-out take
// turns; and the pacer did yield, so the test is not vacuous.
func TestPacedFanoutKeepsEveryLine(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		r := e.start(t, Config{})
		r.s.pace.slice = time.Nanosecond // set before any fan-out goroutine starts
		const subs, posts, batch = 40, 60, 25
		ws := make([]*wsClient, subs)
		for i := range ws {
			ws[i] = r.dial("acme", "")
			ws[i].hello()
		}
		for p := 0; p < posts; p++ {
			a := r.mustPost("acme", clicks(p*batch, batch))
			if a.FirstSeq != uint64(p*batch+1) {
				t.Fatalf("POST %d: first seq %d", p, a.FirstSeq)
			}
		}
		for _, w := range ws {
			w.wantSeqs(testkit.SeqRange(1, posts*batch)...)
		}
		if r.s.pace.yields.Load() == 0 {
			t.Error("the pacer never yielded")
		}
	})
}
