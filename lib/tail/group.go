package tail

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/tl-sh/tl/lib/cli"
)

// Several tenants in one run, like stern: `tl-tail acme globex`, or
// `tl-tail 'acme-*'`, a pattern the relay resolves (GET /v1/tenants?match=)
// against the tenants the token may read. Each tenant has a stream of its
// own (a tail, with its own resume point), all writing to the one stdout;
// every line still carries its tenant_id.

// Tuning of the tenant listing.
const (
	// tenantPoll is how often a following run asks the relay again for
	// the tenants its patterns match, so that new ones join.
	tenantPoll = 5 * time.Second
	// listTimeout bounds one listing request.
	listTimeout = 15 * time.Second
	// maxListBody bounds the listing's answer (10,000 names of 64 bytes).
	maxListBody = 1 << 20
)

// followAll follows every tenant of the run until it ends, and returns why
// (as follow does). With one tenant it is follow.
func (t *tail) followAll(ctx context.Context) error {
	if !t.opts.multi() {
		return t.follow(ctx)
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	ends := make(chan error)
	running := 0
	started := map[string]bool{}
	resolved := len(t.opts.patterns) == 0
	start := func(name string, whole bool) {
		if started[name] {
			return
		}
		started[name] = true
		running++
		s := t.forTenant(name, whole)
		go func() { ends <- s.follow(ctx) }()
	}
	for _, n := range t.opts.tenants {
		start(n, false)
	}

	var tick <-chan time.Time
	if !resolved {
		ticker := time.NewTicker(tenantPoll)
		defer ticker.Stop()
		tick = ticker.C
	}
	failed, toldNone := false, false
	poll := func() {
		names, err := t.listTenants(ctx)
		if err != nil {
			var ref *refusal
			if errors.As(err, &ref) && ref.final() {
				cancel(cli.Exit(cli.ExitFailure, fmt.Errorf("listing the tenants that match %s: %w", t.patternList(), err)))
				return
			}
			if ctx.Err() == nil {
				hint := ""
				if !failed {
					relay := t.opts.conn.Relay.Redacted()
					hint = fmt.Sprintf("; is tl-relay running at %s? (TL_RELAY)", relay)
				}
				failed = true
				t.status.progress("listing the tenants that match %s: %v%s; asking again in %v", t.patternList(), err, hint, tenantPoll)
			}
			return
		}
		for _, n := range names {
			// Past the first listing, a new name is a tenant that
			// joined while the run follows.
			start(n, resolved && !t.opts.noFollow)
		}
		if !resolved && len(started) == 0 && !toldNone {
			toldNone = true
			if t.opts.noFollow {
				t.status.progress("no tenant matches %s", t.patternList())
			} else {
				t.status.progress("no tenant matches %s yet; asking the relay every %v (Ctrl-C to stop)", t.patternList(), tenantPoll)
			}
		}
		resolved = true
		if t.opts.noFollow {
			tick = nil // the history of the tenants there are now
		}
	}
	if !resolved {
		poll()
	}
	for {
		if running == 0 && resolved && t.opts.noFollow && ctx.Err() == nil {
			return errEndOfHistory
		}
		select {
		case err := <-ends:
			running--
			if !(t.opts.noFollow && errors.Is(err, errEndOfHistory)) {
				cancel(err) // a tenant's stream ended the run: the count, stdout, a refusal
			}
		case <-tick:
			poll()
		case <-ctx.Done():
			for ; running > 0; running-- {
				<-ends
			}
			return context.Cause(ctx)
		}
	}
}

// patternList names the run's patterns for status lines.
func (t *tail) patternList() string {
	q := make([]string, len(t.opts.patterns))
	for i, p := range t.opts.patterns {
		q[i] = "'" + p + "'"
	}
	return strings.Join(q, ", ")
}

// listTenants asks the relay for the tenants that the run's patterns match
// and that the token may subscribe to.
func (t *tail) listTenants(ctx context.Context) ([]string, error) {
	if t.http == nil {
		t.http = t.opts.conn.HTTPClient()
	}
	var all []string
	for _, p := range t.opts.patterns {
		names, err := t.list(ctx, p)
		if err != nil {
			return nil, err
		}
		all = append(all, names...)
	}
	return all, nil
}

func (t *tail) list(ctx context.Context, pattern string) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, listTimeout)
	defer cancel()
	u := t.opts.conn.URL("/v1/tenants", url.Values{"match": {pattern}})
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	t.opts.conn.Authorize(req.Header)
	resp, err := t.http.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL is in the status line already
		}
		return nil, fmt.Errorf("cannot connect to %s: %w", t.opts.conn.Relay.Redacted(), err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, refusalFrom(resp, t.opts.conn.Relay.Redacted())
	}
	var v struct {
		Tenants []string `json:"tenants"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxListBody)).Decode(&v); err != nil {
		return nil, fmt.Errorf("reading the tenant list: %w", err)
	}
	return v.Tenants, nil
}
