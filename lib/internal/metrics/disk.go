package metrics

import "github.com/prometheus/client_golang/prometheus"

// DataDir adds the gauges of a relay's data directory, read at each scrape:
// failed counts the tenants stopped by a failed write or fsync (nonzero
// means /readyz is 503 and the log names them), openFiles the segment
// files held open across tenants (bounded by a cache sized from
// RLIMIT_NOFILE). Call it once.
func (m *Metrics) DataDir(failed, openFiles func() int) {
	m.reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "tl_relay_tenants_failed",
			Help: "Tenants stopped by a failed write or fsync of the data directory; they take no events until a restart.",
		}, func() float64 { return float64(failed()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "tl_relay_data_open_files",
			Help: "Segment and acked files of the data directory held open across tenants.",
		}, func() float64 { return float64(openFiles()) }),
	)
}
