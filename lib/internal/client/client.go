// Package client owns what tl-tail and tl-post share when they talk to a
// relay: where it is (--relay or TL_RELAY), the token (TL_TOKEN or
// --token-file, never a flag of its own so it stays out of ps), and the
// HTTP client with its TLS settings (--ca-file).
package client

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"

	"github.com/spf13/pflag"

	"github.com/tl-sh/tl/lib/cli"
	"github.com/tl-sh/tl/lib/internal/auth"
)

// DefaultRelay is used when neither --relay nor TL_RELAY is set.
const DefaultRelay = "http://127.0.0.1:8787"

// Flags are the connection flags shared by the clients.
type Flags struct {
	Relay     string
	TokenFile string
	CAFile    string

	name string // the command (its FlagSet's name), for the warning line
}

// AddFlags registers --relay, --token-file and --ca-file on fs.
func AddFlags(fs *pflag.FlagSet) *Flags {
	f := &Flags{name: fs.Name()}
	fs.StringVar(&f.Relay, "relay", "", "relay URL (default $TL_RELAY, else "+DefaultRelay+")")
	fs.StringVar(&f.TokenFile, "token-file", "", "read the bearer token from `FILE` (default $TL_TOKEN)")
	fs.StringVar(&f.CAFile, "ca-file", "", "trust the PEM certificates in `FILE` for an https relay")
	return f
}

// Config is a resolved connection to a relay.
type Config struct {
	Relay *url.URL // scheme http or https, no trailing slash in Path
	Token string   // empty when none
	TLS   *tls.Config
	// Warning is set when the token will cross the network in the clear
	// (plain http to a host other than loopback); Resolve has printed it.
	Warning string
}

// Resolve turns the flags and environment into a Config. Its errors are
// usage errors (exit status 2). When a token would go over plain http to a
// host other than loopback it prints one warning line on env.Stderr
// ("tl-tail: warning: ..."): anyone on the path could read the token and
// use it. It warns rather than refuses, since a trusted network or a VPN
// may make that acceptable.
func (f *Flags) Resolve(env *cli.Env) (*Config, error) {
	raw := f.Relay
	if raw == "" {
		raw = env.Getenv("TL_RELAY")
	}
	if raw == "" {
		raw = DefaultRelay
	}
	if !strings.Contains(raw, "://") {
		raw = "http://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, cli.Usagef("relay URL %q: %v", raw, err)
	}
	// A WebSocket URL names the same relay: users copy it from the
	// stream's address.
	switch u.Scheme {
	case "ws":
		u.Scheme = "http"
	case "wss":
		u.Scheme = "https"
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, cli.Usagef("relay URL %q: scheme must be http, https, ws or wss", raw)
	}
	if u.Host == "" {
		return nil, cli.Usagef("relay URL %q has no host", raw)
	}
	u.Path = strings.TrimRight(u.Path, "/")
	c := &Config{Relay: u}

	if f.TokenFile != "" {
		b, err := os.ReadFile(f.TokenFile)
		if err != nil {
			return nil, cli.Usagef("token file: %v", err)
		}
		c.Token = strings.TrimSpace(string(b))
		if c.Token == "" {
			return nil, cli.Usagef("token file %s is empty", f.TokenFile)
		}
	} else {
		c.Token = strings.TrimSpace(env.Getenv("TL_TOKEN"))
	}

	if f.CAFile != "" {
		pem, err := os.ReadFile(f.CAFile)
		if err != nil {
			return nil, cli.Usagef("CA file: %v", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, cli.Usagef("CA file %s holds no PEM certificate", f.CAFile)
		}
		c.TLS = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	if c.Token != "" && u.Scheme == "http" && !auth.IsLoopback(u.Hostname()) {
		c.Warning = fmt.Sprintf("warning: sending a token over plain http to %s; use https", u.Hostname())
		if env.Stderr != nil {
			name := f.name
			if name == "" {
				name = "tl" // Flags built without AddFlags
			}
			fmt.Fprintf(env.Stderr, "%s: %s\n", name, c.Warning)
		}
	}
	return c, nil
}

// URL returns the relay URL for path (which starts with /) and query.
func (c *Config) URL(path string, query url.Values) *url.URL {
	u := *c.Relay
	u.Path = c.Relay.Path + path
	u.RawQuery = query.Encode()
	return &u
}

// Authorize adds the bearer token, if any, to h.
func (c *Config) Authorize(h http.Header) {
	if c.Token != "" {
		h.Set("Authorization", "Bearer "+c.Token)
	}
}

// HTTPClient returns an HTTP client for the relay (no overall timeout: the
// callers bound their requests with contexts).
func (c *Config) HTTPClient() *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = c.TLS
	tr.MaxIdleConnsPerHost = 64
	return &http.Client{Transport: tr}
}

// EventsPath and StreamPath are a tenant's endpoints (tl-protocol(7)).
func EventsPath(tenant string) string { return "/v1/tenants/" + url.PathEscape(tenant) + "/events" }

// StreamPath is the subscribe endpoint of a tenant.
func StreamPath(tenant string) string { return "/v1/tenants/" + url.PathEscape(tenant) + "/stream" }

// String describes the config for status lines (never the token).
func (c *Config) String() string { return fmt.Sprintf("relay %s", c.Relay) }
