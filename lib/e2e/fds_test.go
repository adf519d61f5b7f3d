package e2e

// Descriptors with --data-dir (issue 15): the relay under a low
// RLIMIT_NOFILE, attacked with many tenants, with a connection flood, and
// restarted on a directory of 100,000 tenants; readers that create nothing;
// a failed write that /readyz and the metrics report.

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/tl-sh/tl/lib/internal/testkit"
)

// fdsOf counts the descriptors the relay holds, from /proc.
func fdsOf(t *testing.T, p *secProc) int {
	t.Helper()
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", p.cmd.Process.Pid))
	if err != nil {
		t.Fatalf("counting the relay's descriptors: %v", err)
	}
	return len(ents)
}

// startLimited starts tl-relay under the shell's `ulimit LIMITS` and checks
// that the limit took.
func startLimited(t *testing.T, limits string, args ...string) *secProc {
	t.Helper()
	p, err := secTryStartRelayLimited(t, limits, args...)
	if err != nil {
		t.Fatal(err)
	}
	lim, err := os.ReadFile(fmt.Sprintf("/proc/%d/limits", p.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(lim), "\n") {
		if strings.HasPrefix(line, "Max open files") || strings.HasPrefix(line, "Max file size") {
			t.Logf("relay pid %d: %s", p.cmd.Process.Pid, strings.Join(strings.Fields(line), " "))
		}
	}
	return p
}

// waitExit waits (at most 60s) for the relay to exit and returns its code.
func waitExit(t *testing.T, p *secProc) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(60 * time.Second):
		t.Fatal("tl-relay did not exit within 60s")
	}
	return p.cmd.ProcessState.ExitCode()
}

// rawConn is one HTTP/1.1 keep-alive connection, dialed before an attack
// so that requests still reach the relay while it cannot accept.
type rawConn struct {
	base string
	c    net.Conn
	br   *bufio.Reader
}

func dialRaw(t *testing.T, base string) *rawConn {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawConn{base: base, c: c, br: bufio.NewReader(c)}
}

// do sends one request on the connection and reads the answer.
func (r *rawConn) do(t *testing.T, method, path string, body []byte) (int, http.Header, string) {
	t.Helper()
	req, _ := http.NewRequest(method, r.base+path, bytes.NewReader(body))
	if body != nil {
		req.Header.Set("Content-Type", "application/x-ndjson")
	}
	r.c.SetDeadline(time.Now().Add(60 * time.Second))
	if err := req.Write(r.c); err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	resp, err := http.ReadResponse(r.br, req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	b.ReadFrom(resp.Body)
	return resp.StatusCode, resp.Header, b.String()
}

// metricOf reads one unlabeled sample from the relay's /metrics (-1: absent).
func metricOf(t *testing.T, c *http.Client, base, name string) float64 {
	t.Helper()
	_, _, body := secDo(t, c, "GET", base+"/metrics", "", "", nil)
	for _, line := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				t.Fatalf("metric %s: %q", name, line)
			}
			return f
		}
	}
	return -1
}

const oneEvent = `{"type":"click","path":"/fd"}` + "\n"

// publishRetrying publishes one event to tenant and returns its 202 body.
// A 503 must carry Retry-After and is retried (counted in refused); any
// other answer fails the test.
func publishRetrying(t *testing.T, c *http.Client, base, tenant string, refused *atomic.Int64) (string, error) {
	for try := 0; ; try++ {
		req, _ := http.NewRequest("POST", base+"/v1/tenants/"+tenant+"/events", strings.NewReader(oneEvent))
		req.Header.Set("Content-Type", "application/x-ndjson")
		resp, err := c.Do(req)
		if err != nil {
			return "", err
		}
		var b bytes.Buffer
		b.ReadFrom(resp.Body)
		resp.Body.Close()
		switch {
		case resp.StatusCode == http.StatusAccepted:
			return b.String(), nil
		case resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") != "" && try < 50:
			refused.Add(1)
			time.Sleep(100 * time.Millisecond)
		default:
			return "", fmt.Errorf("publish to %s: %d %s (Retry-After %q)", tenant, resp.StatusCode, strings.TrimSpace(b.String()), resp.Header.Get("Retry-After"))
		}
	}
}

