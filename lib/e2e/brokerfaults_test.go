package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/redis/go-redis/v9"

	"github.com/tl-sh/tl/lib/internal/redistest"
	"github.com/tl-sh/tl/lib/internal/testkit"
)

// The --broker backing under faults (issue 16 points 1, 2, 5; issue 15's
// "readers create nothing"), with real tl-relay processes on one real
// redis-server. Every test checks the invariant on every event with
// faultCheck: no two acknowledged events share (epoch, seq), and a
// subscriber connected throughout receives every acknowledged event of
// an epoch once, or a gap line covering exactly it.

// faultAck is one acknowledged event: its (epoch, seq) and its path,
// which names it.
type faultAck struct {
	epoch string
	seq   uint64
	path  string
}

// faultEvents returns n click events with paths /e/from.. and their paths.
func faultEvents(from, n int) ([]byte, []string) {
	var b bytes.Buffer
	var paths []string
	for i := from; i < from+n; i++ {
		p := fmt.Sprintf("/e/%d", i)
		fmt.Fprintf(&b, `{"type":"click","path":%q}`+"\n", p)
		paths = append(paths, p)
	}
	return b.Bytes(), paths
}

// faultPublish POSTs a batch with an Idempotency-Key, retrying (503, 504,
// transport errors) until a 202, and returns the acknowledged events.
func faultPublish(t *testing.T, base, tenant, key string, from, n int) []faultAck {
	t.Helper()
	body, paths := faultEvents(from, n)
	var a accepted
	testkit.WaitFor(t, "a 202 for batch "+key, func() bool {
		var ok bool
		a, ok = publishKeyed(http.DefaultClient, base, tenant, key, body)
		return ok
	})
	if a.Accepted != n || a.LastSeq-a.FirstSeq+1 != uint64(n) {
		t.Fatalf("batch %s: %+v for %d events", key, a, n)
	}
	acks := make([]faultAck, n)
	for i := range acks {
		acks[i] = faultAck{a.Epoch, a.FirstSeq + uint64(i), paths[i]}
	}
	return acks
}

// faultSub is a WebSocket subscriber keeping every line it gets.
type faultSub struct {
	mu    sync.Mutex // guards lines and err
	lines []string
	err   error
	conn  *websocket.Conn
}

func faultSubscribe(t *testing.T, base, tenant, query string) *faultSub {
	t.Helper()
	d := websocket.Dialer{HandshakeTimeout: 30 * time.Second}
	c, _, err := d.Dial("ws"+strings.TrimPrefix(base, "http")+"/v1/tenants/"+tenant+"/stream?"+query, nil)
	if err != nil {
		t.Fatalf("subscribe %s?%s: %v", tenant, query, err)
	}
	s := &faultSub{conn: c}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			_, msg, err := c.ReadMessage()
			s.mu.Lock()
			if err != nil {
				s.err = err
				s.mu.Unlock()
				return
			}
			s.lines = append(s.lines, strings.Split(strings.TrimSuffix(string(msg), "\n"), "\n")...)
			s.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		c.Close()
		<-done
	})
	return s
}

func (s *faultSub) snapshot() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.lines...)
}

// waitDeliveries waits until the subscriber holds n deliveries of epoch
// (or of any epoch when epoch is "").
func (s *faultSub) waitDeliveries(t *testing.T, epoch string, n int) {
	t.Helper()
	testkit.WaitFor(t, fmt.Sprintf("%d deliveries in epoch %q", n, epoch), func() bool {
		got := 0
		for _, d := range parseFaultLines(s.snapshot()) {
			if d.kind == "delivery" && (epoch == "" || d.epoch == epoch) {
				got++
			}
		}
		return got >= n
	})
}

// faultLine is one line a subscriber got, read in the epoch of the last
// hello before it.
type faultLine struct {
	kind     string // hello, gap, delivery
	epoch    string
	seq      uint64 // delivery; hello: last_seq
	from, to uint64 // gap
	reason   string
	path     string
	raw      string
}

