package auth

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"strings"
)

// tokenBytes is the entropy of a generated token: 256 bits, which no amount
// of guessing reaches, so the file can store a plain SHA-256 of it.
const tokenBytes = 32

// tokenPrefix marks tl tokens so that secret scanners and people can spot one.
const tokenPrefix = "tl_"

// NewToken returns a fresh random token: "tl_" and 43 base64url characters.
func NewToken() (string, error) {
	b := make([]byte, tokenBytes)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("reading random bytes: %w", err)
	}
	return tokenPrefix + base64.RawURLEncoding.EncodeToString(b), nil
}

// Line returns the token-file line granting scopes on tenants (a comma
// separated pattern list) to token, labelled name (may be empty). It checks
// the line parses.
func Line(token string, scopes Scope, tenants, name string) (string, error) {
	// Each value must stay one field: a space or newline would let a
	// --tenants or --name value add fields or whole lines (grants).
	for _, v := range []struct{ what, s string }{{"tenant pattern", tenants}, {"name", name}} {
		if strings.ContainsAny(v.s, " \t\r\n\v\f#") {
			return "", fmt.Errorf("%s %q: no spaces or # allowed", v.what, truncate(v.s))
		}
	}
	line := fmt.Sprintf("%s %s %s", Hash(token), scopes, tenants)
	if name != "" {
		line += " " + name
	}
	t := &Table{byDigest: map[Digest]*entry{}}
	if err := t.parseLine(line, 1); err != nil {
		return "", err
	}
	return line, nil
}
