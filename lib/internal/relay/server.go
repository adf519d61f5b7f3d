// Package relay is the relay of tl-relay (lib/relaycmd is the command):
// the HTTP and WebSocket server of tl-protocol(7).
// Each tenant owns an append-only log (lib/internal/tlog); a POST validates its
// events once, encodes them once and appends them; each subscriber is a
// cursor into the log. The tenant's hub (hub.go), one goroutine, writes to
// all its WebSocket subscribers without blocking, packing as many lines per
// message as are waiting and building one message for all those at the
// same place; the relay's poller (poller_linux.go) reads their sockets. An
// idle subscriber holds no goroutine. Streams a hub cannot serve (TLS,
// chunked NDJSON, systems without epoll) get a writer goroutine of their own
// (writer.go). Ingestion never waits for a subscriber.
package relay

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/tl-sh/tl/lib/event"
	"github.com/tl-sh/tl/lib/internal/limit"
	"github.com/tl-sh/tl/lib/internal/metrics"
	"github.com/tl-sh/tl/lib/internal/snippet"
)

// Server is a relay. Create it with New, serve with Serve, stop it with
// Shutdown.
type Server struct {
	cfg      Config
	log      *slog.Logger
	reg      *registry
	upgrader websocket.Upgrader
	ticks    *broadcast // the shared ping ticker
	turns    turns      // bounds the writer goroutines at work at once
	poller   *poller    // reads the hubs' sockets; nil where there is no epoll
	pace     pacer      // makes the fan-out give way to the POSTs (pace.go)
	hubs     sync.WaitGroup
	http     *http.Server
	metrics  *metrics.Metrics
	// metricsHandler serves /metrics (built once: promhttp's handler is
	// meant to be reused).
	metricsHandler http.Handler
	// inflight is the memory budget of request bodies being read
	// (inflight.go).
	inflight *limit.Budget

	mu         sync.Mutex // guards the fields below
	draining   bool
	posts      int                      // POSTs in flight
	postsIdle  chan struct{}            // closed once draining with no POST in flight
	streams    map[*subscriber]struct{} // live subscribers, to force-close them
	subsWG     sync.WaitGroup           // subscribers; Add only under mu while not draining
	stop       chan struct{}            // closed when subscribers must drain and close
	quit       chan struct{}            // closed when the background goroutines must end
	bg         sync.WaitGroup           // the pinger and the janitor
	shutdownMu sync.Mutex               // serialises Shutdown
}

