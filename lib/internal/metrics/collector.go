package metrics

import (
	"cmp"
	"slices"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// Label rotation. A tenant keeps its label once it has one (a series that
// comes and goes is worse than a slightly stale top list), until it is
// dropped or an unlabeled tenant clearly outgrows it: by more than
// swapFactor times its volume since the previous scrape, plus swapMargin
// events, so that a handful of quiet tenants do not trade places at every
// scrape and churn series.
const (
	swapFactor = 2
	swapMargin = 100
)

// tenantCollector turns the tenants' atomics into metrics at scrape time and
// decides which tenants get a label of their own.
type tenantCollector struct {
	m *Metrics

	tenants, subscribers, accepted, delivered, gaps, dropped, lag *prometheus.Desc

	// mu serialises scrapes and guards labeled and the collector-owned
	// fields of every Tenant (labeled, base, lastSeen).
	mu      sync.Mutex
	labeled map[*Tenant]struct{} // labeled by volume (opt-in tenants are not in it)
}

func newTenantCollector(m *Metrics) *tenantCollector {
	tenant := []string{"tenant"}
	return &tenantCollector{
		m: m,
		tenants: prometheus.NewDesc("tl_relay_tenants",
			"Tenants the relay holds now (each with its log and subscribers).", nil, nil),
		subscribers: prometheus.NewDesc("tl_relay_subscribers",
			"Subscribers connected now.", tenant, nil),
		accepted: prometheus.NewDesc("tl_relay_events_accepted_total",
			"Events accepted into a tenant's history (202).", tenant, nil),
		delivered: prometheus.NewDesc("tl_relay_deliveries_total",
			"Event lines written to subscribers' sockets (one per event per subscriber).", tenant, nil),
		gaps: prometheus.NewDesc("tl_relay_gaps_total",
			"Gap lines sent to subscribers, by reason (evicted: fell out of the history; epoch: numbering restarted).",
			[]string{"tenant", "reason"}, nil),
		dropped: prometheus.NewDesc("tl_relay_events_dropped_total",
			"Events that subscribers will never receive, as announced by their gap lines.", tenant, nil),
		lag: prometheus.NewDesc("tl_relay_subscriber_lag_max_events",
			"How far the furthest-behind subscriber is behind the head of its tenant's log, in events.", tenant, nil),
		labeled: make(map[*Tenant]struct{}),
	}
}

// Describe implements prometheus.Collector.
func (c *tenantCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.tenants, c.subscribers, c.accepted, c.delivered, c.gaps, c.dropped, c.lag} {
		ch <- d
	}
}

// tenantSnap is one tenant at one scrape.
type tenantSnap struct {
	t      *Tenant
	c      counts
	subs   int
	maxLag uint64
	recent uint64 // volume since the previous scrape: events accepted plus lines delivered
}

// Collect implements prometheus.Collector: one pass over the tenants, then
// one series set per labeled tenant and one for everything else.
func (c *tenantCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()

	ts, retired := c.m.snapshotTenants()
	snaps := make([]tenantSnap, len(ts))
	live := make(map[*Tenant]struct{}, len(c.labeled))
	for i, t := range ts {
		cs, subs, maxLag, _ := t.snapshot(false)
		// Volume is the work a tenant makes: what it publishes and what its
		// subscribers receive, so a tenant with few events and thousands of
		// subscribers ranks as high as it costs.
		vol := cs.accepted + cs.delivered
		snaps[i] = tenantSnap{t: t, c: cs, subs: subs, maxLag: maxLag, recent: vol - t.lastSeen}
		t.lastSeen = vol
		if t.labeled && !t.optIn {
			live[t] = struct{}{}
			c.labeled[t] = struct{}{} // labeled from birth by Metrics.Tenant
		}
	}
	for t := range c.labeled { // dropped tenants free their slot
		if _, ok := live[t]; !ok {
			delete(c.labeled, t)
			t.labeled = false
			c.m.slots.Add(-1)
		}
	}
	c.relabel(snaps)

	other := retired
	var otherSubs int
	var otherLag uint64
	for i := range snaps {
		s := &snaps[i]
		if !s.t.labeled {
			other.add(s.c)
			otherSubs += s.subs
			otherLag = max(otherLag, s.maxLag)
			continue
		}
		// What happened before it got its label stays in _other, so that
		// every series only grows and the sum over tenants is the total.
		other.add(s.t.base)
		c.emit(ch, s.t.name, s.c.minus(s.t.base), s.subs, s.maxLag)
	}
	c.emit(ch, Other, other, otherSubs, otherLag)
	ch <- prometheus.MustNewConstMetric(c.tenants, prometheus.GaugeValue, float64(len(ts)))
}

