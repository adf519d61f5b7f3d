// Package redislog keeps tenant logs in Redis, so that several relays share
// them: one seq order and one epoch per tenant, assigned atomically by a Lua
// script, history in a bounded stream per tenant, idempotency keys shared.
//
// Per tenant T (under a configurable prefix, "tl:" by default):
//
//	tl:{T}:m       hash: epoch, seq (last assigned), bytes (appended this epoch),
//	               runs (the Redis processes that served it, each with the seq
//	               it found), olds (the epochs this one replaced)
//	tl:{T}:s       stream of encoded lines; entry ID "N-0" is seq N, field "d" the line
//	tl:{T}:i:KEY   an Idempotency-Key's first answer, expiring after IdemTTL
//	tl:{T}:c       Pub/Sub channel: each appended batch, "EPOCH FIRST\n" + lines
//	tl:incarnation one random value, from which first epochs are derived
//
// Stream IDs are seqs, so reading "from seq N" is XRANGE from N-0. The
// epoch is born with the meta hash, which only an append creates (reading
// a tenant creates nothing); whenever the hash is missing (first use, or
// Redis lost its data) an append creates it with a new epoch and seq 0 and
// drops any stale stream. Redis going back in time (an older snapshot, a
// stale replica) is caught by what each relay remembers (marks.go,
// stateLua) and starts a new epoch before any seq is given again.
//
// A Store appends and reads; a Follower (follower.go) receives the batches
// of the tenants a relay's subscribers want over one Pub/Sub connection,
// and reads the stream to catch up (after subscribing, after a reconnect,
// or on a hole in the seqs), so Pub/Sub's at-most-once delivery costs
// nothing: the stream is the truth, the channel only the fast path.
package redislog

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tl-sh/tl/lib/event"
	"github.com/tl-sh/tl/lib/internal/tlog"
)

// Tuning constants.
const (
	// dialTimeout bounds a connection attempt: an unreachable broker must
	// turn into a 503 quickly, not hang a publisher.
	dialTimeout = 2 * time.Second
	// ioTimeout bounds a single non-blocking command.
	ioTimeout = 3 * time.Second
	// healthPeriod is how often the health loop pings Redis; readiness
	// follows within about this long.
	healthPeriod = 500 * time.Millisecond
	// downLogPeriod is how often a broker that stays unreachable is
	// reported again in the log (the first failure is logged at once).
	downLogPeriod = time.Minute
	// DefaultIdemTTL is how long an Idempotency-Key is remembered (the
	// protocol promises at least 10 minutes).
	DefaultIdemTTL = 10 * time.Minute
)

// ErrUnavailable marks errors caused by an unreachable or failing broker:
// the relay answers 503 with Retry-After.
var ErrUnavailable = errors.New("broker unavailable")

// ErrRefused marks Redis refusing this client for good: a wrong or missing
// password, or a database number the server does not have. Retrying cannot
// help, so Open fails with it instead of waiting for Redis forever.
var ErrRefused = errors.New("redis refused the connection (check the password and the database number in the URL)")

// Options configure a Store.
type Options struct {
	// URL is a redis:// or rediss:// URL as go-redis ParseURL reads it
	// (user, password, database, TLS, query options).
	URL string
	// MaxEvents bounds each tenant's stream (approximately, MAXLEN ~).
	MaxEvents int
	// MaxBytes, when positive, also bounds it by bytes: the event bound is
	// lowered to MaxBytes divided by the epoch's mean line size.
	MaxBytes int64
	// IdemTTL is how long Idempotency-Keys are kept (DefaultIdemTTL if 0).
	IdemTTL time.Duration
	// Prefix is put before every key ("tl:" if empty).
	Prefix string
	// Logger, if set, receives go-redis's own messages (it has one
	// process-wide logger, which Open replaces).
	Logger *slog.Logger
	// Budget, when set, bounds the broker's local caches together with
	// the relay's other holders of memory (NewBroker).
	Budget *tlog.Budget
}

// slogAdapter gives go-redis's logger interface to a slog.Logger.
type slogAdapter struct{ l *slog.Logger }

func (a slogAdapter) Printf(ctx context.Context, format string, v ...any) {
	// Debug: go-redis reports every failed dial, twice a second while
	// Redis is away; the store logs the outage and its reason itself,
	// once per downLogPeriod (noteHealth).
	a.l.Debug(fmt.Sprintf(format, v...))
}

