package relay

import (
	"net/http"
	"sync"
	"time"

	"github.com/tl-sh/tl/lib/metrics"
	"github.com/tl-sh/tl/lib/tlog"
)

// tenant is one tenant's hub: its log, its recent Idempotency-Keys, and the
// counts that keep it alive.
type tenant struct {
	name string
	log  tlog.Log
	keys tlog.Keys
	m    *metrics.Tenant // its counters; dropped with it

	// Guarded by registry.mu:
	users    int       // requests and subscribers holding the tenant
	subs     int       // subscribers among them
	lastUsed time.Time // when users last dropped to 0
}

// registry maps tenant names to tenants, opening them on first use and
// dropping the idle ones.
type registry struct {
	cfg *Config

	mu      sync.Mutex // guards tenants, subs and the tenants' counts
	tenants map[string]*tenant
	subs    int // subscribers over all tenants
}

func newRegistry(cfg *Config) *registry {
	return &registry{cfg: cfg, tenants: map[string]*tenant{}}
}

// acquire returns the tenant named name, opening it if needed, and holds it
// until release. A subscriber (sub) counts against the subscriber limits;
// over them acquire fails with a 503.
func (g *registry) acquire(name string, sub bool) (*tenant, error) {
	t, created, err := g.acquireLocked(name, sub)
	if created {
		g.cfg.Logger.Info("tenant created", "tenant", name) // after the lock: a log line is I/O
	}
	return t, err
}

func (g *registry) acquireLocked(name string, sub bool) (t *tenant, created bool, err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	t = g.tenants[name]
	if sub {
		if g.subs >= g.cfg.MaxSubscribers {
			return nil, false, unavailable("the relay has its maximum of %d subscribers", g.cfg.MaxSubscribers)
		}
		if t != nil && t.subs >= g.cfg.MaxTenantSubscribers {
			return nil, false, unavailable("tenant %s has its maximum of %d subscribers", name, g.cfg.MaxTenantSubscribers)
		}
	}
	if t == nil {
		// Opening a memory log is instant; a backing that does I/O here
		// should open outside the lock (with a per-name once).
		log, err := g.cfg.OpenLog(name)
		if err != nil {
			return nil, false, unavailable("opening the log of tenant %s: %v", name, err)
		}
		t = &tenant{name: name, log: log, keys: g.cfg.OpenKeys(name), m: g.cfg.Metrics.Tenant(name)}
		g.tenants[name] = t
		created = true
	}
	t.users++
	if sub {
		t.subs++
		g.subs++
	}
	return t, created, nil
}

// release undoes acquire.
func (g *registry) release(t *tenant, sub bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	t.users--
	if sub {
		t.subs--
		g.subs--
	}
	if t.users == 0 {
		t.lastUsed = time.Now()
	}
}

// dropIdle closes and forgets the tenants unused since before cutoff, and
// returns how many it dropped.
func (g *registry) dropIdle(cutoff time.Time) int {
	var idle []*tenant
	g.mu.Lock()
	for name, t := range g.tenants {
		if t.users == 0 && t.lastUsed.Before(cutoff) {
			idle = append(idle, t)
			delete(g.tenants, name)
			t.m.Drop() // under the lock: a new tenant of that name gets new counters
		}
	}
	g.mu.Unlock()
	for _, t := range idle {
		t.log.Close()
		g.cfg.Logger.Info("tenant dropped", "tenant", t.name, "idle", time.Since(t.lastUsed).Round(time.Second))
	}
	return len(idle)
}

// closeAll closes every tenant's log (at shutdown; not logged tenant by
// tenant).
func (g *registry) closeAll() {
	g.mu.Lock()
	rest := g.tenants
	g.tenants = map[string]*tenant{}
	for _, t := range rest {
		t.m.Drop()
	}
	g.mu.Unlock()
	for _, t := range rest {
		t.log.Close()
	}
}

// counts returns the number of tenants and subscribers.
func (g *registry) counts() (tenants, subs int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.tenants), g.subs
}

func unavailable(format string, a ...any) *HTTPError {
	e := httpErrorf(http.StatusServiceUnavailable, format, a...)
	e.Header = http.Header{"Retry-After": {retryAfter}}
	return e
}
