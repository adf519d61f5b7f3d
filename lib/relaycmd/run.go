// Package relaycmd is the tl-relay command: its flags and usage, the
// token file, TLS and SIGHUP, the choice of backing (memory, a data
// directory or a Redis broker), the listeners and the admin server. The
// relay itself (lib/internal/relay) takes what they set up as a Config.
package relaycmd

import (
	"context"
	"errors"
	"fmt"
	"net"
	neturl "net/url"
	"strconv"
	"strings"

	"github.com/spf13/pflag"

	"github.com/tl-sh/tl/lib/cli"
	"github.com/tl-sh/tl/lib/internal/disklog"
	"github.com/tl-sh/tl/lib/internal/redislog"
	"github.com/tl-sh/tl/lib/internal/relay"
	"github.com/tl-sh/tl/lib/internal/tlog"
)

const usage = `usage: tl-relay [flags]

tl-relay is the tl relay: apps POST events per tenant, and subscribers
(tl-tail, any WebSocket client, curl -N) watch them live. Each tenant has its
own history, so a subscriber can replay the newest events (last=N) or resume
where it left off (since=SEQ&epoch=E). See tl-protocol(7) and tl-relay(1).

It stops gracefully on SIGINT or SIGTERM: /readyz turns 503, in-flight
POSTs finish, subscribers receive everything accepted and a 1001 close, and
it exits 0 within --drain-timeout. SIGHUP reloads --tokens and --tls-cert.

On an address other than loopback it needs --tokens (or --insecure). Make
the token file's lines with 'tl-relay token' (see tl-relay token --help).

flags:
`

