package post

import (
	"fmt"
	"time"
)

// Pacing tuning.
const (
	// minSleep: a line due sooner than this goes now. Sleeping for less
	// costs more than it paces; the schedule is absolute, so the average
	// rate stays exact.
	minSleep = time.Millisecond
	// maxLag: a reader that fell further behind its schedule than this
	// (the relay was slow) starts a new schedule instead of bursting to
	// catch up.
	maxLag = time.Second
)

// pacer releases events at --rate events per second and/or at the pace of
// their own timestamps (--replay SPEED). Its clock is injectable so that its
// schedule can be tested exactly.
type pacer struct {
	rate   float64       // events per second; 0: unpaced
	replay float64       // speed factor; 0: off
	maxGap time.Duration // --replay-max-gap: the longest replay wait; 0: none
	note   func(string)  // says on stderr that a wait was cut short

	now   func() time.Time
	sleep func(time.Duration) bool // false when the run stops

	// --rate: event n is due at rateStart + n/rate.
	rateStart time.Time
	n         int64

	// --replay: an event stamped ts is due at wall0 + (ts-ts0)/replay.
	started bool
	ts0     int64
	wall0   time.Time
	maxTS   int64 // the latest timestamp seen
}

// wait blocks until the event with timestamp ts (or noTimestamp) is due. It
// returns false if the run stopped meanwhile.
func (p *pacer) wait(ts int64) bool {
	if p.rate <= 0 && p.replay <= 0 {
		return true
	}
	now := p.now()
	var due time.Time
	if p.rate > 0 {
		if p.n == 0 {
			p.rateStart = now
		}
		d := p.rateStart.Add(time.Duration(float64(p.n) / p.rate * float64(time.Second)))
		if now.Sub(d) > maxLag {
			p.rateStart, p.n, d = now, 0, now
		}
		p.n++
		due = d
	}
	// An event stamped before the latest one seen goes at once.
	if p.replay > 0 && ts != noTimestamp && (!p.started || ts >= p.maxTS) {
		if !p.started {
			p.started, p.ts0, p.wall0 = true, ts, now
		}
		prev := p.maxTS
		p.maxTS = ts
		off := time.Duration(float64(ts-p.ts0) * float64(time.Millisecond) / p.replay)
		d := p.wall0.Add(off)
		if now.Sub(d) > maxLag {
			// Fell behind (a slow relay): re-anchor rather than burst.
			p.ts0, p.wall0, d = ts, now, now
		}
		if w := d.Sub(now); p.maxGap > 0 && w > p.maxGap {
			// A recording with a night in it would otherwise sleep
			// through the night without a word: cut the wait, start a
			// new schedule after it, and say so.
			if p.note != nil {
				p.note(fmt.Sprintf("tl-post: --replay: the next event is stamped %v after the last; waiting %v instead (--replay-max-gap)",
					time.Duration(ts-prev)*time.Millisecond, p.maxGap))
			}
			d = now.Add(p.maxGap)
			p.ts0, p.wall0 = ts, d
		}
		if d.After(due) {
			due = d
		}
	}
	if w := due.Sub(now); w >= minSleep {
		return p.sleep(w)
	}
	return true
}