// relabel gives opt-in tenants their label, fills the free top slots with
// the busiest unlabeled tenants and swaps out labeled tenants that clearly
// fell behind an unlabeled one.
func (c *tenantCollector) relabel(snaps []tenantSnap) {
	var cands, held []*tenantSnap
	for i := range snaps {
		s := &snaps[i]
		switch {
		case s.t.optIn:
			if !s.t.labeled {
				s.t.labeled, s.t.base = true, counts{} // labeled from birth
			}
		case s.t.labeled:
			held = append(held, s)
		default:
			cands = append(cands, s)
		}
	}
	if len(cands) == 0 {
		return
	}
	cands = busiest(cands, c.m.top)
	next := 0
	for ; next < len(cands) && c.m.takeSlot(); next++ {
		c.promote(cands[next])
	}
	// Quietest held first.
	slices.SortFunc(held, func(a, b *tenantSnap) int { return cmp.Compare(a.recent, b.recent) })
	for _, h := range held {
		if next >= len(cands) {
			break
		}
		cand := cands[next]
		if cand.recent <= swapFactor*h.recent+swapMargin {
			break
		}
		delete(c.labeled, h.t)
		h.t.labeled = false
		c.promote(cand)
		next++
	}
}

func (c *tenantCollector) promote(s *tenantSnap) {
	s.t.labeled, s.t.base = true, s.c
	c.labeled[s.t] = struct{}{}
}

func (c *tenantCollector) emit(ch chan<- prometheus.Metric, name string, cs counts, subs int, maxLag uint64) {
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	ch <- prometheus.MustNewConstMetric(c.subscribers, prometheus.GaugeValue, float64(subs), name)
	ch <- prometheus.MustNewConstMetric(c.lag, prometheus.GaugeValue, float64(maxLag), name)
	counter(c.accepted, cs.accepted, name)
	counter(c.delivered, cs.delivered, name)
	counter(c.dropped, cs.dropped, name)
	for i, r := range gapReasons {
		counter(c.gaps, cs.gaps[i], name, r)
	}
}

// busier orders candidates: busiest since the previous scrape first, ties
// broken by total volume, then by name, so that the same workload always
// gives the same labels.
func busier(a, b *tenantSnap) int {
	return cmp.Or(cmp.Compare(b.recent, a.recent), cmp.Compare(b.c.accepted, a.c.accepted),
		cmp.Compare(a.t.name, b.t.name))
}

// busiest returns the k busiest candidates, busiest first. It keeps a sorted
// slice of at most k and mostly compares each candidate with its last
// element: O(n) for n tenants and a small k, where sorting 100,000 tenants
// at every scrape cost most of the scrape.
func busiest(cands []*tenantSnap, k int) []*tenantSnap {
	if k <= 0 {
		return nil
	}
	best := make([]*tenantSnap, 0, k)
	for _, s := range cands {
		if len(best) == k {
			if busier(s, best[k-1]) >= 0 {
				continue
			}
			best = best[:k-1]
		}
		i, _ := slices.BinarySearchFunc(best, s, busier)
		best = slices.Insert(best, i, s)
	}
	return best
}
