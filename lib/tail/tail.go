// Package tail implements tl-tail: it subscribes to a tenant's stream on the
// relay (tl-protocol(7)), prints each delivered line to stdout byte for byte
// through the drain-aware writer of package drain, and keeps the stream
// going across disconnects, resuming where it stopped. The hot path decodes
// no JSON: a delivery starts `{"seq":N,`, so N is read by a prefix scan.
package tail

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/pflag"

	"github.com/tl-sh/tl/lib/cli"
	"github.com/tl-sh/tl/lib/event"
	"github.com/tl-sh/tl/lib/internal/client"
	"github.com/tl-sh/tl/lib/internal/drain"
)

const name = "tl-tail"

// ExitBrokenPipe is the status when stdout's reader went away (`| head`):
// 128+SIGPIPE, what the shell reports for `yes | head`, jq and every filter
// killed by SIGPIPE, so `set -o pipefail` scripts see the same thing from
// tl-tail as from any other command in that spot. It is silent.
const ExitBrokenPipe = 141

// ExitDropped is the status of a run that ended by itself (-c, --timeout,
// --no-follow) after the stdout writer dropped lines because its reader did
// not keep up: the output is not the whole stream (3: the first status the
// 0/1/2 convention leaves free).
const ExitDropped = 3

// shutdownFlush bounds how long an interrupted tl-tail keeps trying to flush
// buffered lines to a stdout that does not take them.
const shutdownFlush = 3 * time.Second

// --buffer: 4MiB by default, and under 2GiB, so that it fits an int on
// every platform.
const (
	defaultBuffer = 4 << 20
	maxBuffer     = 2 << 30
)

const usage = `Usage: tl-tail [flags] TENANT...
       tl-tail --list [PATTERN...]

Stream TENANT's events from the relay to stdout, one JSON object per line,
each byte for byte as the relay sent it. Status goes to stderr. The stream
survives disconnects: tl-tail reconnects with backoff and resumes after the
last event it printed, so no event is printed twice or lost while the relay's
history holds it. With --no-follow it prints the history and exits instead,
like tail -n without -f. With --type/--path, -n N is the newest N matching
events. Several TENANTs, or shell patterns like 'acme-*' that the relay
resolves against the tenants the token may read (GET /v1/tenants?match=,
asked again every 5s while following, so new tenants join), are followed
together, each with its own resume point; every line keeps its tenant_id.
--list prints the tenants the token may read that match PATTERN (all
without one), sorted, one per line, and exits (--timeout bounds it); the
shell completions call it to complete tenant names.

Flags:
%s
Status on stderr: connected, reconnecting (with the wait), resumed, gaps
(events the relay could no longer deliver, counted exactly), an epoch change
(the relay restarted without its history), a tenant that holds no events yet,
lines dropped because stdout did not keep up (at most one report a second;
--lossless never drops, nor does output to a file or /dev/null). -q hides
progress but never a loss of events.

Exit status:
  0    -c N events were printed (-c 0: at once, printing nothing);
       --list printed the matching tenants (none, if none match);
       --no-follow printed the history; or --timeout ended a stream
       without -c
  1    failure: the relay refused (400, 401, 403, 404), its TLS
       certificate did not verify (see --ca-file), --max-retries
       exhausted, --timeout before -c N events arrived, writing stdout
       failed (a full disk: "writing stdout: ..."), --list could not
       reach the relay or was refused
  2    usage error
  3    as 0, but lines were dropped because stdout did not keep up
       (the count is on stderr; --lossless never drops)
  130  interrupted (SIGINT, Ctrl-C); 143: terminated (SIGTERM). Buffered
       lines are flushed and the WebSocket closed (1000) first.
  141  stdout's reader went away (| head): quietly, like any filter

Environment: TL_RELAY (relay URL: http, https, ws or wss), TL_TOKEN (bearer
token).
Examples:
  tl-tail acme
  tl-tail acme --type click --path /checkout -n 20
  tl-tail acme -n 100 --no-follow > last100.ndjson
  tl-tail acme globex 'initech-*'
  tl-tail --list 'acme-*'
  tl-tail acme --type custom -c 1 --timeout 30s   # CI: wait for one event
`

// options are tl-tail's parsed command line.
type options struct {
	tenant     string   // the first of tenants
	tenants    []string // the tenants named
	patterns   []string // shell patterns, resolved on the relay (GET /v1/tenants)
	types      []string
	path       string
	last       int
	since      uint64
	hasSince   bool
	epoch      string
	noFollow   bool  // print the history up to the newest seq at connecting, then exit
	count      int64 // events to print before exiting; 0: no limit
	countZero  bool  // an explicit -c 0: print nothing, exit at once
	timeout    time.Duration
	lossless   bool
	buffer     int
	maxRetries int
	quiet      bool
	list       bool // --list: print the tenants the patterns match, then exit
	conn       *client.Config
}

