package auth

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
)

// CheckListen refuses to serve addr (host:port) without authentication
// unless the host is a loopback address: on any other address, anyone who
// can reach the port could publish to and read every tenant. tokens says
// whether --tokens was given, insecure whether --insecure was.
//
// Only literal loopback addresses and "localhost" count as loopback; an
// empty host or 0.0.0.0 means every interface, and another name may resolve
// anywhere.
func CheckListen(addr string, tokens, insecure bool) error {
	if tokens || insecure {
		return nil
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("listen address %q: %w", addr, err)
	}
	if IsLoopback(host) {
		return nil
	}
	return fmt.Errorf("refusing to listen on %s without --tokens: anyone who can reach it could publish to and read every tenant; give --tokens FILE (see tl-relay token), or --insecure to serve without authentication anyway", addr)
}

// IsLoopback reports whether host (a name or literal address, maybe in
// brackets) is this machine's loopback.
func IsLoopback(host string) bool {
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}

// Origins is the --allow-origin policy for requests made by web pages. The
// command-line clients send no Origin header and are always allowed. A page
// can open a WebSocket to any host with no CORS check, so without this a page
// the user visits could read streams through the user's network position
// (a relay on localhost or a private network), including by DNS rebinding,
// where the page's own host name points at the relay: that is why an Origin
// matching the request's Host is NOT allowed unless listed.
//
// A nil *Origins allows no Origin at all.
type Origins struct {
	any bool            // "*" was listed
	set map[string]bool // normalised origins
	// tenants are the TENANT=ORIGIN values: origins that may publish to
	// those tenants only (origins.go); streams never look at them.
	tenants []tenantOrigin
}

// ParseOrigins reads --allow-origin values: "*" or origins
// "scheme://host[:port]", allowed everywhere, or TENANT=ORIGIN (TENANT a
// name, a prefix ending in "*" or "*"; ORIGIN may be "*"), allowed to
// publish to those tenants only (each value may be a comma-separated list).
func ParseOrigins(values []string) (*Origins, error) {
	o := &Origins{set: map[string]bool{}}
	for _, v := range values {
		for _, s := range strings.Split(v, ",") {
			s = strings.TrimSpace(s)
			if tenant, origin, ok := strings.Cut(s, "="); ok {
				if err := o.addTenant(tenant, origin); err != nil {
					return nil, err
				}
				continue
			}
			if s == "*" {
				o.any = true
				continue
			}
			norm, ok := parseOrigin(s)
			if !ok {
				return nil, fmt.Errorf("--allow-origin %q: want * or scheme://host[:port], as a browser sends in Origin, or TENANT=ORIGIN", truncate(s))
			}
			o.set[norm] = true
		}
	}
	return o, nil
}

// Allowed reports whether a request carrying this Origin header value
// ("" when absent) may go on.
func (o *Origins) Allowed(origin string) bool {
	if origin == "" {
		return true
	}
	if o == nil {
		return false
	}
	return o.any || o.set[normOrigin(origin)]
}

func normOrigin(s string) string { return strings.ToLower(strings.TrimSuffix(s, "/")) }
