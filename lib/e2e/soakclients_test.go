package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/tl-sh/tl/lib/internal/invariant"
)

// The soak's clients: HTTP publishers that retry under an Idempotency-Key,
// tl-post fed through a pipe, raw WebSocket subscribers that resume with
// since/epoch as tl-tail does and keep every line, and tl-tail itself.

// soakAttempts bounds a publisher's tries of one batch; the faults last
// about a second, so this outlasts several in a row.
const soakAttempts = 40

// soakPace is a publisher's pause between batches: with two publishers
// and tl-post, some 150 events a second, so that a long soak stays
// inside soakHistory.
const soakPace = 20 * time.Millisecond

type soakRun struct {
	t      *testing.T
	start  time.Time // the soak's start
	urls   []string
	client *http.Client

	rngMu sync.Mutex // guards rng
	rng   *rand.Rand

	ctx     context.Context // subscribers and tails
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	pubStop chan struct{} // closed to stop the publishers and tl-post's input
	pubWG   sync.WaitGroup

	mu   sync.Mutex // guards pubs and refusedAt
	pubs []invariant.Publish
	// refusedAt is when each refused batch (by its first id) got its last
	// 503, since start: to set beside the faults when one is delivered.
	refusedAt map[string]time.Duration
	pubNames  []string // the HTTP publishers' names, each a prefix of its ids
	subs      []*soakSub
	tails     []*soakTail
	posters   []*soakPoster
}

func newSoakRun(t *testing.T, start time.Time, urls []string, rng *rand.Rand) *soakRun {
	ctx, cancel := context.WithCancel(context.Background())
	r := &soakRun{t: t, start: start, urls: urls, rng: rng, ctx: ctx, cancel: cancel, pubStop: make(chan struct{}),
		refusedAt: map[string]time.Duration{},
		client:    &http.Client{Timeout: 10 * time.Second}}
	t.Cleanup(r.stop)
	return r
}

func (r *soakRun) intn(n int) int {
	r.rngMu.Lock()
	defer r.rngMu.Unlock()
	return r.rng.Intn(n)
}

func (r *soakRun) anyURL() string { return r.urls[r.intn(len(r.urls))] }

// stop ends every client; safe to call twice.
func (r *soakRun) stop() {
	r.stopPublishers()
	r.cancel()
	r.wg.Wait()
}

func (r *soakRun) stopPublishers() {
	select {
	case <-r.pubStop:
	default:
		close(r.pubStop)
	}
	r.pubWG.Wait()
}

func (r *soakRun) record(p invariant.Publish) {
	r.mu.Lock()
	r.pubs = append(r.pubs, p)
	r.mu.Unlock()
}

// startPublishers starts n HTTP publishers, each sending batches of one to
// four events in a loop until stopPublishers, trying each batch up to
// attempts times: with 1, a 503 is final, and the event must then never
// be delivered.
func (r *soakRun) startPublishers(n, attempts int) {
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("h%d", len(r.pubNames))
		r.pubNames = append(r.pubNames, name)
		r.pubWG.Add(1)
		go func() {
			defer r.pubWG.Done()
			for b := 1; ; b++ {
				select {
				case <-r.pubStop:
					return
				case <-time.After(soakPace):
				}
				ids := make([]string, 1+r.intn(4))
				for k := range ids {
					ids[k] = fmt.Sprintf("%s-%d-%d", name, b, k)
				}
				r.record(r.publish(ids, attempts))
			}
		}()
	}
}

// publishMarker publishes one last event once the faults are over.
func (r *soakRun) publishMarker() invariant.Publish {
	p := r.publish([]string{"marker"}, soakAttempts)
	r.record(p)
	return p
}

// soakEvent is one event of the soak, its id in its metadata and path.
func soakEvent(id string) []byte {
	b, _ := json.Marshal(map[string]any{"type": "click", "path": "/soak/" + id, "metadata": map[string]string{invariant.IDKey: id}})
	return append(b, '\n')
}

// publish sends one batch to any relay until a 202 or a refusal, under one
// Idempotency-Key, retrying transport errors and 5xx with backoff.
func (r *soakRun) publish(ids []string, attempts int) invariant.Publish {
	var body []byte
	for _, id := range ids {
		body = append(body, soakEvent(id)...)
	}
	p := invariant.Publish{IDs: ids}
	all503 := true // every try answered 503: not published (issue 16, case 2)
	for try := 0; try < attempts; try++ {
		if try > 0 {
			p.Retried = true
			time.Sleep(time.Duration(50+r.intn(450)) * time.Millisecond)
		}
		req, err := http.NewRequest("POST", r.anyURL()+"/v1/tenants/"+soakTenant+"/events", bytes.NewReader(body))
		if err != nil {
			r.t.Error(err)
			return p
		}
		req.Header.Set("Content-Type", "application/x-ndjson")
		req.Header.Set("Idempotency-Key", ids[0])
		resp, err := r.client.Do(req)
		if err != nil {
			all503 = false
			continue
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		switch {
		case resp.StatusCode == http.StatusAccepted:
			var a struct {
				FirstSeq uint64 `json:"first_seq"`
				LastSeq  uint64 `json:"last_seq"`
				Epoch    string `json:"epoch"`
			}
			if err := json.Unmarshal(b, &a); err != nil {
				r.t.Errorf("publish %s: unreadable 202 %q: %v", ids[0], b, err)
				return p
			}
			p.Outcome, p.Epoch, p.FirstSeq, p.LastSeq = invariant.Acked, a.Epoch, a.FirstSeq, a.LastSeq
			return p
		case resp.StatusCode >= 500:
			all503 = all503 && resp.StatusCode == http.StatusServiceUnavailable
			continue
		default:
			r.t.Errorf("publish %s: %d %s", ids[0], resp.StatusCode, b)
			return p
		}
	}
	if all503 {
		p.Outcome = invariant.Refused
		r.mu.Lock()
		r.refusedAt[ids[0]] = time.Since(r.start)
		r.mu.Unlock()
	}
	return p
}

// soakSub is a raw WebSocket subscriber: it keeps every line, and resumes
// after the last seq it received, in its epoch, as tl-tail does.
type soakSub struct {
	name string

	mu    sync.Mutex // guards conns and ids
	conns []invariant.Conn
	ids   map[string]bool // ids received
}

func (r *soakRun) startSubscribers(n int) {
	for i := 0; i < n; i++ {
		s := &soakSub{name: fmt.Sprintf("ws%d", i), ids: map[string]bool{}}
		r.subs = append(r.subs, s)
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			r.subscribe(s)
		}()
	}
}