// Run is tl-tail's entry point (see usage).
func Run(ctx context.Context, args []string, env *cli.Env) error {
	opts, err := parseArgs(args, env)
	if err != nil || opts == nil {
		return err
	}
	// With SIGPIPE handled, a write to a pipe without reader returns EPIPE
	// instead of killing the process, so tl-tail can close its WebSocket
	// properly before it exits.
	sigpipe := make(chan os.Signal, 1)
	signal.Notify(sigpipe, syscall.SIGPIPE)
	defer signal.Stop(sigpipe)
	if opts.list {
		return newTail(opts, env).listNames(ctx)
	}
	return newTail(opts, env).run(ctx)
}

// parseArgs parses the command line. It returns nil options (and a nil
// error) when it has handled --help or --version itself.
func parseArgs(args []string, env *cli.Env) (*options, error) {
	fs := pflag.NewFlagSet(name, pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.SortFlags = false
	o := &options{}
	buffer := cli.Size(defaultBuffer)
	var help, version, follow bool
	fs.StringArrayVar(&o.types, "type", nil, "only events of `TYPE` (pageview, click, custom); repeat or comma-separate")
	fs.StringVar(&o.path, "path", "", "only events whose path starts with `PREFIX`")
	fs.IntVarP(&o.last, "last", "n", 0, "first print the newest `N` events of the history (matching --type/--path), then follow")
	fs.Uint64Var(&o.since, "since", 0, "resume after event `SEQ` (with --epoch, the epoch it came from)")
	fs.StringVar(&o.epoch, "epoch", "", "the `EPOCH` that --since refers to (from the relay's hello)")
	fs.BoolVarP(&follow, "follow", "f", true, "follow the stream as events arrive")
	fs.BoolVar(&o.noFollow, "no-follow", false, "print the history held (all, or -n/--since) up to the newest event at connecting, then exit 0")
	fs.Int64VarP(&o.count, "count", "c", 0, "exit 0 after `N` events (without -c: no limit; -c 0 exits at once)")
	fs.DurationVar(&o.timeout, "timeout", 0, "stop after `DURATION`; with -c, exit 1 unless N events came")
	fs.BoolVar(&o.lossless, "lossless", false, "never drop a line: when stdout is slow, stop reading the relay")
	fs.Var(&buffer, "buffer", "hold up to `SIZE` bytes stdout has not taken yet (e.g. 512KiB)")
	fs.IntVar(&o.maxRetries, "max-retries", -1, "give up after `N` failed reconnects in a row (-1: never)")
	fs.BoolVarP(&o.quiet, "quiet", "q", false, "no progress on stderr; only errors and lost events")
	fs.BoolVar(&o.list, "list", false, "print the tenants the arguments match (patterns; none: all), one per line, and exit")
	cf := client.AddFlags(fs)
	fs.BoolVarP(&help, "help", "h", false, "print this help and exit")
	fs.BoolVar(&version, "version", false, "print the version and exit")

	if err := fs.Parse(args); err != nil {
		return nil, cli.Usagef("%v (try --help)", err)
	}
	if help {
		fmt.Fprintf(env.Stdout, usage, fs.FlagUsages())
		return nil, nil
	}
	if version {
		fmt.Fprintln(env.Stdout, cli.VersionLine(name))
		return nil, nil
	}
	if o.list {
		o.patterns = fs.Args()
		if len(o.patterns) == 0 {
			o.patterns = []string{"*"}
		}
		for _, p := range o.patterns {
			if _, err := path.Match(p, ""); err != nil {
				return nil, cli.Usagef("pattern %q: %v (try --help)", p, err)
			}
		}
		conn, err := cf.Resolve(env)
		if err != nil {
			return nil, err
		}
		o.conn = conn
		return o, nil
	}
	if fs.NArg() == 0 {
		return nil, cli.Usagef("want a TENANT (or several, or a pattern like 'acme-*') (try --help)")
	}
	for _, a := range fs.Args() {
		if isPattern(a) {
			if _, err := path.Match(a, ""); err != nil {
				return nil, cli.Usagef("pattern %q: %v (try --help)", a, err)
			}
			o.patterns = append(o.patterns, a)
			continue
		}
		if err := event.CheckTenant(a); err != nil {
			return nil, cli.Usagef("%v (try --help)", err)
		}
		if !slices.Contains(o.tenants, a) {
			o.tenants = append(o.tenants, a)
		}
	}
	if len(o.tenants) > 0 {
		o.tenant = o.tenants[0]
	}
	if o.multi() && (fs.Changed("since") || o.epoch != "") {
		return nil, cli.Usagef("--since and --epoch name one tenant's seqs: give one TENANT (try --help)")
	}
	var types []string
	for _, t := range o.types {
		for _, s := range strings.Split(t, ",") {
			s = strings.TrimSpace(s)
			if event.ParseType(s) == event.TypeNone {
				return nil, cli.Usagef("--type %q: must be one of pageview, click, custom (try --help)", s)
			}
			types = append(types, s)
		}
	}
	o.types = types
	o.hasSince = fs.Changed("since")
	o.countZero = fs.Changed("count") && o.count == 0
	switch {
	case o.last < 0:
		return nil, cli.Usagef("--last must not be negative (try --help)")
	case o.count < 0:
		return nil, cli.Usagef("--count must not be negative (try --help)")
	case o.timeout < 0:
		return nil, cli.Usagef("--timeout must not be negative (try --help)")
	case o.maxRetries < -1:
		return nil, cli.Usagef("--max-retries must be -1 (never give up) or more (try --help)")
	case o.hasSince && o.last > 0:
		return nil, cli.Usagef("--since and --last exclude each other (try --help)")
	case o.epoch != "" && !o.hasSince:
		return nil, cli.Usagef("--epoch needs --since (try --help)")
	case o.noFollow && fs.Changed("follow") && follow:
		return nil, cli.Usagef("--follow and --no-follow exclude each other (try --help)")
	}
	if fs.Changed("follow") && !follow {
		o.noFollow = true // --follow=false
	}
	switch {
	case buffer < drain.MinSize:
		return nil, cli.Usagef("--buffer: %s is smaller than %dKiB, the largest event (try --help)", buffer.String(), drain.MinSize>>10)
	case buffer >= maxBuffer:
		return nil, cli.Usagef("--buffer: %s is not under %s (try --help)", buffer.String(), cli.FormatSize(maxBuffer))
	}
	o.buffer = int(buffer)
	var err error
	if o.conn, err = cf.Resolve(env); err != nil {
		return nil, err
	}
	return o, nil
}

// multi reports whether the run follows more than one tenant, or tenants
// that a pattern names.
func (o *options) multi() bool { return len(o.tenants) > 1 || len(o.patterns) > 0 }

// isPattern reports whether a TENANT argument is a shell pattern: a tenant
// name never holds these characters.
func isPattern(s string) bool { return strings.ContainsAny(s, "*?[") }

// Causes that end a run; run maps them to exit statuses.
var (
	errCountReached = errors.New("count reached")
	errTimeout      = errors.New("timeout")
	errEndOfHistory = errors.New("end of history")
)

// run streams until the count is reached, the timeout expires, stdout goes
// away, the relay refuses, retries run out, or ctx ends (a signal).
func (t *tail) run(ctx context.Context) error {
	if t.opts.countZero {
		return nil // like head -n 0: nothing to print, so no need to connect
	}
	runCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	if t.opts.timeout > 0 {
		var stop context.CancelFunc
		runCtx, stop = context.WithTimeoutCause(runCtx, t.opts.timeout, errTimeout)
		defer stop()
	}
	t.out = drain.New(t.env.Stdout, drain.Config{
		Size:     t.opts.buffer,
		Lossless: t.opts.lossless,
		OnDrop:   t.status.dropped,
	})
	// Stdout failing (its reader gone, a full disk) ends the run, with
	// the drain's reason; this goroutine ends with it.
	go func() {
		select {
		case <-t.out.Done():
			cancel(t.out.Err())
		case <-runCtx.Done():
		}
	}()

	err := t.followAll(runCtx)

	// Flush: all of it when the run ended by itself (a signal meanwhile
	// abandons it), for a little while when it was interrupted.
	flushCtx := ctx
	if ctx.Err() != nil {
		var stop context.CancelFunc
		flushCtx, stop = context.WithTimeout(context.WithoutCancel(ctx), shutdownFlush)
		defer stop()
	}
	cerr := t.out.Close(flushCtx)

	switch {
	case errors.Is(err, drain.ErrBrokenPipe) || errors.Is(cerr, drain.ErrBrokenPipe):
		// Only a reader that left; any other write error (ENOSPC on a
		// full disk, EIO) is a failure worth a message.
		return cli.Exit(ExitBrokenPipe, nil)
	case ctx.Err() != nil:
		return ctx.Err() // cli.Main turns this into 130 or 143
	case cerr != nil:
		return cli.Exit(cli.ExitFailure, cerr)
	case errors.Is(err, errCountReached), errors.Is(err, errEndOfHistory):
		return t.dropStatus()
	case errors.Is(err, errTimeout):
		if t.opts.count > 0 {
			return cli.Exit(cli.ExitFailure, fmt.Errorf("timeout: %d of %d events within %s", t.printed.Load(), t.opts.count, t.opts.timeout))
		}
		return t.dropStatus()
	}
	return err
}

// dropStatus is the status of a run that otherwise succeeded: 0, or
// ExitDropped when the stdout writer had to drop lines, so that a script
// can tell a complete capture from a lossy one.
func (t *tail) dropStatus() error {
	if n := t.out.Dropped(); n > 0 {
		printed := t.printed.Load()
		if t.opts.count > 0 {
			printed = min(printed, t.opts.count) // numbers taken past -c N were not printed
		}
		return cli.Exit(ExitDropped, fmt.Errorf("%d of %d %s dropped: stdout did not keep up (--lossless never drops)",
			n, printed, plural(printed, "line")))
	}
	return nil
}
