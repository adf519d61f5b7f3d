package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
)

// streamWait bounds how long stream and stream-match wait for deliveries.
const streamWait = 30 * time.Second

// streamQuiet is how long stream-match listens past the expected lines for
// one too many: history is replayed at once, so an extra line would come in
// the same burst.
const streamQuiet = 300 * time.Millisecond

// readDeliveries reads up to want deliveries of tenant from the relay's
// chunked NDJSON stream (tl-protocol(7), Subscribe, without the WebSocket
// upgrade), asking for the newest last of its history. It stops after want
// lines and quiet more (0: at once), or at the bound, and checks that the
// seq numbers grow by exactly 1.
func readDeliveries(ts *testscript.TestScript, tenant string, last, want int, quiet time.Duration) []string {
	relay := ts.Getenv("TL_RELAY")
	if relay == "" {
		ts.Fatalf("no relay: run relay-start first")
	}
	ctx, cancel := context.WithTimeout(context.Background(), streamWait)
	defer cancel()
	url := fmt.Sprintf("%s/v1/tenants/%s/stream?last=%d", strings.TrimRight(relay, "/"), tenant, last)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	ts.Check(err)
	if tok := ts.Getenv("TL_TOKEN"); tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := http.DefaultClient.Do(req)
	ts.Check(err)
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		ts.Fatalf("GET %s: %s %s", url, resp.Status, body)
	}

	var mu sync.Mutex // guards lines, err
	var lines []string
	var readErr error
	enough := make(chan struct{})
	go func() {
		// Ends when the body is closed (cancel or return).
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(nil, 1<<20)
		signalled := false
		for sc.Scan() {
			line := strings.TrimSpace(sc.Text())
			if line == "" {
				continue // keep-alive
			}
			mu.Lock()
			lines = append(lines, line)
			n := len(lines)
			mu.Unlock()
			if n >= want && !signalled {
				signalled = true
				close(enough)
			}
		}
		mu.Lock()
		readErr = sc.Err()
		mu.Unlock()
	}()
	select {
	case <-enough:
		if quiet > 0 {
			time.Sleep(quiet)
		}
	case <-ctx.Done():
	}
	cancel()
	resp.Body.Close()
	mu.Lock()
	defer mu.Unlock()
	if len(lines) < want {
		ts.Fatalf("stream %s: %d deliveries within %v, want %d (read error: %v)", tenant, len(lines), streamWait, want, readErr)
	}
	var prev uint64
	for i, l := range lines {
		seq, ok := lineSeq(l)
		if !ok {
			ts.Fatalf("stream %s: line %d is not a delivery: %s", tenant, i+1, l)
		}
		if i > 0 && seq != prev+1 {
			ts.Fatalf("stream %s: seq %d follows %d", tenant, seq, prev)
		}
		prev = seq
	}
	return append([]string(nil), lines...)
}

// lineSeq reads N from a line starting {"seq":N,.
func lineSeq(line string) (uint64, bool) {
	rest, ok := strings.CutPrefix(line, `{"seq":`)
	if !ok {
		return 0, false
	}
	i := strings.IndexByte(rest, ',')
	if i < 0 {
		return 0, false
	}
	n, err := strconv.ParseUint(rest[:i], 10, 64)
	return n, err == nil
}

var anyTimestamp = regexp.MustCompile(`"timestamp":[0-9]+`)

// stripSeq turns {"seq":N,REST into {REST.
func stripSeq(line string) string {
	if _, ok := lineSeq(line); !ok {
		return line
	}
	return "{" + line[strings.IndexByte(line, ',')+1:]
}

// cmdStream prints a tenant's newest N deliveries:
//
//	stream [-strip-seq] TENANT N
//
// It fails unless N arrive within 30s with seq numbers growing by 1.
// -strip-seq removes the leading "seq" so the lines read as published.
func cmdStream(ts *testscript.TestScript, neg bool, args []string) {
	if neg {
		ts.Fatalf("unsupported: ! stream")
	}
	strip := len(args) > 0 && args[0] == "-strip-seq"
	if strip {
		args = args[1:]
	}
	if len(args) != 2 {
		ts.Fatalf("usage: stream [-strip-seq] TENANT N")
	}
	n, err := strconv.Atoi(args[1])
	ts.Check(err)
	lines := readDeliveries(ts, args[0], n, n, 0)
	for _, l := range lines[:n] {
		if strip {
			l = stripSeq(l)
		}
		fmt.Fprintln(ts.Stdout(), l)
	}
}

// cmdStreamMatch checks that a tenant's history ends with exactly the
// events of FILE, in order, each once:
//
//	stream-match TENANT FILE
//
// It reads one more than FILE's line count from the history, so a tenant
// holding a duplicate or an extra event fails; deliveries are compared
// without their "seq". A want line may write "timestamp":TS for a timestamp
// that the relay set (any number matches).
func cmdStreamMatch(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 {
		ts.Fatalf("usage: stream-match TENANT FILE")
	}
	data, err := os.ReadFile(ts.MkAbs(args[1]))
	ts.Check(err)
	var want []string
	for _, l := range strings.Split(string(data), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			want = append(want, l)
		}
	}
	got := readDeliveries(ts, args[0], len(want)+1, len(want), streamQuiet)
	for i := range got {
		got[i] = stripSeq(got[i])
	}
	mismatch := ""
	switch {
	case len(got) != len(want):
		mismatch = fmt.Sprintf("%s holds %d events or more, want %d", args[0], len(got), len(want))
	default:
		for i := range want {
			if strings.Contains(want[i], `"timestamp":TS`) {
				got[i] = anyTimestamp.ReplaceAllString(got[i], `"timestamp":TS`)
			}
			if got[i] != want[i] {
				mismatch = fmt.Sprintf("%s event %d:\n got  %s\n want %s", args[0], i+1, got[i], want[i])
				break
			}
		}
	}
	if (mismatch != "") != neg {
		if neg {
			ts.Fatalf("%s matches %s", args[0], args[1])
		}
		ts.Fatalf("%s", mismatch)
	}
}

// cmdSwallowProxy starts a proxy to $TL_RELAY that lets the relay answer the
// first N publishes with 202 and then drops the connection instead of
// passing the answer on (a 202 lost on the way):
//
//	swallow-proxy N
//
// It sets $TL_PROXY to the proxy's URL and stops with the script.
func cmdSwallowProxy(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: swallow-proxy N")
	}
	left, err := strconv.Atoi(args[0])
	ts.Check(err)
	relay := strings.TrimRight(ts.Getenv("TL_RELAY"), "/")
	var mu sync.Mutex // guards left
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			return
		}
		req, err := http.NewRequestWithContext(r.Context(), r.Method, relay+r.URL.RequestURI(), bytes.NewReader(body))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		req.Header = r.Header.Clone()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		answer, _ := io.ReadAll(resp.Body)
		mu.Lock()
		drop := r.Method == http.MethodPost && resp.StatusCode == http.StatusAccepted && left > 0
		if drop {
			left--
		}
		mu.Unlock()
		if drop {
			if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
				conn.Close()
			}
			return
		}
		for k, v := range resp.Header {
			w.Header()[k] = v
		}
		w.WriteHeader(resp.StatusCode)
		w.Write(answer)
	}))
	ts.Defer(srv.Close)
	ts.Setenv("TL_PROXY", srv.URL)
}