func (r *soakRun) subscribe(s *soakSub) {
	var since uint64 // from the history's start
	epoch := ""
	for r.ctx.Err() == nil {
		q := url.Values{"since": {strconv.FormatUint(since, 10)}}
		if epoch != "" {
			q.Set("epoch", epoch)
		}
		u := "ws" + strings.TrimPrefix(r.anyURL(), "http") + "/v1/tenants/" + soakTenant + "/stream?" + q.Encode()
		ctx, cancel := context.WithTimeout(r.ctx, 10*time.Second)
		c, _, err := websocket.DefaultDialer.DialContext(ctx, u, nil)
		cancel()
		if err != nil {
			r.pause(200)
			continue
		}
		s.mu.Lock()
		s.conns = append(s.conns, invariant.Conn{HasSince: true, Since: since, Epoch: epoch})
		at := len(s.conns) - 1
		s.mu.Unlock()
		done := make(chan struct{})
		go func() { // closes the socket when the run ends
			select {
			case <-r.ctx.Done():
				c.Close()
			case <-done:
			}
		}()
		for {
			_, msg, err := c.ReadMessage()
			if err != nil {
				break
			}
			for _, raw := range bytes.Split(bytes.TrimSuffix(msg, []byte("\n")), []byte("\n")) {
				l, err := invariant.ParseLine(raw)
				if err != nil {
					r.t.Errorf("%s: %v", s.name, err)
					continue
				}
				switch l.Kind {
				case invariant.Hello:
					if l.Epoch != epoch && epoch != "" {
						since = 0 // the new epoch's history follows from its start
					}
					epoch = l.Epoch
				case invariant.Delivery:
					since = l.Seq
				case invariant.Gap:
					if l.To > since {
						since = l.To
					}
				}
				s.mu.Lock()
				s.conns[at].Lines = append(s.conns[at].Lines, l)
				if l.Kind == invariant.Delivery {
					s.ids[l.ID] = true
				}
				s.mu.Unlock()
			}
		}
		close(done)
		c.Close()
		r.pause(200)
	}
}

// pause sleeps up to ms milliseconds, or until the run ends.
func (r *soakRun) pause(ms int) {
	select {
	case <-r.ctx.Done():
	case <-time.After(time.Duration(10+r.intn(ms)) * time.Millisecond):
	}
}

// settle waits until every subscriber has received the marker id, or
// until wait has passed (the check then reports who is missing what).
func (r *soakRun) settle(id string, wait time.Duration) {
	deadline := time.Now().Add(wait)
	needle := []byte(`"` + invariant.IDKey + `":"` + id + `"`)
	for time.Now().Before(deadline) {
		all := true
		for _, s := range r.subs {
			s.mu.Lock()
			all = all && s.ids[id]
			s.mu.Unlock()
		}
		for _, tl := range r.tails {
			b, _ := os.ReadFile(tl.out)
			all = all && bytes.Contains(b, needle)
		}
		if all {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	r.t.Logf("not every subscriber received the marker within %v", wait)
}

// results returns the publishers' batches and every subscriber's lines,
// once the run has stopped.
func (r *soakRun) results(opts invariant.Options) ([]invariant.Publish, []invariant.Sub) {
	pubs := append([]invariant.Publish(nil), r.pubs...)
	for _, p := range r.posters {
		pub := invariant.Publish{IDs: p.ids, Outcome: invariant.AckedUnplaced, Retried: true}
		if p.err != nil {
			r.t.Logf("tl-post: %v:\n%s", p.err, p.stderr)
			pub.Outcome = invariant.Unknown
		}
		pubs = append(pubs, pub)
	}
	var subs []invariant.Sub
	for _, s := range r.subs {
		subs = append(subs, invariant.Sub{Name: s.name, Conns: s.conns})
	}
	for _, tl := range r.tails {
		subs = append(subs, r.tailSub(tl, pubs, opts))
		if strings.Contains(tl.stderr.String(), "gap:") || strings.Contains(tl.stderr.String(), "dropped") {
			r.t.Logf("%s reported losses:\n%s", tl.name, tl.stderr)
		}
	}
	return pubs, subs
}

// logRefusedDelivered logs when each refused batch that a subscriber
// received got its 503, to set beside the faults' times.
func (r *soakRun) logRefusedDelivered(subs []invariant.Sub) {
	got := map[string]bool{}
	for _, s := range subs {
		for _, c := range s.Conns {
			for _, l := range c.Lines {
				got[l.ID] = true
			}
		}
	}
	for _, p := range r.pubs {
		if p.Outcome == invariant.Refused && got[p.IDs[0]] {
			r.t.Logf("batch %s was answered 503 at +%.1fs, and delivered", p.IDs[0], r.refusedAt[p.IDs[0]].Seconds())
		}
	}
}
