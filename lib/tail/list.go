package tail

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/tl-sh/tl/lib/cli"
)

// listNames is `tl-tail --list [PATTERN...]`: the tenants the token may
// subscribe to that match a pattern (all of them without one), sorted, one
// per line on stdout. Shell completions call it for tenant names, and a user
// can see what `tl-tail 'acme-*'` would follow. One request per pattern (the
// same GET /v1/tenants?match= as a pattern's run), bounded by --timeout when
// given, so a completion never waits long on a relay that does not answer.
func (t *tail) listNames(ctx context.Context) error {
	if t.opts.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, t.opts.timeout)
		defer cancel()
	}
	names, err := t.listTenants(ctx)
	if err != nil {
		var ref *refusal
		if !errors.As(err, &ref) {
			relay := t.opts.conn.Relay.Redacted()
			err = fmt.Errorf("%w; is tl-relay running at %s? (TL_RELAY)", err, relay)
		}
		return cli.Exit(cli.ExitFailure, fmt.Errorf("listing the tenants that match %s: %w", t.patternList(), err))
	}
	slices.Sort(names)
	for _, n := range slices.Compact(names) {
		if _, err := fmt.Fprintln(t.env.Stdout, n); err != nil {
			return cli.Exit(cli.ExitFailure, fmt.Errorf("writing stdout: %w", err))
		}
	}
	return nil
}