// Run is tl-relay's entry point.
func Run(ctx context.Context, args []string, env *cli.Env) error {
	if len(args) > 0 && args[0] == "token" {
		return runToken(ctx, args[1:], env)
	}
	fs := pflag.NewFlagSet("tl-relay", pflag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	fs.SortFlags = false
	var cfg relay.Config
	listen := fs.String("listen", relay.DefaultListen, "listen on `ADDR` (host:port; port 0 picks a free one)")
	historyBytes := cli.Size(tlog.DefaultMaxBytes)
	maxBody := cli.Size(relay.DefaultMaxBody)
	fs.IntVar(&cfg.HistoryEvents, "history-events", tlog.DefaultMaxEvents, "keep up to `N` events per tenant")
	fs.Var(&historyBytes, "history-bytes", "keep up to `SIZE` of events per tenant (bytes, or with KiB, MiB, GiB)")
	fs.Var(&maxBody, "max-body", "refuse request bodies over `SIZE` with 413")
	memBudget := cli.Size(0)
	fs.Var(&memBudget, "memory-budget", "hold at most `SIZE` of history and Idempotency-Keys in memory over all tenants; when full, the tenants holding the most lose their oldest events first (default: a quarter of the machine's or cgroup's memory)")
	fs.IntVar(&cfg.MaxSubscribers, "max-subscribers", relay.DefaultMaxSubscribers, "accept at most `N` subscribers in all")
	fs.IntVar(&cfg.MaxTenantSubscribers, "max-tenant-subscribers", relay.DefaultMaxTenantSubscribers, "accept at most `N` subscribers per tenant")
	maxTenants := fs.Int("max-tenants", relay.DefaultMaxTenants, "hold at most `N` tenants at once (0: no limit); a request that would create one more gets 503")
	fs.DurationVar(&cfg.PingInterval, "ping-interval", relay.DefaultPingInterval, "ping WebSocket subscribers every `DURATION`; close those silent for two")
	drain := fs.Duration("drain-timeout", relay.DefaultDrainTimeout, "on SIGTERM/SIGINT, give subscribers at most `DURATION` to drain")
	fs.DurationVar(&cfg.TenantIdle, "tenant-idle", relay.DefaultTenantIdle, "forget a tenant with no subscriber and no request for `DURATION`")
	dataDir := fs.String("data-dir", "", "keep tenant histories in `DIR`, on disk before each 202, so they survive restarts and crashes")
	dataMax := cli.Size(0)
	fs.Var(&dataMax, "data-max-bytes", "with --data-dir, cap DIR at `SIZE`: the least recently written data of any tenant goes first (0: no cap)")
	fs.DurationVar(&cfg.BodyTimeout, "body-timeout", relay.DefaultBodyTimeout, "cut off a POST whose body has not arrived within `DURATION` (408)")
	fs.DurationVar(&cfg.HeaderTimeout, "header-timeout", relay.DefaultHeaderTimeout, "close a connection whose request headers have not arrived within `DURATION`")
	fs.DurationVar(&cfg.IdleTimeout, "idle-timeout", relay.DefaultIdleTimeout, "close a keep-alive connection idle for `DURATION`")
	maxInflight := cli.Size(relay.DefaultMaxInflightBytes)
	maxTenantInflight := cli.Size(0)
	fs.Var(&maxInflight, "max-inflight-bytes", "hold at most `SIZE` of memory for request bodies being read, relay-wide (a body costs ~2.5x its size); over it, 503 with Retry-After before the body is read")
	fs.Var(&maxTenantInflight, "max-tenant-inflight-bytes", "hold at most `SIZE` of that memory for one tenant's bodies (default: a quarter of --max-inflight-bytes)")
	secFlags := addSecurityFlags(fs)
	obs := addObsFlags(fs)
	brokerFlag := fs.String("broker", "", "share tenants with other relays through Redis at `URL` (redis://[[user]:password@]host:port/db; rediss:// for TLS); default $TL_BROKER, where a password belongs (ps shows arguments)")
	help := fs.BoolP("help", "h", false, "print this help and exit")
	version := fs.Bool("version", false, "print the version and exit")
	fs.Usage = func() {}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			*help = true
		} else {
			return cli.Usagef("%v\ntry 'tl-relay --help'", err)
		}
	}
	if *help {
		fmt.Fprint(env.Stdout, usage+fs.FlagUsages())
		return nil
	}
	if *version {
		fmt.Fprintln(env.Stdout, cli.VersionLine("tl-relay"))
		return nil
	}
	if fs.NArg() > 0 {
		return cli.Usagef("unexpected argument %q\ntry 'tl-relay --help'", fs.Arg(0))
	}
	for _, c := range []struct {
		name string
		bad  bool
	}{
		{"--history-events", cfg.HistoryEvents < 1},
		{"--history-bytes", historyBytes < 1},
		{"--max-body", maxBody < 1},
		{"--max-subscribers", cfg.MaxSubscribers < 1},
		{"--max-tenant-subscribers", cfg.MaxTenantSubscribers < 1},
		{"--ping-interval", cfg.PingInterval <= 0},
		{"--drain-timeout", *drain <= 0},
		{"--tenant-idle", cfg.TenantIdle <= 0},
		{"--body-timeout", cfg.BodyTimeout <= 0},
		{"--header-timeout", cfg.HeaderTimeout <= 0},
		{"--idle-timeout", cfg.IdleTimeout <= 0},
	} {
		if c.bad {
			return cli.Usagef("%s must be positive\ntry 'tl-relay --help'", c.name)
		}
	}
	var err error
	if cfg.MaxTenants, err = tenantsLimit(*maxTenants); err != nil {
		return err
	}
	cfg.HistoryBytes = int(historyBytes)
	cfg.MaxBody = int64(maxBody)
	budget, budgetFrom, err := memoryBudget(fs.Changed("memory-budget"), int64(memBudget), cfg.MaxBody)
	if err != nil {
		return err
	}
	cfg.Budget = tlog.NewBudget(budget)
	if cfg.MaxInflightBytes, cfg.MaxTenantInflightBytes, err = inflightLimits(fs, int64(maxInflight), int64(maxTenantInflight), cfg.MaxBody); err != nil {
		return err
	}
	if dataMax > 0 && *dataDir == "" {
		return cli.Usagef("--data-max-bytes needs --data-dir\ntry 'tl-relay --help'")
	}
	if cfg.Logger, cfg.Metrics, err = obs.setup(env.Stderr); err != nil {
		return cli.Usagef("%v\ntry 'tl-relay --help'", err)
	}
	broker, brokerFrom := brokerURL(fs, *brokerFlag, env.Getenv)
	if broker != "" && *dataDir != "" {
		return cli.Usagef("%s and --data-dir exclude each other (with a broker, Redis keeps the history)\ntry 'tl-relay --help'", brokerFrom)
	}
	if broker != "" {
		// A bad URL is a usage error, found before the listening line.
		if err := redislog.CheckURL(broker); err != nil {
			return cli.Usagef("%s: %s\ntry 'tl-relay --help'", brokerFrom, redactErr(broker, err))
		}
	}
	raiseProcs(env.Getenv)
	sec, err := secFlags.setup(&cfg, *listen)
	if err != nil {
		return err
	}
	var adminL net.Listener
	if obs.adminListen != "" {
		if adminL, err = listenAdmin(obs.adminListen, sec.access.Tokens != nil, secFlags.insecure); err != nil {
			return err
		}
	}
	l, err := net.Listen("tcp", *listen)
	if err != nil {
		if adminL != nil {
			adminL.Close()
		}
		return fmt.Errorf("listen: %w", err)
	}
	l, scheme := sec.listener(l)
	// The first line on stderr: tests and scripts read the address here.
	printListen(env.Stderr, scheme, l.Addr().String())
	// The history opens only now, so that the line above is the first on
	// stderr whatever recovery or the broker log; nothing is served before
	// Serve below.
	closeListeners := func() {
		l.Close()
		if adminL != nil {
			adminL.Close()
		}
	}
	if *dataDir != "" {
		// Recovery reads every segment before the relay serves, so a
		// client never sees a history that is still being checked (its
		// connection waits in the listener's backlog meanwhile).
		ds, err := disklog.OpenTL(*dataDir, disklog.TLOptions{
			MaxEvents:     cfg.HistoryEvents,
			MaxBytes:      int64(historyBytes),
			MaxTotalBytes: int64(dataMax),
			Budget:        cfg.Budget,
			Logger:        cfg.Logger,
		})
		if err != nil {
			closeListeners()
			return fmt.Errorf("--data-dir: %w", err)
		}
		defer ds.Close() // after Shutdown: every accepted batch is committed by then
		cfg.Trouble = func() string { return diskTrouble(ds.Failed()) }
		cfg.Metrics.DataDir(func() int { return len(ds.Failed()) }, ds.OpenFiles)
		cfg.OpenLog = func(tenant string) (tlog.Log, error) {
			d, err := ds.Log(tenant)
			if err != nil {
				return nil, err
			}
			return d, nil
		}
		cfg.ListTenants = ds.Tenants
	}
	if broker != "" {
		b, err := openBroker(broker, brokerFrom, &cfg, int64(historyBytes))
		if err != nil {
			closeListeners()
			return err
		}
		defer b.Close() // after Shutdown has closed the tenant logs
	}

	s := relay.New(cfg)
	stopHUP := sec.handleSIGHUP(s, cfg.Logger)
	defer stopHUP()
	var admin *adminServer
	if adminL != nil {
		admin = startAdmin(adminL, s, sec, env.Stderr)
	}
	// "started" is logged before Serve, so that it comes before anything
	// a request logs (a client may connect as soon as the listening line
	// is out; the kernel holds it until Serve accepts).
	started := []any{"listen", l.Addr().String(), "version", cli.VersionLine("tl-relay"),
		"memory_budget", humanSize(budget), "memory_budget_from", budgetFrom}
	if admin != nil {
		started = append(started, "admin", admin.addr())
	}
	cfg.Logger.Info("started", started...)
	served := make(chan error, 1)
	go func() { served <- s.Serve(l) }()
	select {
	case err := <-served:
		admin.stop()
		s.Shutdown(context.Background())
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	dctx, cancel := context.WithTimeout(context.Background(), *drain)
	defer cancel()
	s.Shutdown(dctx)
	<-served
	admin.stop()
	cfg.Logger.Info("stopped")
	// A requested stop is a success: exit 0 even after a signal.
	return cli.Exit(cli.ExitOK, nil)
}

