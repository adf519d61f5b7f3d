package relaycmd

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/spf13/pflag"

	"github.com/tl-sh/tl/lib/cli"
	"github.com/tl-sh/tl/lib/event"
	"github.com/tl-sh/tl/lib/internal/auth"
	"github.com/tl-sh/tl/lib/internal/metrics"
	"github.com/tl-sh/tl/lib/internal/relay"
)

// maxMetricsTenants caps --metrics-tenants: each labeled tenant adds about
// ten series to every scrape, so a thousand is already ten thousand series.
const maxMetricsTenants = 1000

// obsFlags are tl-relay's flags for operating it: logs, metrics and the
// admin listener.
type obsFlags struct {
	logLevel, logFormat string
	adminListen         string
	metricsTenants      int
	metricsTenant       []string
}

func addObsFlags(fs *pflag.FlagSet) *obsFlags {
	o := &obsFlags{}
	fs.StringVar(&o.logLevel, "log-level", "info", "log `LEVEL`: debug, info, warn or error")
	fs.StringVar(&o.logFormat, "log-format", "text", "log as `FORMAT`: text (key=value) or json (one object a line)")
	fs.StringVar(&o.adminListen, "admin-listen", "", "serve /metrics and /debug/pprof/ on `ADDR` too (off by default)")
	fs.IntVar(&o.metricsTenants, "metrics-tenants", metrics.DefaultTopTenants,
		"give the `N` busiest tenants their own metrics label; the others share tenant=\"_other\"")
	fs.StringArrayVar(&o.metricsTenant, "metrics-tenant", nil, "always give tenant `NAME` its own metrics label (repeatable)")
	return o
}

// setup checks the flags and builds the logger (writing to w) and the
// metrics. Its errors are usage errors.
func (o *obsFlags) setup(w io.Writer) (*slog.Logger, *metrics.Metrics, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(o.logLevel)); err != nil {
		return nil, nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", o.logLevel)
	}
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler
	switch o.logFormat {
	case "text":
		h = slog.NewTextHandler(w, opts)
	case "json":
		h = slog.NewJSONHandler(w, opts)
	default:
		return nil, nil, fmt.Errorf("--log-format %q: want text or json", o.logFormat)
	}
	if o.metricsTenants < 0 || o.metricsTenants > maxMetricsTenants {
		return nil, nil, fmt.Errorf("--metrics-tenants must be 0 to %d", maxMetricsTenants)
	}
	for _, name := range o.metricsTenant {
		if err := event.CheckTenant(name); err != nil {
			return nil, nil, fmt.Errorf("--metrics-tenant: %w", err)
		}
	}
	top := o.metricsTenants
	if top == 0 {
		top = -1 // metrics.Options: zero means the default, negative none
	}
	m := metrics.New(metrics.Options{TopTenants: top, Tenants: o.metricsTenant})
	return slog.New(h), m, nil
}

// adminServer is the --admin-listen server.
type adminServer struct {
	http   *http.Server
	bound  string // the address bound
	served chan error
}

// addr is the address bound.
func (a *adminServer) addr() string { return a.bound }

// listenAdmin binds --admin-listen's address, after the same check as the
// main listener: an address other than loopback needs tokens (the admin
// scope) or insecure. It binds before the main listener reports its
// address, so that whoever reads that line finds the admin port open too.
func listenAdmin(addr string, tokens, insecure bool) (net.Listener, error) {
	if err := auth.CheckListen(addr, tokens, insecure); err != nil {
		return nil, cli.Usagef("--admin-listen: %v", err)
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("admin listen: %w", err)
	}
	return l, nil
}

// startAdmin serves s.AdminHandler on l, and prints the address on stderr,
// on a line of its own. It serves TLS when the main listener does: admin
// tokens must not cross the network in the clear either.
func startAdmin(l net.Listener, s *relay.Server, sec *security, stderr io.Writer) *adminServer {
	l, scheme := sec.listener(l)
	printAdmin(stderr, scheme, l.Addr().String())
	a := &adminServer{
		http:   s.AdminServer(),
		bound:  l.Addr().String(),
		served: make(chan error, 1),
	}
	go func() { a.served <- a.http.Serve(l) }()
	return a
}

// stop ends the admin server (a CPU profile in progress is cut short) and
// waits for its goroutine. A nil *adminServer does nothing; call it once.
func (a *adminServer) stop() {
	if a == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if a.http.Shutdown(ctx) != nil {
		a.http.Close()
	}
	<-a.served
}
