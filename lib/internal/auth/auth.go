// Package auth owns who may do what on a relay: the token file given to
// `tl-relay --tokens FILE`, the lookup of a presented bearer token, and the
// reload of the file (SIGHUP) with a way to re-check live subscribers.
//
// The file holds only SHA-256 digests of tokens, never the tokens. Tokens are
// made by `tl-relay token` from 32 random bytes, so a fast hash is the right
// tool: a slow password KDF (bcrypt, argon2) protects low-entropy secrets
// against guessing, but 256 random bits cannot be guessed whatever the hash
// costs, and a slow KDF on every request would hand attackers a CPU
// denial of service. A stolen file therefore grants nothing.
//
// A token never appears in an error, a log line or a metric: errors name the
// tenant and scope, and an ID (the operator's label for the line, or the
// first hex digits of the digest) names the token.
package auth

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// Scope is a set of rights a token holds on a tenant.
type Scope uint8

// The scopes of tl-protocol(7). Admin guards /metrics and other operator
// endpoints; it does not imply Publish or Subscribe. Ingest marks a public
// ingest key (ingest.go): it may only publish, to one tenant, from the web
// pages of its origins, and it goes alone on its line.
const (
	Publish Scope = 1 << iota
	Subscribe
	Admin
	Ingest
)

var scopeNames = []struct {
	s    Scope
	name string
}{{Publish, "publish"}, {Subscribe, "subscribe"}, {Admin, "admin"}, {Ingest, "ingest"}}

// String lists the scopes in s, comma-separated.
func (s Scope) String() string {
	var names []string
	for _, n := range scopeNames {
		if s&n.s != 0 {
			names = append(names, n.name)
		}
	}
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ",")
}

// ParseScopes reads a comma-separated list of scope names.
func ParseScopes(list string) (Scope, error) {
	var s Scope
	for _, name := range strings.Split(list, ",") {
		found := false
		for _, n := range scopeNames {
			if name == n.name {
				s |= n.s
				found = true
			}
		}
		if !found {
			return 0, fmt.Errorf("unknown scope %q (want publish, subscribe, admin or ingest)", truncate(name))
		}
	}
	return s, nil
}

// Error is a refusal, with the HTTP status that carries it: 401 when the
// token is missing or unknown, 403 when it lacks the scope or tenant.
// Its message never contains the token.
type Error struct {
	Status int
	Msg    string
}

func (e *Error) Error() string { return e.Msg }

// Status returns the HTTP status for an error of this package (401 or 403),
// or 500 for any other error.
func Status(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.Status
	}
	return http.StatusInternalServerError
}

// BearerToken returns the token of an "Authorization: Bearer TOKEN" header,
// or "" when there is none. The scheme is case-insensitive (RFC 7235).
func BearerToken(h http.Header) string {
	v := h.Get("Authorization")
	const prefix = "bearer "
	if len(v) < len(prefix) || !strings.EqualFold(v[:len(prefix)], prefix) {
		return ""
	}
	return strings.TrimSpace(v[len(prefix):])
}

// truncate keeps error messages about hostile input short.
func truncate(s string) string {
	const max = 40
	if len(s) > max {
		return s[:max] + "..."
	}
	return s
}