// Store is a handle on the shared tenant logs. It is safe for concurrent
// use; Close releases its connections and stops its health loop.
type Store struct {
	rdb    *redis.Client
	opts   Options
	prefix string

	ready atomic.Bool // the last health check (or command) reached Redis

	logMu    sync.Mutex // guards logDown and loggedAt
	logDown  bool       // "unreachable" logged and "reachable" not since
	loggedAt time.Time  // when "unreachable" was last logged

	marksMu sync.Mutex       // guards marks
	marks   map[string]*mark // what this relay saw of each tenant (marks.go)

	stop      chan struct{} // closed by Close
	done      chan struct{} // closed when the health loop ends
	closeOnce sync.Once
}

// Open parses the URL and starts the health loop. It does not wait for
// Redis: a relay starts even while its broker is down, and reports
// itself not ready until Redis answers.
func Open(opts Options) (*Store, error) {
	ro, err := redis.ParseURL(opts.URL)
	if err != nil {
		return nil, urlError(err)
	}
	// Never retry behind our back: a retried append whose first attempt
	// reached Redis would publish twice. Callers retry (with
	// Idempotency-Keys); followers resume from their last seq.
	ro.MaxRetries = -1
	if ro.DialTimeout == 0 || ro.DialTimeout > dialTimeout {
		ro.DialTimeout = dialTimeout
	}
	if ro.ReadTimeout == 0 {
		ro.ReadTimeout = ioTimeout
	}
	if ro.WriteTimeout == 0 {
		ro.WriteTimeout = ioTimeout
	}
	// One dial attempt per command: an unreachable broker must fail fast
	// (the follower and the health loop do the retrying).
	ro.DialerRetries = 1
	ro.DisableIdentity = true
	if opts.Logger != nil {
		// go-redis logs through one process-wide logger; route it to the
		// relay's log instead of its own stderr format.
		redis.SetLogger(slogAdapter{opts.Logger})
	}
	if opts.MaxEvents <= 0 {
		opts.MaxEvents = 10000
	}
	if opts.IdemTTL <= 0 {
		opts.IdemTTL = DefaultIdemTTL
	}
	if opts.Prefix == "" {
		opts.Prefix = "tl:"
	}
	s := &Store{
		rdb:    redis.NewClient(ro),
		opts:   opts,
		prefix: opts.Prefix,
		marks:  map[string]*mark{},
		stop:   make(chan struct{}),
		done:   make(chan struct{}),
	}
	// One synchronous check, so that a relay that starts next to a
	// healthy Redis is ready at once. An unreachable Redis is not fatal;
	// one that refuses us (password, database) is.
	err = s.check(context.Background())
	if isRefusal(err) {
		s.rdb.Close()
		return nil, fmt.Errorf("%w: %v", ErrRefused, err)
	}
	s.noteHealth(err)
	go s.health()
	return s, nil
}

// CheckURL reports whether a broker URL parses, with the error Open would
// give, without connecting.
func CheckURL(rawURL string) error {
	if _, err := redis.ParseURL(rawURL); err != nil {
		return urlError(err)
	}
	return nil
}

// urlError describes a URL that does not parse without repeating it: the
// URL may hold a password, and url.Parse's errors quote the whole URL.
func urlError(err error) error {
	const hidden = "(the URL is not shown: it may hold a password)"
	var ue *url.Error
	if !errors.As(err, &ue) {
		return fmt.Errorf("broker url: %w", err) // go-redis's own errors name no password
	}
	var esc url.EscapeError
	if errors.As(ue.Err, &esc) {
		// The escape is a piece of the URL, possibly of the password.
		return fmt.Errorf("broker url: invalid %%-escape %s", hidden)
	}
	var host url.InvalidHostError
	if errors.As(ue.Err, &host) {
		return fmt.Errorf("broker url: invalid character in the host %s", hidden)
	}
	if strings.Contains(ue.Err.Error(), "port") {
		return fmt.Errorf("broker url: invalid port %s", hidden)
	}
	return fmt.Errorf("broker url: cannot parse it %s", hidden)
}

// isRefusal reports whether err is Redis refusing this client for good (see
// ErrRefused), as opposed to a network failure or a passing state
// (LOADING, MASTERDOWN...).
func isRefusal(err error) bool {
	var re redis.Error
	if !errors.As(err, &re) {
		return false
	}
	msg := re.Error()
	for _, p := range []string{
		"NOAUTH",                       // a password is required
		"WRONGPASS",                    // wrong user or password
		"ERR AUTH",                     // a password given to a server without one
		"ERR Client sent AUTH",         // the same, older servers
		"ERR invalid password",         // older servers
		"ERR invalid DB index",         // SELECT of a database that is not a number
		"ERR DB index is out of range", // SELECT past the server's databases
	} {
		if strings.HasPrefix(msg, p) {
			return true
		}
	}
	return false
}

