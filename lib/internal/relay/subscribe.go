package relay

import (
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/tl-sh/tl/lib/event"
	"github.com/tl-sh/tl/lib/internal/metrics"
	"github.com/tl-sh/tl/lib/internal/tlog"
)

// filter is a subscriber's server-side filter (tl-protocol(7): type, path).
type filter struct {
	types uint8    // bit 1<<event.Type per wanted type; 0 wants all
	paths []string // path prefixes, any of which matches; none wants all
}

func (f *filter) all() bool { return f.types == 0 && len(f.paths) == 0 }

// match reports whether the delivered line passes the filter.
func (f *filter) match(line []byte) bool {
	if f.all() {
		return true
	}
	typ, path, ok := event.LineTypePath(line)
	if !ok {
		return true // not an event line: never hide it
	}
	if f.types != 0 && f.types&(1<<typ) == 0 {
		return false
	}
	if len(f.paths) == 0 {
		return true
	}
	for _, p := range f.paths {
		if event.PathHasPrefix(path, p) {
			return true
		}
	}
	return false
}

// streamQuery is a parsed subscribe request.
type streamQuery struct {
	filter   filter
	last     int64 // -1: not asked
	since    uint64
	hasSince bool
	epoch    string
	// limit is how many deliveries to send before closing the stream
	// (-1: no limit).
	limit int64
	// until ends the stream once every event up to this seq was sent or
	// filtered out; untilNow means the newest seq at subscribing (the
	// hello's last_seq).
	until    uint64
	hasUntil bool
	untilNow bool
}

// streamParams are the query parameters a stream takes (tl-protocol(7)). Any
// other is refused by name: a mistyped ?types=click or ?lst=5 silently
// ignored would stream something else than what was asked.
var streamParams = map[string]bool{
	"type": true, "path": true, "last": true, "since": true, "epoch": true, "limit": true, "until": true,
}

func parseStreamQuery(q url.Values) (streamQuery, *HTTPError) {
	sq := streamQuery{last: -1, limit: -1}
	for k := range q {
		if !streamParams[k] {
			return sq, httpErrorf(http.StatusBadRequest, "unknown parameter %q: a stream takes type, path, last, since, epoch, limit, until", k)
		}
	}
	for _, v := range q["type"] {
		for _, name := range strings.Split(v, ",") {
			typ := event.ParseType(strings.TrimSpace(name))
			if typ == event.TypeNone {
				return sq, httpErrorf(http.StatusBadRequest, "type %q: type must be one of pageview, click, custom", name)
			}
			sq.filter.types |= 1 << typ
		}
	}
	for _, p := range q["path"] {
		if p == "" {
			continue
		}
		sq.filter.paths = append(sq.filter.paths, p)
	}
	if v := q.Get("last"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return sq, httpErrorf(http.StatusBadRequest, "last=%q: must be a number of events >= 0", v)
		}
		sq.last = n
	}
	if v := q.Get("since"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return sq, httpErrorf(http.StatusBadRequest, "since=%q: must be a seq >= 0", v)
		}
		sq.since, sq.hasSince = n, true
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return sq, httpErrorf(http.StatusBadRequest, "limit=%q: must be a number of events >= 0", v)
		}
		sq.limit = n
	}
	if v := q.Get("until"); v != "" {
		if v == "now" {
			sq.untilNow = true
		} else {
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				return sq, httpErrorf(http.StatusBadRequest, "until=%q: must be a seq >= 0 or now", v)
			}
			sq.until = n
		}
		sq.hasUntil = true
	}
	sq.epoch = q.Get("epoch")
	if sq.hasSince && sq.last >= 0 {
		return sq, httpErrorf(http.StatusBadRequest, "use either last or since, not both")
	}
	return sq, nil
}

