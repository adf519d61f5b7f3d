package relay

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/tl-sh/tl/lib/event"
	"github.com/tl-sh/tl/lib/internal/limit"
	"github.com/tl-sh/tl/lib/internal/ndjson"
	"github.com/tl-sh/tl/lib/internal/tlog"
)

// maxIdempotencyKey is the longest Idempotency-Key (tl-protocol(7)).
const maxIdempotencyKey = 128

// ingest is the reusable state of one POST: a validator, a line scanner and
// the encoded bodies. Pooled, so a steady stream of POSTs allocates little.
type ingest struct {
	v      event.Validator
	sc     *ndjson.Scanner
	buf    []byte   // the encoded bodies, back to back
	ends   []int    // end offset of each body in buf
	bodies [][]byte // views of buf, built once buf stops growing
	// startCap is cap(buf) when the request took the ingest from the pool:
	// memory held already, counted by use until the batch outgrows it.
	startCap int
	res      reservation // the request's part of the in-flight budget

	// The request the log asks for its bodies through load (bound once,
	// so that a POST allocates no closure), and the NDJSON line a refusal
	// of the body concerns.
	s          *Server
	w          http.ResponseWriter
	r          *http.Request
	t          *tenant
	ndjsonBody bool
	load       func() ([][]byte, error)
	line       int
}

var ingestPool = sync.Pool{New: func() any {
	in := &ingest{sc: ndjson.NewScanner(nil, event.MaxEventSize)}
	in.load = in.loadBodies
	return in
}}

// loadBodies reads and validates the request's body: tlog.Batch.Load.
func (in *ingest) loadBodies() ([][]byte, error) {
	herr, line := in.s.ingest(in.w, in.r, in.t, in.ndjsonBody, in)
	if herr != nil {
		in.line = line
		return nil, herr
	}
	return in.views(), nil
}

// maxPooledBuf keeps a rare huge batch's buffer out of the pool.
const maxPooledBuf = 1 << 20

func (in *ingest) reset() {
	in.buf, in.ends, in.bodies = in.buf[:0], in.ends[:0], in.bodies[:0]
	in.sc.Reset(nil)
	in.startCap = cap(in.buf)
	in.res = reservation{}
	in.s, in.w, in.r, in.t, in.line = nil, nil, nil, nil, 0
}

// cost is the memory the request holds, or will hold at its peak, in bytes
// (see inflight.go): its buffers, the backing's copy of the batch and the
// bookkeeping of each event; extra is what it holds besides (a body read
// whole).
func (in *ingest) cost(extra int) int64 {
	buf := len(in.buf)
	if cap(in.buf) != in.startCap {
		buf = cap(in.buf) // grown for this request: all of it is new
	}
	return int64(inflightState + extra + in.sc.Buffered() + buf + len(in.buf) + inflightPerEvent*len(in.ends))
}

func (in *ingest) add(tenant string, now int64) {
	in.buf = in.v.AppendBody(in.buf, tenant, now)
	in.ends = append(in.ends, len(in.buf))
}

func (in *ingest) views() [][]byte {
	start := 0
	for _, end := range in.ends {
		in.bodies = append(in.bodies, in.buf[start:end])
		start = end
	}
	return in.bodies
}

// publish serves POST /v1/tenants/{tenant}/events.
func (s *Server) publish(w http.ResponseWriter, r *http.Request, name string) {
	if !s.beginPost() {
		writeError(w, unavailable("the relay is shutting down"))
		return
	}
	defer s.endPost()
	// The body must arrive within BodyTimeout (net/http only bounds the
	// headers); a slow-body client is cut off with 408.
	http.NewResponseController(w).SetReadDeadline(time.Now().Add(s.cfg.BodyTimeout))

	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	ct = s.beaconType(r, name, ct) // sendBeacon's text/plain (cors.go)
	ndjsonBody := false
	switch ct {
	case "application/x-ndjson", "application/ndjson":
		ndjsonBody = true
	case "application/json":
	default:
		writeError(w, httpErrorf(http.StatusUnsupportedMediaType,
			"Content-Type must be application/json (one event) or application/x-ndjson (events, one per line), not %q", r.Header.Get("Content-Type")))
		return
	}
	key := r.Header.Get("Idempotency-Key")
	if _, ok := r.Header["Idempotency-Key"]; ok {
		if err := checkKey(key); err != nil {
			writeError(w, httpErrorf(http.StatusBadRequest, "%v", err))
			return
		}
	}

	t, herr := s.reg.acquire(name, false)
	if herr != nil {
		writeError(w, herr)
		return
	}
	defer s.reg.release(t, false)

	in := ingestPool.Get().(*ingest)
	in.startCap = cap(in.buf)
	defer func() {
		// Every path ends here (a 202, a refusal, a timeout, a client
		// gone): the reservation is given back.
		in.res.release()
		in.reset()
		if cap(in.buf) <= maxPooledBuf {
			ingestPool.Put(in)
		}
	}()
	// The log reads the body only for a batch to publish: a repeated key
	// is answered before (and without charging its rate), a repeat of a
	// batch in flight waits for its answer.
	in.s, in.w, in.r, in.t, in.ndjsonBody = s, w, r, t, ndjsonBody
	a, err := t.log.Append(r.Context(), tlog.Batch{Key: key, Load: in.load})
	if err != nil {
		var refused *HTTPError // declared here: taking its address moves it to the heap
		if !errors.As(err, &refused) {
			if r.Context().Err() != nil {
				return // the client left while its key was busy
			}
			refused = appendError(t.name, key != "", err, s.log)
		}
		writeErrorLine(w, refused, in.line)
		return
	}
	if !a.Replayed {
		t.m.Accepted(int(a.Last-a.First+1), a.Last)
	}
	writeAccepted(w, acceptedBody(a))
}

