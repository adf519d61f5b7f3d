package relay

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"time"

	"github.com/tl-sh/tl/lib/internal/auth"
	"github.com/tl-sh/tl/lib/internal/limit"
)

// Public ingest keys (lib/internal/auth/ingest.go) on the relay's side: the key may
// come in the URL (sendBeacon cannot set Authorization), it may only
// publish, and the events it brings are limited per client address. See
// tl-relay(1), PUBLIC INGEST KEYS, for the threat model.

// Defaults of the ingest keys' limit per client address.
const (
	// DefaultIngestRate is the events a second one client address may
	// publish with ingest keys: a person's browsing sends a few events a
	// second at most.
	DefaultIngestRate = 10
	// DefaultIngestBurst lets a page send what it batched (a beacon on
	// page hide) at once.
	DefaultIngestBurst = 100
	// maxIngestBody bounds a POST made with an ingest key: browsers let
	// sendBeacon and keepalive fetches carry at most 64 KiB, so a page
	// never sends more, and a leaked key's bulk sender cannot make the
	// relay read and validate megabytes only to refuse them.
	maxIngestBody = 64 << 10
	// ipv6Prefix is how many leading bits of an IPv6 client address name
	// it: one host usually holds a whole /64 and can pick any address in it.
	ipv6Prefix = 64
	// keyParam is the query parameter that carries an ingest key.
	keyParam = "key"
)

// publishOrigin is Config.PublishOrigin: --allow-origin (everywhere or for
// the tenant), or an ingest key of the tenant, names the origin.
func (a *Access) publishOrigin(tenant, origin string) bool {
	return a.Origins.Publishes(tenant, origin) || a.Tokens.IngestOrigin(tenant, origin)
}

// requestToken returns the token r presents: its bearer token, or the
// key= parameter of its URL (viaURL), which only ingest keys may use.
func requestToken(r *http.Request) (token string, viaURL bool, herr *HTTPError) {
	token = auth.BearerToken(r.Header)
	if r.URL.RawQuery == "" {
		return token, false, nil // the usual POST: no query to parse
	}
	keys, ok := r.URL.Query()[keyParam]
	if !ok {
		return token, false, nil
	}
	if token != "" || len(keys) != 1 {
		return "", true, httpErrorf(http.StatusBadRequest, "give one token, in Authorization or in %s=, not both", keyParam)
	}
	return keys[0], true, nil
}

// authorizeIngest is the part of Authorize for ingest keys. It returns
// done false when r presents no ingest key (Authorize goes on as for any
// token), else the answer: nil to let an ingest key publish, or the
// refusal.
func (a *Access) authorizeIngest(r *http.Request, tenant string, scope Scope) (herr *HTTPError, done bool) {
	if a.Tokens == nil {
		return nil, false // no tokens at all: key= means nothing
	}
	token, viaURL, herr := requestToken(r)
	if herr != nil {
		return herr, true
	}
	_, isIngest, err := a.Tokens.AuthorizeIngest(token, tenant, r.Header.Get("Origin"))
	switch {
	case !isIngest && viaURL:
		if _, err := a.Tokens.Authorize(token, tenant, auth.Publish); auth.Status(err) == http.StatusUnauthorized {
			return &HTTPError{Status: http.StatusUnauthorized, Msg: err.Error()}, true // unknown, or revoked
		}
		// Any other token in a URL would end up in browser histories
		// and proxy logs; refused whether it is valid or not.
		return httpErrorf(http.StatusForbidden, "%s= takes only public ingest keys; give other tokens in Authorization: Bearer", keyParam), true
	case !isIngest:
		return nil, false
	case scope != ScopePublish:
		return &HTTPError{Status: http.StatusForbidden, Msg: "an ingest key may only publish", Everywhere: true}, true
	case err != nil:
		return &HTTPError{Status: auth.Status(err), Msg: err.Error()}, true
	}
	if wait := a.IngestRate.Wait(clientKey(r)); wait > 0 {
		// Refused before its body is read.
		return addressLimited(wait), true
	}
	if r.ContentLength > maxIngestBody {
		return &HTTPError{Status: http.StatusRequestEntityTooLarge, Header: http.Header{"Connection": {"close"}},
			Msg: fmt.Sprintf("a request with an ingest key carries at most %d bytes", maxIngestBody)}, true
	}
	// A chunked body is cut at the same size (the read fails with 413).
	r.Body = http.MaxBytesReader(nil, r.Body, maxIngestBody)
	return nil, true
}

// limitIngest is Config.LimitPublish: the events of a POST made with an
// ingest key are taken from its client address's bucket.
func (a *Access) limitIngest(r *http.Request, tenant string, n int) error {
	if a.Tokens == nil || r.Header.Get("Origin") == "" {
		return nil // no ingest key: Authorize refused one without Origin
	}
	token, _, herr := requestToken(r)
	if herr != nil {
		return herr
	}
	if _, isIngest, err := a.Tokens.AuthorizeIngest(token, tenant, r.Header.Get("Origin")); !isIngest || err != nil {
		return nil // not an ingest key's (Authorize has refused a bad one)
	}
	if n > a.IngestRate.Burst() {
		e := httpErrorf(http.StatusTooManyRequests, "a batch with an ingest key holds at most %d events (TL-Max-Batch)", a.IngestRate.Burst())
		wait := limit.RoundUpSecond(time.Duration(float64(a.IngestRate.Burst()) / a.IngestRate.PerSec() * float64(time.Second)))
		e.Header = http.Header{"Retry-After": {strconv.Itoa(int(wait / time.Second))}, "Tl-Max-Batch": {strconv.Itoa(a.IngestRate.Burst())}}
		return e
	}
	if ok, wait := a.IngestRate.Take(clientKey(r), n); !ok {
		return addressLimited(wait)
	}
	return nil
}

// addressLimited is the 429 for a client address over --ingest-rate.
func addressLimited(wait time.Duration) *HTTPError {
	e := httpErrorf(http.StatusTooManyRequests, "this address is over the ingest keys' rate limit; retry in %d s", wait/time.Second)
	e.Header = http.Header{"Retry-After": {strconv.Itoa(int(wait / time.Second))}}
	return e
}

// clientKey names r's client address for the limit: the TCP peer (the
// relay trusts no forwarding header), an IPv6 address cut to its /64.
func clientKey(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	ip = ip.Unmap()
	if ip.Is6() {
		p, _ := ip.Prefix(ipv6Prefix)
		return p.String()
	}
	return ip.String()
}