// watcher is a subscriber's NDJSON stream, its deliveries' seqs on a channel.
type watcher struct {
	seqs   chan uint64
	cancel context.CancelFunc
	done   chan struct{} // closed when the stream ends
	err    error         // why, once done is closed
}

func watch(t *testing.T, base, tenant string) *watcher {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	w := &watcher{seqs: make(chan uint64, 1024), cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(w.done)
		_, w.err = streamLines(ctx, base, tenant, 0, "", func(d delivery, _ []byte) {
			select {
			case w.seqs <- d.Seq:
			case <-ctx.Done():
			}
		})
	}()
	t.Cleanup(func() { cancel(); <-w.done })
	return w
}

// expect waits (at most 30s) for the subscriber to receive seq.
func (w *watcher) expect(t *testing.T, seq uint64) {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		select {
		case got := <-w.seqs:
			if got == seq {
				return
			}
			if got > seq {
				t.Fatalf("subscriber got seq %d while waiting for %d", got, seq)
			}
		case <-w.done:
			t.Fatalf("subscriber's stream ended while waiting for seq %d: %v", seq, w.err)
		case <-timeout:
			t.Fatalf("subscriber never received seq %d", seq)
		}
	}
}

func lastSeqOf(t *testing.T, body string) uint64 {
	t.Helper()
	i := strings.Index(body, `"last_seq":`)
	if i < 0 {
		t.Fatalf("no last_seq in %q", body)
	}
	n, err := strconv.ParseUint(strings.TrimRight(strings.SplitN(body[i+len(`"last_seq":`):], ",", 2)[0], "}\n"), 10, 64)
	if err != nil {
		t.Fatalf("last_seq in %q: %v", body, err)
	}
	return n
}

// historyOf reads a tenant's whole history (?last=N, NDJSON) and returns
// the seqs, waiting until want of them came.
func historyOf(t *testing.T, base, tenant string, want int) []uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", fmt.Sprintf("%s/v1/tenants/%s/stream?last=1000", base, tenant), nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("history of %s: %v", tenant, err)
	}
	defer resp.Body.Close()
	var seqs []uint64
	sc := bufio.NewScanner(resp.Body)
	for len(seqs) < want && sc.Scan() {
		line := sc.Text()
		if s, ok := strings.CutPrefix(line, `{"seq":`); ok {
			n, _ := strconv.ParseUint(strings.SplitN(s, ",", 2)[0], 10, 64)
			seqs = append(seqs, n)
		}
	}
	return seqs
}

