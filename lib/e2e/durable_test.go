package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/tl-sh/tl/lib/internal/testkit"
)

// startRelay starts tl-relay listening on addr (127.0.0.1:0 for any port)
// with args and waits for its "listening on URL" line.
func startRelay(t *testing.T, addr string, args ...string) *secProc {
	t.Helper()
	return secStartRelay(t, append([]string{"--listen", addr}, args...)...)
}

// accepted is a 202 answer.
type accepted struct {
	Accepted int    `json:"accepted"`
	FirstSeq uint64 `json:"first_seq"`
	LastSeq  uint64 `json:"last_seq"`
	Epoch    string `json:"epoch"`
}

// publish POSTs an NDJSON batch; ok is false when no 202 came back (the
// relay died, or refused).
func publish(client *http.Client, url, tenant string, body []byte) (accepted, bool) {
	return publishKeyed(client, url, tenant, "", body)
}

// crashBatch is one batch a flooding client sent.
type crashBatch struct {
	id    string
	n     int
	acked bool
	a     accepted
}

// delivery is the part of a delivered line the crash test checks.
type delivery struct {
	Seq      uint64            `json:"seq"`
	Metadata map[string]string `json:"metadata"`
}

// streamLines reads the chunked NDJSON stream of tenant from since (with
// epoch) and sends every delivery to out until ctx ends or the connection
// drops. It returns the seq of the last delivery it passed on.
func streamLines(ctx context.Context, url, tenant string, since uint64, epoch string, out func(delivery, []byte)) (uint64, error) {
	q := fmt.Sprintf("%s/v1/tenants/%s/stream?since=%d", url, tenant, since)
	if epoch != "" {
		q += "&epoch=" + epoch
	}
	req, _ := http.NewRequestWithContext(ctx, "GET", q, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return since, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return since, fmt.Errorf("stream: %s", resp.Status)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 1<<16), 1<<20)
	last := since
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var d delivery
		if err := json.Unmarshal(line, &d); err != nil {
			return last, fmt.Errorf("stream line %q: %w", line, err)
		}
		if d.Seq == 0 {
			continue // a control line
		}
		out(d, append([]byte(nil), line...))
		last = d.Seq
	}
	return last, sc.Err()
}

