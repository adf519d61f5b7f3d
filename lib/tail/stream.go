package tail

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/tl-sh/tl/lib/cli"
	"github.com/tl-sh/tl/lib/event"
	"github.com/tl-sh/tl/lib/internal/client"
	"github.com/tl-sh/tl/lib/internal/drain"
)

// Tuning of the connection.
const (
	handshakeTimeout = 15 * time.Second // dialling and the upgrade, together
	writeWait        = time.Second      // to write the close frame
	closeWait        = time.Second      // for the relay to answer our close frame
	readBufferSize   = 64 << 10         // the WebSocket read buffer: a packed message in few reads
	maxMessage       = 16 << 20         // a broken relay cannot make us hold more than this at once
)

// Reconnect waits: exponential backoff with full jitter (client.Backoff),
// so that many tails cut off together by a relay restart come back spread
// out rather than in a herd.
const (
	backoffBase = 500 * time.Millisecond // the first wait's ceiling
	backoffCap  = 30 * time.Second       // no wait is longer
)

// tail is one run of tl-tail. Its stream state is owned by the goroutine
// that runs follow.
type tail struct {
	opts      *options
	env       *cli.Env
	status    *status
	out       *drain.Writer
	backoff   client.Backoff
	closeWait time.Duration
	dialer    *websocket.Dialer

	epoch     string // the history's epoch, once known
	lastSeq   uint64 // the seq to resume after, when haveSeq
	haveSeq   bool
	tenant    string        // the tenant this stream follows
	printed   *atomic.Int64 // deliveries handed to stdout, over every tenant of the run
	hello     bool          // the current connection said hello
	connected bool          // some connection said hello
	buf       []byte

	// With --no-follow: the newest seq at connecting (the first hello's
	// last_seq), where the relay ends the stream (until=SEQ), once known.
	target     uint64
	haveTarget bool
	toldEmpty  bool // said that the tenant holds no events yet
	hinted     bool // gave the "is tl-relay running" hint

	http *http.Client // for the tenant listing; made on first use
	// whole: start at the oldest event held (a tenant that joined a
	// following run: whatever it holds is news).
	whole bool
}

func newTail(o *options, env *cli.Env) *tail {
	return &tail{
		opts:      o,
		env:       env,
		status:    &status{quiet: o.quiet, w: env.Stderr, mu: new(sync.Mutex)},
		backoff:   client.Backoff{Base: backoffBase, Cap: backoffCap, Rand: rand.Int64N},
		closeWait: closeWait,
		dialer: &websocket.Dialer{
			Proxy:            http.ProxyFromEnvironment,
			HandshakeTimeout: handshakeTimeout,
			TLSClientConfig:  o.conn.TLS,
			ReadBufferSize:   readBufferSize,
		},
		tenant:  o.tenant,
		printed: new(atomic.Int64),
		epoch:   o.epoch,
		lastSeq: o.since,
		haveSeq: o.hasSince,
	}
}

// forTenant returns a stream of another tenant in the same run: the same
// options, connection, stdout and count, status lines named after it. A
// tenant that joins while the run follows (whole) starts at the oldest event
// the relay holds, so that nothing published before the run noticed it is
// missed.
func (t *tail) forTenant(name string, whole bool) *tail {
	return &tail{
		opts:      t.opts,
		env:       t.env,
		status:    t.status.about(name),
		out:       t.out,
		backoff:   t.backoff,
		closeWait: t.closeWait,
		dialer:    t.dialer,
		tenant:    name,
		printed:   t.printed,
		whole:     whole,
	}
}

// refusal is a handshake the relay answered with an HTTP status instead of
// an upgrade.
type refusal struct {
	code       int
	msg        string
	retryAfter time.Duration
	html       bool   // the answer was a web page: not a tl-relay
	relay      string // the relay's URL, for the hint
}

func (r *refusal) Error() string {
	s := fmt.Sprintf("relay answered %d %s", r.code, http.StatusText(r.code))
	if r.html {
		// Another web server's page says nothing useful here.
		return s + fmt.Sprintf(" with an HTML page: is tl-relay running at %s? (TL_RELAY)", r.relay)
	}
	if r.msg != "" {
		s += ": " + r.msg
	}
	if r.code == http.StatusUnauthorized || r.code == http.StatusForbidden {
		s += " (the token comes from TL_TOKEN or --token-file)"
	}
	return s
}

// final reports whether retrying cannot help: a bad request, a missing or
// insufficient token, an unknown endpoint, or a server that answers without
// upgrading.
func (r *refusal) final() bool {
	switch r.code {
	case http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound:
		return true
	}
	return r.code < 300
}

