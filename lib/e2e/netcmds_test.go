package e2e

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
)

// Script commands (registered in Params) for streams and broken connections (used by tail-*.txtar):
//
//	free-port VAR             set $VAR to a free loopback port (for a relay
//	                          restarted on the same address)
//	proxy-start [-name N] URL a TCP proxy to URL's host; sets $TL_PROXY and
//	                          $TL_PROXY_<N> to its http URL
//	proxy-cut [N]             cut every connection through the proxy
//	wait-lines FILE N         wait (up to 60s) until FILE holds N lines
//	seq-check [-dropped ERR] FILE FIRST LAST
//	                          FILE holds only whole delivery lines whose seq
//	                          runs FIRST..LAST, each once, in order; with
//	                          -dropped, lines may be missing but exactly as
//	                          many as ERR's "dropped N lines" reports add up to

func cmdFreePort(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: free-port VAR")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	ts.Check(err)
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	ts.Setenv(args[0], strconv.Itoa(port))
}

// proxy forwards TCP connections to a target and can cut them all.
type proxy struct {
	l      net.Listener
	target string
	mu     sync.Mutex // guards conns
	conns  map[net.Conn]struct{}
	wg     sync.WaitGroup // the accept loop and the copying goroutines
}

var (
	proxyMu    sync.Mutex // guards proxyTable
	proxyTable = map[*testscript.TestScript]map[string]*proxy{}
)