// TestDescriptorsManyTenants: one event to each of 1,200 new tenants under
// ulimit -n 1024 (each was a descriptor for good before). Every publish is
// accepted (a 503 with Retry-After would be retried; none should come), an
// existing subscriber keeps receiving, the relay holds a bounded number of
// descriptors and gives them back once the tenants go idle, and it restarts
// on the directory with every history intact.
func TestDescriptorsManyTenants(t *testing.T) {
	const tenants, workers = 1200, 8
	dir := t.TempDir()
	args := []string{"--data-dir", dir, "--tenant-idle", "1s"}
	p := startLimited(t, "-n 1024", args...)
	c := secHTTPClient(nil)
	w := watch(t, p.url, "watch")
	body, err := publishRetrying(t, c, p.url, "watch", new(atomic.Int64))
	if err != nil {
		t.Fatal(err)
	}
	w.expect(t, lastSeqOf(t, body))
	base := fdsOf(t, p)

	var refused atomic.Int64
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= tenants {
					return
				}
				if _, err := publishRetrying(t, c, p.url, fmt.Sprintf("t%04d", i), &refused); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	// Meanwhile the subscriber keeps receiving.
	for range 5 {
		body, err := publishRetrying(t, c, p.url, "watch", &refused)
		if err != nil {
			t.Fatal(err)
		}
		w.expect(t, lastSeqOf(t, body))
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	held := fdsOf(t, p)
	open := metricOf(t, c, p.url, "tl_relay_data_open_files")
	t.Logf("descriptors: %d with a subscriber, %d after writing %d tenants (%d segment files open, cache bound 256); %d publishes answered 503 and retried",
		base, held, tenants, int(open), refused.Load())
	if refused.Load() != 0 {
		t.Errorf("%d publishes were refused with 503: the relay should have had descriptors to spare", refused.Load())
	}
	if open > 256 {
		t.Errorf("%v segment files open, over the cache's bound of 256 (a quarter of 1024)", open)
	}
	if code, _, _ := secDo(t, c, "GET", p.url+"/healthz", "", "", nil); code != 200 {
		t.Errorf("/healthz %d", code)
	}
	// Idle tenants are dropped, and their files closed.
	testkit.WaitFor(t, "the idle tenants to be dropped", func() bool {
		return metricOf(t, c, p.url, "tl_relay_tenants") <= 1
	})
	idle := fdsOf(t, p)
	open = metricOf(t, c, p.url, "tl_relay_data_open_files")
	t.Logf("descriptors once the %d tenants are idle and dropped: %d (%d segment files open)", tenants, idle, int(open))
	if open > 1 { // the subscribed tenant's, at most
		t.Errorf("%v segment files still open once every written tenant is dropped, want <= 1", open)
	}
	if idle > base+10 { // a few keep-alive connections of the publishers
		t.Errorf("the relay holds %d descriptors with its tenants idle, %d before them", idle, base)
	}
	body, err = publishRetrying(t, c, p.url, "watch", &refused)
	if err != nil {
		t.Fatal(err)
	}
	w.expect(t, lastSeqOf(t, body))

	// A clean stop and a restart under the same limit.
	w.cancel()
	p.signal(syscall.SIGTERM)
	if code := waitExit(t, p); code != 0 {
		t.Fatalf("tl-relay exited %d on SIGTERM, want 0", code)
	}
	p = startLimited(t, "-n 1024", args...)
	for _, tn := range []string{"t0000", "t0599", fmt.Sprintf("t%04d", tenants-1)} {
		if got := historyOf(t, p.url, tn, 1); len(got) != 1 || got[0] != 1 {
			t.Errorf("tenant %s after restart holds seqs %v, want [1]", tn, got)
		}
		body, err := publishRetrying(t, c, p.url, tn, &refused)
		if err != nil {
			t.Fatal(err)
		}
		if got := lastSeqOf(t, body); got != 2 {
			t.Errorf("tenant %s after restart: a publish got seq %d, want 2", tn, got)
		}
	}
	if got := historyOf(t, p.url, "watch", 7); len(got) != 7 {
		t.Errorf("tenant watch after restart holds seqs %v, want 1-7", got)
	}
	p.signal(syscall.SIGTERM)
	if code := waitExit(t, p); code != 0 {
		t.Fatalf("tl-relay exited %d on SIGTERM after the restart, want 0", code)
	}
}

// TestDescriptorFlood: idle TCP connections until the relay has no
// descriptor left (a passing shortage, as one unauthenticated client can
// cause). Meanwhile a publish that needs a new file is refused with 503 and
// Retry-After, /readyz stays 200, and an existing subscriber keeps its
// stream; once the flood is gone the same publish is accepted, and no
// tenant is left failed.
func TestDescriptorFlood(t *testing.T) {
	const limit = 256
	dir := t.TempDir()
	p := startLimited(t, fmt.Sprintf("-n %d", limit), "--data-dir", dir, "--header-timeout", "5m")
	c := secHTTPClient(nil)
	w := watch(t, p.url, "watch")
	body, err := publishRetrying(t, c, p.url, "watch", new(atomic.Int64))
	if err != nil {
		t.Fatal(err)
	}
	w.expect(t, lastSeqOf(t, body))
	keep := dialRaw(t, p.url) // a publisher connected before the flood
	if code, _, b := keep.do(t, "GET", "/healthz", nil); code != 200 {
		t.Fatalf("/healthz %d %s", code, b)
	}

	var flood []net.Conn
	defer func() {
		for _, fc := range flood {
			fc.Close()
		}
	}()
	host := strings.TrimPrefix(p.url, "http://")
	// Connect until the relay holds every descriptor it may, then as many
	// again (they wait in the listen backlog, as a flood's would).
	for extra := 0; extra < 64 && len(flood) < 4*limit; {
		fc, err := net.DialTimeout("tcp", host, 5*time.Second)
		if err != nil {
			break // the backlog is full too
		}
		flood = append(flood, fc)
		if extra > 0 || fdsOf(t, p) >= limit {
			extra++
		}
	}
	t.Logf("flood: %d connections; the relay holds %d descriptors of %d", len(flood), fdsOf(t, p), limit)
	if fdsOf(t, p) < limit {
		t.Fatalf("the flood did not exhaust the relay's descriptors: %d of %d", fdsOf(t, p), limit)
	}

	// A new tenant needs a directory and files: refused, for now.
	code, hdr, b := keep.do(t, "POST", "/v1/tenants/fresh/events", []byte(oneEvent))
	t.Logf("publish to a new tenant during the flood: %d %s", code, strings.TrimSpace(b))
	if code != http.StatusServiceUnavailable || hdr.Get("Retry-After") == "" {
		t.Errorf("publish to a new tenant with no descriptor free: %d (Retry-After %q) %s, want 503 with Retry-After", code, hdr.Get("Retry-After"), b)
	}
	// The subscribed tenant's file may be open still (then its publish is
	// accepted and delivered) or not (then it is refused like the above).
	code, hdr, b = keep.do(t, "POST", "/v1/tenants/watch/events", []byte(oneEvent))
	t.Logf("publish to the subscribed tenant during the flood: %d %s", code, strings.TrimSpace(b))
	switch {
	case code == http.StatusAccepted:
		w.expect(t, lastSeqOf(t, b))
	case code == http.StatusServiceUnavailable && hdr.Get("Retry-After") != "":
	default:
		t.Errorf("publish to the subscribed tenant during the flood: %d %s", code, b)
	}
	if code, _, b := keep.do(t, "GET", "/readyz", nil); code != 200 {
		t.Errorf("/readyz during the flood: %d %s, want 200 (a passing shortage stops no tenant)", code, b)
	}

	for _, fc := range flood {
		fc.Close()
	}
	flood = nil
	testkit.WaitFor(t, "the relay to close the flood's connections", func() bool { return fdsOf(t, p) < limit/2 })

	for _, tn := range []string{"fresh", "watch"} {
		code, _, b := keep.do(t, "POST", "/v1/tenants/"+tn+"/events", []byte(oneEvent))
		if code != http.StatusAccepted {
			t.Fatalf("publish to %s after the flood: %d %s, want 202", tn, code, b)
		}
		if tn == "watch" {
			w.expect(t, lastSeqOf(t, b))
		} else if got := lastSeqOf(t, b); got != 1 {
			t.Errorf("tenant fresh's first accepted event got seq %d, want 1 (the refused one took none)", got)
		}
	}
	if code, _, _ := secDo(t, c, "GET", p.url+"/healthz", "", "", nil); code != 200 {
		t.Errorf("/healthz after the flood: %d", code)
	}
	if code, _, b := secDo(t, c, "GET", p.url+"/readyz", "", "", nil); code != 200 {
		t.Errorf("/readyz after the flood: %d %s", code, b)
	}
	if n := metricOf(t, c, p.url, "tl_relay_tenants_failed"); n != 0 {
		t.Errorf("tl_relay_tenants_failed = %v after a passing shortage, want 0", n)
	}
}

// TestReadersCreateNothing: streams (WebSocket and chunked NDJSON) on 1,000
// names never written leave nothing in the data directory, and still
// receive what is published later.
func TestReadersCreateNothing(t *testing.T) {
	const names = 1000
	dir := t.TempDir()
	p := startRelay(t, "127.0.0.1:0", "--data-dir", dir)
	p.waitLog("msg=started") // the directory is set up by then
	list := func() []string {
		var got []string
		filepath.WalkDir(dir, func(path string, _ os.DirEntry, err error) error {
			got = append(got, strings.TrimPrefix(path, dir))
			return nil
		})
		return got
	}
	before := list()
	ws := strings.Replace(p.url, "http://", "ws://", 1)
	var conns []*websocket.Conn
	var streams []*bufio.Reader
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	tr := &http.Transport{MaxConnsPerHost: 0}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for i := range names {
		name := fmt.Sprintf("ghost%04d", i)
		if i%2 == 0 {
			c, _, err := websocket.DefaultDialer.Dial(ws+"/v1/tenants/"+name+"/stream", nil)
			if err != nil {
				t.Fatalf("subscribing to %s: %v", name, err)
			}
			conns = append(conns, c)
			continue
		}
		req, _ := http.NewRequestWithContext(ctx, "GET", p.url+"/v1/tenants/"+name+"/stream", nil)
		resp, err := hc.Do(req)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("streaming %s: %v %v", name, err, resp)
		}
		defer resp.Body.Close()
		streams = append(streams, bufio.NewReader(resp.Body))
	}
	after := list()
	t.Logf("data directory with %d streams open on never-written names: %d entries (before: %d)", names, len(after), len(before))
	if strings.Join(after, "\n") != strings.Join(before, "\n") {
		t.Errorf("subscribing created entries in the data directory:\nbefore %v\nafter  %v", before, after)
	}
	// The streams work: a WebSocket and a chunked one get what comes later.
	c := secHTTPClient(nil)
	for _, name := range []string{"ghost0000", "ghost0001"} {
		if _, err := publishRetrying(t, c, p.url, name, new(atomic.Int64)); err != nil {
			t.Fatal(err)
		}
	}
	conns[0].SetReadDeadline(time.Now().Add(30 * time.Second))
	for {
		_, msg, err := conns[0].ReadMessage()
		if err != nil {
			t.Fatalf("the WebSocket of ghost0000: %v", err)
		}
		if bytes.Contains(msg, []byte(`{"seq":1,`)) {
			break
		}
	}
	for {
		line, err := streams[0].ReadString('\n')
		if err != nil {
			t.Fatalf("the stream of ghost0001: %v", err)
		}
		if strings.HasPrefix(line, `{"seq":1,`) {
			break
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "tenants", "ghost0002")); !os.IsNotExist(err) {
		t.Errorf("an unwritten tenant has a directory: %v", err)
	}
}