// New returns a relay with cfg (zero fields take their defaults) and starts
// its background goroutines (the ping ticker and the idle-tenant janitor);
// Shutdown ends them.
func New(cfg Config) *Server {
	cfg.setDefaults()
	s := &Server{
		cfg:       cfg,
		log:       cfg.Logger,
		metrics:   cfg.Metrics,
		postsIdle: make(chan struct{}),
		streams:   map[*subscriber]struct{}{},
		stop:      make(chan struct{}),
		quit:      make(chan struct{}),
	}
	s.reg = newRegistry(&s.cfg)
	s.metrics.Memory(cfg.Budget.Limit(), cfg.Budget.Used, cfg.Budget.Evicted)
	s.inflight = limit.NewBudget(cfg.MaxInflightBytes, cfg.MaxTenantInflightBytes)
	s.metricsHandler = s.metrics.Handler()
	s.upgrader = websocket.Upgrader{
		ReadBufferSize:  wsReadBuffer,
		WriteBufferSize: wsWriteBuffer,
		WriteBufferPool: &sync.Pool{},
		CheckOrigin:     cfg.CheckOrigin,
		Error: func(w http.ResponseWriter, r *http.Request, status int, reason error) {
			writeError(w, &HTTPError{Status: status, Msg: reason.Error()})
		},
	}
	s.ticks = newBroadcast()
	s.turns = newTurns()
	if !cfg.noHubs {
		p, err := newPoller()
		if err != nil {
			s.log.Debug("no poller: each WebSocket subscriber gets goroutines of its own", "err", err)
		} else {
			s.poller = p
		}
	}
	s.http = &http.Server{
		Handler:           withReasonNote(s.metrics.Instrument(s, routeOf, s.ended)),
		MaxHeaderBytes:    maxHeaderBytes,
		ReadHeaderTimeout: cfg.HeaderTimeout,
		IdleTimeout:       cfg.IdleTimeout,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	s.bg.Add(2)
	go s.pinger()
	go s.janitor()
	return s
}

// Serve accepts connections on l until Shutdown. It returns nil after a
// Shutdown, like http.Server.Serve returns ErrServerClosed.
func (s *Server) Serve(l net.Listener) error {
	err := s.http.Serve(l)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Shutdown drains the relay: /readyz turns 503 and new requests are refused,
// the listeners close, in-flight POSTs finish, then every subscriber gets
// everything accepted and a 1001 close. When ctx ends first, whatever is
// left is closed at once. Every goroutine the relay started has ended when
// Shutdown returns. It returns ctx's error if the drain was cut short.
func (s *Server) Shutdown(ctx context.Context) error {
	s.shutdownMu.Lock()
	defer s.shutdownMu.Unlock()
	s.mu.Lock()
	if s.draining {
		s.mu.Unlock()
		return nil
	}
	s.draining = true
	if s.posts == 0 {
		close(s.postsIdle)
	}
	s.mu.Unlock()
	start := time.Now()
	_, subs := s.reg.counts()
	s.log.Info("draining", "subscribers", subs)

	httpDone := make(chan error, 1)
	go func() { httpDone <- s.http.Shutdown(ctx) }()

	var cut error
	select {
	case <-s.postsIdle:
	case <-ctx.Done():
		cut = ctx.Err()
	}
	close(s.stop)
	subsDone := make(chan struct{})
	go func() { s.subsWG.Wait(); close(subsDone) }()
	select {
	case <-subsDone:
	case <-ctx.Done():
		cut = ctx.Err()
	}
	if err := <-httpDone; err != nil && cut == nil {
		cut = err
	}
	if cut != nil {
		// Out of time: close what is left.
		s.http.Close()
		s.mu.Lock()
		for sub := range s.streams {
			sub.forceClose()
		}
		s.mu.Unlock()
		<-subsDone
	}
	s.hubs.Wait() // each ends with its last subscriber
	s.pace.close()
	if s.poller != nil {
		s.poller.close()
	}
	close(s.quit)
	s.bg.Wait()
	s.reg.closeAll()
	if cut != nil {
		s.log.Warn("drain cut short", "err", cut, "took", time.Since(start).Round(time.Millisecond))
	} else {
		s.log.Info("drained", "took", time.Since(start).Round(time.Millisecond))
	}
	return cut
}

// ServeHTTP routes a request (tl-protocol(7)).
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/healthz":
		s.health(w, r, "")
		return
	case routeMetrics:
		s.serveMetrics(w, r)
		return
	case routeTenants:
		s.listTenants(w, r)
		return
	case snippet.Path: // the browser snippet, for web pages (tl.js)
		snippet.Serve(w, r)
		return
	case "/readyz":
		s.mu.Lock()
		draining := s.draining
		s.mu.Unlock()
		switch {
		case draining:
			s.health(w, r, "draining")
		case s.cfg.Ready != nil && !s.cfg.Ready():
			s.health(w, r, "broker unreachable")
		case s.cfg.Trouble != nil && s.cfg.Trouble() != "":
			s.health(w, r, s.cfg.Trouble())
		default:
			s.health(w, r, "")
		}
		return
	}
	rest, ok := strings.CutPrefix(r.URL.Path, "/v1/tenants/")
	i := strings.LastIndexByte(rest, '/')
	if !ok || i < 0 {
		writeError(w, httpErrorf(http.StatusNotFound, "no such endpoint %s", r.URL.Path))
		return
	}
	name, action := rest[:i], rest[i+1:]
	var scope Scope
	var allow string
	switch action {
	case "events":
		scope, allow = ScopePublish, http.MethodPost
		if s.cors(w, r, name) { // preflights and pages' Origins (cors.go)
			return
		}
	case "stream":
		scope, allow = ScopeSubscribe, http.MethodGet
	default:
		writeError(w, httpErrorf(http.StatusNotFound, "no such endpoint %s", r.URL.Path))
		return
	}
	if r.Method != allow {
		e := httpErrorf(http.StatusMethodNotAllowed, "method %s not allowed, use %s", r.Method, allow)
		e.Header = http.Header{"Allow": {allow}}
		writeError(w, e)
		return
	}
	if err := event.CheckTenant(name); err != nil {
		writeError(w, httpErrorf(http.StatusBadRequest, "%v", err))
		return
	}
	if s.cfg.Authorize != nil {
		if err := s.cfg.Authorize(r, name, scope); err != nil {
			var he *HTTPError
			if !errors.As(err, &he) {
				he = httpErrorf(http.StatusForbidden, "%v", err)
			}
			writeError(w, he)
			return
		}
	}
	if scope == ScopePublish {
		s.publish(w, r, name)
	} else {
		s.subscribe(w, r, name)
	}
}