func refusalFrom(resp *http.Response, relay string) *refusal {
	r := &refusal{code: resp.StatusCode, relay: relay}
	r.retryAfter, _ = client.RetryAfter(resp.Header.Get("Retry-After"), time.Now())
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	var e struct {
		Error string `json:"error"`
	}
	switch {
	case json.Unmarshal(body, &e) == nil && e.Error != "":
		r.msg = e.Error
	case isHTML(resp.Header.Get("Content-Type"), body):
		r.html = true
	default:
		r.msg = strings.TrimSpace(string(body))
		if len(r.msg) > maxRefusalText {
			r.msg = r.msg[:maxRefusalText] + "..."
		}
	}
	return r
}

// maxRefusalText bounds how much of a refusal's body that is not the
// relay's JSON goes into the status line: a hint, not a page.
const maxRefusalText = 200

// isHTML reports whether an answer is a web page (tl-relay answers JSON).
func isHTML(ctype string, body []byte) bool {
	if strings.HasPrefix(strings.ToLower(ctype), "text/html") {
		return true
	}
	b := bytes.TrimSpace(body)
	return len(b) > 0 && b[0] == '<'
}

// follow connects and reconnects until the run ends; it returns the reason.
func (t *tail) follow(ctx context.Context) error {
	failures := 0
	for {
		err := t.connect(ctx)
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		var end endRun
		if errors.As(err, &end) {
			return end.err
		}
		var ref *refusal
		if errors.As(err, &ref) && ref.final() {
			return cli.Exit(cli.ExitFailure, err)
		}
		if t.hello {
			failures = 0
		}
		failures++
		if t.opts.maxRetries >= 0 && failures > t.opts.maxRetries {
			return cli.Exit(cli.ExitFailure, fmt.Errorf("%w (giving up: --max-retries %d)", err, t.opts.maxRetries))
		}
		wait := t.backoff.Delay(failures)
		if ref != nil && ref.retryAfter > wait {
			wait = ref.retryAfter
		}
		t.status.progress("%v; reconnecting in %v", err, wait.Round(time.Millisecond))
		timer := time.NewTimer(wait)
		select {
		case <-timer.C:
		case <-ctx.Done():
			timer.Stop()
			return context.Cause(ctx)
		}
	}
}

// streamURL is the subscribe URL for the next connection: the filters, and
// where to start (resume after lastSeq, or the history's last N, or live).
func (t *tail) streamURL() string {
	q := url.Values{}
	for _, typ := range t.opts.types {
		q.Add("type", typ)
	}
	if t.opts.path != "" {
		q.Set("path", t.opts.path)
	}
	switch {
	case t.haveSeq:
		q.Set("since", strconv.FormatUint(t.lastSeq, 10))
		if t.epoch != "" {
			q.Set("epoch", t.epoch)
		}
	case t.lastN() > 0:
		q.Set("last", strconv.FormatInt(t.lastN(), 10))
	}
	if t.opts.noFollow {
		// The relay ends the stream once it passed the newest seq of the
		// first connection; until then it is the newest at connecting.
		if t.haveTarget {
			q.Set("until", strconv.FormatUint(t.target, 10))
		} else {
			q.Set("until", "now")
		}
	}
	u := t.opts.conn.URL(client.StreamPath(t.tenant), q)
	if u.Scheme == "https" {
		u.Scheme = "wss"
	} else {
		u.Scheme = "ws"
	}
	return u.String()
}

// lastN is how many events of the history to ask for first: -n, or with
// --no-follow and no -n or --since, all that the relay holds.
func (t *tail) lastN() int64 {
	if t.whole || (t.opts.noFollow && t.opts.last == 0 && !t.opts.hasSince) {
		return math.MaxInt64
	}
	return int64(t.opts.last)
}

// filtered reports whether the relay filters the stream (--type, --path).
func (t *tail) filtered() bool { return len(t.opts.types) > 0 || t.opts.path != "" }

// connect runs one connection to its end and says why it ended.
func (t *tail) connect(ctx context.Context) error {
	t.hello = false
	h := http.Header{}
	t.opts.conn.Authorize(h)
	conn, resp, err := t.dialer.DialContext(ctx, t.streamURL(), h)
	if err != nil {
		relay := t.opts.conn.Relay.Redacted()
		if resp != nil && resp.StatusCode != http.StatusSwitchingProtocols {
			return refusalFrom(resp, relay)
		}
		if client.IsCertError(err) {
			// Final: retrying cannot make the certificate trusted.
			return endRun{cli.Exit(cli.ExitFailure, fmt.Errorf("cannot connect to %s: %w (%s)", relay, err, client.CertHint))}
		}
		if !t.connected && !t.hinted {
			// The first failure says what is most likely wrong.
			t.hinted = true
			return fmt.Errorf("cannot connect to %s: %w; is tl-relay running at %s? (TL_RELAY)", relay, err, relay)
		}
		return fmt.Errorf("cannot connect to %s: %w", relay, err)
	}
	defer conn.Close()
	return t.serve(ctx, conn)
}