// TestDiskWriteFailureReported: a write that fails (the file size limit,
// RLIMIT_FSIZE, standing in for a full or failing disk) stops its tenant,
// and /readyz, the metrics and the log name it; other tenants go on.
func TestDiskWriteFailureReported(t *testing.T) {
	dir := t.TempDir()
	// dash counts -f in 512-byte blocks: 64 KiB.
	p := startLimited(t, "-f 128", "--data-dir", dir)
	c := secHTTPClient(nil)
	big := bytes.Repeat([]byte(`{"type":"click","path":"/`+strings.Repeat("x", 900)+`"}`+"\n"), 4)
	var code int
	var b string
	for i := 0; i < 200; i++ {
		code, _, b = secDo(t, c, "POST", p.url+"/v1/tenants/big/events", "", "application/x-ndjson", big)
		if code != http.StatusAccepted {
			break
		}
	}
	t.Logf("publish past the file size limit: %d %s", code, strings.TrimSpace(b))
	if code != http.StatusServiceUnavailable {
		t.Fatalf("publish past the file size limit: %d %s, want 503", code, b)
	}
	code, _, b = secDo(t, c, "GET", p.url+"/readyz", "", "", nil)
	t.Logf("/readyz: %d %s", code, strings.TrimSpace(b))
	if code != http.StatusServiceUnavailable || !strings.Contains(b, "big") {
		t.Errorf("/readyz with a failed tenant: %d %q, want 503 naming tenant big", code, b)
	}
	if n := metricOf(t, c, p.url, "tl_relay_tenants_failed"); n != 1 {
		t.Errorf("tl_relay_tenants_failed = %v, want 1", n)
	}
	p.waitLog("tenant=big")
	if !strings.Contains(p.log.String(), "write failed") {
		t.Errorf("the log does not say the write failed:\n%s", p.log)
	}
	// The tenant stays stopped; the others do not.
	if code, _, b := secDo(t, c, "POST", p.url+"/v1/tenants/big/events", "", "application/x-ndjson", []byte(oneEvent)); code != http.StatusServiceUnavailable {
		t.Errorf("publish to the failed tenant: %d %s, want 503", code, b)
	}
	if _, err := publishRetrying(t, c, p.url, "small", new(atomic.Int64)); err != nil {
		t.Error(err)
	}
}

