// Package invariant states tl's delivery promise once, in the form that can
// be checked from outside the relay, and checks a run against it: the
// publishers' answers and every subscriber's lines.
//
// The promise: each acknowledged event exactly once, in order, or an exact
// gap line. Seen from outside, with every event carrying a unique id (the
// soak puts one in its metadata), it becomes these clauses:
//
//   - unique: no two events ever share (epoch, seq). Two 202s whose ranges
//     overlap, two subscribers that receive different events under one
//     (epoch, seq), or a delivery under the (epoch, seq) of another event's
//     202 all break it. A 202's range holds exactly its batch.
//   - placed: a delivered event is one that was published, and it arrives
//     under the (epoch, seq) its 202 gave. An event whose POST got no 202
//     (no answer, a 5xx) is unknown: it may be delivered or not, but always
//     under one (epoch, seq), never two. (Options.LosesHistory relaxes this
//     for a retry that crossed an epoch change: then one place per epoch.)
//     An event refused with 503 at every try is never delivered.
//   - ordered: a subscriber receives the events of an epoch in increasing
//     seq, each once, and a gap line covers only seqs after everything it
//     received before it and before everything it receives after it (a gap
//     never covers a seq it then delivers). An epoch, once left, never
//     comes back.
//   - complete: every acknowledged seq of an epoch, from where the
//     subscriber started in it to the furthest it got (or to the epoch's
//     newest acknowledged seq, once the run has settled), is delivered or
//     covered by a gap. A subscriber starts an epoch after the since it
//     asked for, after the hello's last_seq when it started live, and at
//     seq 1 when the epoch changed under it (the whole new history
//     follows, or a gap says what of it is gone).
//   - exact gaps: unless the history may evict (Options.Evicts), a gap must
//     not cover an acknowledged seq: the backing still holds it.
//   - kept: unless the backing may lose its history (Options.LosesHistory,
//     a memory relay killed), the epoch never changes and every
//     acknowledged event reaches every settled subscriber.
//
// What cannot be checked from outside: where an unknown event that no
// subscriber received went (its seq may have been reused, or never
// existed); whether a gap's seqs were really lost when they were never
// acknowledged; and a hello's last_seq, which another relay on the same
// broker may give from behind. Those are left to the backings' own tests.
package invariant

import (
	"fmt"
	"sort"
	"strings"

	tlevent "github.com/tl-sh/tl/lib/event"
)

// Outcome is what a publisher learned of one batch.
type Outcome int

const (
	// Unknown: no answer, or a 5xx, after every retry. The batch may be
	// published once or not at all.
	Unknown Outcome = iota
	// Acked: a 202, with its epoch and seq range.
	Acked
	// AckedUnplaced: published for certain, but where is unknown (tl-post
	// exiting 0 says every batch got its 202 without printing them). The
	// deliveries place it.
	AckedUnplaced
	// Refused: every try was answered with a status that says "not
	// published" (503). The event must never be delivered.
	Refused
)

// Publish is one batch as its publisher saw it.
type Publish struct {
	IDs      []string // the events' ids, in the batch's order
	Outcome  Outcome
	Epoch    string // from the 202
	FirstSeq uint64
	LastSeq  uint64
	Retried  bool // sent more than once (under one Idempotency-Key)
}

// Kind says what a subscriber's line was.
type Kind int

const (
	Hello Kind = iota
	Delivery
	Gap
)

// Line is one line a subscriber received, reduced to what the check reads.
type Line struct {
	Kind    Kind
	Epoch   string // hello
	LastSeq uint64 // hello
	Seq     uint64 // delivery
	ID      string // delivery: the event's id
	From    uint64 // gap
	To      uint64 // gap
	Reason  string // gap
}

// Conn is one connection of a subscriber: what it asked for and what it
// received, in order.
type Conn struct {
	HasSince bool
	Since    uint64
	Epoch    string // the epoch sent with since ("" for none)
	Lines    []Line
}

// Sub is one subscriber across its reconnects.
type Sub struct {
	Name  string
	Conns []Conn
}

