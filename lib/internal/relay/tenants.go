package relay

import (
	"net/http"
	"sync"
	"time"

	"github.com/tl-sh/tl/lib/internal/metrics"
	"github.com/tl-sh/tl/lib/internal/tlog"
)

// tenant is one tenant's hub: its log (which keeps its recent
// Idempotency-Keys), and the counts that keep it alive.
type tenant struct {
	name string
	log  tlog.Log
	m    *metrics.Tenant // its counters; dropped with it

	hubMu sync.Mutex // guards hub
	hub   *hub       // its WebSocket subscribers' fan-out, while it has some

	// Guarded by registry.mu:
	users    int       // requests and subscribers holding the tenant
	subs     int       // subscribers among them
	lastUsed time.Time // when users last dropped to 0
}

// registry maps tenant names to tenants, opening them on first use and
// dropping the idle ones. Opening and closing a log may do I/O (a data
// directory, Redis), so neither happens under mu: a name being opened or
// closed is marked busy, and acquire waits for it.
type registry struct {
	cfg *Config

	mu      sync.Mutex // guards tenants, busy, opening, subs and the tenants' counts
	tenants map[string]*tenant
	busy    map[string]chan struct{} // names being opened or closed; closed when done
	opening int                      // names in busy being opened: they count against MaxTenants
	subs    int                      // subscribers over all tenants
}

func newRegistry(cfg *Config) *registry {
	return &registry{cfg: cfg, tenants: map[string]*tenant{}, busy: map[string]chan struct{}{}}
}

// acquire returns the tenant named name, opening it if needed, and holds it
// until release. A subscriber (sub) counts against the subscriber limits;
// over them acquire fails with a 503, as it does when opening the tenant
// would pass MaxTenants (tenants already held are not affected; an idle
// one dropped makes room).
func (g *registry) acquire(name string, sub bool) (*tenant, *HTTPError) {
	t, created, err := g.acquireLocked(name, sub)
	if created {
		g.cfg.Logger.Info("tenant created", "tenant", name) // after the lock: a log line is I/O
	}
	return t, err
}

func (g *registry) acquireLocked(name string, sub bool) (t *tenant, created bool, herr *HTTPError) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for {
		t = g.tenants[name]
		if sub {
			if g.subs >= g.cfg.MaxSubscribers {
				return nil, false, overLimit("the relay has its maximum of %d subscribers", g.cfg.MaxSubscribers)
			}
			if t != nil && t.subs >= g.cfg.MaxTenantSubscribers {
				return nil, false, overLimit("tenant %s has its maximum of %d subscribers", name, g.cfg.MaxTenantSubscribers)
			}
		}
		if t != nil {
			t.users++
			if sub {
				t.subs++
				g.subs++
			}
			return t, created, nil
		}
		if done, ok := g.busy[name]; ok {
			g.mu.Unlock()
			<-done
			g.mu.Lock()
			continue
		}
		if max := g.cfg.MaxTenants; max > 0 && len(g.tenants)+g.opening >= max {
			return nil, false, unavailable("the relay holds its maximum of %d tenants: tenant %s cannot be created until idle tenants are dropped (see --max-tenants, --tenant-idle)", max, name)
		}
		done := make(chan struct{})
		g.busy[name] = done
		g.opening++
		g.mu.Unlock()
		log, err := g.cfg.OpenLog(name)
		g.mu.Lock()
		delete(g.busy, name)
		g.opening--
		close(done)
		if err != nil {
			return nil, false, unavailable("opening the log of tenant %s: %v", name, err)
		}
		g.tenants[name] = &tenant{name: name, log: log, m: g.cfg.Metrics.Tenant(name)}
		created = true
		// Loop: the limits are checked again, with the tenant in place.
	}
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
	return g.drop(func(t *tenant) bool { return t.users == 0 && t.lastUsed.Before(cutoff) }, true)
}

// closeAll closes every tenant's log (at shutdown; not logged tenant by
// tenant).
func (g *registry) closeAll() {
	g.drop(func(*tenant) bool { return true }, false)
}

// drop closes and forgets the tenants that pass cond. A name stays busy
// until its log is closed, so reopening it waits (never two logs on one
// data directory).
func (g *registry) drop(cond func(*tenant) bool, logIt bool) int {
	type closing struct {
		t    *tenant
		done chan struct{}
	}
	var gone []closing
	g.mu.Lock()
	for name, t := range g.tenants {
		if cond(t) {
			c := closing{t, make(chan struct{})}
			gone = append(gone, c)
			delete(g.tenants, name)
			g.busy[name] = c.done
			t.m.Drop() // under the lock: a new tenant of that name gets new counters
		}
	}
	g.mu.Unlock()
	for _, c := range gone {
		c.t.log.Close() // gives its memory back to the budget
		g.mu.Lock()
		delete(g.busy, c.t.name)
		g.mu.Unlock()
		close(c.done)
		if logIt {
			g.cfg.Logger.Info("tenant dropped", "tenant", c.t.name, "idle", time.Since(c.t.lastUsed).Round(time.Second))
		}
	}
	return len(gone)
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

// overLimit is the 503 for a subscriber over a subscriber limit, answered
// before any upgrade; its metrics reason is "limit", apart from outages.
func overLimit(format string, a ...any) *HTTPError {
	e := httpErrorf(http.StatusServiceUnavailable, format, a...)
	e.Header = http.Header{"Retry-After": {limitRetryAfter}}
	e.Reason = metrics.ReasonLimit
	return e
}
