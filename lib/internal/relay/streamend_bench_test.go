package relay

import (
	"testing"

	"github.com/tl-sh/tl/lib/event"
	"github.com/tl-sh/tl/lib/internal/tlog"
)

// BenchmarkLastMatching is the worst case of a filtered last=N: a full
// default history (100,000 events) of which none passes the filter, so the
// whole of it is read back before the stream starts at the oldest.
func BenchmarkLastMatching(b *testing.B) {
	log := tlog.NewMemory(tlog.DefaultMaxEvents, tlog.DefaultMaxBytes)
	body := []byte(`"tenant_id":"acme","timestamp":1,"type":"pageview","path":"/checkout/step","metadata":{}}` + "\n")
	bodies := make([][]byte, 1000)
	for i := range bodies {
		bodies[i] = body
	}
	for i := 0; i < tlog.DefaultMaxEvents/len(bodies); i++ {
		if _, _, err := appendBodies(log, bodies); err != nil {
			b.Fatal(err)
		}
	}
	f := filter{types: 1 << event.ParseType("click")}
	oldest, newest := log.Bounds()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if got := lastMatching(log, &f, 10, oldest, newest); got != oldest {
			b.Fatalf("start %d, want %d", got, oldest)
		}
	}
}
