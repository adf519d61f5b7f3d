package metrics

import (
	"sync"
	"sync/atomic"
)

// counts are a tenant's cumulative counters at one moment.
type counts struct {
	accepted  uint64
	delivered uint64
	dropped   uint64
	gaps      [3]uint64 // indexed like gapReasons
}

func (c *counts) add(o counts) {
	c.accepted += o.accepted
	c.delivered += o.delivered
	c.dropped += o.dropped
	for i := range c.gaps {
		c.gaps[i] += o.gaps[i]
	}
}

// minus returns c - o; o is an earlier snapshot of the same counters, so no
// field goes below zero.
func (c counts) minus(o counts) counts {
	c.accepted -= o.accepted
	c.delivered -= o.delivered
	c.dropped -= o.dropped
	for i := range c.gaps {
		c.gaps[i] -= o.gaps[i]
	}
	return c
}

// Tenant holds one tenant's counters. Ingest and gap accounting add to its
// atomics directly; deliveries are counted per subscriber (see Sub) so that
// the writers of a busy tenant do not all hit one cache line.
type Tenant struct {
	m     *Metrics
	name  string
	optIn bool // always labeled; fixed at creation

	accepted atomic.Uint64
	head     atomic.Uint64              // newest seq in the tenant's log, for lag
	ring     atomic.Pointer[acceptRing] // set by the first Subscribe
	dropped  atomic.Uint64
	gaps     [3]atomic.Uint64

	// mu guards subs, folded and gone: taken when a subscriber comes or goes
	// and by a scrape, never per event.
	mu     sync.Mutex
	subs   map[*Sub]struct{}
	folded uint64 // deliveries of subscribers that have closed
	gone   bool   // dropped: its counts are in Metrics.retired

	// Owned by the collector, under tenantCollector.mu.
	labeled  bool   // has its own tenant label value
	base     counts // counts at the moment it got its label (they stay in _other)
	lastSeen uint64 // accepted+delivered at the previous scrape, to rank by recent volume
}

// Name is the tenant's name.
func (t *Tenant) Name() string { return t.name }

// Accepted counts n events just appended to the tenant's log, whose newest
// seq is now head; call it when the append returns, which is the moment of
// acceptance that delivery latency is measured from.
func (t *Tenant) Accepted(n int, head uint64) {
	t.accepted.Add(uint64(n))
	t.Head(head)
	if r := t.ring.Load(); r != nil {
		r.record(head, nowNano())
	}
}

// Head records that the tenant's log reaches seq head, when it may have
// moved without an Accepted call here (a log shared with other relays);
// Sub.Wrote calls it. The head only moves forward, whatever order
// concurrent publishers report in.
func (t *Tenant) Head(head uint64) {
	for {
		cur := t.head.Load()
		if head <= cur || t.head.CompareAndSwap(cur, head) {
			return
		}
	}
}

// Subscribe counts a new subscriber whose cursor is at seq cursor (the last
// seq it has been sent, or the one before where it starts).
func (t *Tenant) Subscribe(cursor uint64) *Sub {
	if t.ring.Load() == nil {
		t.ring.CompareAndSwap(nil, new(acceptRing))
	}
	// Lines up to the head now are history (a replay): their age is not a
	// delivery latency.
	s := &Sub{t: t, live: t.head.Load() + 1}
	s.cursor.Store(cursor)
	t.mu.Lock()
	t.subs[s] = struct{}{}
	t.mu.Unlock()
	return s
}

// Drop ends the tenant's counters, when the relay lets go of its hub: what
// it counted stays in the totals, under tenant="_other". Call it after the
// tenant's last subscriber has closed; safe to call twice.
func (t *Tenant) Drop() {
	m := t.m
	m.mu.Lock()
	defer m.mu.Unlock()
	if cur, ok := m.tenants[t.name]; ok && cur == t {
		delete(m.tenants, t.name)
	}
	c, _, _, gone := t.snapshot(true)
	if !gone {
		m.retired.add(c)
	}
}

// snapshot reads the tenant's counters, its subscriber count and the lag of
// its furthest-behind subscriber. With drop set it marks the tenant gone and
// reports whether it already was.
func (t *Tenant) snapshot(drop bool) (c counts, subs int, maxLag uint64, wasGone bool) {
	c.accepted = t.accepted.Load()
	c.dropped = t.dropped.Load()
	for i := range c.gaps {
		c.gaps[i] = t.gaps[i].Load()
	}
	head := t.head.Load()
	t.mu.Lock()
	defer t.mu.Unlock()
	c.delivered = t.folded
	for s := range t.subs {
		c.delivered += s.delivered.Load()
		if cur := s.cursor.Load(); head > cur && head-cur > maxLag {
			maxLag = head - cur
		}
	}
	wasGone = t.gone
	if drop {
		t.gone = true
	}
	return c, len(t.subs), maxLag, wasGone
}

// Sub holds one subscriber's counters. Only its writer goroutine calls Wrote
// and Gap; Close may come from anywhere.
type Sub struct {
	t         *Tenant
	live      uint64 // first seq accepted after it subscribed
	delivered atomic.Uint64
	cursor    atomic.Uint64
	closed    atomic.Bool
}

// Wrote records one message written to the subscriber's socket: lines
// deliveries in it, the seq of its first delivery (0 for none, as for a
// message of control lines), and the cursor now at seq cursor (past any
// lines a filter skipped). The message's first line is its oldest, so the
// latency observed is the worst of the message's. Cost: two uncontended
// atomic stores, and for a live message a look-up of when its first line
// was accepted and one histogram observation; see BenchmarkWrote.
func (s *Sub) Wrote(lines int, first, cursor uint64) {
	if lines > 0 {
		s.delivered.Add(uint64(lines))
	}
	s.cursor.Store(cursor)
	s.t.Head(cursor)
	if first >= s.live {
		if at, ok := s.t.ring.Load().acceptedAt(first); ok {
			s.t.m.latency.Observe(float64(nowNano()-at) / 1e9)
		}
	}
}

// Gap records a gap line sent to the subscriber: events from..to will never
// reach it, for reason (GapEvicted, GapEpoch; anything else is GapOther).
func (s *Sub) Gap(reason string, from, to uint64) {
	t := s.t
	t.gaps[gapIndex(reason)].Add(1)
	if to >= from {
		t.dropped.Add(to - from + 1)
	}
	if to > s.cursor.Load() {
		s.cursor.Store(to)
	}
}

// Close ends the subscriber: its deliveries stay in its tenant's count.
// Safe to call twice.
func (s *Sub) Close() {
	if s.closed.Swap(true) {
		return
	}
	t := s.t
	t.mu.Lock()
	delete(t.subs, s)
	t.folded += s.delivered.Load()
	t.mu.Unlock()
}
