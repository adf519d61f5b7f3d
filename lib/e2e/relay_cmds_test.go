package e2e

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/rogpeppe/go-internal/testscript"
)

// The commands for driving tl-relay directly (registered in Params):
//
//	http METHOD PATH [FILE [CONTENT-TYPE]] [-H NAME:VALUE]...
//	    a request to $TL_RELAY+PATH; prints "STATUS", the Allow,
//	    Retry-After and Content-Type headers when set, then the body
//	sub-start NAME PATH
//	    subscribes in the background (over WebSocket, or to the chunked
//	    stream when NAME starts with "ndjson"), collecting lines; the
//	    stream's end is recorded as a last line "end: close 1001",
//	    "end: eof" or "end: error ..."
//	sub-wait NAME N
//	    waits (up to 30s) for N lines from NAME and prints them

func relayURL(ts *testscript.TestScript) string {
	u := ts.Getenv("TL_RELAY")
	if u == "" {
		ts.Fatalf("no relay: run relay-start first")
	}
	return u
}

func cmdHTTP(ts *testscript.TestScript, neg bool, args []string) {
	if neg {
		ts.Fatalf("unsupported: ! http")
	}
	var hdrs []string
	var pos []string
	for i := 0; i < len(args); i++ {
		if args[i] == "-H" && i+1 < len(args) {
			hdrs = append(hdrs, args[i+1])
			i++
			continue
		}
		pos = append(pos, args[i])
	}
	if len(pos) < 2 {
		ts.Fatalf("usage: http METHOD PATH [FILE [CONTENT-TYPE]] [-H NAME:VALUE]...")
	}
	var body io.Reader
	if len(pos) >= 3 {
		f, err := os.Open(ts.MkAbs(pos[2]))
		ts.Check(err)
		defer f.Close()
		body = f
	}
	req, err := http.NewRequest(pos[0], relayURL(ts)+pos[1], body)
	ts.Check(err)
	if len(pos) >= 4 {
		req.Header.Set("Content-Type", pos[3])
	}
	for _, h := range hdrs {
		k, v, _ := strings.Cut(h, ":")
		req.Header.Set(k, strings.TrimSpace(v))
	}
	client := &http.Client{Timeout: 30 * time.Second}
	res, err := client.Do(req)
	ts.Check(err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	ts.Check(err)
	fmt.Fprintf(ts.Stdout(), "%d\n", res.StatusCode)
	for _, k := range []string{"Allow", "Retry-After", "Content-Type"} {
		if v := res.Header.Get(k); v != "" {
			fmt.Fprintf(ts.Stdout(), "%s: %s\n", k, v)
		}
	}
	ts.Stdout().Write(b)
}

// subscription is a background subscriber started by sub-start.
type subscription struct {
	mu    sync.Mutex // guards lines
	lines []string
	more  chan struct{} // pulsed (non-blocking) on every line
	close func()
}

var (
	subsMu sync.Mutex
	subs   = map[*testscript.TestScript]map[string]*subscription{}
)

func cmdSubStart(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: sub-start NAME PATH")
	}
	name, path := args[0], args[1]
	s := &subscription{more: make(chan struct{}, 1)}
	add := func(l string) {
		s.mu.Lock()
		s.lines = append(s.lines, l)
		s.mu.Unlock()
		select {
		case s.more <- struct{}{}:
		default:
		}
	}
	base := relayURL(ts)
	if strings.HasPrefix(name, "ndjson") {
		res, err := http.Get(base + path)
		ts.Check(err)
		if res.StatusCode != 200 {
			ts.Fatalf("sub-start %s: %s", name, res.Status)
		}
		s.close = func() { res.Body.Close() }
		go func() {
			sc := bufio.NewScanner(res.Body)
			sc.Buffer(nil, 1<<20)
			for sc.Scan() {
				if sc.Text() != "" {
					add(sc.Text())
				}
			}
			if err := sc.Err(); err != nil {
				add("end: error " + err.Error())
			} else {
				add("end: eof")
			}
		}()
	} else {
		c, res, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(base, "http")+path, nil)
		if err != nil {
			status := ""
			if res != nil {
				status = res.Status
			}
			ts.Fatalf("sub-start %s: %v %s", name, err, status)
		}
		s.close = func() { c.Close() }
		go func() {
			for {
				_, msg, err := c.ReadMessage()
				if err != nil {
					var ce *websocket.CloseError
					if errors.As(err, &ce) {
						add("end: close " + strconv.Itoa(ce.Code))
					} else {
						add("end: error " + err.Error())
					}
					return
				}
				for _, l := range strings.SplitAfter(strings.TrimSuffix(string(msg), "\n"), "\n") {
					add(strings.TrimSuffix(l, "\n"))
				}
			}
		}()
	}
	subsMu.Lock()
	if subs[ts] == nil {
		subs[ts] = map[string]*subscription{}
		ts.Defer(func() {
			subsMu.Lock()
			all := subs[ts]
			delete(subs, ts)
			subsMu.Unlock()
			for _, s := range all {
				s.close()
			}
		})
	}
	subs[ts][name] = s
	subsMu.Unlock()
}

func cmdSubWait(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: sub-wait NAME N")
	}
	n, err := strconv.Atoi(args[1])
	ts.Check(err)
	subsMu.Lock()
	s := subs[ts][args[0]]
	subsMu.Unlock()
	if s == nil {
		ts.Fatalf("no subscription %q", args[0])
	}
	deadline := time.After(30 * time.Second)
	for {
		s.mu.Lock()
		got := append([]string(nil), s.lines...)
		s.mu.Unlock()
		if len(got) >= n {
			for _, l := range got[:n] {
				fmt.Fprintln(ts.Stdout(), l)
			}
			return
		}
		select {
		case <-s.more:
		case <-deadline:
			ts.Fatalf("sub-wait %s: %d lines after 30s, want %d:\n%s", args[0], len(got), n, strings.Join(got, "\n"))
		}
	}
}
