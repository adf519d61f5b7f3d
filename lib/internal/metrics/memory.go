package metrics

import "github.com/prometheus/client_golang/prometheus"

// Memory adds the gauges of the relay's memory budget (--memory-budget),
// read at scrape time: its limit, what its holders hold now, and what it
// has evicted. Called once per Metrics; a second call adds nothing.
func (m *Metrics) Memory(limit int64, held, evicted func() int64) {
	for _, c := range []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "tl_relay_memory_budget_bytes",
			Help: "The memory budget for histories and Idempotency-Keys held in memory (--memory-budget).",
		}, func() float64 { return float64(limit) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "tl_relay_memory_held_bytes",
			Help: "Bytes of histories and Idempotency-Keys held in memory now, as charged to the budget.",
		}, func() float64 { return float64(held()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "tl_relay_memory_evicted_bytes_total",
			Help: "Bytes the memory budget took back from the tenants holding the most, oldest first.",
		}, func() float64 { return float64(evicted()) }),
	} {
		m.reg.Register(c) // a second call finds them registered: nothing to do
	}
}
