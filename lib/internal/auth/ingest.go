package auth

import (
	"fmt"
	"net/http"
	"strings"
)

// A public ingest key is a token meant to be embedded in a web page, so
// anyone who views the page has it. It is made safe to leak by what it
// cannot do: it may only publish (never read a stream or list tenants), to
// the one tenant of its line, and only in requests that carry an Origin
// header naming one of its origins. Origin stops other web pages from using
// it (a browser sets Origin and a page cannot forge it); it does not stop a
// non-browser client, which can send any Origin: the relay's limit per
// client address (--ingest-rate) is what bounds that (see tl-relay(1),
// PUBLIC INGEST KEYS).
//
// In the token file an ingest key has a line of its own:
//
//	sha256:HEX  ingest  TENANT  [NAME]  origins=ORIGIN[,ORIGIN...]

// ingestKey is what an ingest key's line adds to its entry.
type ingestKey struct {
	tenant  string
	origins *Origins
}

// originsField starts the field that lists an ingest key's origins.
const originsField = "origins="

// cutOrigins removes the origins= field from a line's fields and returns
// its value (nil when there is none). The field can sit after TENANTS or
// NAME; a NAME never contains "=", so it cannot be mistaken for one.
func cutOrigins(fields []string) ([]string, []string, error) {
	var origins []string
	found := false
	out := fields[:0:0]
	for i, f := range fields {
		v, ok := strings.CutPrefix(f, originsField)
		if !ok || i < 3 {
			out = append(out, f)
			continue
		}
		if found {
			return nil, nil, fmt.Errorf("more than one %s field", originsField)
		}
		found = true
		origins = strings.Split(v, ",")
	}
	return out, origins, nil
}

// parseOriginList reads an ingest key's origins: "*" (any page, but an
// Origin header is still required) or origins scheme://host[:port].
func parseOriginList(list []string) (*Origins, error) {
	o := &Origins{set: map[string]bool{}}
	for _, s := range list {
		if s == "*" {
			o.any = true
			continue
		}
		norm, err := checkOrigin(s)
		if err != nil {
			return nil, err
		}
		o.set[norm] = true
	}
	return o, nil
}

// parseIngest checks the ingest rules for the line just added to e: an
// ingest line grants ingest alone, on one tenant name, with origins, and
// its token appears on no other line; origins= belongs to ingest lines only.
func (t *Table) parseIngest(e *entry, scopes Scope, tenants string, origins []string) error {
	if scopes&Ingest == 0 {
		if origins != nil {
			return fmt.Errorf("%s is only for ingest keys (scope ingest)", originsField)
		}
		if e.ingest != nil {
			return fmt.Errorf("this token is an ingest key (line %d): it can have no other grant", e.line)
		}
		return nil
	}
	if scopes != Ingest {
		return fmt.Errorf("scope ingest goes alone: an ingest key may only publish (scopes %s)", scopes)
	}
	g := e.grants[len(e.grants)-1]
	if g.all || g.prefix != "" || strings.Contains(tenants, ",") {
		return fmt.Errorf("an ingest key is for one tenant, named in full (not %q)", truncate(tenants))
	}
	if len(e.grants) != 1 || e.ingest != nil {
		return fmt.Errorf("an ingest key has one line only: this token is also on line %d", e.line)
	}
	if len(origins) == 0 {
		return fmt.Errorf("an ingest key needs %sORIGIN[,ORIGIN...]: the web pages it may publish from", originsField)
	}
	o, err := parseOriginList(origins)
	if err != nil {
		return err
	}
	e.ingest = &ingestKey{tenant: g.exact, origins: o}
	if t.ingestOrigins == nil {
		t.ingestOrigins = map[string]*Origins{}
	}
	all := t.ingestOrigins[g.exact]
	if all == nil {
		all = &Origins{set: map[string]bool{}}
		t.ingestOrigins[g.exact] = all
	}
	all.any = all.any || o.any
	for k := range o.set {
		all.set[k] = true
	}
	return nil
}

// AuthorizeIngest checks token as a public ingest key publishing to tenant
// from a page of origin ("" when the request had no Origin). When token is
// not an ingest key (unknown, or a token of another kind) it returns
// isIngest false and no error: the caller goes on with Authorize. For an
// ingest key it returns its ID and a 403 *Error when the tenant or the
// origin is not the key's.
func (t *Table) AuthorizeIngest(token, tenant, origin string) (id ID, isIngest bool, err error) {
	if token == "" {
		return ID{}, false, nil
	}
	d := Hash(token)
	e, ok := t.byDigest[d]
	if !ok || e.ingest == nil {
		return ID{}, false, nil
	}
	id = ID{Digest: d, Name: e.name}
	switch {
	case tenant != e.ingest.tenant:
		return id, true, &Error{Status: http.StatusForbidden, Msg: fmt.Sprintf("this ingest key may not publish to tenant %q", tenant)}
	case origin == "":
		return id, true, &Error{Status: http.StatusForbidden, Msg: "an ingest key is accepted only from the web pages of its origins (the request has no Origin header)"}
	case !e.ingest.origins.any && !e.ingest.origins.set[normOrigin(origin)]:
		return id, true, &Error{Status: http.StatusForbidden, Msg: fmt.Sprintf("this ingest key may not publish from Origin %.100q", origin)}
	}
	return id, true, nil
}

// IngestOrigin reports whether some ingest key of tenant lists origin: a
// CORS preflight carries no key, so it is answered from this.
func (t *Table) IngestOrigin(tenant, origin string) bool {
	o := t.ingestOrigins[tenant]
	return o != nil && origin != "" && (o.any || o.set[normOrigin(origin)])
}

// AuthorizeIngest is Table.AuthorizeIngest on the current table. A nil
// Store has no ingest keys.
func (s *Store) AuthorizeIngest(token, tenant, origin string) (ID, bool, error) {
	if s == nil {
		return ID{}, false, nil
	}
	return s.table.Load().AuthorizeIngest(token, tenant, origin)
}

// IngestOrigin is Table.IngestOrigin on the current table (false for a nil
// Store).
func (s *Store) IngestOrigin(tenant, origin string) bool {
	if s == nil {
		return false
	}
	return s.table.Load().IngestOrigin(tenant, origin)
}

// IngestLine returns the token-file line making token an ingest key for
// tenant, from origins, labelled name (may be empty). It checks the line
// parses.
func IngestLine(token, tenant, name string, origins []string) (string, error) {
	// Each value must stay one field (see Line); an origin must also stay
	// one item of the comma-separated list.
	for _, v := range append([]string{tenant, name}, origins...) {
		if strings.ContainsAny(v, " \t\r\n\v\f#") {
			return "", fmt.Errorf("%q: no spaces or # allowed", truncate(v))
		}
	}
	for _, o := range origins {
		if o == "" || strings.Contains(o, ",") {
			return "", fmt.Errorf("origin %q: want one scheme://host[:port]", truncate(o))
		}
	}
	line := fmt.Sprintf("%s %s %s", Hash(token), Ingest, tenant)
	if name != "" {
		line += " " + name
	}
	line += " " + originsField + strings.Join(origins, ",")
	t := &Table{byDigest: map[Digest]*entry{}}
	if err := t.parseLine(line, 1); err != nil {
		return "", err
	}
	return line, nil
}
