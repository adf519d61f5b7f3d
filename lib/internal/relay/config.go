package relay

import (
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/tl-sh/tl/lib/internal/limit"
	"github.com/tl-sh/tl/lib/internal/metrics"
	"github.com/tl-sh/tl/lib/internal/tlog"
)

// Defaults of the relay's settings (the flags of tl-relay).
const (
	DefaultListen               = "127.0.0.1:8787"
	DefaultMaxBody              = 8 << 20 // tl-protocol(7): request body limit
	DefaultMaxSubscribers       = 50_000  // whole relay; the fd limit usually bites first
	DefaultMaxTenantSubscribers = 5_000   // per tenant, as in the original design
	// DefaultMaxTenants bounds the tenants held at once. Each holds up to
	// its history bounds, so this is what keeps a relay's memory bounded
	// when anyone may name new tenants; 100,000 is the relay size the
	// metrics' scrape cost was measured at (README, Metrics).
	DefaultMaxTenants   = 100_000
	DefaultPingInterval = 30 * time.Second
	// DefaultBodyTimeout bounds the reading of a POST body, so a client
	// sending it a byte at a time cannot hold a request open for ever.
	DefaultBodyTimeout = time.Minute
	// DefaultHeaderTimeout bounds the reading of request headers (and the
	// TLS handshake): slowloris.
	DefaultHeaderTimeout = 10 * time.Second
	// DefaultIdleTimeout closes a keep-alive connection with no request.
	DefaultIdleTimeout  = 2 * time.Minute
	DefaultDrainTimeout = 10 * time.Second
	// DefaultTenantIdle is how long a tenant with no subscriber and no
	// request stays in memory. It is longer than the 10 minutes that
	// Idempotency-Keys are kept, which live and die with their tenant.
	DefaultTenantIdle = 15 * time.Minute
)

// Tuning constants.
const (
	maxHeaderBytes = 32 << 10 // request headers; net/http answers 431 beyond
	// maxMessageLines and maxMessageBytes cap one WebSocket message (or one
	// chunked write): under load a writer packs up to this much.
	maxMessageLines = 256
	maxMessageBytes = 64 << 10
	// wsReadLimit bounds a client message: clients only send control frames.
	wsReadLimit = 512
	// wsReadBuffer and wsWriteBuffer are the per-connection buffers. Reads are
	// tiny; writes go through pooled buffers (held only while a message is
	// written) and the rest of a large message is written straight from our
	// bytes by gorilla's single-frame fast path.
	wsReadBuffer  = 256
	wsWriteBuffer = 4096
	// closeGrace is how long a closing writer waits for the client to answer
	// its close frame before closing the socket.
	closeGrace = time.Second
	// retryAfter is the Retry-After (seconds) sent with a 503.
	retryAfter = "1"
	// limitRetryAfter is the Retry-After (seconds) for a subscriber over a
	// subscriber limit: a slot frees only when someone leaves, so asking
	// again within a second would mostly be refused again.
	limitRetryAfter = "5"
)

// Scope is what a request wants to do, for the Authorize hook.
type Scope string

// The scopes of tl-protocol(7).
const (
	ScopePublish   Scope = "publish"
	ScopeSubscribe Scope = "subscribe"
	ScopeAdmin     Scope = "admin"
)

// HTTPError is an error with the HTTP status to answer it with. Hooks return
// it (for example 401 or 403 from Authorize).
type HTTPError struct {
	Status int
	Msg    string
	Header http.Header // extra response headers, may be nil
	Reason string      // the metrics' refusal reason when finer than Status's, else ""
	// Everywhere marks a refusal that holds for every tenant (an ingest
	// key asking to read): the tenant list refuses at once, not tenant
	// by tenant.
	Everywhere bool
}

func (e *HTTPError) Error() string { return e.Msg }

func httpErrorf(status int, format string, a ...any) *HTTPError {
	return &HTTPError{Status: status, Msg: fmt.Sprintf(format, a...)}
}

