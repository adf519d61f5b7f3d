package auth

import (
	"fmt"
	"net/url"
)

// tenantOrigin is one --allow-origin TENANT=ORIGIN: pages from origin (any
// origin when any) may publish to the tenants g covers. It grants no
// stream: a page that reads events is a dashboard, which the relay-wide
// --allow-origin list (Origins.Allowed) must name.
type tenantOrigin struct {
	g      grant
	any    bool
	origin string // normalised
}

// addTenant adds a TENANT=ORIGIN value.
func (o *Origins) addTenant(tenant, origin string) error {
	g, err := parsePattern(tenant)
	if err != nil {
		return fmt.Errorf("--allow-origin %q: %w", truncate(tenant+"="+origin), err)
	}
	to := tenantOrigin{g: g}
	if origin == "*" {
		to.any = true
	} else if to.origin, err = checkOrigin(origin); err != nil {
		return fmt.Errorf("--allow-origin %q: %w", truncate(tenant+"="+origin), err)
	}
	o.tenants = append(o.tenants, to)
	return nil
}

// Publishes reports whether a web page from origin may publish to tenant:
// origin is allowed relay-wide, or for that tenant by a TENANT=ORIGIN
// value. A request without Origin (not a web page) always may.
func (o *Origins) Publishes(tenant, origin string) bool {
	if o.Allowed(origin) {
		return true
	}
	if o == nil {
		return false
	}
	norm := normOrigin(origin)
	for _, to := range o.tenants {
		if to.g.covers(tenant) && (to.any || to.origin == norm) {
			return true
		}
	}
	return false
}

// parseOrigin checks that s is an origin as a browser sends it in Origin,
// scheme://host[:port] with scheme http or https, and returns it
// normalised.
func parseOrigin(s string) (string, bool) {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.User != nil || u.Opaque != "" {
		return "", false
	}
	return normOrigin(u.Scheme + "://" + u.Host), true
}

// checkOrigin is parseOrigin with an error for the user.
func checkOrigin(s string) (string, error) {
	norm, ok := parseOrigin(s)
	if !ok {
		return "", fmt.Errorf("origin %q: want scheme://host[:port] (http or https), as a browser sends in Origin", truncate(s))
	}
	return norm, nil
}