func parseFaultLines(lines []string) []faultLine {
	var out []faultLine
	epoch := ""
	for _, l := range lines {
		var v struct {
			Control string `json:"control"`
			Epoch   string `json:"epoch"`
			LastSeq uint64 `json:"last_seq"`
			From    uint64 `json:"from_seq"`
			To      uint64 `json:"to_seq"`
			Reason  string `json:"reason"`
			Seq     uint64 `json:"seq"`
			Path    string `json:"path"`
		}
		json.Unmarshal([]byte(l), &v)
		f := faultLine{raw: l, epoch: epoch}
		switch v.Control {
		case "hello":
			epoch = v.Epoch
			f.kind, f.epoch, f.seq = "hello", v.Epoch, v.LastSeq
		case "gap":
			f.kind, f.from, f.to, f.reason = "gap", v.From, v.To, v.Reason
		default:
			f.kind, f.seq, f.path = "delivery", v.Seq, v.Path
		}
		out = append(out, f)
	}
	return out
}

// faultCheck states the invariant: acks never name two events alike; the
// subscriber (connected before the first ack) got no delivery twice, none
// that contradicts an ack, and every ack once or inside a gap of its
// epoch.
func faultCheck(t *testing.T, who string, acks []faultAck, lines []string) {
	t.Helper()
	named := map[string]string{}
	for _, a := range acks {
		k := fmt.Sprintf("%s/%d", a.epoch, a.seq)
		if p, ok := named[k]; ok && p != a.path {
			t.Errorf("(epoch, seq) %s acknowledged for two events: %s and %s", k, p, a.path)
		}
		named[k] = a.path
	}
	got := map[string]string{}
	type gapR struct {
		epoch    string
		from, to uint64
	}
	var gaps []gapR
	for _, l := range parseFaultLines(lines) {
		switch l.kind {
		case "gap":
			gaps = append(gaps, gapR{l.epoch, l.from, l.to})
		case "delivery":
			k := fmt.Sprintf("%s/%d", l.epoch, l.seq)
			if _, ok := got[k]; ok {
				t.Errorf("%s: %s delivered twice", who, k)
			}
			got[k] = l.path
			if p, ok := named[k]; ok && p != l.path {
				t.Errorf("%s: %s delivered as %s, acknowledged as %s", who, k, l.path, p)
			}
		}
	}
	for _, a := range acks {
		k := fmt.Sprintf("%s/%d", a.epoch, a.seq)
		if _, ok := got[k]; ok {
			continue
		}
		covered := false
		for _, g := range gaps {
			covered = covered || (g.epoch == a.epoch && g.from <= a.seq && a.seq <= g.to)
		}
		if !covered {
			t.Errorf("%s: acknowledged %s (%s) neither delivered nor in a gap line", who, k, a.path)
		}
	}
}