// end returns where the stream ends, given the log's newest seq and epoch
// at subscribing: the seq after which it closes (ok false: it follows). An
// until of another epoch than the log's (a resume across a restart that
// lost the history) means now: its seqs name other events.
func (sq *streamQuery) end(newest uint64, epoch string) (until uint64, ok bool) {
	switch {
	case !sq.hasUntil:
		return 0, false
	case sq.untilNow, sq.epoch != "" && sq.epoch != epoch:
		return newest, true
	}
	return sq.until, true
}

// scanWindow is how many lines lastMatching reads at a time, walking a
// filtered history back from its newest line.
const scanWindow = 4096

// lastMatching returns the seq of the n-th newest line of log (oldest..
// newest) that passes f, or oldest when fewer pass: where a filtered last=N
// starts, so that N counts the events the subscriber will receive, not the
// lines it would have been sent unfiltered. It reads the history back from
// its newest line a window at a time, so it stops as soon as it has found n.
func lastMatching(log tlog.Log, f *filter, n, oldest, newest uint64) uint64 {
	var seqs []uint64 // the matching seqs of one window, in order
	var buf [][]byte
	for end := newest + 1; end > oldest; {
		from := oldest
		if end-oldest > scanWindow {
			from = end - scanWindow
		}
		seqs = seqs[:0]
		evicted := false
		for cur := from; cur < end; {
			lines, next, gap, err := log.Read(cur, buf[:0], int(min(end-cur, scanWindow)), math.MaxInt)
			if err != nil {
				return newest + 1 // the log closed: the relay is going away
			}
			if !gap.Empty() {
				evicted = true // the history moved on meanwhile
			}
			first := next - uint64(len(lines))
			for i, l := range lines {
				if s := first + uint64(i); s < end && f.match(l) {
					seqs = append(seqs, s)
				}
			}
			clear(lines) // drop the references to the log's lines
			buf = lines[:0]
			if next <= cur {
				break // nothing more to read
			}
			cur = next
		}
		if uint64(len(seqs)) >= n {
			return seqs[uint64(len(seqs))-n]
		}
		n -= uint64(len(seqs))
		if evicted {
			break
		}
		end = from
	}
	o, _ := log.Bounds()
	return o
}

// start returns the cursor a new subscriber starts at, and the gap line to
// send first when its resume epoch is not the log's.
func (sq *streamQuery) start(oldest, newest uint64, epoch string) (cursor uint64, epochGap *tlog.Gap) {
	switch {
	case sq.hasSince && sq.epoch != "" && sq.epoch != epoch:
		// The numbering restarted: replay the whole new history, after
		// a gap line naming what of it is gone, if anything is.
		return oldest, newEpochGap(oldest)
	case sq.hasSince:
		if sq.since >= newest {
			return newest + 1, nil
		}
		return sq.since + 1, nil // Read reports an eviction gap
	case sq.last >= 0:
		if held := newest + 1 - oldest; uint64(sq.last) >= held {
			return oldest, nil
		}
		return newest + 1 - uint64(sq.last), nil
	default:
		return newest + 1, nil
	}
}

// resumer is a log shared by several relays (Redis), which a subscriber
// resuming beyond the newest seq the relay knows, or from an epoch it does
// not know, may show to be behind or to have gone back in time: Resume asks
// the broker, catches up with its epoch and newest seq, and starts a new
// epoch if the numbering went back, so that the subscriber is told of it
// rather than given those seqs again for other events. It fails when the
// broker does not answer.
type resumer interface {
	Resume(epoch string, since uint64) error
}

// newEpochGap is the gap owed to a subscriber whose numbering restarted:
// the part of the new numbering already gone, 1..oldest-1, or nil when
// nothing is. A gap line always names A..B with A <= B (tl-protocol(7): events
// A..B will never arrive); the hello's epoch alone tells the restart.
func newEpochGap(oldest uint64) *tlog.Gap {
	if oldest <= 1 {
		return nil
	}
	return &tlog.Gap{From: 1, To: oldest - 1}
}

