package relaycmd

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"github.com/spf13/pflag"

	"github.com/tl-sh/tl/lib/cli"
	"github.com/tl-sh/tl/lib/internal/auth"
	"github.com/tl-sh/tl/lib/internal/limit"
	"github.com/tl-sh/tl/lib/internal/relay"
)

// securityFlags are tl-relay's flags for serving beyond localhost: tokens,
// TLS, browser origins and the publish rate.
type securityFlags struct {
	tokens      string
	insecure    bool
	tlsCert     string
	tlsKey      string
	allowOrigin []string
	rateLimit   float64
	rateBurst   int
	ingestRate  float64 // public ingest keys' limit per client address
	ingestBurst int
}

func addSecurityFlags(fs *pflag.FlagSet) *securityFlags {
	f := &securityFlags{}
	fs.StringVar(&f.tokens, "tokens", "", "require bearer tokens, granted by `FILE` (hashes; make lines with tl-relay token); SIGHUP reloads it")
	fs.BoolVar(&f.insecure, "insecure", false, "allow listening beyond loopback without --tokens")
	fs.StringVar(&f.tlsCert, "tls-cert", "", "serve HTTPS and WSS with the PEM certificate chain in `FILE` (SIGHUP reloads it)")
	fs.StringVar(&f.tlsKey, "tls-key", "", "the PEM private key of --tls-cert, in `FILE`")
	fs.StringSliceVar(&f.allowOrigin, "allow-origin", nil, "let web pages from `ORIGIN` (https://host[:port], or *) publish (with CORS) and read streams, or with TENANT=ORIGIN publish to TENANT only; requests without Origin (the CLI clients) are always let in")
	fs.Float64Var(&f.rateLimit, "rate-limit", 0, "accept at most `N` events per second per tenant (0: no limit); over it, 429 with Retry-After")
	fs.IntVar(&f.rateBurst, "rate-burst", 0, "let a tenant publish bursts of `N` events above --rate-limit (default: one second's worth); a batch of more events gets 429 with TL-Max-Batch")
	fs.Float64Var(&f.ingestRate, "ingest-rate", relay.DefaultIngestRate, "accept at most `N` events per second per client address from public ingest keys; over it, 429 with Retry-After")
	fs.IntVar(&f.ingestBurst, "ingest-burst", relay.DefaultIngestBurst, "let one client address publish bursts of `N` events above --ingest-rate with ingest keys (a larger batch gets 429 with TL-Max-Batch)")
	return f
}

// security is what the flags set up: the access policy the relay runs on
// every request, the TLS certificate, and what SIGHUP reloads.
type security struct {
	access *relay.Access
	certs  *certHolder // nil: plain HTTP
}

// setup checks the flags against the listen address and plugs the access
// policy into cfg. A bad combination of flags is a usage error (exit
// status 2).
func (f *securityFlags) setup(cfg *relay.Config, listen string) (*security, error) {
	if err := auth.CheckListen(listen, f.tokens != "", f.insecure); err != nil {
		return nil, cli.Usagef("%v", err)
	}
	if (f.tlsCert == "") != (f.tlsKey == "") {
		return nil, cli.Usagef("--tls-cert and --tls-key go together")
	}
	if f.rateLimit < 0 || f.rateBurst < 0 {
		return nil, cli.Usagef("--rate-limit and --rate-burst must not be negative")
	}
	a := &relay.Access{}
	var err error
	if a.Origins, err = auth.ParseOrigins(f.allowOrigin); err != nil {
		return nil, cli.Usagef("%v", err)
	}
	if f.tokens != "" {
		if a.Tokens, err = auth.Open(f.tokens); err != nil {
			return nil, err
		}
	} else if host, _, err := net.SplitHostPort(listen); err == nil && auth.IsLoopback(host) && !f.insecure {
		// Without tokens a loopback relay serves only its own machine.
		a.LoopbackOnly = true
	}
	sec := &security{access: a}
	if f.tlsCert != "" {
		sec.certs = &certHolder{certFile: f.tlsCert, keyFile: f.tlsKey}
		if err := sec.certs.load(); err != nil {
			return nil, err
		}
	}
	if f.rateLimit > 0 {
		cfg.PublishRate = limit.NewRate(f.rateLimit, f.rateBurst)
	}
	if f.ingestRate <= 0 || f.ingestBurst < 1 {
		return nil, cli.Usagef("--ingest-rate and --ingest-burst must be positive")
	}
	a.IngestRate = limit.NewRate(f.ingestRate, f.ingestBurst)
	a.Install(cfg)
	return sec, nil
}

// listener wraps l in TLS when --tls-cert is given, and returns the URL
// scheme clients use.
func (sec *security) listener(l net.Listener) (net.Listener, string) {
	if sec.certs == nil {
		return l, "http"
	}
	conf := &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: sec.certs.get,
		// WebSocket upgrades need HTTP/1.1; the relay serves nothing else.
		NextProtos: []string{"http/1.1"},
	}
	return tls.NewListener(l, conf), "https"
}

// reload is SIGHUP: read the token file and the certificate again, then
// close the subscribers whose token no longer allows them (1008). On an
// error the old tokens or certificate stay in force.
func (sec *security) reload(s *relay.Server, log *slog.Logger) {
	if sec.certs != nil {
		if err := sec.certs.load(); err != nil {
			log.Error("TLS certificate not reloaded, keeping the old one", "err", err)
		} else {
			log.Info("TLS certificate reloaded")
		}
	}
	if sec.access.Tokens == nil {
		return
	}
	n, err := sec.access.Tokens.Reload()
	if err != nil {
		log.Error("tokens not reloaded, keeping the old ones", "err", err)
		return
	}
	closed := s.Reauthorize()
	log.Info("tokens reloaded", "tokens", n, "subscribers_closed", closed)
}

// handleSIGHUP reloads on every SIGHUP until the returned stop is called
// (which waits for a reload in progress). Without tokens or TLS there is
// nothing to reload, but SIGHUP is still caught: by default it would kill
// the relay.
func (sec *security) handleSIGHUP(s *relay.Server, log *slog.Logger) (stop func()) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	quit := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-hup:
				if sec.access.Tokens == nil && sec.certs == nil {
					log.Info("SIGHUP: nothing to reload (no --tokens, no --tls-cert)")
					continue
				}
				sec.reload(s, log)
			case <-quit:
				return
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			signal.Stop(hup)
			close(quit)
			<-done
		})
	}
}

// certHolder holds the TLS certificate, swapped whole by load.
type certHolder struct {
	certFile, keyFile string
	mu                sync.RWMutex // guards cert
	cert              *tls.Certificate
}

func (h *certHolder) load() error {
	c, err := tls.LoadX509KeyPair(h.certFile, h.keyFile)
	if err != nil {
		return fmt.Errorf("TLS certificate: %w", err)
	}
	h.mu.Lock()
	h.cert = &c
	h.mu.Unlock()
	return nil
}

func (h *certHolder) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.cert, nil
}
