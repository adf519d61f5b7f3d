package relay

import (
	"github.com/tl-sh/tl/lib/event"
	"github.com/tl-sh/tl/lib/metrics"
	"github.com/tl-sh/tl/lib/tlog"
)

// previousEpocher is a log whose epoch can change under a subscriber (a
// shared broker started a new one): it tells which epoch the current one
// replaced and the newest seq known in it.
type previousEpocher interface {
	PreviousEpoch() (epoch string, newest uint64)
}

// epochChange appends what a subscriber hears when the numbering changes
// under it, to epoch, and returns the cursor it goes on from (the new
// epoch's oldest line) and the new epoch's newest seq. In order:
//   - a gap with reason epoch in the OLD numbering, from its cursor to the
//     newest seq the relay knew there, when it had not received them all:
//     those events existed and will never reach it;
//   - the new hello, with the new epoch's newest seq;
//   - a gap with reason epoch in the NEW numbering, 1..oldest-1, when part
//     of it is already gone (newEpochGap).
//
// With controls false (the NDJSON stream) nothing is appended.
func (sub *subscriber) epochChange(dst []byte, log tlog.Log, epoch string, controls bool) (msg []byte, oldest, newest uint64) {
	oldest, newest = log.Bounds()
	if controls {
		if pe, ok := log.(previousEpocher); ok {
			if was, known := pe.PreviousEpoch(); was == sub.epoch && sub.cursor <= known {
				dst = event.AppendGap(dst, sub.cursor, known, event.GapEpoch)
				if sub.m != nil {
					sub.m.Gap(metrics.GapEpoch, sub.cursor, known)
				}
			}
		}
		dst = event.AppendHello(dst, sub.t.name, epoch, newest)
		if g := newEpochGap(oldest); g != nil {
			dst = event.AppendGap(dst, g.From, g.To, event.GapEpoch)
			if sub.m != nil {
				sub.m.Gap(metrics.GapEpoch, g.From, g.To)
			}
		}
	}
	return dst, oldest, newest
}
