package auth

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/tl-sh/tl/lib/event"
)

// Digest is the SHA-256 of a token: what the file stores and what lookups
// are keyed by.
type Digest [sha256.Size]byte

// Hash returns the digest of token.
func Hash(token string) Digest { return sha256.Sum256([]byte(token)) }

// String is the digest as it appears in the token file.
func (d Digest) String() string { return hashPrefix + hex.EncodeToString(d[:]) }

// hashPrefix names the hash in the file, so another can be added later.
const hashPrefix = "sha256:"

// ID names a token in logs without revealing it: the label of its line in
// the file, else the first 12 hex digits of its digest (harmless to show: the
// digest of 256 random bits gives nothing back).
type ID struct {
	Digest Digest
	Name   string
}

func (id ID) String() string {
	if id.Name != "" {
		return id.Name
	}
	return hashPrefix + hex.EncodeToString(id.Digest[:6])
}

// grant is one scopes-on-tenants pair of a line.
type grant struct {
	scopes Scope
	all    bool   // "*": every tenant
	prefix string // "acme-*": tenants starting with prefix (when not all)
	exact  string // "acme": that tenant only (when prefix is "" and not all)
}

func (g grant) covers(tenant string) bool {
	switch {
	case g.all:
		return true
	case tenant == "":
		return false // a global right (like /metrics) needs "*"
	case g.prefix != "":
		return strings.HasPrefix(tenant, g.prefix)
	default:
		return tenant == g.exact
	}
}

// entry is everything one token may do.
type entry struct {
	digest Digest
	name   string
	line   int // first line that names the token, for duplicate errors
	grants []grant
	ingest *ingestKey // set for a public ingest key (ingest.go)
}

// Table is a parsed token file. It is immutable once built, so lookups need
// no lock; a reload builds a new Table and swaps it in (see Store).
type Table struct {
	byDigest map[Digest]*entry
	// ingestOrigins lists, per tenant, the origins of its ingest keys:
	// what a CORS preflight (which carries no key) is answered from.
	ingestOrigins map[string]*Origins
}

// Len returns the number of distinct tokens in t.
func (t *Table) Len() int { return len(t.byDigest) }

// Authorize checks that token may use scope on tenant (tenant "" asks for a
// right over every tenant, which only a "*" grant gives). It returns the
// token's ID, or an *Error: 401 for a missing or unknown token, 403 for a
// known token without that scope on that tenant.
//
// The lookup is a map keyed by the SHA-256 of the presented token, not a
// comparison of the token with stored ones. Any timing difference in the map
// (hashing the key, comparing it with a bucket's keys) depends only on the
// digest of what the caller sent; learning how a digest of a guess compares
// with a stored digest does not help find a token whose digest matches
// (that needs a SHA-256 preimage), so it leaks nothing usable. The final
// equality check is still done with crypto/subtle, which costs nothing.
func (t *Table) Authorize(token, tenant string, scope Scope) (ID, error) {
	if token == "" {
		return ID{}, &Error{Status: http.StatusUnauthorized, Msg: "missing bearer token"}
	}
	d := Hash(token)
	e, ok := t.byDigest[d]
	if ok {
		ok = subtle.ConstantTimeCompare(e.digest[:], d[:]) == 1
	}
	if !ok {
		return ID{}, &Error{Status: http.StatusUnauthorized, Msg: "unknown token"}
	}
	id := ID{Digest: d, Name: e.name}
	if !e.allows(tenant, scope) {
		return id, &Error{Status: http.StatusForbidden, Msg: forbidden(tenant, scope)}
	}
	return id, nil
}

// Allowed reports whether the token named by id may still use scope on
// tenant: the question a relay asks for each live subscriber after a reload.
func (t *Table) Allowed(id ID, tenant string, scope Scope) bool {
	e, ok := t.byDigest[id.Digest]
	return ok && e.allows(tenant, scope)
}

func (e *entry) allows(tenant string, scope Scope) bool {
	var have Scope
	for _, g := range e.grants {
		if g.covers(tenant) {
			have |= g.scopes
		}
	}
	return scope != 0 && have&scope == scope
}

func forbidden(tenant string, scope Scope) string {
	if tenant == "" {
		return fmt.Sprintf("token lacks the %s scope on all tenants", scope)
	}
	return fmt.Sprintf("token lacks the %s scope on tenant %q", scope, tenant)
}