// serve reads conn until it ends. When ctx ends (or the count is reached,
// or stdout fails) it closes the WebSocket with 1000 and waits a moment for
// the relay's answer, so that the relay sees a subscriber leave rather than
// a connection drop.
func (t *tail) serve(ctx context.Context, conn *websocket.Conn) error {
	connCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stopped := make(chan struct{})
	closerDone := make(chan struct{})
	// The closer: the only one to close conn while the reader runs; it
	// ends before serve returns.
	go func() {
		defer close(closerDone)
		select {
		case <-connCtx.Done():
		case <-stopped:
			return
		}
		conn.WriteControl(websocket.CloseMessage,
			websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(writeWait))
		timer := time.NewTimer(t.closeWait)
		defer timer.Stop()
		select {
		case <-stopped:
		case <-timer.C:
			conn.Close() // the relay did not answer: end the read
		}
	}()
	err := t.read(connCtx, cancel, conn)
	close(stopped)
	<-closerDone
	return err
}

// read is the read loop: whole messages into one reused buffer, handed to
// process. Once connCtx ends it only reads on to the relay's close answer.
func (t *tail) read(connCtx context.Context, cancel context.CancelCauseFunc, conn *websocket.Conn) error {
	conn.SetReadLimit(maxMessage)
	for {
		_, r, err := conn.NextReader()
		if err == nil && connCtx.Err() == nil {
			t.buf, err = readMessage(r, t.buf[:0])
			if err == nil {
				if perr := t.process(connCtx, t.buf); perr != nil {
					cancel(endRun{perr})
				}
				continue
			}
		}
		if connCtx.Err() != nil {
			if err != nil {
				return context.Cause(connCtx)
			}
			continue // closing: discard what still comes
		}
		var ce *websocket.CloseError
		if t.opts.noFollow && errors.As(err, &ce) && ce.Code == websocket.CloseNormalClosure {
			// The relay ended the stream at until: the history is out.
			return endRun{errEndOfHistory}
		}
		return describe(err)
	}
}

// endRun is a reason to end the whole run, not only the connection: the
// count was reached, or stdout failed.
type endRun struct{ err error }

func (e endRun) Error() string { return e.err.Error() }
func (e endRun) Unwrap() error { return e.err }

// readMessage appends the whole message in r to buf.
func readMessage(r io.Reader, buf []byte) ([]byte, error) {
	if cap(buf) == 0 {
		buf = make([]byte, 0, readBufferSize)
	}
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}

// describe turns a read error into a short reason for the status line.
func describe(err error) error {
	var ce *websocket.CloseError
	if errors.As(err, &ce) {
		switch ce.Code {
		case websocket.CloseGoingAway:
			return errors.New("the relay is shutting down (1001)")
		case websocket.CloseAbnormalClosure: // no close frame: the connection broke
			return fmt.Errorf("connection lost: %s", ce.Text)
		case websocket.ClosePolicyViolation:
			return fmt.Errorf("the relay closed the connection: policy (1008): %s", ce.Text)
		}
		return fmt.Errorf("the relay closed the connection (%d %s)", ce.Code, ce.Text)
	}
	return fmt.Errorf("connection lost: %w", err)
}

var seqKey = []byte(`{"seq":`)

// process hands one message's deliveries to stdout, in runs of consecutive
// lines (usually the whole message at once), and acts on its control lines.
// It never decodes a delivery: seq comes from the `{"seq":N,` prefix.
func (t *tail) process(ctx context.Context, msg []byte) error {
	if len(msg) > 0 && msg[len(msg)-1] != '\n' {
		msg = append(msg, '\n') // the last line of a message need not end in one
		t.buf = msg
	}
	run := 0 // start of the pending run of deliveries
	for i := 0; i < len(msg); {
		end := i + bytes.IndexByte(msg[i:], '\n') + 1
		line := msg[i:end]
		deliver := true
		switch {
		case bytes.HasPrefix(line, seqKey):
			if seq, ok := event.LineSeq(line); ok {
				if t.haveSeq && seq <= t.lastSeq {
					deliver = false // printed before: a relay resent it
				} else {
					t.lastSeq, t.haveSeq = seq, true
				}
			}
		case event.IsControl(line):
			deliver = false
			t.control(line)
		case len(bytes.TrimSpace(line)) == 0:
			deliver = false // a keep-alive
		}
		if !deliver {
			if err := t.out.WriteLines(ctx, msg[run:i]); err != nil {
				return err
			}
			run = end
		} else if n := t.printed.Add(1); t.opts.count > 0 && n >= t.opts.count {
			// Each delivery takes its number first, so the streams of
			// several tenants print exactly -c N between them.
			if n > t.opts.count {
				end = i // another tenant's stream printed the N-th
			}
			if err := t.out.WriteLines(ctx, msg[run:end]); err != nil {
				return err
			}
			return errCountReached
		}
		i = end
	}
	return t.out.WriteLines(ctx, msg[run:])
}