// TestDurableCrash floods a relay on a data directory from several clients,
// SIGKILLs it in the middle, restarts it on the same directory, and does so
// again several times, while a tail resumes across every restart. Then:
// every acknowledged batch is in the history exactly once, no batch is
// there in part, seqs run 1..N without a hole, the epoch never changed,
// and the resuming tail received exactly the history, each event once.
func TestDurableCrash(t *testing.T) {
	const (
		tenant      = "crash"
		clients     = 4
		batchSize   = 50
		ackedPerRun = 40 // kill once this many batches were acknowledged in a round
	)
	rounds := 5
	if testing.Short() {
		rounds = 2
	}
	dir := t.TempDir()
	var (
		mu      sync.Mutex
		batches = map[string]*crashBatch{}
		epoch   string
	)
	// The resuming tail: it follows whichever relay is current.
	var cur atomic.Pointer[secProc]
	var tailMu sync.Mutex
	tailSeqs := map[uint64]string{} // seq -> batch id/index
	var tailErr error
	var tailLast uint64
	tailCtx, stopTail := context.WithCancel(context.Background())
	tailDone := make(chan struct{})
	startTail := func() {
		defer close(tailDone)
		for tailCtx.Err() == nil {
			r := cur.Load()
			mu.Lock()
			e := epoch
			mu.Unlock()
			last, _ := streamLines(tailCtx, r.url, tenant, tailLast, e, func(d delivery, line []byte) {
				tailMu.Lock()
				defer tailMu.Unlock()
				key := d.Metadata["b"] + "/" + d.Metadata["i"]
				if prev, dup := tailSeqs[d.Seq]; dup {
					tailErr = fmt.Errorf("tail got seq %d twice (%s, then %s)", d.Seq, prev, key)
				}
				if d.Seq != tailLast+1 && tailErr == nil {
					tailErr = fmt.Errorf("tail got seq %d after %d", d.Seq, tailLast)
				}
				tailSeqs[d.Seq] = key
				tailLast = d.Seq
			})
			_ = last
			select {
			case <-tailCtx.Done():
			case <-time.After(50 * time.Millisecond):
			}
		}
	}

	// The real tl-tail follows the relay across every crash too: the relay
	// comes back on the same address, and tl-tail resumes by itself.
	addr := "127.0.0.1:0"
	var tlTail *exec.Cmd
	var tlTailOut, tlTailErr testkit.SyncBuffer
	for round := 0; round < rounds; round++ {
		r := startRelay(t, addr, "--data-dir", dir)
		cur.Store(r)
		if round == 0 {
			addr = strings.TrimPrefix(r.url, "http://")
			go startTail()
			tlTail = exec.Command(filepath.Join(binDir, "tl-tail"), "--relay", r.url, "--since", "0", "--lossless", tenant)
			tlTail.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "GORACE=" + os.Getenv("GORACE")}
			tlTail.Stdout, tlTail.Stderr = &tlTailOut, &tlTailErr
			if err := tlTail.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { tlTail.Process.Kill(); tlTail.Wait() })
		}
		var acked atomic.Int64
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for c := 0; c < clients; c++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				client := &http.Client{Timeout: 30 * time.Second}
				for b := 0; ; b++ {
					select {
					case <-stop:
						return
					default:
					}
					id := fmt.Sprintf("r%d-c%d-b%d", round, c, b)
					var body bytes.Buffer
					for i := 0; i < batchSize; i++ {
						fmt.Fprintf(&body, `{"type":"custom","path":"/crash","metadata":{"b":%q,"i":"%d"}}`+"\n", id, i)
					}
					cb := &crashBatch{id: id, n: batchSize}
					mu.Lock()
					batches[id] = cb
					mu.Unlock()
					a, ok := publish(client, r.url, tenant, body.Bytes())
					if !ok {
						return // the relay is gone
					}
					mu.Lock()
					cb.acked, cb.a = true, a
					if epoch == "" {
						epoch = a.Epoch
					} else if a.Epoch != epoch {
						t.Errorf("round %d: epoch %q, was %q", round, a.Epoch, epoch)
					}
					mu.Unlock()
					if a.Accepted != batchSize || a.LastSeq-a.FirstSeq+1 != batchSize {
						t.Errorf("202 %+v for a batch of %d", a, batchSize)
					}
					acked.Add(1)
				}
			}()
		}
		for acked.Load() < ackedPerRun {
			select {
			case <-r.done:
				t.Fatalf("round %d: tl-relay exited:\n%s", round, r.log.String())
			case <-time.After(5 * time.Millisecond):
			}
		}
		r.kill() // in the middle of the flood
		close(stop)
		wg.Wait()
	}

	// A last start: publish a marker, then read the whole history.
	r := startRelay(t, addr, "--data-dir", dir)
	cur.Store(r)
	a, ok := publish(http.DefaultClient, r.url, tenant, []byte(`{"type":"custom","path":"/crash","metadata":{"b":"marker","i":"0"}}`+"\n"))
	if !ok {
		t.Fatalf("marker not accepted:\n%s", r.log.String())
	}
	if a.Epoch != epoch {
		t.Fatalf("epoch after restarts %q, want %q", a.Epoch, epoch)
	}
	history := map[uint64]string{}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	streamLines(ctx, r.url, tenant, 0, epoch, func(d delivery, line []byte) {
		history[d.Seq] = d.Metadata["b"] + "/" + d.Metadata["i"]
		if d.Seq >= a.LastSeq {
			cancel()
		}
	})
	cancel()
	if _, ok := history[a.LastSeq]; !ok {
		t.Fatalf("history ends before the marker (seq %d); got %d lines", a.LastSeq, len(history))
	}
	// Seqs 1..marker, no hole; each batch whole or absent; acked ones there
	// at the seqs their 202 named.
	count := map[string]int{}
	for s := uint64(1); s <= a.LastSeq; s++ {
		k, ok := history[s]
		if !ok {
			t.Fatalf("seq %d missing from the history", s)
		}
		count[k[:strings.IndexByte(k, '/')]]++
	}
	nAcked, nWhole, nAbsent := 0, 0, 0
	for id, b := range batches {
		switch n := count[id]; {
		case b.acked && n != b.n:
			t.Errorf("acknowledged batch %s: %d of %d events in the history", id, n, b.n)
		case n != 0 && n != b.n:
			t.Errorf("batch %s half-appeared: %d of %d events", id, n, b.n)
		case b.acked:
			nAcked++
			for i := 0; i < b.n; i++ {
				if got := history[b.a.FirstSeq+uint64(i)]; got != fmt.Sprintf("%s/%d", id, i) {
					t.Errorf("seq %d holds %s, the 202 for %s said it", b.a.FirstSeq+uint64(i), got, id)
					break
				}
			}
		case n == b.n:
			nWhole++ // sent, never acknowledged, but durable: allowed
		default:
			nAbsent++
		}
	}
	if nAcked < rounds*ackedPerRun {
		t.Fatalf("only %d batches acknowledged", nAcked)
	}
	// The tail, resuming across every crash, got exactly the history.
	deadline := time.After(60 * time.Second)
	for {
		tailMu.Lock()
		done := tailLast >= a.LastSeq || tailErr != nil
		tailMu.Unlock()
		if done {
			break
		}
		select {
		case <-deadline:
			tailMu.Lock()
			defer tailMu.Unlock()
			t.Fatalf("the tail reached seq %d of %d", tailLast, a.LastSeq)
		case <-time.After(20 * time.Millisecond):
		}
	}
	stopTail()
	<-tailDone
	if tailErr != nil {
		t.Fatal(tailErr)
	}
	for s, k := range history {
		if tailSeqs[s] != k {
			t.Fatalf("seq %d: tail got %q, history holds %q", s, tailSeqs[s], k)
		}
	}
	// tl-tail printed the history, each event once, in order.
	for !strings.Contains(tlTailOut.String(), `"b":"marker"`) {
		select {
		case <-deadline:
			t.Fatalf("tl-tail never printed the marker; stderr:\n%s", tlTailErr.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	tlTail.Process.Signal(syscall.SIGTERM)
	tlTail.Wait()
	var printed []uint64
	for _, line := range strings.Split(strings.TrimSpace(tlTailOut.String()), "\n") {
		var d delivery
		if err := json.Unmarshal([]byte(line), &d); err != nil {
			t.Fatalf("tl-tail printed %q: %v", line, err)
		}
		if k := d.Metadata["b"] + "/" + d.Metadata["i"]; history[d.Seq] != k {
			t.Fatalf("tl-tail printed seq %d as %s; the history holds %s", d.Seq, k, history[d.Seq])
		}
		printed = append(printed, d.Seq)
	}
	for i, s := range printed {
		if s != uint64(i+1) {
			t.Fatalf("tl-tail printed seq %d as its line %d (want every seq once, in order); stderr:\n%s", s, i+1, tlTailErr.String())
		}
	}
	if uint64(len(printed)) != a.LastSeq {
		t.Fatalf("tl-tail printed %d events, want %d", len(printed), a.LastSeq)
	}
	t.Logf("%d crashes: %d batches acknowledged; of those sent without a 202, %d kept whole and %d absent; %d events",
		rounds, nAcked, nWhole, nAbsent, a.LastSeq)
}

// cmdCorrupt damages a file the way a failing disk would: corrupt FILE TEXT
// flips the lowest bit of the first byte of the first occurrence of TEXT in
// FILE (relative to $WORK), in place.
func cmdCorrupt(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: corrupt FILE TEXT")
	}
	p := ts.MkAbs(args[0])
	data, err := os.ReadFile(p)
	ts.Check(err)
	i := strings.Index(string(data), args[1])
	if i < 0 {
		ts.Fatalf("%s does not contain %q", args[0], args[1])
	}
	data[i] ^= 1
	ts.Check(os.WriteFile(p, data, 0o644))
}

// publishKeyed POSTs an NDJSON batch with an Idempotency-Key (none when key
// is empty).
func publishKeyed(client *http.Client, url, tenant, key string, body []byte) (accepted, bool) {
	req, _ := http.NewRequest("POST", url+"/v1/tenants/"+tenant+"/events", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/x-ndjson")
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	resp, err := client.Do(req)
	if err != nil {
		return accepted{}, false
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusAccepted {
		return accepted{}, false
	}
	var a accepted
	if json.Unmarshal(data, &a) != nil {
		return accepted{}, false
	}
	return a, true
}

// TestDurableIdempotentRetry: publishers that retry each batch with its
// Idempotency-Key until they get a 202, through several SIGKILLs of the
// relay, publish every batch exactly once: the keys are on disk with their
// batches, so a retry of a batch that was durable but never answered gets
// its first 202 again.
func TestDurableIdempotentRetry(t *testing.T) {
	const (
		tenant    = "idem"
		clients   = 4
		batchSize = 20
		perRound  = 30 // acknowledged batches before each kill
	)
	rounds := 4
	if testing.Short() {
		rounds = 2
	}
	dir := t.TempDir()
	r := startRelay(t, "127.0.0.1:0", "--data-dir", dir)
	url := r.url
	addr := strings.TrimPrefix(url, "http://")

	var mu sync.Mutex
	answers := map[string]accepted{} // batch id -> the 202 it finally got
	var acked atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := &http.Client{Timeout: 30 * time.Second}
			for b := 0; ; b++ {
				select {
				case <-stop:
					return
				default:
				}
				id := fmt.Sprintf("c%d-b%d", c, b)
				var body bytes.Buffer
				for i := 0; i < batchSize; i++ {
					fmt.Fprintf(&body, `{"type":"custom","path":"/idem","metadata":{"b":%q,"i":"%d"}}`+"\n", id, i)
				}
				for try := 0; ; try++ {
					if a, ok := publishKeyed(client, url, tenant, id, body.Bytes()); ok {
						mu.Lock()
						answers[id] = a
						mu.Unlock()
						acked.Add(1)
						break
					}
					if try > 3000 {
						t.Errorf("batch %s: no 202 after %d tries", id, try)
						return
					}
					time.Sleep(10 * time.Millisecond) // the relay is restarting
				}
			}
		}()
	}
	for round := 0; round < rounds; round++ {
		want := acked.Load() + perRound
		for acked.Load() < want {
			select {
			case <-r.done:
				t.Fatalf("tl-relay exited:\n%s", r.log.String())
			case <-time.After(5 * time.Millisecond):
			}
		}
		r.kill()
		r = startRelay(t, addr, "--data-dir", dir)
	}
	close(stop)
	wg.Wait()

	// Read the whole history.
	a, ok := publish(http.DefaultClient, url, tenant, []byte(`{"type":"custom","path":"/idem","metadata":{"b":"marker","i":"0"}}`+"\n"))
	if !ok {
		t.Fatal("marker not accepted")
	}
	history := map[uint64]string{}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	streamLines(ctx, url, tenant, 0, "", func(d delivery, line []byte) {
		history[d.Seq] = d.Metadata["b"] + "/" + d.Metadata["i"]
		if d.Seq >= a.LastSeq {
			cancel()
		}
	})
	cancel()
	count := map[string]int{}
	for s := uint64(1); s <= a.LastSeq; s++ {
		k, ok := history[s]
		if !ok {
			t.Fatalf("seq %d missing", s)
		}
		count[k[:strings.IndexByte(k, '/')]]++
	}
	for id, ans := range answers {
		if count[id] != batchSize {
			t.Errorf("batch %s: %d events in the history, want %d (published once)", id, count[id], batchSize)
			continue
		}
		if got := history[ans.FirstSeq]; got != id+"/0" || ans.Epoch != a.Epoch {
			t.Errorf("batch %s: its 202 %+v names seq %d, which holds %s", id, ans, ans.FirstSeq, got)
		}
	}
	for id, n := range count {
		if _, ok := answers[id]; !ok && id != "marker" {
			t.Errorf("batch %s is in the history (%d events) but was never answered", id, n)
		}
	}
	t.Logf("%d crashes, %d batches, each published once; %d events", rounds, len(answers), a.LastSeq)
}

// TestDurableCapManyTenants: --data-max-bytes holds with more tenants than
// it has room for, each writing less than a segment: the directory stays
// within the cap plus one segment (64 KiB at a 1 MiB cap: the open segment
// of the tenant writing), and a tail resuming on a tenant whose data went is
// told what it lost.
func TestDurableCapManyTenants(t *testing.T) {
	const (
		capBytes = 1 << 20
		slack    = 64 << 10 // one segment: the cap / 32, at least 64 KiB
		tenants  = 300
		perBatch = 20
		batches  = 2 // 40 events of about 1 KB per tenant: 12 MB in all
	)
	dir := t.TempDir()
	r := startRelay(t, "127.0.0.1:0", "--data-dir", dir, "--data-max-bytes", "1MiB")
	pad := strings.Repeat("x", 1000)
	client := &http.Client{Timeout: 30 * time.Second}
	size := func() int64 {
		var n int64
		filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
			if err == nil && info.Mode().IsRegular() {
				n += info.Size()
			}
			return nil
		})
		return n
	}
	for i := 1; i <= tenants; i++ {
		for b := 0; b < batches; b++ {
			var body bytes.Buffer
			for j := 0; j < perBatch; j++ {
				fmt.Fprintf(&body, `{"type":"custom","path":"/p","metadata":{"pad":%q}}`+"\n", pad)
			}
			if _, ok := publish(client, r.url, fmt.Sprintf("t%d", i), body.Bytes()); !ok {
				t.Fatalf("t%d: publish refused:\n%s", i, r.log.String())
			}
		}
		// The cap is enforced by the committer right after it answers, so
		// the size may lag the 202 a moment; and the tenant written just
		// before may still be finishing its commit, so two tenants can each
		// hold one open segment over the cap. (size counts the meta files
		// too: some 30 bytes a tenant.)
		if i%50 == 0 {
			bound := capBytes + 2*slack + int64(i)*64
			deadline := time.Now().Add(10 * time.Second)
			got := size()
			for got > bound && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
				got = size()
			}
			if got > bound {
				t.Fatalf("after %d tenants the directory holds %d bytes, cap %d (+ 2 × %d)", i, got, capBytes, slack)
			}
		}
	}
	if strings.Contains(r.log.String(), "over its cap") {
		t.Fatalf("the relay could not meet the cap:\n%s", r.log.String())
	}
	t.Logf("%d tenants wrote %d bytes of events; the directory holds %d bytes", tenants, tenants*perBatch*batches*(len(pad)+60), size())
	// t1's events went: a tail from the start gets a gap for all 40, then
	// the next event, at seq 41.
	a, ok := publish(client, r.url, "t1", []byte(`{"type":"custom","path":"/after"}`+"\n"))
	if !ok || a.FirstSeq != perBatch*batches+1 {
		t.Fatalf("t1's next publish: %+v, %v", a, ok)
	}
	tail := exec.Command(filepath.Join(binDir, "tl-tail"), "--relay", r.url, "--since", "0", "-c", "1", "--timeout", "30s", "t1")
	tail.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
	var out, errOut bytes.Buffer
	tail.Stdout, tail.Stderr = &out, &errOut
	if err := tail.Run(); err != nil {
		t.Fatalf("tl-tail: %v\n%s", err, errOut.String())
	}
	if want := fmt.Sprintf("gap: %d events lost (seq 1..%d)", perBatch*batches, perBatch*batches); !strings.Contains(errOut.String(), want) {
		t.Fatalf("tl-tail's stderr: %q, want %q", errOut.String(), want)
	}
	if !strings.HasPrefix(out.String(), fmt.Sprintf(`{"seq":%d,`, perBatch*batches+1)) || !strings.Contains(out.String(), `"path":"/after"`) {
		t.Fatalf("tl-tail printed %q", out.String())
	}
}