// Close stops the health loop and closes the connections. Safe twice.
func (s *Store) Close() error {
	var err error
	s.closeOnce.Do(func() {
		close(s.stop)
		<-s.done
		err = s.rdb.Close()
	})
	return err
}

// Ready reports whether Redis answered recently.
func (s *Store) Ready() bool { return s.ready.Load() }

// Ping checks Redis now and updates readiness; a change of readiness is
// logged with its reason.
func (s *Store) Ping(ctx context.Context) error {
	err := s.check(ctx)
	s.noteHealth(err)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return nil
}

// check pings Redis and updates readiness.
func (s *Store) check(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, ioTimeout)
	defer cancel()
	err := s.rdb.Ping(ctx).Err()
	if err == nil {
		// The incarnation key from which tenants' first epochs are
		// derived (stateLua): written once, and again after a FLUSHALL,
		// so that readers of a never-written tenant agree with its first
		// append. SET NX writes nothing when the key is there.
		err = s.rdb.SetNX(ctx, s.prefix+"incarnation", event.NewEpoch(), 0).Err()
	}
	s.ready.Store(err == nil)
	return err
}

// noteHealth logs what a health check found when it changes readiness:
// the reason Redis is unreachable at once (a wrong password after a
// Redis restart would otherwise look like an outage with no cause), then
// again every downLogPeriod while it stays so, and its return.
func (s *Store) noteHealth(err error) {
	if s.opts.Logger == nil || errors.Is(err, context.Canceled) {
		return // no log, or Close cut the check short
	}
	now := time.Now()
	s.logMu.Lock()
	var down, up bool
	if err != nil {
		if down = !s.logDown || now.Sub(s.loggedAt) >= downLogPeriod; down {
			s.logDown, s.loggedAt = true, now
		}
	} else {
		up, s.logDown = s.logDown, false
	}
	s.logMu.Unlock()
	switch {
	case down:
		reason := "unreachable"
		if isRefusal(err) {
			reason = "refused" // the password or database number
		}
		s.opts.Logger.Warn("broker "+reason+"; not ready until it answers", "url", Redact(s.opts.URL), "err", err)
	case up:
		s.opts.Logger.Info("broker reachable again; ready", "url", Redact(s.opts.URL))
	}
}

// health pings Redis every healthPeriod until Close.
func (s *Store) health() {
	defer close(s.done)
	t := time.NewTicker(healthPeriod)
	defer t.Stop()
	for {
		ctx, cancel := context.WithCancel(context.Background())
		go func() {
			select {
			case <-s.stop:
			case <-ctx.Done():
			}
			cancel()
		}()
		s.Ping(ctx)
		cancel()
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
	}
}

// unavailable wraps a Redis error as ErrUnavailable when it is one: a
// network failure, timeout, or a server that cannot serve (loading,
// read-only replica, out of memory...). Script errors that signal a bug
// stay plain.
func (s *Store) unavailable(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) {
		return err
	}
	s.ready.Store(false)
	return fmt.Errorf("%w: %w", ErrUnavailable, err)
}

// Key names.
func (s *Store) metaKey(t string) string   { return s.prefix + "{" + t + "}:m" }
func (s *Store) streamKey(t string) string { return s.prefix + "{" + t + "}:s" }
func (s *Store) idemKey(t, k string) string {
	return s.prefix + "{" + t + "}:i:" + k
}
func (s *Store) channel(t string) string { return s.prefix + "{" + t + "}:c" }

// tenantOf returns the tenant of a channel name, or "" if it is not one.
func (s *Store) tenantOf(key string) string {
	const suffix = "}:c"
	if len(key) < len(s.prefix)+len(suffix)+2 || key[:len(s.prefix)] != s.prefix || key[len(s.prefix)] != '{' ||
		key[len(key)-len(suffix):] != suffix {
		return ""
	}
	return key[len(s.prefix)+1 : len(key)-len(suffix)]
}

// parseID returns the seq of a stream ID "N-0".
func parseID(id string) (uint64, error) {
	for i := 0; i < len(id); i++ {
		if id[i] == '-' {
			return strconv.ParseUint(id[:i], 10, 64)
		}
	}
	return strconv.ParseUint(id, 10, 64)
}

// Redact returns the URL with its password hidden, for logs.
func Redact(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "(unparsable url)"
	}
	return u.Redacted()
}