// health answers a health check: 200 "ok", or 503 with why.
func (s *Server) health(w http.ResponseWriter, r *http.Request, why string) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		e := httpErrorf(http.StatusMethodNotAllowed, "method %s not allowed, use GET", r.Method)
		e.Header = http.Header{"Allow": {"GET, HEAD"}}
		writeError(w, e)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if why != "" {
		w.Header().Set("Retry-After", retryAfter)
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Write([]byte(why + "\n"))
		return
	}
	w.Write([]byte("ok\n"))
}

// Stats are the relay's current counts.
type Stats struct {
	Tenants     int
	Subscribers int
}

// Stats returns the relay's current counts.
func (s *Server) Stats() Stats {
	t, n := s.reg.counts()
	return Stats{Tenants: t, Subscribers: n}
}

// beginPost counts a POST in, unless the relay is draining.
func (s *Server) beginPost() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.draining {
		return false
	}
	s.posts++
	return true
}

func (s *Server) endPost() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.posts--
	if s.posts == 0 && s.draining {
		close(s.postsIdle)
	}
}

// beginStream registers a subscriber, unless the relay is draining.
func (s *Server) beginStream(sub *subscriber) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.draining {
		return false
	}
	s.subsWG.Add(1)
	s.streams[sub] = struct{}{}
	return true
}

func (s *Server) endStream(sub *subscriber) {
	s.mu.Lock()
	delete(s.streams, sub)
	s.mu.Unlock()
	s.subsWG.Done()
}

// Reauthorize asks Config.Authorize again about every live subscriber
// (after the tokens changed: SIGHUP) and closes those now refused, a
// WebSocket with 1008. Authorize then sees a request holding only the
// method, path, Host and the Authorization and Origin headers. The others never notice. It returns how many it
// closed.
func (s *Server) Reauthorize() int {
	if s.cfg.Authorize == nil {
		return 0
	}
	s.mu.Lock()
	subs := make([]*subscriber, 0, len(s.streams))
	for sub := range s.streams {
		subs = append(subs, sub)
	}
	s.mu.Unlock()
	n := 0
	for _, sub := range subs {
		if err := s.cfg.Authorize(sub.authReq, sub.t.name, ScopeSubscribe); err != nil {
			sub.revoke()
			n++
		}
	}
	return n
}

// janitor drops idle tenants now and then until Shutdown.
func (s *Server) janitor() {
	defer s.bg.Done()
	every := min(s.cfg.TenantIdle/2, time.Minute)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-s.quit:
			return
		case now := <-t.C:
			if n := s.reg.dropIdle(now.Add(-s.cfg.TenantIdle)); n > 0 {
				s.log.Debug("dropped idle tenants", "count", n)
			}
		}
	}
}

// errorBody is the JSON body of every error answer.
type errorBody struct {
	Error string `json:"error"`
	Line  int    `json:"line,omitempty"`
}

// writeError answers with e as JSON.
func writeError(w http.ResponseWriter, e *HTTPError) {
	writeErrorLine(w, e, 0)
}

// writeErrorLine answers with e as JSON, naming an NDJSON line when line > 0.
func writeErrorLine(w http.ResponseWriter, e *HTTPError, line int) {
	h := w.Header()
	for k, v := range e.Header {
		h[k] = v
	}
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false) // keep "<" and ">" readable in messages
	enc.Encode(errorBody{Error: e.Msg, Line: line})
	h.Set("Content-Length", strconv.Itoa(b.Len()))
	w.WriteHeader(e.Status)
	w.Write(b.Bytes())
}