// Config is the relay's configuration. The zero value of a field selects its
// default (see New). The function fields are the points where other
// backings and checks slot in.
type Config struct {
	HistoryEvents        int   // lines kept per tenant
	HistoryBytes         int   // bytes of lines kept per tenant
	MaxBody              int64 // bytes of a POST body
	MaxSubscribers       int
	MaxTenantSubscribers int
	MaxTenants           int // tenants held at once; negative: no limit
	PingInterval         time.Duration
	BodyTimeout          time.Duration // to read a POST body; then 408
	HeaderTimeout        time.Duration // to read request headers
	IdleTimeout          time.Duration // a keep-alive connection without a request
	TenantIdle           time.Duration
	// Budget bounds the bytes of history and Idempotency-Keys held in
	// memory, over all tenants (default: DefaultMemoryBudget). OpenLog
	// charges it.
	Budget *tlog.Budget
	// MaxInflightBytes bounds the memory of request bodies being read
	// and validated, relay-wide, and MaxTenantInflightBytes one tenant's
	// share of it (default: see defaultTenantInflight); over them a POST
	// gets 503 before its body is buffered (inflight.go).
	MaxInflightBytes       int64
	MaxTenantInflightBytes int64

	// OpenLog opens a tenant's log (default: a tlog.Memory).
	OpenLog func(tenant string) (tlog.Log, error)
	// ListTenants, when set, names the tenants whose history the backing
	// keeps besides those the relay holds open (a data directory), for
	// GET /v1/tenants.
	ListTenants func() []string
	// Ready, when set, reports whether the log's backing can serve (a
	// broker that is reachable): /readyz is 503 while it reports false.
	Ready func() bool
	// Trouble, when set, names what the backing can no longer do (tenants
	// of a data directory stopped by a failed write or fsync): /readyz is
	// 503 with it while it is not empty.
	Trouble func() string
	// Authorize, when set, is called for every tenant request before any
	// work; an error refuses it (an *HTTPError carries its status, anything
	// else is a 403).
	Authorize func(r *http.Request, tenant string, scope Scope) error
	// PublishRate, when set, limits each tenant's accepted events per
	// second (lib/internal/limit's token bucket); over it a POST gets 429.
	PublishRate *limit.Rate
	// PublishOrigin, when set, says whether web pages from origin may
	// publish to tenant (cors.go): their preflights are answered and the
	// answers to their POSTs carry CORS headers; a POST or preflight from
	// another Origin gets 403. Unset, no preflight is allowed.
	PublishOrigin func(tenant, origin string) bool
	// LimitPublish, when set, is asked about each POST once its events
	// are counted, before they are appended; an error refuses the batch
	// (an *HTTPError carries its status, as a 429 of the ingest keys'
	// limit per client address).
	LimitPublish func(r *http.Request, tenant string, events int) error
	// CheckOrigin checks a WebSocket upgrade's Origin (default: gorilla's
	// same-origin check, which allows requests without Origin).
	CheckOrigin func(r *http.Request) bool

	Logger *slog.Logger // default: discard
	// Metrics are the relay's metrics (default: metrics.New with its
	// defaults, a registry of the relay's own).
	Metrics *metrics.Metrics

	// now is the clock of the heartbeat rule (default time.Now): tests
	// set it, and fire the ping ticks themselves, to check the rule
	// without depending on how the machine schedules them. Socket
	// deadlines always use the real clock.
	now func() time.Time
	// noHubs serves every WebSocket subscriber with goroutines of its own
	// (as where there is no epoll), for the tests of that path.
	noHubs bool
}

func (c *Config) setDefaults() {
	if c.HistoryEvents <= 0 {
		c.HistoryEvents = tlog.DefaultMaxEvents
	}
	if c.HistoryBytes <= 0 {
		c.HistoryBytes = tlog.DefaultMaxBytes
	}
	if c.MaxBody <= 0 {
		c.MaxBody = DefaultMaxBody
	}
	if c.MaxSubscribers <= 0 {
		c.MaxSubscribers = DefaultMaxSubscribers
	}
	if c.MaxTenantSubscribers <= 0 {
		c.MaxTenantSubscribers = DefaultMaxTenantSubscribers
	}
	if c.MaxTenants == 0 {
		c.MaxTenants = DefaultMaxTenants
	}
	if c.PingInterval <= 0 {
		c.PingInterval = DefaultPingInterval
	}
	if c.BodyTimeout <= 0 {
		c.BodyTimeout = DefaultBodyTimeout
	}
	if c.HeaderTimeout <= 0 {
		c.HeaderTimeout = DefaultHeaderTimeout
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = DefaultIdleTimeout
	}
	if c.TenantIdle <= 0 {
		c.TenantIdle = DefaultTenantIdle
	}
	if c.Budget == nil {
		limit, _ := DefaultMemoryBudget()
		c.Budget = tlog.NewBudget(max(limit, minMemoryBudget(c.MaxBody)))
	}
	if c.MaxInflightBytes <= 0 {
		c.MaxInflightBytes = DefaultMaxInflightBytes
	}
	if c.MaxTenantInflightBytes <= 0 {
		c.MaxTenantInflightBytes = defaultTenantInflight(c.MaxInflightBytes, c.MaxBody)
	}
	if c.OpenLog == nil {
		events, bytes, budget := c.HistoryEvents, c.HistoryBytes, c.Budget
		c.OpenLog = func(string) (tlog.Log, error) { return tlog.NewMemoryIn(budget, events, bytes), nil }
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Metrics == nil {
		c.Metrics = metrics.New(metrics.Options{})
	}
	if c.now == nil {
		c.now = time.Now
	}
}