// inflightLimits checks --max-inflight-bytes and --max-tenant-inflight-bytes
// against --max-body: both must hold one body of the largest size, or such
// a body could never be published.
func inflightLimits(fs *pflag.FlagSet, total, share, maxBody int64) (int64, int64, error) {
	need := relay.BodyCost(maxBody)
	if total < need {
		return 0, 0, cli.Usagef("--max-inflight-bytes must be at least %d, what one body of --max-body %d holds while it is read\ntry 'tl-relay --help'", need, maxBody)
	}
	if !fs.Changed("max-tenant-inflight-bytes") {
		return total, relay.DefaultTenantInflight(total, maxBody), nil
	}
	switch {
	case share < need:
		return 0, 0, cli.Usagef("--max-tenant-inflight-bytes must be at least %d, what one body of --max-body %d holds while it is read\ntry 'tl-relay --help'", need, maxBody)
	case share > total:
		return 0, 0, cli.Usagef("--max-tenant-inflight-bytes must not be more than --max-inflight-bytes\ntry 'tl-relay --help'")
	}
	return total, share, nil
}

// brokerURL returns the broker URL and where it came from: --broker when
// given (even empty, which turns the broker off), else $TL_BROKER. A URL
// holding a password belongs in the environment: every user of the
// machine can read a process's arguments (ps), not its environment.
func brokerURL(fs *pflag.FlagSet, flag string, getenv func(string) string) (url, from string) {
	if fs.Changed("broker") {
		return flag, "--broker"
	}
	if v := strings.TrimSpace(getenv("TL_BROKER")); v != "" {
		return v, "TL_BROKER"
	}
	return "", ""
}