// Options say what the backing under test promises.
type Options struct {
	// LosesHistory: a restart may lose the history (the memory default
	// after kill -9). An epoch change is then allowed, and acknowledged
	// events of an epoch a subscriber left may be missing from it.
	LosesHistory bool
	// Evicts: the history may drop acknowledged events (it was bounded
	// below the run's size), so a gap may cover them.
	Evicts bool
	// Settled: the subscribers were left to catch up before they were
	// closed, so each must have reached FinalEpoch's newest acknowledged
	// seq.
	Settled bool
	// FinalEpoch is the backing's epoch at the end of the run (required
	// with Settled).
	FinalEpoch string
}

// Violation is one broken clause.
type Violation struct {
	Clause string // unique, placed, ordered, complete, gap, kept
	Msg    string
}

func (v Violation) String() string { return v.Clause + ": " + v.Msg }

// place is an event's name in the history.
type place struct {
	epoch string
	seq   uint64
}

func (p place) String() string { return fmt.Sprintf("(%s, %d)", p.epoch, p.seq) }

// event is what the check knows of one published event.
type event struct {
	id      string
	outcome Outcome
	retried bool
	acked   place // valid when outcome is Acked (or AckedUnplaced once placed)
	placed  bool
}

// checker holds one check's state.
type checker struct {
	opts   Options
	events map[string]*event
	owner  map[place]string            // who holds each (epoch, seq): acks, then deliveries
	ackedS map[string]map[uint64]bool  // acknowledged seqs per epoch
	maxAck map[string]uint64           // newest acknowledged seq per epoch
	seenAt map[string]map[place]string // each id's places, with a subscriber that saw it there
	out    []Violation
}

// Check returns every violation of the invariant in a run: the publishers'
// batches and the subscribers' lines. None means the run kept the promise.
func Check(pubs []Publish, subs []Sub, opts Options) []Violation {
	c := &checker{
		opts:   opts,
		events: map[string]*event{},
		owner:  map[place]string{},
		ackedS: map[string]map[uint64]bool{},
		maxAck: map[string]uint64{},
		seenAt: map[string]map[place]string{},
	}
	c.acks(pubs)
	for _, s := range subs {
		c.places(s)
	}
	c.unplaced()
	for _, s := range subs {
		c.stream(s)
	}
	if !opts.LosesHistory {
		for e := range c.maxAck {
			if opts.FinalEpoch != "" && e != opts.FinalEpoch {
				c.add("kept", "events acknowledged in epoch %s, but the backing ended in epoch %s: the history was lost", e, opts.FinalEpoch)
			}
		}
	}
	return c.out
}

func (c *checker) add(clause, format string, a ...any) {
	c.out = append(c.out, Violation{clause, fmt.Sprintf(format, a...)})
}

// acks records every 202: unique (no overlap), and each range the size of
// its batch.
func (c *checker) acks(pubs []Publish) {
	for i, p := range pubs {
		for _, id := range p.IDs {
			if _, dup := c.events[id]; dup {
				c.add("unique", "event %s is in two batches (the publisher's fault)", id)
				continue
			}
			c.events[id] = &event{id: id, outcome: p.Outcome, retried: p.Retried}
		}
		if p.Outcome != Acked {
			continue
		}
		if p.LastSeq < p.FirstSeq || p.LastSeq-p.FirstSeq+1 != uint64(len(p.IDs)) {
			c.add("unique", "batch %d: a 202 for %d events with seqs %d..%d in epoch %s", i, len(p.IDs), p.FirstSeq, p.LastSeq, p.Epoch)
			continue
		}
		for j, id := range p.IDs {
			at := place{p.Epoch, p.FirstSeq + uint64(j)}
			c.events[id].acked, c.events[id].placed = at, true
			c.own(at, id, "acknowledged", true)
		}
	}
}

// own gives at to id, unless another event holds it; acked says that id
// is acknowledged there, so that subscribers must receive it.
func (c *checker) own(at place, id, how string, acked bool) {
	if prev, ok := c.owner[at]; ok && prev != id {
		c.add("unique", "%s is given twice: to %s and, %s, to %s", at, prev, how, id)
		return
	}
	c.owner[at] = id
	if c.ackedS[at.epoch] == nil {
		c.ackedS[at.epoch] = map[uint64]bool{}
	}
	if acked {
		c.ackedS[at.epoch][at.seq] = true
		if at.seq > c.maxAck[at.epoch] {
			c.maxAck[at.epoch] = at.seq
		}
	}
}