// control acts on a control line: it never reaches stdout.
func (t *tail) control(line []byte) {
	c, err := event.ParseControl(line)
	if err != nil {
		t.status.progress("ignoring %v", err)
		return
	}
	switch c.Control {
	case event.Hello:
		t.onHello(c)
	case event.Gap:
		t.onGap(c)
	}
}

func (t *tail) onHello(c event.Control) {
	t.hello = true
	relay := t.opts.conn.Relay.Redacted()
	switch {
	case t.epoch != "" && c.Epoch != t.epoch:
		t.status.loss("the relay's history restarted (epoch %s, was %s): events after seq %d of the old epoch that were not printed are lost; following the new epoch",
			c.Epoch, t.epoch, t.lastSeq)
		t.lastSeq = 0 // the numbering restarted
	case t.connected:
		if t.haveSeq {
			t.status.progress("reconnected to %s: resumed after seq %d", relay, t.lastSeq)
		} else {
			t.status.progress("reconnected to %s", relay)
		}
	case t.opts.hasSince && c.LastSeq < t.lastSeq:
		// The relay goes live at its newest seq when --since is past it
		// (tl-protocol(7)'s resume has nothing to send yet), so every new
		// event would have a seq we take for printed already. Only the
		// first connection's resume point can be wrong this way: later
		// ones are seqs this epoch did deliver, and a relay that is
		// behind them (a replica still catching up on a shared broker)
		// sends them again, to be skipped, not printed twice.
		t.status.loss("connected to %s, tenant %s (epoch %s, newest seq %d): the relay is behind --since %d: following from seq %d",
			relay, c.Tenant, c.Epoch, c.LastSeq, t.lastSeq, c.LastSeq+1)
		t.lastSeq = c.LastSeq
	case t.opts.hasSince:
		t.status.progress("connected to %s, tenant %s (epoch %s, newest seq %d): resuming after seq %d",
			relay, c.Tenant, c.Epoch, c.LastSeq, t.lastSeq)
	default:
		t.status.progress("connected to %s, tenant %s (epoch %s, newest seq %d)", relay, c.Tenant, c.Epoch, c.LastSeq)
	}
	if t.opts.noFollow && (!t.haveTarget || c.Epoch != t.epoch) {
		// The relay ends this stream at last_seq (an until of another
		// epoch means its newest, the same).
		t.target, t.haveTarget = c.LastSeq, true
	}
	if c.LastSeq == 0 && !t.toldEmpty {
		// Most often a mistyped tenant: say it once rather than wait in
		// silence.
		t.toldEmpty = true
		if t.opts.noFollow {
			t.status.progress("tenant %s holds no events yet", c.Tenant)
		} else {
			t.status.progress("tenant %s holds no events yet; waiting (Ctrl-C to stop)", c.Tenant)
		}
	}
	t.epoch = c.Epoch
	t.connected = true
	if !t.haveSeq && !(t.filtered() && t.lastN() > 0) {
		// Nothing printed yet: a reconnect must resume where this stream
		// starts, not ask for the newest N (or the live head) again,
		// which would skip what is published meanwhile. The relay starts
		// a live stream after last_seq and a -n N replay after
		// last_seq-N (or at its oldest line, which is later). A filtered
		// -n N starts at the N-th newest matching event, which the hello
		// does not say: until a delivery comes, a reconnect asks for the
		// newest N matching again.
		base := c.LastSeq
		if n := uint64(t.lastN()); n < base {
			base -= n
		} else {
			base = 0
		}
		t.lastSeq, t.haveSeq = base, true
	}
}

func (t *tail) onGap(c event.Control) {
	n := int64(0)
	if c.ToSeq >= c.FromSeq {
		n = int64(c.ToSeq - c.FromSeq + 1)
	}
	why := c.Reason
	switch c.Reason {
	case event.GapEvicted:
		why = "older than the relay's history (evicted)"
		// Resuming must not ask for them again.
		if c.ToSeq > t.lastSeq {
			t.lastSeq, t.haveSeq = c.ToSeq, true
		}
	case event.GapEpoch:
		if n == 0 {
			return // the new epoch lost nothing: the hello said it all
		}
		why = "the relay restarted without its history, and these of the new epoch are gone too (epoch)"
	}
	t.status.loss("gap: %d %s lost (seq %d..%d): %s", n, plural(n, "event"), c.FromSeq, c.ToSeq, why)
}