// subscribe serves GET /v1/tenants/{tenant}/stream: a WebSocket when the
// request asks for an upgrade, else chunked NDJSON.
func (s *Server) subscribe(w http.ResponseWriter, r *http.Request, name string) {
	sq, herr := parseStreamQuery(r.URL.Query())
	if herr != nil {
		writeError(w, herr)
		return
	}
	t, herr := s.reg.acquire(name, true)
	if herr != nil {
		noteReason(r, herr.Reason)
		writeError(w, herr)
		return
	}
	sub := &subscriber{s: s, t: t, authReq: s.authRequest(r), revoked: make(chan struct{})}
	if !s.beginStream(sub) {
		s.reg.release(t, true)
		writeError(w, unavailable("the relay is shutting down"))
		return
	}
	// Reauthorize (SIGHUP) walks the registered streams, so a reload
	// between the check in ServeHTTP and beginStream would miss this one:
	// check again now that it is registered.
	if s.cfg.Authorize != nil {
		if err := s.cfg.Authorize(sub.authReq, name, ScopeSubscribe); err != nil {
			s.endStream(sub)
			s.reg.release(t, true)
			he, ok := err.(*HTTPError)
			if !ok {
				he = httpErrorf(http.StatusForbidden, "%v", err)
			}
			writeError(w, he)
			return
		}
	}
	end := sub.finish

	oldest, newest := t.log.Bounds()
	epoch := t.log.Epoch()
	if epoch == "" {
		// A shared backing that could not learn the tenant's epoch (its
		// broker went away just now): a hello without one would be a lie.
		s.endStream(sub)
		s.reg.release(t, true)
		writeError(w, unavailable("tenant %s: the broker is unreachable", name))
		return
	}
	if r, ok := t.log.(resumer); ok && sq.hasSince && sq.epoch != "" && (sq.epoch != epoch || sq.since > newest) {
		// The client saw what this relay has not: a seq past its newest
		// (the log may be behind, or its broker went back in time), or
		// another epoch (the broker may have started a new one that this
		// relay has not heard of yet; without asking, the client would be
		// sent the old epoch and then the new one's seqs again). See
		// resumer.
		if err := r.Resume(sq.epoch, sq.since); err != nil {
			// Unanswered, the relay cannot tell the client where it
			// stands: its own view may be the stale one.
			s.endStream(sub)
			s.reg.release(t, true)
			writeError(w, unavailable("tenant %s: the broker is unreachable to check the resume point", name))
			return
		}
		oldest, newest = t.log.Bounds()
		epoch = t.log.Epoch()
	}
	sub.cursor = cursor{log: t.log, tenant: name, filter: sq.filter, epoch: epoch, limit: sq.limit}
	var epochGap *tlog.Gap
	sub.seq, epochGap = sq.start(oldest, newest, epoch)
	if sq.last > 0 && !sq.filter.all() && !sq.hasSince {
		// last=N counts the events that pass the filter.
		sub.seq = lastMatching(t.log, &sq.filter, uint64(sq.last), oldest, newest)
	}
	sub.until, sub.hasUntil = sq.end(newest, epoch)
	sub.m = t.m.Subscribe(sub.seq - 1) // closed by end
	sub.remote = r.RemoteAddr

	if !websocket.IsWebSocketUpgrade(r) {
		defer end()
		sub.serveNDJSON(w, r)
		return
	}
	ws, err := s.upgrader.Upgrade(w, r, nil)
	if err != nil {
		end()
		return // the upgrader has answered
	}
	if hook := testHookUpgraded.Load(); hook != nil {
		(*hook)()
	}
	sub.controls = true
	sub.pending = event.AppendHello(nil, name, epoch, newest)
	if epochGap != nil {
		sub.pending = event.AppendGap(sub.pending, epochGap.From, epochGap.To, event.GapEpoch)
		sub.m.Gap(metrics.GapEpoch, epochGap.From, epochGap.To)
	}
	if conn, fd, ok := s.hubConn(ws); ok {
		// The tenant's hub serves it from now on; gorilla's Conn, which
		// read nothing past the handshake, is let go.
		s.attach(sub, conn, fd)
		return
	}
	sub.mu.Lock()
	sub.ws = ws
	forced := sub.forced
	sub.mu.Unlock()
	if forced {
		ws.NetConn().Close() // the drain ran out of time meanwhile
	}
	// The writer runs in a goroutine of its own, so that this one (net/http's
	// connection goroutine, with its deep stack, the request and the
	// connection's 4 KiB buffers) ends now: that halves an idle
	// subscriber's memory.
	go func() {
		defer end()
		sub.serveWS()
	}()
}

