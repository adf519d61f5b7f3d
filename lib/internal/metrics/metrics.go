// Package metrics owns what tl-relay tells its operators in numbers: a
// Prometheus registry per relay (never the global default one, so several
// relays can run in one process, as tests do), the relay's own metrics, and
// the Go runtime and process collectors.
//
// The hot path is cheap by construction. Ingest and each subscriber's writer
// only add to atomic counters held by their tenant (*Tenant) or subscriber
// (*Sub); nothing looks up a label or takes a lock per event. A custom
// collector walks the tenants when Prometheus scrapes, and that is where the
// tenant label is decided: the top N tenants by recent volume and an opt-in
// list get their own label value, every other tenant is summed under
// tenant="_other". So a relay with 100,000 tenants still answers a scrape
// with a bounded number of series.
package metrics

import (
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Other is the tenant label value under which every tenant without a label
// of its own is aggregated. A real tenant name starts with a letter or a
// digit, so it can never be "_other".
const Other = "_other"

// DefaultTopTenants is how many tenants get their own label when Options
// does not say: enough for the busy few on a dashboard, small enough that a
// scrape stays a few hundred series.
const DefaultTopTenants = 10

// Refusal reasons, for PublishRefused and SubscribeRefused. Any other string
// is counted as ReasonOther, so the reason label stays bounded whatever a
// caller passes.
const (
	ReasonInvalid      = "invalid"      // 400: a bad event, tenant or query
	ReasonTooLarge     = "too_large"    // 413: body or event over its limit
	ReasonUnsupported  = "unsupported"  // 415: content type
	ReasonMethod       = "method"       // 405: wrong method
	ReasonRateLimited  = "rate_limited" // 429: the tenant's rate limit
	ReasonUnavailable  = "unavailable"  // 503: draining, the tenant limit, or the broker is unreachable
	ReasonLimit        = "limit"        // 503: a subscriber over the relay's or its tenant's subscriber limit
	ReasonUnauthorized = "unauthorized" // 401: no token, or an unknown one
	ReasonForbidden    = "forbidden"    // 403: a token without this scope or tenant
	ReasonOther        = "other"        // anything not listed above
)

// Gap reasons, as in the protocol's gap line.
const (
	GapEvicted = "evicted" // older than the history
	GapEpoch   = "epoch"   // the numbering restarted
	GapOther   = "other"   // anything else
)

var refuseReasons = []string{
	ReasonInvalid, ReasonTooLarge, ReasonUnsupported, ReasonMethod, ReasonRateLimited,
	ReasonUnavailable, ReasonLimit, ReasonUnauthorized, ReasonForbidden, ReasonOther,
}

var gapReasons = []string{GapEvicted, GapEpoch, GapOther}

// gapIndex maps a gap reason to its slot in a tenant's gap counters.
func gapIndex(reason string) int {
	for i, r := range gapReasons {
		if r == reason {
			return i
		}
	}
	return len(gapReasons) - 1
}

// LatencyBuckets are the bounds, in seconds, of the histogram of the time
// from acceptance to the line being written to a subscriber's socket: from
// 100µs (a local subscriber keeping up) to 10s (one stuck behind a slow
// network), about three per decade.
var LatencyBuckets = []float64{
	0.0001, 0.00025, 0.0005,
	0.001, 0.0025, 0.005,
	0.01, 0.025, 0.05,
	0.1, 0.25, 0.5,
	1, 2.5, 5, 10,
}

// Options tunes the tenant label.
type Options struct {
	// TopTenants is how many tenants, chosen by volume, get their own tenant
	// label value. Zero means DefaultTopTenants; negative means none.
	TopTenants int
	// Tenants always get their own label value, in addition to the top ones.
	Tenants []string
}

// Metrics is one relay's metrics. Its methods are safe for concurrent use.
type Metrics struct {
	reg       *prometheus.Registry
	latency   prometheus.Histogram
	requests  *prometheus.CounterVec
	publish   map[string]prometheus.Counter // by reason; fixed after New
	subscribe map[string]prometheus.Counter // by reason; fixed after New
	top       int                           // how many tenants get a label by volume
	optIn     map[string]bool               // tenants that always get a label; fixed after New
	tc        *tenantCollector
	slots     atomic.Int64 // tenants labeled by volume, up to top; see takeSlot

	// mu guards tenants and retired: taken when a tenant is created or
	// dropped, and by a scrape to copy the tenant list; never per event.
	mu      sync.Mutex
	tenants map[string]*Tenant
	retired counts // what dropped tenants had counted, folded into _other
}

// New returns the metrics of one relay, with a registry of its own holding
// the relay's metrics and the Go runtime and process collectors.
func New(opt Options) *Metrics {
	m := &Metrics{
		reg:       prometheus.NewRegistry(),
		publish:   make(map[string]prometheus.Counter, len(refuseReasons)),
		subscribe: make(map[string]prometheus.Counter, len(refuseReasons)),
		top:       opt.TopTenants,
		optIn:     make(map[string]bool, len(opt.Tenants)),
		tenants:   make(map[string]*Tenant),
	}
	if m.top == 0 {
		m.top = DefaultTopTenants
	} else if m.top < 0 {
		m.top = 0
	}
	for _, t := range opt.Tenants {
		m.optIn[t] = true
	}
	m.latency = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "tl_relay_delivery_latency_seconds",
		Help: "Time from an event's acceptance to its line being written to a subscriber's socket, " +
			"observed once per message written, for the oldest line in it.",
		Buckets: LatencyBuckets,
	})
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tl_relay_http_requests_total",
		Help: "HTTP requests served, by route pattern and status code, counted when they end.",
	}, []string{"route", "code"})
	pub := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tl_relay_publish_refused_total",
		Help: "Publish requests refused, by reason; a refused batch is refused whole and counts once.",
	}, []string{"reason"})
	sub := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tl_relay_subscribe_refused_total",
		Help: "Subscriptions refused, by reason.",
	}, []string{"reason"})
	for _, r := range refuseReasons {
		// Created up front so that every reason shows as 0 before it first
		// happens: rate() and absent() alerts then work from the start.
		m.publish[r] = pub.WithLabelValues(r)
		m.subscribe[r] = sub.WithLabelValues(r)
	}
	m.tc = newTenantCollector(m)
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.latency, m.requests, pub, sub, m.tc,
	)
	return m
}