// appendError is the answer to a failed append, logged: a 504 when the
// batch may have been published, else a 503.
func appendError(tenant string, keyed bool, err error, log *slog.Logger) *HTTPError {
	if errors.Is(err, tlog.ErrOutcomeUnknown) {
		log.Error("append outcome unknown", "tenant", tenant, "err", err)
		return outcomeUnknown(tenant, keyed, err)
	}
	log.Error("append failed", "tenant", tenant, "err", err)
	return unavailable("tenant %s: %v", tenant, err)
}

// ingest reads and validates the body of r into in, returning the error to
// answer and the NDJSON line it concerns.
func (s *Server) ingest(w http.ResponseWriter, r *http.Request, t *tenant, ndjsonBody bool, in *ingest) (*HTTPError, int) {
	// A tenant already over its rate is refused before its body is read.
	if wait := s.cfg.PublishRate.Wait(t.name); wait > 0 {
		return rateLimited(t.name, wait), 0
	}
	if r.ContentLength > s.cfg.MaxBody {
		// Refused before a byte of it is read (and the connection
		// closed, as the rest of the body is not read either).
		e := httpErrorf(http.StatusRequestEntityTooLarge, "request body is larger than %d bytes", s.cfg.MaxBody)
		e.Header = http.Header{"Connection": {"close"}}
		return e, 0
	}
	now := time.Now().UnixMilli()
	// Reserve the body's memory before reading it: all of it at once when
	// its length is known, else a first part, and more as it grows.
	in.res = reservation{b: s.inflight, tenant: t.name}
	want := bodyCost(inflightChunked)
	if r.ContentLength >= 0 {
		want = bodyCost(r.ContentLength)
	}
	if herr := in.res.cover(want); herr != nil {
		herr.Header = closeHeader(herr.Header)
		return herr, 0
	}
	if ndjsonBody && r.ContentLength > int64(cap(in.buf)) {
		// Sized once for the body (the reservation covers it): no copy
		// and no garbage as the batch grows, for usual events.
		in.buf = make([]byte, 0, r.ContentLength+r.ContentLength/8)
	}
	body := http.MaxBytesReader(w, r.Body, s.cfg.MaxBody)
	maxBatch := s.cfg.PublishRate.Burst() // 0: no limit

	if ndjsonBody {
		in.sc.Reset(body)
		for in.sc.Scan() {
			n := in.sc.Line()
			if in.sc.LineErr() != nil {
				return httpErrorf(http.StatusRequestEntityTooLarge, "line %d: event is larger than 64 KiB", n), n
			}
			if err := in.v.Validate(in.sc.Bytes(), t.name); err != nil {
				return lineError(n, err), n
			}
			in.add(t.name, now)
			if maxBatch > 0 && len(in.ends) > maxBatch {
				// Over the burst it can never pass: refused now, without
				// reading the rest.
				return overBurst(t.name, maxBatch, s.cfg.PublishRate.PerSec()), 0
			}
			if c := in.cost(0); c > in.res.held {
				if herr := in.res.cover(c); herr != nil {
					herr.Header = closeHeader(herr.Header)
					return herr, 0
				}
			}
		}
		if err := in.sc.Err(); err != nil {
			return bodyError(err, s.cfg.MaxBody), 0
		}
	} else {
		data, err := io.ReadAll(io.LimitReader(body, event.MaxEventSize+4096))
		if err != nil {
			return bodyError(err, s.cfg.MaxBody), 0
		}
		if err := in.v.Validate(data, t.name); err != nil {
			return lineError(0, err), 0
		}
		in.add(t.name, now)
		if herr := in.res.cover(in.cost(cap(data))); herr != nil {
			return herr, 0
		}
	}
	if len(in.ends) == 0 {
		return httpErrorf(http.StatusBadRequest, "the body holds no event"), 0
	}
	if herr := s.limitPublish(r, t.name, len(in.ends)); herr != nil {
		return herr, 0 // the ingest keys' limit per address (cors.go)
	}
	if ok, wait := s.cfg.PublishRate.Take(t.name, len(in.ends)); !ok {
		return rateLimited(t.name, wait), 0
	}
	return nil, 0
}