// testHookUpgraded, when a test sets it, runs between a stream's upgrade
// and its handing to a hub or a writer (TestDrainCutAtUpgrade).
var testHookUpgraded atomic.Pointer[func()]

// subscriber is one stream: a cursor into its tenant's log. A WebSocket on
// a plain socket (on Linux) is served by its tenant's hub and read by the
// relay's poller; any other stream by goroutines of its own: a writer
// (serveWS, serveNDJSON) and, for a WebSocket, a reader. Its fields are
// grouped by owner: the cursor and the engine's state belong to the engine
// serving it; the rest is shared, under the locks named.
type subscriber struct {
	cursor // what it is sent next (cursor.go)

	s      *Server
	t      *tenant
	remote string // the client's address, for logs

	mu     sync.Mutex      // guards ws, hub (set once, read by forceClose and revoke) and forced
	ws     *websocket.Conn // nil for a chunked stream
	hub    *hub            // the hub serving it, if one does
	forced bool            // forceClose ran: close it as soon as it has a hub or a writer

	lastPong time.Time  // guarded by pongMu
	pongMu   sync.Mutex // guards lastPong and what the poller heard (hubSub)

	authReq    *http.Request // what Reauthorize shows Authorize again; nil without it
	revoked    chan struct{} // closed by revoke: the engine closes with 1008
	revokeOnce sync.Once

	writerSub // the goroutine engine's state (writer.go)
	hubSub    // the hub engine's state (hub.go)
}

// finish lets sub go: its counters, its place among the streams and its
// hold on the tenant.
func (sub *subscriber) finish() {
	sub.m.Close()
	sub.s.endStream(sub)
	sub.s.reg.release(sub.t, true)
}

// authRequest keeps, for Reauthorize, only what Authorize looks at (Host
// and the Authorization and Origin headers) rather than the whole request,
// which an idle subscriber would otherwise hold for its life.
func (s *Server) authRequest(r *http.Request) *http.Request {
	if s.cfg.Authorize == nil {
		return nil
	}
	h := http.Header{}
	for _, k := range []string{"Authorization", "Origin"} {
		if v, ok := r.Header[k]; ok {
			h[k] = v
		}
	}
	return &http.Request{Method: r.Method, Host: r.Host, Header: h, URL: &url.URL{Path: r.URL.Path}}
}

// revoke tells the engine that the subscriber lost its right to the stream.
func (sub *subscriber) revoke() {
	sub.revokeOnce.Do(func() {
		close(sub.revoked)
		sub.mu.Lock()
		h := sub.hub
		sub.mu.Unlock()
		if h != nil {
			sub.kick(evRevoke)
		}
	})
}

func (sub *subscriber) isRevoked() bool {
	select {
	case <-sub.revoked:
		return true
	default:
		return false
	}
}

// forceClose closes the subscriber's socket at once (drain timeout).
func (sub *subscriber) forceClose() {
	sub.mu.Lock()
	defer sub.mu.Unlock()
	sub.forced = true // attach or subscribe closes a stream not yet handed on
	if sub.hub != nil {
		sub.kick(evGone) // the hub closes it (it alone uses the descriptor)
		return
	}
	if sub.ws != nil {
		sub.ws.NetConn().Close()
	}
}