// Parse reads a token file. name prefixes error messages, which carry the
// line number: "tokens:3: unknown scope "publsh" ...".
//
// Each line is
//
//	sha256:HEX  SCOPES  TENANTS  [NAME]
//
// SCOPES is a comma-separated list of publish, subscribe, admin; TENANTS a
// comma-separated list of tenant names, prefixes ending in "*" ("acme-*") or
// "*" for all; NAME an optional label used in logs. Blank lines and text
// from a "#" field on are ignored. A digest on several lines gets the union
// of their grants.
func Parse(name string, data []byte) (*Table, error) {
	t := &Table{byDigest: map[Digest]*entry{}}
	for i, raw := range bytes.Split(data, []byte("\n")) {
		n := i + 1
		if err := t.parseLine(string(raw), n); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", name, n, err)
		}
	}
	return t, nil
}

func (t *Table) parseLine(line string, n int) error {
	fields := strings.Fields(line)
	for i, f := range fields {
		if strings.HasPrefix(f, "#") {
			fields = fields[:i]
			break
		}
	}
	if len(fields) == 0 {
		return nil
	}
	// An ingest key's line ends with an origins= field (ingest.go).
	fields, origins, err := cutOrigins(fields)
	if err != nil {
		return err
	}
	if len(fields) < 3 || len(fields) > 4 {
		return fmt.Errorf("want \"sha256:HEX SCOPES TENANTS [NAME] [origins=LIST]\", got %d fields", len(fields))
	}
	d, err := parseDigest(fields[0])
	if err != nil {
		return err
	}
	scopes, err := ParseScopes(fields[1])
	if err != nil {
		return err
	}
	var grants []grant
	for _, p := range strings.Split(fields[2], ",") {
		g, err := parsePattern(p)
		if err != nil {
			return err
		}
		if scopes&Admin != 0 && !g.all {
			// The admin endpoints (/metrics, pprof) belong to no tenant,
			// so only "*" covers them: admin on "acme" could never be
			// used, and accepting it would mislead whoever wrote it.
			return errAdminTenants
		}
		g.scopes = scopes
		grants = append(grants, g)
	}
	label := ""
	if len(fields) == 4 {
		if err := checkName(fields[3]); err != nil {
			return err
		}
		label = fields[3]
	}
	e := t.byDigest[d]
	if e == nil {
		e = &entry{digest: d, name: label, line: n}
		t.byDigest[d] = e
	} else if label != "" && e.name != "" && label != e.name {
		return fmt.Errorf("token named %q here was named %q on line %d", label, e.name, e.line)
	} else if e.name == "" {
		e.name = label
	}
	e.grants = append(e.grants, grants...)
	return t.parseIngest(e, scopes, fields[2], origins)
}

// errAdminTenants refuses admin on anything but all tenants.
var errAdminTenants = errors.New(`admin needs --tenants '*' (the admin endpoints belong to no tenant)`)

// parseDigest reads "sha256:HEX" (64 hex digits).
func parseDigest(s string) (Digest, error) {
	var d Digest
	if !strings.HasPrefix(s, hashPrefix) {
		return d, fmt.Errorf("token hash %q must start with %q (the file holds hashes, never tokens; see tl-relay token)", truncate(s), hashPrefix)
	}
	h := s[len(hashPrefix):]
	if len(h) != 2*len(d) {
		return d, fmt.Errorf("token hash must have %d hex digits, got %d", 2*len(d), len(h))
	}
	if _, err := hex.Decode(d[:], []byte(h)); err != nil {
		return d, fmt.Errorf("token hash is not hex: %v", err)
	}
	return d, nil
}

// parsePattern reads one tenant pattern: a name, a prefix ending in "*", or
// "*" alone.
func parsePattern(p string) (grant, error) {
	if p == "*" {
		return grant{all: true}, nil
	}
	if strings.HasSuffix(p, "*") {
		prefix := p[:len(p)-1]
		// A prefix must be the start of some valid tenant name.
		if strings.Contains(prefix, "*") || event.CheckTenant(prefix) != nil || len(prefix) >= event.MaxTenantLen {
			return grant{}, fmt.Errorf("tenant pattern %q: want a tenant name, a prefix followed by *, or *", truncate(p))
		}
		return grant{prefix: prefix}, nil
	}
	if err := event.CheckTenant(p); err != nil {
		return grant{}, fmt.Errorf("tenant pattern %q: want a tenant name, a prefix followed by *, or *", truncate(p))
	}
	return grant{exact: p}, nil
}

// checkName accepts a label that is safe to print in logs.
func checkName(s string) error {
	if len(s) > 64 {
		return fmt.Errorf("name %q is longer than 64 characters", truncate(s))
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("._-@:/+", c) >= 0) {
			return fmt.Errorf("name %q: use letters, digits and ._-@:/+ only", truncate(s))
		}
	}
	return nil
}