// Registry returns the relay's own registry, to register more collectors or
// to gather in tests.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the registry in the Prometheus exposition formats.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		Registry:      m.reg, // count its own errors (promhttp_metric_handler_errors_total)
		ErrorHandling: promhttp.ContinueOnError,
	})
}

// PublishRefused counts a refused publish request. An unknown reason counts
// as ReasonOther.
func (m *Metrics) PublishRefused(reason string) { refuse(m.publish, reason) }

// SubscribeRefused counts a refused subscription. An unknown reason counts
// as ReasonOther.
func (m *Metrics) SubscribeRefused(reason string) { refuse(m.subscribe, reason) }

func refuse(by map[string]prometheus.Counter, reason string) {
	c, ok := by[reason]
	if !ok {
		c = by[ReasonOther]
	}
	c.Inc()
}

// ObserveLatency records the time from acceptance to write of one line (or
// of a message's oldest line); Sub.Wrote calls it for the relay's writers.
func (m *Metrics) ObserveLatency(d time.Duration) { m.latency.Observe(d.Seconds()) }

// Tenant returns the counters of the named tenant, creating them on first
// use. The relay calls it once when it creates a tenant's hub and keeps the
// pointer; Drop ends it.
func (m *Metrics) Tenant(name string) *Tenant {
	m.mu.Lock()
	defer m.mu.Unlock()
	if t, ok := m.tenants[name]; ok {
		return t
	}
	t := &Tenant{m: m, name: name, optIn: m.optIn[name], subs: make(map[*Sub]struct{})}
	// While there are free slots a tenant is labeled from birth, so a relay
	// with few tenants shows each of them with its full counts. (Set before
	// the collector can see t: it reads the tenant list under m.mu.)
	t.labeled = t.optIn || m.takeSlot()
	m.tenants[name] = t
	return t
}

// takeSlot claims one of the top slots if one is free. Tenant creation and
// the collector both claim slots; only the collector frees them.
func (m *Metrics) takeSlot() bool {
	for {
		n := m.slots.Load()
		if n >= int64(m.top) {
			return false
		}
		if m.slots.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// snapshotTenants returns the live tenants and what dropped ones counted.
func (m *Metrics) snapshotTenants() ([]*Tenant, counts) {
	m.mu.Lock()
	defer m.mu.Unlock()
	ts := make([]*Tenant, 0, len(m.tenants))
	for _, t := range m.tenants {
		ts = append(ts, t)
	}
	return ts, m.retired
}
