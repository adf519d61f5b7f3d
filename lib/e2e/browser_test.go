package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"html/template"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tl-sh/tl/lib/internal/testkit"
)

// browserPage is the test's web page: tl's one <script> tag, a marked
// button (its text in a span, so that the click lands on a child), an
// unmarked paragraph, and a note of each popstate, heard after the
// snippet's listener.
var browserPage = template.Must(template.New("page").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>shop</title>
<script src="{{.Relay}}/v1/tl.js" data-tenant="acme" data-key="{{.Key}}"{{if .DNT}} data-respect-dnt{{end}}></script>
<script>addEventListener("popstate", () => { window.popped = location.pathname; });</script>
</head><body>
<button id="buy" data-tl-click="buy" style="padding:20px"><span>Buy now</span></button>
<p id="plain" style="padding:20px">Nothing to see</p>
</body></html>
`))

// browserPrivacy runs in every document before the page's scripts: the
// browser asks for Do Not Track everywhere except under /gpc, where it
// sends Global Privacy Control instead.
const browserPrivacy = `(() => {
  const gpc = location.pathname.startsWith("/gpc");
  Object.defineProperty(Navigator.prototype, "doNotTrack", {get: () => gpc ? null : "1", configurable: true});
  Object.defineProperty(Navigator.prototype, "globalPrivacyControl", {get: () => gpc, configurable: true});
})()`

// browserEvent is a delivered event, as tl-tail prints it.
type browserEvent struct {
	Seq       uint64            `json:"seq"`
	TenantID  string            `json:"tenant_id"`
	Timestamp int64             `json:"timestamp"`
	Type      string            `json:"type"`
	Path      string            `json:"path"`
	Metadata  map[string]string `json:"metadata"`
}

// TestBrowserSnippet drives a real headless Chromium through a page that
// includes tl.js from the real tl-relay, with a public ingest key for the
// page's origin: a load, pushState navigation (and a replaceState that
// keeps the path), a click on a marked element and one on an unmarked
// one, tl.track, the back button, then leaving the page, which sends the
// beacon. The real tl-tail must print exactly those events, and then the
// two of a page hidden while it stays open. Pages the key
// does not name (another address, another port) get nothing in, nor do
// pages that respect Do Not Track or GPC when the browser asks for it.
func TestBrowserSnippet(t *testing.T) {
	chromium := testkit.NeedTool(t, "chromium-headless-shell")
	dir := t.TempDir()
	relayBin := filepath.Join(binDir, "tl-relay")

	// The page servers first: the key names the allowed one's origin.
	// The relay's URL is not known yet, so the pages learn it late.
	var relayURL, key string
	page := func(ip string) string {
		l, err := net.Listen("tcp", ip+":0")
		if err != nil {
			t.Fatal(err)
		}
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/favicon.ico" {
				http.NotFound(w, r)
				return
			}
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.Header().Set("Cache-Control", "no-store")
			dnt := strings.HasPrefix(r.URL.Path, "/dnt") || strings.HasPrefix(r.URL.Path, "/gpc")
			browserPage.Execute(w, struct {
				Relay, Key string
				DNT        bool
			}{relayURL, key, dnt})
		}), ReadHeaderTimeout: 10 * time.Second}
		go srv.Serve(l)
		t.Cleanup(func() { srv.Close() })
		return "http://" + l.Addr().String()
	}
	shop := page("127.0.0.1")
	otherPort := page("127.0.0.1")
	otherHost := page("127.0.0.2")

	file := filepath.Join(dir, "tokens")
	out, err := exec.Command(relayBin, "token", "--scopes", "ingest", "--tenants", "acme", "--origin", shop, "--name", "shop", "--append", file).Output()
	if err != nil {
		t.Fatalf("tl-relay token --scopes ingest: %v", err)
	}
	key = strings.TrimSpace(string(out))
	const backend = "tok-backend-0123456789abcdef012345"
	cmd := exec.Command(relayBin, "token", "--stdin", "--scopes", "subscribe,admin", "--tenants", "*", "--name", "backend", "--append", file)
	cmd.Stdin = strings.NewReader(backend + "\n")
	if err := cmd.Run(); err != nil {
		t.Fatalf("tl-relay token --stdin: %v", err)
	}
	tokenFile := secWriteFile(t, dir, "backend.token", backend+"\n")
	p := secStartRelay(t, "--tokens", file)
	relayURL = p.url
	c := secHTTPClient(nil)

	// The snippet as the relay serves it.
	st, h, js := secDo(t, c, "GET", p.url+"/v1/tl.js", "", "", nil)
	if st != 200 || h.Get("Content-Type") != "application/javascript; charset=utf-8" || h.Get("ETag") == "" ||
		!strings.Contains(h.Get("Cache-Control"), "max-age=") || len(js) == 0 || len(js) >= 2048 {
		t.Fatalf("GET /v1/tl.js: %d, %d bytes, %v", st, len(js), h)
	}
	if st, _, _ := secDo(t, c, "GET", p.url+"/v1/tl.js", "", "", nil, "If-None-Match", h.Get("ETag")); st != 304 {
		t.Errorf("GET /v1/tl.js with its ETag: %d, want 304", st)
	}

	// tl-tail follows acme from the start, until the 5 events came.
	const want = 5
	tail := exec.Command(filepath.Join(binDir, "tl-tail"), "--relay", p.url, "--token-file", tokenFile, "--since", "0", "-c", strconv.Itoa(want), "--timeout", "90s", "acme")
	tail.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
	var tailOut, tailErr bytes.Buffer
	tail.Stdout, tail.Stderr = &tailOut, &tailErr
	if err := tail.Start(); err != nil {
		t.Fatal(err)
	}
	tailDone := make(chan struct{})
	var tailRes error
	go func() { tailRes = tail.Wait(); close(tailDone) }()
	t.Cleanup(func() {
		tail.Process.Kill()
		<-tailDone
	})

	b := startBrowser(t, chromium, browserPrivacy)
	start := time.Now().UnixMilli()

	// Pages that may not send: each fires what it can, then leaves.
	visit := func(url string) {
		t.Helper()
		b.navigate(url)
		var ok bool
		b.eval(`tl.track("custom", "/refused", {why: "test"})`, &ok)
		b.click("#buy span")
		b.navigate("about:blank")
	}
	// Do Not Track and GPC, on a site that respects them: the snippet
	// sends nothing, and says so.
	for _, path := range []string{"/dnt", "/gpc"} {
		b.navigate(shop + path)
		var queued bool
		b.eval(`tl.track("custom", "/private", {})`, &queued)
		if queued {
			t.Errorf("%s: tl.track queued an event although the browser asks not to be tracked", path)
		}
		b.click("#buy span")
		b.navigate("about:blank")
	}
	// Another origin with the same key: its beacons are refused (403);
	// the relay's request count says when both have come and gone.
	visit(otherHost + "/")
	visit(otherPort + "/")
	refused := regexp.MustCompile(`(?m)^tl_relay_http_requests_total\{code="403",route="/v1/tenants/\{tenant\}/events"\} (\d+)$`)
	testkit.WaitFor(t, "the 2 refused beacons", func() bool {
		_, _, m := secDo(t, c, "GET", p.url+"/metrics", backend, "", nil)
		n := refused.FindStringSubmatch(m)
		return n != nil && n[1] == "2"
	})

	// The shop, where the key's origin is: the events that count.
	b.navigate(shop + "/shop")
	b.eval(`history.pushState({}, "", "/shop/cart")`, nil)
	b.eval(`history.replaceState({step: 1}, "", "/shop/cart?coupon=1")`, nil) // the same path: no pageview
	b.click("#buy span")
	b.click("#plain") // not marked: no click event
	var queued []bool
	b.eval(`[tl.track("custom", "/checkout", {step: 2, total: 42.5, none: null}), tl.track("purchase", "/checkout")]`, &queued)
	if !reflect.DeepEqual(queued, []bool{true, false}) {
		t.Errorf("tl.track of a custom event and of an unknown type returned %v, want [true false]", queued)
	}
	b.eval(`history.back()`, nil)
	b.waitTrue(`window.popped == "/shop"`)
	// Leaving the page (pagehide) sends the beacon.
	b.navigate("about:blank")

	<-tailDone
	if err := tailRes; err != nil {
		t.Fatalf("tl-tail: %v\nstdout:\n%s\nstderr:\n%s", err, tailOut.String(), tailErr.String())
	}
	end := time.Now().UnixMilli()
	wantEvents := []browserEvent{
		{1, "acme", 0, "pageview", "/shop", map[string]string{}},
		{2, "acme", 0, "pageview", "/shop/cart", map[string]string{}},
		{3, "acme", 0, "click", "/shop/cart", map[string]string{"name": "buy"}},
		{4, "acme", 0, "custom", "/checkout", map[string]string{"step": "2", "total": "42.5"}},
		{5, "acme", 0, "pageview", "/shop", map[string]string{}},
	}
	got := parseBrowserEvents(t, tailOut.Bytes(), start, end)
	if !reflect.DeepEqual(got, wantEvents) {
		t.Errorf("tl-tail printed\n%s\nwant (timestamps aside)\n%+v", tailOut.String(), wantEvents)
	}
	// The history holds those 5 and nothing else: no refused page, no
	// page that respects Do Not Track got anything in.
	hist := exec.Command(filepath.Join(binDir, "tl-tail"), "--relay", p.url, "--token-file", tokenFile, "--since", "0", "--no-follow", "--timeout", "30s", "acme")
	hist.Env = tail.Env
	all, err := hist.Output()
	if err != nil {
		t.Fatalf("tl-tail --no-follow: %v", err)
	}
	if !bytes.Equal(all, tailOut.Bytes()) {
		t.Errorf("the history holds\n%s\nwant only\n%s", all, tailOut.String())
	}

	// Hidden, not left: a page sent to the background (another tab, a
	// phone's home screen) may never come back, so the snippet sends its
	// batch from the visibilitychange handler while the page stays open.
	// The page's sendBeacon is counted around the event, in one task:
	// none before it, one after, so the batch timer cannot be what sent it.
	start = time.Now().UnixMilli()
	b.navigate(shop + "/shop")
	var calls []int
	b.eval(`(() => {
		let n = 0;
		const send = navigator.sendBeacon.bind(navigator);
		navigator.sendBeacon = (url, body) => { n++; return send(url, body); };
		tl.track("custom", "/hidden", {});
		const before = n;
		Object.defineProperty(document, "visibilityState", {value: "hidden", configurable: true});
		document.dispatchEvent(new Event("visibilitychange"));
		return [before, n];
	})()`, &calls)
	if !reflect.DeepEqual(calls, []int{0, 1}) {
		t.Errorf("sendBeacon calls before and after visibilitychange to hidden: %v, want [0 1]", calls)
	}
	hidden := exec.Command(filepath.Join(binDir, "tl-tail"), "--relay", p.url, "--token-file", tokenFile, "--since", strconv.Itoa(want), "-c", "2", "--timeout", "30s", "acme")
	hidden.Env = tail.Env
	out, err = hidden.Output()
	if err != nil {
		t.Fatalf("tl-tail after the page was hidden: %v\n%s", err, out)
	}
	wantHidden := []browserEvent{
		{6, "acme", 0, "pageview", "/shop", map[string]string{}},
		{7, "acme", 0, "custom", "/hidden", map[string]string{}},
	}
	if got := parseBrowserEvents(t, out, start, time.Now().UnixMilli()); !reflect.DeepEqual(got, wantHidden) {
		t.Errorf("after the page was hidden, tl-tail printed\n%s\nwant (timestamps aside)\n%+v", out, wantHidden)
	}
}

// parseBrowserEvents decodes tl-tail's lines, checks that each holds
// exactly the protocol's fields and a timestamp the browser set between
// start and end (ms), and returns them with the timestamp zeroed.
func parseBrowserEvents(t *testing.T, out []byte, start, end int64) []browserEvent {
	t.Helper()
	var evs []browserEvent
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		var fields map[string]json.RawMessage
		if err := json.Unmarshal(sc.Bytes(), &fields); err != nil {
			t.Fatalf("tl-tail printed %q: %v", sc.Text(), err)
		}
		var keys []string
		for k := range fields {
			keys = append(keys, k)
		}
		if len(keys) != 6 {
			t.Errorf("%s: fields %v, want seq, tenant_id, timestamp, type, path, metadata", sc.Text(), keys)
		}
		var ev browserEvent
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("tl-tail printed %q: %v", sc.Text(), err)
		}
		if ev.Timestamp < start-1000 || ev.Timestamp > end+1000 {
			t.Errorf("%s: timestamp %d outside the test's run [%d, %d]", sc.Text(), ev.Timestamp, start, end)
		}
		ev.Timestamp = 0
		evs = append(evs, ev)
	}
	return evs
}