func cmdProxyStart(ts *testscript.TestScript, neg bool, args []string) {
	name := "main"
	if len(args) >= 2 && args[0] == "-name" {
		name, args = args[1], args[2:]
	}
	if neg || len(args) != 1 {
		ts.Fatalf("usage: proxy-start [-name N] URL")
	}
	target := strings.TrimPrefix(strings.TrimPrefix(args[0], "http://"), "https://")
	target, _, _ = strings.Cut(target, "/")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	ts.Check(err)
	p := &proxy{l: l, target: target, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	proxyMu.Lock()
	if proxyTable[ts] == nil {
		proxyTable[ts] = map[string]*proxy{}
		ts.Defer(func() {
			proxyMu.Lock()
			ps := proxyTable[ts]
			delete(proxyTable, ts)
			proxyMu.Unlock()
			for _, p := range ps {
				p.close()
			}
		})
	}
	proxyTable[ts][name] = p
	proxyMu.Unlock()
	url := "http://" + l.Addr().String()
	ts.Setenv("TL_PROXY", url)
	ts.Setenv("TL_PROXY_"+strings.ToUpper(name), url)
}

func (p *proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.l.Accept()
		if err != nil {
			return
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns[c], p.conns[up] = struct{}{}, struct{}{}
		p.mu.Unlock()
		p.wg.Add(2)
		go p.pipe(c, up)
		go p.pipe(up, c)
	}
}

// pipe copies one direction; when it ends both sides are closed.
func (p *proxy) pipe(dst, src net.Conn) {
	defer p.wg.Done()
	io.Copy(dst, src)
	dst.Close()
	src.Close()
	p.mu.Lock()
	delete(p.conns, dst)
	delete(p.conns, src)
	p.mu.Unlock()
}

// cut closes every live connection (the listener stays).
func (p *proxy) cut() {
	p.mu.Lock()
	conns := make([]net.Conn, 0, len(p.conns))
	for c := range p.conns {
		conns = append(conns, c)
	}
	p.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
}

func (p *proxy) close() {
	p.l.Close()
	p.cut()
	p.wg.Wait()
}

func cmdProxyCut(ts *testscript.TestScript, neg bool, args []string) {
	name := "main"
	if len(args) > 0 {
		name = args[0]
	}
	proxyMu.Lock()
	p := proxyTable[ts][name]
	proxyMu.Unlock()
	if neg || p == nil {
		ts.Fatalf("usage: proxy-cut [NAME] (after proxy-start)")
	}
	p.cut()
}

func cmdWaitLines(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: wait-lines FILE N")
	}
	n, err := strconv.Atoi(args[1])
	ts.Check(err)
	path := ts.MkAbs(args[0])
	deadline := time.Now().Add(60 * time.Second)
	for {
		data, _ := os.ReadFile(path)
		got := bytes.Count(data, []byte("\n"))
		if got >= n {
			return
		}
		if time.Now().After(deadline) {
			ts.Fatalf("%s holds %d lines after 60s, want %d", args[0], got, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

var droppedRE = regexp.MustCompile(`dropped (\d+) lines?:`)

func cmdSeqCheck(ts *testscript.TestScript, neg bool, args []string) {
	errFile := ""
	if len(args) >= 2 && args[0] == "-dropped" {
		errFile, args = args[1], args[2:]
	}
	if len(args) != 3 {
		ts.Fatalf("usage: seq-check [-dropped ERRFILE] FILE FIRST LAST")
	}
	first, err1 := strconv.ParseUint(args[1], 10, 64)
	last, err2 := strconv.ParseUint(args[2], 10, 64)
	ts.Check(errors.Join(err1, err2))
	summary, err := seqCheck(ts.ReadFile(args[0]), errFile != "", func() string { return ts.ReadFile(errFile) }, first, last)
	if (err != nil) != neg {
		if err == nil {
			ts.Fatalf("seq-check passed")
		}
		ts.Fatalf("seq-check %s: %v", args[0], err)
	}
	if err == nil {
		ts.Logf("seq-check %s: ok, %s", args[0], summary)
	}
}

// seqCheck checks out (see seq-check) and summarises what it found.
func seqCheck(out string, allowDrops bool, stderr func() string, first, last uint64) (string, error) {
	if out != "" && !strings.HasSuffix(out, "\n") {
		return "", fmt.Errorf("ends in a partial line")
	}
	var lines, prev uint64
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		l := sc.Text()
		rest, ok := strings.CutPrefix(l, `{"seq":`)
		num, _, ok2 := strings.Cut(rest, ",")
		seq, err := strconv.ParseUint(num, 10, 64)
		if !ok || !ok2 || err != nil || !strings.HasSuffix(l, "}") {
			return "", fmt.Errorf("line %d is not a whole delivery: %.80q", lines+1, l)
		}
		switch {
		case seq < first || seq > last:
			return "", fmt.Errorf("line %d: seq %d outside %d..%d", lines+1, seq, first, last)
		case lines > 0 && seq <= prev:
			return "", fmt.Errorf("line %d: seq %d after %d", lines+1, seq, prev)
		case !allowDrops && seq != first+lines:
			return "", fmt.Errorf("line %d: seq %d, want %d", lines+1, seq, first+lines)
		}
		prev = seq
		lines++
	}
	want := last - first + 1
	if !allowDrops {
		if lines != want {
			return "", fmt.Errorf("%d lines, want %d", lines, want)
		}
		return fmt.Sprintf("%d lines", lines), nil
	}
	var dropped uint64
	for _, m := range droppedRE.FindAllStringSubmatch(stderr(), -1) {
		n, _ := strconv.ParseUint(m[1], 10, 64)
		dropped += n
	}
	if lines+dropped != want {
		return "", fmt.Errorf("%d lines printed + %d reported dropped = %d, want %d", lines, dropped, lines+dropped, want)
	}
	return fmt.Sprintf("%d lines printed + %d reported dropped", lines, dropped), nil
}

func TestSeqCheck(t *testing.T) {
	l := func(seq int) string { return fmt.Sprintf(`{"seq":%d,"type":"click"}`+"\n", seq) }
	tests := []struct {
		name       string
		out        string
		drops      bool
		stderr     string
		wantErr    string
		first, end uint64
	}{
		{"contiguous", l(1) + l(2) + l(3), false, "", "", 1, 3},
		{"partial last line", l(1) + `{"seq":2,"ty`, false, "", "partial", 1, 2},
		{"duplicate", l(1) + l(1) + l(2), false, "", "seq 1 after 1", 1, 2},
		{"missing without drops", l(1) + l(3), false, "", "seq 3, want 2", 1, 3},
		{"short", l(1) + l(2), false, "", "2 lines, want 3", 1, 3},
		{"not a delivery", l(1) + `{"control":"hello"}` + "\n", false, "", "not a whole delivery", 1, 2},
		{"drops add up", l(1) + l(4), true, "tl-tail: dropped 2 lines: x\n", "", 1, 4},
		{"drops do not add up", l(1) + l(4), true, "tl-tail: dropped 1 line: x\n", "2 lines printed + 1 reported dropped", 1, 4},
	}
	for _, tt := range tests {
		_, err := seqCheck(tt.out, tt.drops, func() string { return tt.stderr }, tt.first, tt.end)
		if (err == nil) != (tt.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
			t.Errorf("%s: seqCheck = %v, want %q", tt.name, err, tt.wantErr)
		}
	}
}
