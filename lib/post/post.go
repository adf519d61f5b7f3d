// Package post is tl-post: it reads NDJSON events from files or stdin,
// validates every line with the relay's own rules (lib/event), and publishes
// them to a relay in batches: one batch in flight per tenant (so each
// tenant's order is kept) and tenants in parallel, retried with backoff and
// an Idempotency-Key so that a batch whose 202 was lost is never delivered
// twice. It can pace the events (--rate, --replay) and shows its progress on
// a terminal.
package post

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/tl-sh/tl/lib/cli"
	"github.com/tl-sh/tl/lib/event"
	"github.com/tl-sh/tl/lib/internal/client"
)

// Defaults for the tuning flags; each is documented in the usage and man page.
const (
	defaultBatchEvents = 5000                   // events per batch: large enough to amortise a request
	defaultBatchBytes  = 2 << 20                // bytes per batch body: a quarter of the relay's 8 MiB limit
	defaultLinger      = 200 * time.Millisecond // how long a partial batch waits for more lines
	defaultMaxRetries  = 10                     // attempts after the first, per batch
	defaultTimeout     = 2 * time.Minute        // how long one batch may take, retries included
	defaultMaxErrors   = 100                    // bad lines reported one by one; the rest are counted
	defaultReplayGap   = 10 * time.Second       // --replay never waits longer than this between events
)

// Options is a parsed command line.
type Options struct {
	Tenant      string   // every line goes here; "" means each line's tenant_id
	Files       []string // "-" is stdin; empty means stdin
	BatchEvents int
	BatchBytes  cli.Size
	Linger      time.Duration
	MaxRetries  int
	Timeout     time.Duration // per batch, retries included; 0 means none
	Rate        float64       // events per second; 0 means unpaced
	Replay      float64       // speed factor for --replay; 0 means off
	ReplayGap   time.Duration // --replay-max-gap: the longest wait between two events; 0 means none
	MaxErrors   int           // bad lines reported one by one; 0 means all
	Strict      bool
	Retarget    bool   // with Tenant: re-address every line, whatever its tenant_id
	Progress    string // auto, tty, plain or none
	Quiet       bool
}

// maxBatchBytes bounds --batch-bytes: a batch's offsets are int32.
const maxBatchBytes = 1 << 30

const usageHead = `usage: tl-post [flags] [TENANT] [FILE...]

Publish NDJSON events (one JSON object per line) from FILEs, or stdin, to a
tl relay. Every line is validated locally first; a bad line is reported as
FILE:LINE: reason and skipped while the good lines are published.

TENANT is the first argument unless it looks like a file: "-", a name with a
"/", or a name ending in .ndjson, .jsonl or .json (write ./NAME for a file
named otherwise, or use --tenant). Without TENANT each line's tenant_id picks
its tenant. With TENANT every line goes to that tenant; a line carrying a seq
(a delivery printed by tl-tail) is re-addressed, so
    tl-tail acme --last 100 | tl-post staging
copies events between tenants.

Flags:
`

// Run is the tl-post command.
func Run(ctx context.Context, args []string, env *cli.Env) error {
	opts, cfg, err := parse(args, env)
	if err != nil {
		if errors.Is(err, errHelp) {
			return nil
		}
		return err
	}
	p := newPoster(opts, cfg, env)
	return p.run(ctx)
}

// errHelp tells Run that -h or --version was answered.
var errHelp = errors.New("help")

