package relay

import (
	"fmt"
	"net"
	"net/http"

	"github.com/tl-sh/tl/lib/internal/auth"
	"github.com/tl-sh/tl/lib/internal/limit"
)

// Access is the relay's policy for requests from beyond its own machine:
// bearer tokens and their scopes, the origins of web pages, public ingest
// keys and their limit per client address. The command builds it from its
// flags and files (lib/relaycmd); Install plugs it into a Config, whose
// hooks then run it on every request.
type Access struct {
	// Tokens grants the bearer tokens (nil: no token is asked for). A
	// reload of the store holds from the next request on; then
	// Server.Reauthorize closes the subscribers it no longer allows.
	Tokens *auth.Store
	// Origins are the web pages let in (tl-relay --allow-origin); nil
	// lets in only requests without Origin (the CLI clients).
	Origins *auth.Origins
	// LoopbackOnly makes the Host header name loopback too: the relay has
	// no tokens and listens on loopback only. A web page whose own host
	// name the attacker points at 127.0.0.1 (DNS rebinding) is then
	// same-origin with the relay and sends no Origin on a GET, but its
	// requests carry its own name in Host.
	LoopbackOnly bool
	// IngestRate limits the events ingest keys bring per client address
	// (nil: DefaultIngestRate and DefaultIngestBurst).
	IngestRate *limit.Rate
}

// Install sets cfg's Authorize, CheckOrigin, PublishOrigin and
// LimitPublish to a's checks.
func (a *Access) Install(cfg *Config) {
	if a.IngestRate == nil {
		a.IngestRate = limit.NewRate(DefaultIngestRate, DefaultIngestBurst)
	}
	cfg.Authorize = a.Authorize
	cfg.CheckOrigin = func(r *http.Request) bool { return a.Origins.Allowed(r.Header.Get("Origin")) }
	cfg.PublishOrigin = a.publishOrigin
	cfg.LimitPublish = a.limitIngest
}

var scopes = map[Scope]auth.Scope{ScopePublish: auth.Publish, ScopeSubscribe: auth.Subscribe, ScopeAdmin: auth.Admin}

// Authorize is Config.Authorize: ingest keys, the Origin and Host checks,
// then the token.
func (a *Access) Authorize(r *http.Request, tenant string, scope Scope) error {
	if herr, done := a.authorizeIngest(r, tenant, scope); done {
		if herr == nil {
			return nil
		}
		return herr
	}
	if o := r.Header.Get("Origin"); !a.Origins.Allowed(o) && (scope != ScopePublish || !a.Origins.Publishes(tenant, o)) {
		return &HTTPError{Status: http.StatusForbidden, Msg: fmt.Sprintf("Origin %.100q is not allowed (see --allow-origin)", o)}
	}
	if a.LoopbackOnly {
		host, _, err := net.SplitHostPort(r.Host)
		if err != nil {
			host = r.Host
		}
		if !auth.IsLoopback(host) {
			return &HTTPError{Status: http.StatusForbidden, Msg: fmt.Sprintf("Host %.100q is not a loopback address: without --tokens this relay serves only its own machine (give --tokens, or --insecure behind a proxy)", r.Host)}
		}
	}
	if a.Tokens == nil {
		return nil
	}
	_, err := a.Tokens.Authorize(auth.BearerToken(r.Header), tenant, scopes[scope])
	if err != nil {
		e := &HTTPError{Status: auth.Status(err), Msg: err.Error()}
		if e.Status == http.StatusUnauthorized {
			e.Header = http.Header{"Www-Authenticate": {`Bearer realm="tl"`}}
		}
		return e
	}
	return nil
}
