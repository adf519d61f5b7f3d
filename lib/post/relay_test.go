package post

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tl-sh/tl/lib/cli"
	"github.com/tl-sh/tl/lib/event"
)

// fakeRelay is the publish side of tl-protocol(7), small enough to steer: it
// validates with lib/event, keeps each tenant's accepted lines in order,
// remembers Idempotency-Keys, and lets a test answer a request itself.
type fakeRelay struct {
	mu       sync.Mutex // guards everything below
	events   map[string][]string
	keys     map[string]string // tenant + " " + key → the first 202 body
	requests int               // POSTs received
	repeats  int               // POSTs answered from the key cache
	bodies   []int             // events per accepted request
	// intercept, when set, may answer request number n (from 1) itself
	// and return true. Called without mu held.
	intercept func(w http.ResponseWriter, r *http.Request, n int) bool
}

func newFakeRelay() *fakeRelay {
	return &fakeRelay{events: map[string][]string{}, keys: map[string]string{}}
}

func (f *fakeRelay) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	if len(parts) != 4 || parts[0] != "v1" || parts[1] != "tenants" || parts[3] != "events" {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		http.Error(w, `{"error":"method"}`, http.StatusMethodNotAllowed)
		return
	}
	tenant := parts[2]
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	f.mu.Lock()
	f.requests++
	n := f.requests
	hook := f.intercept
	f.mu.Unlock()
	if hook != nil && hook(w, r, n) {
		return
	}

	key := r.Header.Get("Idempotency-Key")
	f.mu.Lock()
	if cached, ok := f.keys[tenant+" "+key]; ok && key != "" {
		f.repeats++
		f.mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
		io.WriteString(w, cached)
		return
	}
	f.mu.Unlock()

	var v event.Validator
	var lines []string
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(nil, 1<<20)
	for i := 1; sc.Scan(); i++ {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		if err := v.Validate(sc.Bytes(), tenant); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprintf(w, `{"error":"line %d: %s","line":%d}`, i, err, i)
			return
		}
		lines = append(lines, string(v.AppendObject(nil, tenant)))
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	first := len(f.events[tenant]) + 1
	f.events[tenant] = append(f.events[tenant], lines...)
	f.bodies = append(f.bodies, len(lines))
	resp := fmt.Sprintf(`{"accepted":%d,"first_seq":%d,"last_seq":%d,"epoch":"e1"}`, len(lines), first, first+len(lines)-1)
	if key != "" {
		f.keys[tenant+" "+key] = resp
	}
	w.WriteHeader(http.StatusAccepted)
	io.WriteString(w, resp)
}

func (f *fakeRelay) snapshot() (events map[string][]string, requests, repeats int, bodies []int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	events = map[string][]string{}
	for k, v := range f.events {
		events[k] = append([]string(nil), v...)
	}
	return events, f.requests, f.repeats, append([]int(nil), f.bodies...)
}

// swallow202 makes the relay's first n 202 answers vanish: the batch is
// published, then the connection drops before the client reads the answer.
func swallow202(h http.Handler, n int) http.Handler {
	var mu sync.Mutex
	left := n
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		mu.Lock()
		drop := rec.Code == http.StatusAccepted && left > 0
		if drop {
			left--
		}
		mu.Unlock()
		if drop {
			conn, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				conn.Close()
			}
			return
		}
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		w.Write(rec.Body.Bytes())
	})
}

// result is what one run of tl-post left behind.
type result struct {
	err    error
	code   int
	stdout string
	stderr string
}

// runPost runs tl-post in-process with stdin and args against relay URL.
func runPost(t testing.TB, ctx context.Context, url string, stdin io.Reader, args ...string) result {
	t.Helper()
	if stdin == nil {
		stdin = strings.NewReader("")
	}
	var out, errb bytes.Buffer
	env := &cli.Env{
		Stdin: stdin, Stdout: &out, Stderr: &errb,
		Getenv: func(k string) string {
			if k == "TL_RELAY" {
				return url
			}
			return ""
		},
	}
	if ctx == nil {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
	}
	err := Run(ctx, args, env)
	code, msg := cli.Code(err)
	if msg != "" {
		errb.WriteString("tl-post: " + msg + "\n")
	}
	return result{err: err, code: code, stdout: out.String(), stderr: errb.String()}
}

// genEvents returns n valid lines spread over the tenants, each with a
// distinct path /e/I so that order can be checked.
func genEvents(n int, tenants ...string) string {
	var b strings.Builder
	for i := range n {
		t := tenants[i%len(tenants)]
		fmt.Fprintf(&b, `{"tenant_id":%q,"timestamp":%d,"type":"click","path":"/e/%d"}`+"\n", t, 1795824000000+int64(i), i)
	}
	return b.String()
}

// paths returns the path of each canonical event line, in order.
func paths(lines []string) []string {
	out := make([]string, len(lines))
	for i, l := range lines {
		j := strings.Index(l, `"path":"`)
		k := strings.IndexByte(l[j+8:], '"')
		out[i] = l[j+8 : j+8+k]
	}
	return out
}