// parse reads the command line. Its errors are usage errors (exit status 2).
func parse(args []string, env *cli.Env) (*Options, *client.Config, error) {
	o := &Options{}
	fs := pflag.NewFlagSet("tl-post", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.SortFlags = false
	fs.StringVarP(&o.Tenant, "tenant", "t", "", "publish every line to `TENANT` (then every argument is a FILE)")
	fs.BoolVar(&o.Retarget, "retarget", false, "with TENANT, re-address every line, whatever its tenant_id")
	fs.BoolVar(&o.Strict, "strict", false, "validate all input first; send nothing if any line is bad")
	fs.IntVarP(&o.BatchEvents, "batch-events", "n", defaultBatchEvents, "at most `N` events per batch")
	o.BatchBytes = defaultBatchBytes
	fs.Var(&o.BatchBytes, "batch-bytes", "at most `SIZE` per batch body (bytes, or with KiB, MiB)")
	fs.DurationVar(&o.Linger, "linger", defaultLinger, "send a partial batch after waiting `DURATION` for more lines")
	fs.IntVar(&o.MaxRetries, "max-retries", defaultMaxRetries, "retry a batch at most `N` times (transport errors, 408, 429, 5xx but 501)")
	fs.DurationVar(&o.Timeout, "timeout", defaultTimeout, "give up on a batch not published within `DURATION`, retries included (0: never)")
	fs.Float64Var(&o.Rate, "rate", 0, "publish at most `N` events per second")
	fs.Float64Var(&o.Replay, "replay", 0, "pace events by their own timestamps, `SPEED` times real time (default 1)")
	fs.Lookup("replay").NoOptDefVal = "1"
	fs.DurationVar(&o.ReplayGap, "replay-max-gap", defaultReplayGap, "with --replay, wait at most `DURATION` between two events, and say so (0: no limit)")
	fs.IntVar(&o.MaxErrors, "max-errors", defaultMaxErrors, "report at most `N` bad lines one by one, then only count them (0: no limit)")
	fs.StringVar(&o.Progress, "progress", "auto", "progress on stderr: auto (on a terminal), tty, plain (a line every few seconds) or none")
	fs.BoolVarP(&o.Quiet, "quiet", "q", false, "no progress and no summary; only errors")
	cf := client.AddFlags(fs)
	help := fs.BoolP("help", "h", false, "show this help")
	version := fs.Bool("version", false, "print the version")

	if err := fs.Parse(joinReplaySpeed(args)); err != nil {
		return nil, nil, cli.Usagef("%v (try --help)", err)
	}
	if *help {
		fmt.Fprint(env.Stdout, usageHead+fs.FlagUsages())
		return nil, nil, errHelp
	}
	if *version {
		fmt.Fprintln(env.Stdout, cli.VersionLine("tl-post"))
		return nil, nil, errHelp
	}
	o.Files = fs.Args()
	if o.Tenant == "" && len(o.Files) > 0 && !looksLikeFile(o.Files[0]) {
		o.Tenant, o.Files = o.Files[0], o.Files[1:]
		if fi, err := os.Stat(o.Tenant); err == nil && fi.Mode().IsRegular() {
			// The meaning stays the same in every directory, but a file of
			// that name here is most likely what was meant.
			fmt.Fprintf(env.Stderr, "tl-post: warning: %q is taken as the TENANT, but it is also a file here; to read it write ./%s (or name the tenant: -t TENANT %s)\n",
				o.Tenant, o.Tenant, o.Tenant)
		}
	}
	if o.Tenant != "" {
		if err := event.CheckTenant(o.Tenant); err != nil {
			return nil, nil, cli.Usagef("%v (try --help)", err)
		}
	}
	switch {
	case o.Retarget && o.Tenant == "":
		return nil, nil, cli.Usagef("--retarget needs a TENANT (try --help)")
	case o.BatchEvents < 1:
		return nil, nil, cli.Usagef("--batch-events must be at least 1 (try --help)")
	case int64(o.BatchBytes) > maxBatchBytes:
		return nil, nil, cli.Usagef("--batch-bytes must be at most %s (try --help)", cli.FormatSize(maxBatchBytes))
	case o.BatchBytes < maxLine:
		return nil, nil, cli.Usagef("--batch-bytes must be at least %d, the longest line (try --help)", maxLine)
	case o.Linger < 0:
		return nil, nil, cli.Usagef("--linger must not be negative (try --help)")
	case o.MaxRetries < 0:
		return nil, nil, cli.Usagef("--max-retries must not be negative (try --help)")
	case o.Timeout < 0:
		return nil, nil, cli.Usagef("--timeout must not be negative (try --help)")
	case o.Rate < 0:
		return nil, nil, cli.Usagef("--rate must not be negative (try --help)")
	case fs.Changed("replay") && o.Replay <= 0:
		return nil, nil, cli.Usagef("--replay SPEED must be positive (try --help)")
	case o.ReplayGap < 0:
		return nil, nil, cli.Usagef("--replay-max-gap must not be negative (try --help)")
	case o.MaxErrors < 0:
		return nil, nil, cli.Usagef("--max-errors must not be negative (try --help)")
	}
	switch o.Progress {
	case "auto", "tty", "plain", "none":
	default:
		return nil, nil, cli.Usagef("--progress must be auto, tty, plain or none, not %q (try --help)", o.Progress)
	}
	cfg, err := cf.Resolve(env)
	if err != nil {
		return nil, nil, err
	}
	return o, cfg, nil
}

// looksLikeFile decides, from the argument alone (never from what exists on
// disk, so the same command means the same thing in every directory), that a
// first argument is a FILE rather than a TENANT.
func looksLikeFile(arg string) bool {
	if arg == "-" || strings.Contains(arg, "/") {
		return true
	}
	for _, ext := range []string{".ndjson", ".jsonl", ".json"} {
		if strings.HasSuffix(arg, ext) {
			return true
		}
	}
	return false
}

// joinReplaySpeed turns "--replay 10" into "--replay=10": pflag gives an
// optional value only with "=", but "--replay 10" is how people write it. A
// number right after --replay is its SPEED.
func joinReplaySpeed(args []string) []string {
	out := make([]string, 0, len(args))
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return append(out, args[i:]...)
		}
		if a == "--replay" && i+1 < len(args) && isNumber(args[i+1]) {
			out = append(out, "--replay="+args[i+1])
			i++
			continue
		}
		out = append(out, a)
	}
	return out
}

func isNumber(s string) bool {
	if s == "" {
		return false
	}
	dot := false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9':
		case c == '.' && !dot:
			dot = true
		default:
			return false
		}
	}
	return s != "."
}

// httpClient is split out so that tests can share one.
func httpClient(cfg *client.Config) *http.Client { return cfg.HTTPClient() }