// places checks where s received each event (the clause placed) and
// remembers it, so that unplaced acknowledged events can be placed.
func (c *checker) places(s Sub) {
	for _, conn := range s.Conns {
		epoch := ""
		for _, l := range conn.Lines {
			switch l.Kind {
			case Hello:
				epoch = l.Epoch
			case Delivery:
				if epoch == "" {
					continue // ordered reports it
				}
				c.delivered(s.Name, place{epoch, l.Seq}, l.ID)
			}
		}
	}
}

func (c *checker) delivered(sub string, at place, id string) {
	e := c.events[id]
	if e == nil {
		c.add("placed", "%s received %s at %s, an event nobody published", sub, id, at)
		return
	}
	if e.outcome == Refused {
		c.add("placed", "%s received %s at %s, an event refused (503) at every try", sub, id, at)
		return
	}
	if e.outcome == Acked && e.placed && e.acked != at {
		if e.acked.epoch != at.epoch && c.opts.LosesHistory && e.retried {
			// A retry that crossed an epoch change: the first try went
			// into the lost epoch.
		} else {
			c.add("placed", "%s received %s at %s, but its 202 said %s", sub, id, at, e.acked)
			return
		}
	}
	if prev, ok := c.owner[at]; ok && prev != id {
		c.add("unique", "%s received %s at %s, which belongs to %s", sub, id, at, prev)
		return
	}
	if c.seenAt[id] == nil {
		c.seenAt[id] = map[place]string{}
	}
	if _, ok := c.seenAt[id][at]; ok {
		return
	}
	for other, by := range c.seenAt[id] {
		if other.epoch == at.epoch || !(c.opts.LosesHistory && e.retried) {
			c.add("placed", "%s is published twice: %s received it at %s, %s at %s", id, by, other, sub, at)
		}
	}
	c.seenAt[id][at] = sub
	// Every place seen is taken, also a retried event's place in a lost
	// epoch; only a placement by delivery makes it an acknowledged seq.
	c.own(at, id, "delivered to "+sub, e.outcome == AckedUnplaced)
}

// unplaced places the events that are acknowledged without a place, from
// their deliveries, and reports the ones no subscriber received where the
// backing keeps everything.
func (c *checker) unplaced() {
	for id, e := range c.events {
		if e.outcome != AckedUnplaced {
			continue
		}
		for at := range c.seenAt[id] {
			if !e.placed || (at.epoch == c.opts.FinalEpoch) {
				e.acked, e.placed = at, true
			}
		}
		if !e.placed && c.opts.Settled && !c.opts.LosesHistory {
			c.add("complete", "%s was acknowledged (its publisher said so) but no subscriber received it", id)
		}
	}
}

// span is what a subscriber covered of one epoch.
type span struct {
	lo, last uint64          // started after lo; the furthest seq received or gapped
	got      map[uint64]bool // delivered
	gaps     [][2]uint64     // the gap lines' ranges
}

// covered reports whether q was delivered or announced lost.
func (sp *span) covered(q uint64) bool {
	if sp.got[q] {
		return true
	}
	for _, g := range sp.gaps {
		if q >= g[0] && q <= g[1] {
			return true
		}
	}
	return false
}