// TestBrokerRestoredSnapshot is issue 16's reproduction: two relays on one
// Redis, a subscriber on A; 1-100 through B, SAVE, 101-200, SIGSTOP A,
// kill -9 Redis and restart it from the snapshot, 201-300 through B,
// SIGCONT A. B saw seq 200, so it starts a new epoch before giving any
// seq; A's subscriber is told of it in exact lines; a tail resuming with
// since/epoch gets the new epoch too.
func TestBrokerRestoredSnapshot(t *testing.T) {
	srv := redistest.New(t, redistest.Options{})
	a := startRelay(t, "127.0.0.1:0", "--broker", srv.URL())
	b := startRelay(t, "127.0.0.1:0", "--broker", srv.URL())
	sub := faultSubscribe(t, a.url, "acme", "")
	var acks []faultAck
	for i := 0; i < 4; i++ {
		acks = append(acks, faultPublish(t, b.url, "acme", fmt.Sprint("k", i), i*25, 25)...)
	}
	sub.waitDeliveries(t, "", 100)
	if err := srv.Snapshot("old"); err != nil {
		t.Fatal(err)
	}
	for i := 4; i < 8; i++ {
		acks = append(acks, faultPublish(t, b.url, "acme", fmt.Sprint("k", i), i*25, 25)...)
	}
	old := acks[0].epoch
	sub.waitDeliveries(t, old, 200)
	a.signal(syscall.SIGSTOP)
	stopped := true
	defer func() {
		if stopped {
			a.signal(syscall.SIGCONT)
		}
	}()
	if err := srv.RestartFrom("old"); err != nil {
		t.Fatal(err)
	}
	var after []faultAck
	for i := 8; i < 12; i++ {
		after = append(after, faultPublish(t, b.url, "acme", fmt.Sprint("k", i), i*25, 25)...)
	}
	acks = append(acks, after...)
	next := after[0].epoch
	if next == old || after[0].seq != 1 {
		t.Fatalf("the first 202 after the restore: seq %d in %s; want seq 1 in a new epoch (was %s)", after[0].seq, next, old)
	}
	a.signal(syscall.SIGCONT)
	stopped = false
	sub.waitDeliveries(t, next, 100)

	lines := sub.snapshot()
	faultCheck(t, "subscriber on A", acks, lines)
	// The exact lines: hello, 1..200 of the old epoch, then (it had them
	// all) the new hello naming the new epoch's newest seq, and 1..100.
	want := []string{fmt.Sprintf(`{"control":"hello","tenant":"acme","epoch":%q,"last_seq":0}`, old)}
	for i := 1; i <= 200; i++ {
		want = append(want, fmt.Sprintf(`{"seq":%d,`, i))
	}
	want = append(want, fmt.Sprintf(`{"control":"hello","tenant":"acme","epoch":%q,"last_seq":100}`, next))
	for i := 1; i <= 100; i++ {
		want = append(want, fmt.Sprintf(`{"seq":%d,`, i))
	}
	faultExactLines(t, "subscriber on A", lines, want)

	// A tail resuming from where it was, through either relay.
	for _, r := range []*secProc{a, b} {
		res := faultSubscribe(t, r.url, "acme", fmt.Sprintf("since=200&epoch=%s", old))
		res.waitDeliveries(t, next, 100)
		rl := res.snapshot()
		faultExactLines(t, "resumed tail on "+r.url, rl, want[201:])
	}
}

// faultExactLines compares lines to want, where a want ending in ',' is a
// delivery's prefix.
func faultExactLines(t *testing.T, who string, lines, want []string) {
	t.Helper()
	if len(lines) != len(want) {
		t.Errorf("%s: %d lines, want %d:\n%s", who, len(lines), len(want), strings.Join(lines, "\n"))
		return
	}
	for i, w := range want {
		if !strings.HasPrefix(lines[i], w) || (!strings.HasSuffix(w, ",") && lines[i] != w) {
			t.Errorf("%s: line %d is %s, want %s", who, i+1, lines[i], w)
			return
		}
	}
}