// acceptedBody is the body of a 202 (without its newline), for a batch or
// the repeat of its key.
func acceptedBody(a tlog.Appended) []byte {
	return fmt.Appendf(nil, `{"accepted":%d,"first_seq":%d,"last_seq":%d,"epoch":%s}`,
		a.Last-a.First+1, a.First, a.Last, strconv.Quote(a.Epoch))
}

// rateLimited is the 429 for a tenant over its rate, wait (whole seconds)
// being when one more event may go.
func rateLimited(tenant string, wait time.Duration) *HTTPError {
	e := httpErrorf(http.StatusTooManyRequests, "tenant %s is over its publish rate limit; retry in %d s", tenant, wait/time.Second)
	e.Header = http.Header{"Retry-After": {strconv.Itoa(int(wait / time.Second))}}
	return e
}

// overBurst is the 429 for a batch of more than burst events: it can never
// pass, however long its sender waits, so the answer says how large a batch
// may be (TL-Max-Batch), for the sender to split it. Retry-After (the time
// a full burst takes to come back) is there because tl-protocol(7) promises it
// with every 429; the same batch would be refused again.
func overBurst(tenant string, burst int, perSec float64) *HTTPError {
	e := httpErrorf(http.StatusTooManyRequests,
		"tenant %s: the batch exceeds the burst of %d events of its publish rate limit; send at most %d events per request (TL-Max-Batch)", tenant, burst, burst)
	wait := limit.RoundUpSecond(time.Duration(float64(burst) / perSec * float64(time.Second)))
	e.Header = http.Header{
		"Retry-After":  {strconv.Itoa(int(wait / time.Second))},
		"Tl-Max-Batch": {strconv.Itoa(burst)},
		"Connection":   {"close"}, // the rest of the body is not read
	}
	return e
}

// closeHeader adds Connection: close to h: the body was left unread.
func closeHeader(h http.Header) http.Header {
	if h == nil {
		h = http.Header{}
	}
	h.Set("Connection", "close")
	return h
}

// lineError turns a validation error into a 400 (413 for a large event),
// prefixed with its line number when there is one.
func lineError(line int, err error) *HTTPError {
	status := http.StatusBadRequest
	if errors.Is(err, event.ErrTooLarge) {
		status = http.StatusRequestEntityTooLarge
	}
	if line > 0 {
		return httpErrorf(status, "line %d: %v", line, err)
	}
	return httpErrorf(status, "%v", err)
}

// bodyError answers a failure to read the body.
func bodyError(err error, limit int64) *HTTPError {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return httpErrorf(http.StatusRequestEntityTooLarge, "request body is larger than %d bytes", limit)
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return httpErrorf(http.StatusRequestTimeout, "the request body did not arrive in time")
	}
	return httpErrorf(http.StatusBadRequest, "reading the request body: %v", err)
}

func writeAccepted(w http.ResponseWriter, answer []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(answer)+1))
	w.WriteHeader(http.StatusAccepted)
	w.Write(append(answer[:len(answer):len(answer)], '\n'))
}

// checkKey checks an Idempotency-Key: 1 to 128 printable ASCII characters.
func checkKey(k string) error {
	if k == "" || len(k) > maxIdempotencyKey {
		return fmt.Errorf("Idempotency-Key must be 1 to %d printable ASCII characters", maxIdempotencyKey)
	}
	for i := 0; i < len(k); i++ {
		if k[i] < 0x20 || k[i] > 0x7e {
			return fmt.Errorf("Idempotency-Key must be 1 to %d printable ASCII characters", maxIdempotencyKey)
		}
	}
	return nil
}