// stream checks one subscriber's lines: ordered, exact gaps, complete.
func (c *checker) stream(s Sub) {
	spans := map[string]*span{}
	var order []string // epochs in the order s entered them
	cur := ""
	for ci, conn := range s.Conns {
		hello := false
		for li, l := range conn.Lines {
			where := fmt.Sprintf("%s conn %d line %d", s.Name, ci+1, li+1)
			switch l.Kind {
			case Hello:
				hello = true
				if l.Epoch == cur {
					continue
				}
				if _, back := spans[l.Epoch]; back {
					c.add("ordered", "%s: epoch %s again, after %s", where, l.Epoch, cur)
					cur = l.Epoch
					continue
				}
				if cur != "" && !c.opts.LosesHistory {
					c.add("kept", "%s: the epoch changed from %s to %s", where, cur, l.Epoch)
				}
				sp := &span{got: map[uint64]bool{}}
				switch {
				case cur != "":
					// The epoch changed under s: all of the new one follows.
				case conn.HasSince && (conn.Epoch == "" || conn.Epoch == l.Epoch):
					sp.lo = conn.Since
				case conn.HasSince:
				default:
					sp.lo = l.LastSeq
				}
				sp.last = sp.lo
				spans[l.Epoch] = sp
				order = append(order, l.Epoch)
				cur = l.Epoch
			case Delivery:
				if !hello {
					c.add("ordered", "%s: a delivery (seq %d) before any hello", where, l.Seq)
					continue
				}
				sp := spans[cur]
				if l.Seq <= sp.last {
					what := "out of order"
					if sp.got[l.Seq] {
						what = "twice"
					}
					c.add("ordered", "%s: seq %d of epoch %s (%s) %s: it comes after seq %d", where, l.Seq, cur, l.ID, what, sp.last)
					continue
				}
				sp.got[l.Seq], sp.last = true, l.Seq
			case Gap:
				if !hello {
					c.add("ordered", "%s: a gap before any hello", where)
					continue
				}
				sp := spans[cur]
				if l.From > l.To || l.From <= sp.last {
					c.add("ordered", "%s: gap %d..%d (%s) of epoch %s after seq %d: it must start after what was received", where, l.From, l.To, l.Reason, cur, sp.last)
				}
				if l.Reason != tlevent.GapEvicted && l.Reason != tlevent.GapEpoch {
					c.add("gap", "%s: gap %d..%d has reason %q", where, l.From, l.To, l.Reason)
				}
				if l.From <= l.To {
					sp.gaps = append(sp.gaps, [2]uint64{l.From, l.To})
				}
				var held []uint64
				for q := range c.ackedS[cur] {
					if !c.opts.Evicts && q >= l.From && q <= l.To {
						held = append(held, q)
					}
				}
				if len(held) > 0 {
					c.add("gap", "%s: gap %d..%d (%s) of epoch %s covers acknowledged %s that the backing holds", where, l.From, l.To, l.Reason, cur, seqList(held))
				}
				if l.To > sp.last {
					sp.last = l.To
				}
			}
		}
	}
	for i, e := range order {
		sp := spans[e]
		hi := sp.last
		final := i == len(order)-1
		if c.opts.Settled && final {
			if c.opts.FinalEpoch != "" && e != c.opts.FinalEpoch {
				c.add("complete", "%s ended in epoch %s, never saw the backing's epoch %s", s.Name, e, c.opts.FinalEpoch)
			} else if c.maxAck[e] > hi {
				hi = c.maxAck[e]
			}
		}
		if !final && !c.opts.LosesHistory && c.maxAck[e] > hi {
			hi = c.maxAck[e]
		}
		var missing []uint64
		for q := range c.ackedS[e] {
			if q > sp.lo && q <= hi && !sp.covered(q) {
				missing = append(missing, q)
			}
		}
		if len(missing) > 0 {
			sort.Slice(missing, func(a, b int) bool { return missing[a] < missing[b] })
			c.add("complete", "%s never received acknowledged %s of epoch %s (first: %s), nor a gap for them", s.Name, seqList(missing), e, c.owner[place{e, missing[0]}])
		}
	}
	if c.opts.Settled && c.opts.FinalEpoch != "" && len(order) == 0 && c.maxAck[c.opts.FinalEpoch] > 0 {
		c.add("complete", "%s never said hello", s.Name)
	}
}

// seqList writes sorted seqs as ranges: "seqs 3..5, 9".
func seqList(q []uint64) string {
	sort.Slice(q, func(a, b int) bool { return q[a] < q[b] })
	var b strings.Builder
	b.WriteString("seq")
	if len(q) > 1 {
		b.WriteString("s")
	}
	b.WriteString(" ")
	for i := 0; i < len(q); {
		j := i
		for j+1 < len(q) && q[j+1] == q[j]+1 {
			j++
		}
		if i > 0 {
			b.WriteString(", ")
		}
		if i == j {
			fmt.Fprintf(&b, "%d", q[i])
		} else {
			fmt.Fprintf(&b, "%d..%d", q[i], q[j])
		}
		i = j + 1
	}
	return b.String()
}