// TestRecoveryManyTenants: a directory of 100,000 tenants (one tenant's
// files, acked mark included, linked; 5,000 with -short) recovers under
// ulimit -n 1024, where the relay used to exit 1: it starts, serves
// /healthz, a stream of one of those tenants with its history, and a
// publish, holding a handful of descriptors.
func TestRecoveryManyTenants(t *testing.T) {
	tenants := 100_000
	if testing.Short() {
		tenants = 5_000 // still several times the descriptor limit
	}
	dir := t.TempDir()
	p := startRelay(t, "127.0.0.1:0", "--data-dir", dir)
	c := secHTTPClient(nil)
	for range 3 {
		if _, err := publishRetrying(t, c, p.url, "seed", new(atomic.Int64)); err != nil {
			t.Fatal(err)
		}
	}
	p.signal(syscall.SIGTERM)
	if code := waitExit(t, p); code != 0 {
		t.Fatalf("tl-relay exited %d", code)
	}
	seed := filepath.Join(dir, "tenants", "seed")
	ents, err := os.ReadDir(seed)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	for _, e := range ents {
		if files[e.Name()], err = os.ReadFile(filepath.Join(seed, e.Name())); err != nil {
			t.Fatal(err)
		}
	}
	if files["acked"] == nil || files["meta.json"] == nil {
		t.Fatalf("the seed tenant has files %v, want its acked mark and meta.json among them", ents)
	}
	// Mostly hard links, not copies: recovery only reads these files (no
	// damage to cut, the acked mark matches, the epoch is there), so the
	// tenants can share inodes, much cheaper to make and to delete. Every
	// linkSpan-th tenant gets copies, which the next ones link to (ext4
	// allows 65,000 links to an inode); so does the one tenant published to.
	const linkSpan = 1000
	tn := fmt.Sprintf("m%06d", tenants/2)
	src := ""
	start := time.Now()
	for i := range tenants {
		name := fmt.Sprintf("m%06d", i)
		td := filepath.Join(dir, "tenants", name)
		if err := os.Mkdir(td, 0o755); err != nil {
			t.Fatal(err)
		}
		copies := i%linkSpan == 0 || name == tn
		for f, b := range files {
			if copies {
				err = os.WriteFile(filepath.Join(td, f), b, 0o644)
			} else {
				err = os.Link(filepath.Join(src, f), filepath.Join(td, f))
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		if i%linkSpan == 0 {
			src = td
		}
	}
	t.Logf("wrote %d tenants (%d files each) in %v", tenants, len(files), time.Since(start).Round(time.Millisecond))

	start = time.Now()
	p = startLimited(t, "-n 1024", "--data-dir", dir)
	deadline := time.Now().Add(10 * time.Minute) // a bound on a hang, not a measure
	for !strings.Contains(p.log.String(), "msg=started") {
		if !p.alive() {
			t.Fatalf("tl-relay exited during recovery:\n%s", p.log)
		}
		if time.Now().After(deadline) {
			t.Fatal("recovery did not end within 10 minutes")
		}
		time.Sleep(50 * time.Millisecond)
	}
	took := time.Since(start)
	rss, _ := p.rss()
	t.Logf("recovered %d tenants under ulimit -n 1024 in %v; %d descriptors held, RSS %d MiB",
		tenants+1, took.Round(time.Millisecond), fdsOf(t, p), rss>>20)
	if code, _, _ := secDo(t, c, "GET", p.url+"/healthz", "", "", nil); code != 200 {
		t.Errorf("/healthz %d", code)
	}
	if got := historyOf(t, p.url, tn, 3); len(got) != 3 || got[0] != 1 || got[2] != 3 {
		t.Errorf("tenant %s streams seqs %v, want 1-3 from its history", tn, got)
	}
	body, err := publishRetrying(t, c, p.url, tn, new(atomic.Int64))
	if err != nil {
		t.Fatal(err)
	}
	if got := lastSeqOf(t, body); got != 4 {
		t.Errorf("publish to %s got seq %d, want 4", tn, got)
	}
	if n := fdsOf(t, p); n > 64 {
		t.Errorf("the relay holds %d descriptors after recovering %d tenants, want a handful", n, tenants)
	}
	p.signal(syscall.SIGTERM)
	if code := waitExit(t, p); code != 0 {
		t.Errorf("tl-relay exited %d on SIGTERM, want 0", code)
	}
	// Recovery wrote nothing through the shared links.
	for f, b := range files {
		if got, err := os.ReadFile(filepath.Join(src, f)); err != nil || !bytes.Equal(got, b) {
			t.Errorf("%s changed while the relay ran (%v): the links were written through", f, err)
		}
	}
}