// TestBrokerHungPublish: Redis hangs (SIGSTOP) while a publish is in
// flight. The relay cannot know whether the script ran, so it answers 504
// "outcome unknown", not 503 "not published"; the script does run when
// Redis wakes up. tl-post, retrying with the same Idempotency-Key, makes
// it exactly once: one copy reaches the subscriber.
func TestBrokerHungPublish(t *testing.T) {
	srv := redistest.New(t, redistest.Options{})
	a := startRelay(t, "127.0.0.1:0", "--broker", srv.URL())
	b := startRelay(t, "127.0.0.1:0", "--broker", srv.URL())
	sub := faultSubscribe(t, b.url, "acme", "")
	acks := faultPublish(t, a.url, "acme", "first", 0, 1)
	sub.waitDeliveries(t, "", 1)

	// By hand: the 504 and its body.
	if err := srv.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	body, paths := faultEvents(1, 3)
	req, _ := http.NewRequest("POST", a.url+"/v1/tenants/acme/events", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/x-ndjson")
	req.Header.Set("Idempotency-Key", "hung-1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		srv.Signal(syscall.SIGCONT)
		t.Fatal(err)
	}
	msg, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	srv.Signal(syscall.SIGCONT)
	t.Logf("publish to a hung Redis: %d %s", resp.StatusCode, msg)
	switch resp.StatusCode {
	case http.StatusGatewayTimeout:
		if !strings.Contains(string(msg), "may or may not be published") || resp.Header.Get("Retry-After") == "" {
			t.Errorf("504 without its explanation or Retry-After: %s", msg)
		}
	case http.StatusServiceUnavailable:
		// The relay had already seen Redis hang: it sent nothing. Then
		// nothing may be published.
	default:
		t.Fatalf("publish to a hung Redis: %d %s; want 504 (or 503 if never sent)", resp.StatusCode, msg)
	}
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer rdb.Close()
	var held int64
	testkit.WaitFor(t, "Redis to answer", func() bool {
		held, err = rdb.XLen(context.Background(), "tl:{acme}:s").Result()
		return err == nil
	})
	if resp.StatusCode == http.StatusServiceUnavailable && held != 1 {
		t.Fatalf("a 503 'not published' was published: the stream holds %d", held)
	}
	retried := faultPublish(t, a.url, "acme", "hung-1", 1, 3)
	for i := range retried {
		retried[i].path = paths[i]
	}
	acks = append(acks, retried...)

	// With tl-post: Redis hangs under it; it gets a 504 (or a 503, or
	// times out), retries with its key, and the batch lands once.
	seen := strings.Count(a.log.String(), "append outcome unknown")
	if err := srv.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	postBody, postPaths := faultEvents(4, 5)
	cmd := exec.Command(filepath.Join(binDir, "tl-post"), "--relay", a.url, "acme")
	cmd.Stdin = bytes.NewReader(postBody)
	var out bytes.Buffer
	var errOut testkit.SyncBuffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Start(); err != nil {
		srv.Signal(syscall.SIGCONT)
		t.Fatal(err)
	}
	testkit.WaitFor(t, "the relay to answer tl-post's publish 504", func() bool {
		return strings.Count(a.log.String(), "append outcome unknown") > seen
	})
	srv.Signal(syscall.SIGCONT)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("tl-post: %v\n%s", err, errOut.String())
	}
	t.Logf("tl-post stderr:\n%s", errOut.String())
	if !strings.Contains(errOut.String(), "504") {
		t.Errorf("tl-post did not report retrying a 504:\n%s", errOut.String())
	}
	sub.waitDeliveries(t, "", 9)
	for i, p := range postPaths {
		acks = append(acks, faultAck{acks[0].epoch, uint64(5 + i), p})
	}
	n, err := rdb.XLen(context.Background(), "tl:{acme}:s").Result()
	if err != nil || n != 9 {
		t.Errorf("the stream holds %d events (%v), want 9: each batch once", n, err)
	}
	faultCheck(t, "subscriber on B", acks, sub.snapshot())
	if got := len(parseFaultLines(sub.snapshot())); got != 10 {
		t.Errorf("subscriber got %d lines, want a hello and 9 deliveries:\n%s", got, strings.Join(sub.snapshot(), "\n"))
	}
}

// TestBrokerReadersCreateNothing (issue 15): streams opened on 1,000
// tenants never written leave no key in Redis, and still receive what is
// published to them later, in the epoch their hello named.
func TestBrokerReadersCreateNothing(t *testing.T) {
	const names = 1000
	srv := redistest.New(t, redistest.Options{})
	a := startRelay(t, "127.0.0.1:0", "--broker", srv.URL())
	b := startRelay(t, "127.0.0.1:0", "--broker", srv.URL())
	subs := make([]*faultSub, names)
	for i := range subs {
		subs[i] = faultSubscribe(t, a.url, fmt.Sprintf("never-%04d", i), "")
	}
	for i, s := range subs {
		testkit.WaitFor(t, fmt.Sprintf("the hello of never-%04d", i), func() bool { return len(s.snapshot()) > 0 })
	}
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer rdb.Close()
	ctx := context.Background()
	keys, err := rdb.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if strings.Contains(k, "never-") {
			t.Errorf("a stream on a never-written tenant left key %s", k)
		}
	}
	t.Logf("keys in Redis after %d streams opened: %v", names, keys)
	// Published later, through the other relay: received, no new hello.
	for _, i := range []int{0, 499, 999} {
		tenant := fmt.Sprintf("never-%04d", i)
		acks := faultPublish(t, b.url, tenant, "k", 0, 2)
		subs[i].waitDeliveries(t, "", 2)
		lines := subs[i].snapshot()
		faultCheck(t, tenant, acks, lines)
		want := []string{fmt.Sprintf(`{"control":"hello","tenant":%q,"epoch":%q,"last_seq":0}`, tenant, acks[0].epoch), `{"seq":1,`, `{"seq":2,`}
		faultExactLines(t, tenant, lines, want)
	}
}