// openBroker connects the relay to Redis: tenant logs, Idempotency-Keys
// and readiness go through it. A relay starts while Redis is down and is
// ready once it answers. from names where url came from, for errors.
func openBroker(url, from string, cfg *relay.Config, historyBytes int64) (*redislog.Broker, error) {
	b, err := redislog.NewBroker(redislog.Options{
		URL:       url,
		MaxEvents: cfg.HistoryEvents,
		MaxBytes:  historyBytes,
		Budget:    cfg.Budget,
		Logger:    cfg.Logger,
	})
	if errors.Is(err, redislog.ErrRefused) {
		// Redis answered: the URL's password or database is wrong.
		return nil, fmt.Errorf("%s %s: %w", from, redislog.Redact(url), err)
	}
	if err != nil {
		return nil, cli.Usagef("%s: %s\ntry 'tl-relay --help'", from, redactErr(url, err))
	}
	cfg.OpenLog = func(tenant string) (tlog.Log, error) {
		l, err := b.Open(tenant)
		if err != nil {
			return nil, err
		}
		return l, nil
	}
	cfg.Ready = b.Ready
	if b.Ready() { // else the store has logged why not
		cfg.Logger.Info("broker connected", "url", redislog.Redact(url))
	}
	return b, nil
}

// memoryBudget returns the memory budget and where it came from: the flag
// when set, else a quarter of the machine's memory. A budget must hold the
// largest batch --max-body lets in (else that batch would be evicted as
// soon as accepted): a smaller flag is a usage error, a smaller default is
// raised to it.
func memoryBudget(set bool, flag, maxBody int64) (int64, string, error) {
	least := relay.MinMemoryBudget(maxBody)
	if set {
		if flag < least {
			return 0, "", cli.Usagef("--memory-budget %s cannot hold one batch of --max-body %s (up to %s in memory): make it at least %s, or lower --max-body\ntry 'tl-relay --help'",
				cli.FormatSize(flag), cli.FormatSize(maxBody), humanSize(relay.BatchMemory(maxBody)), humanSize(least))
		}
		return flag, "--memory-budget", nil
	}
	def, from := relay.DefaultMemoryBudget()
	from = fmt.Sprintf("1/%d of %s", relay.MemoryBudgetShare, from)
	if def < least {
		return least, from + ", raised to hold one batch of --max-body", nil
	}
	return def, from, nil
}

// humanSize writes n bytes for people: 512MiB, 5.9GiB, 1000B.
func humanSize(n int64) string {
	switch {
	case n >= 1<<30:
		return strconv.FormatFloat(float64(n)/(1<<30), 'f', 1, 64) + "GiB"
	case n >= 1<<20:
		return strconv.FormatFloat(float64(n)/(1<<20), 'f', 1, 64) + "MiB"
	case n >= 1<<10:
		return strconv.FormatFloat(float64(n)/(1<<10), 'f', 1, 64) + "KiB"
	}
	return strconv.FormatInt(n, 10) + "B"
}

// tenantsLimit turns --max-tenants into Config.MaxTenants, where zero
// means the default and a negative value no limit.
func tenantsLimit(flag int) (int, error) {
	switch {
	case flag < 0:
		return 0, cli.Usagef("--max-tenants must not be negative (0: no limit)\ntry 'tl-relay --help'")
	case flag == 0:
		return -1, nil
	}
	return flag, nil
}

// redactErr is err's text without the password of rawURL: parse errors
// quote the URL they could not read.
func redactErr(rawURL string, err error) string {
	u, perr := neturl.Parse(rawURL)
	if perr != nil {
		return "not a URL like redis://[[user]:password@]host:port/db"
	}
	msg := err.Error()
	if pw, ok := u.User.Password(); ok && pw != "" {
		msg = strings.ReplaceAll(msg, pw, "xxxxx")
	}
	return msg
}
