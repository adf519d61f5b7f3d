package e2e

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// The examples of man/tl-protocol.7 are real exchanges: each request block
// (after a `.\" protocol-test: request` line) is sent, in page order, to a
// relay started as the page's EXAMPLES section says, and the answer must
// match the answer block that follows it: the status line, every header the
// page shows, and the body line by line. EPOCH stands for the relay's epoch
// (learnt from the first answer that shows it, then sent back in requests)
// and ACCEPT for a WebSocket handshake's answer.

const (
	protocolPage  = "man/tl-protocol.7"
	markRequest   = `.\" protocol-test: request`
	markAnswer    = `.\" protocol-test: answer`
	exchangeWait  = 30 * time.Second // bound on one exchange; never reached when the relay answers
	minExchanges  = 10               // the page must keep at least this many checked examples
	maxAnswerBody = 1 << 20
)

// message is one request or answer block: its first line, its headers, and
// its body lines.
type message struct {
	first   string
	headers [][2]string
	body    []string
	line    int // where the block starts in the page, for messages
}

// roffText undoes the escapes a literal block needs in roff.
func roffText(s string) string {
	s = strings.ReplaceAll(s, `\&`, "")
	s = strings.ReplaceAll(s, `\-`, "-")
	return strings.ReplaceAll(s, `\e`, `\`)
}

// pageExchanges returns the page's request and answer blocks, in order, and
// the relay command line its EXAMPLES section names.
func pageExchanges(t *testing.T) (reqs, answers []message, relayArgs []string) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot(t), protocolPage))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(data), "\n")
	inExamples := false
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		if strings.HasPrefix(l, ".SH ") {
			inExamples = l == ".SH EXAMPLES"
		}
		if inExamples && relayArgs == nil && strings.HasPrefix(l, "tl-relay") {
			relayArgs = strings.Fields(roffText(l))[1:]
		}
		if l != markRequest && l != markAnswer {
			continue
		}
		if i+1 >= len(lines) || lines[i+1] != ".EX" {
			t.Fatalf("%s:%d: %q is not followed by .EX", protocolPage, i+1, l)
		}
		m := message{line: i + 3}
		j := i + 2
		for ; j < len(lines) && lines[j] != ".EE"; j++ {
			text := roffText(lines[j])
			switch {
			case m.first == "":
				m.first = text
			case m.body == nil && text == "":
				m.body = []string{}
			case m.body == nil:
				name, value, ok := strings.Cut(text, ": ")
				if !ok {
					t.Fatalf("%s:%d: not a header: %q", protocolPage, j+1, text)
				}
				m.headers = append(m.headers, [2]string{name, value})
			default:
				m.body = append(m.body, text)
			}
		}
		if l == markRequest {
			reqs = append(reqs, m)
		} else {
			if len(answers) != len(reqs)-1 {
				t.Fatalf("%s:%d: an answer without its request", protocolPage, i+1)
			}
			answers = append(answers, m)
		}
		i = j
	}
	if len(reqs) != len(answers) {
		t.Fatalf("%s: %d requests, %d answers", protocolPage, len(reqs), len(answers))
	}
	if len(reqs) < minExchanges {
		t.Fatalf("%s: %d checked examples, want at least %d", protocolPage, len(reqs), minExchanges)
	}
	if relayArgs == nil {
		t.Fatalf("%s: EXAMPLES names no tl-relay command line", protocolPage)
	}
	return reqs, answers, relayArgs
}

func (m message) header(name string) string {
	for _, h := range m.headers {
		if strings.EqualFold(h[0], name) {
			return h[1]
		}
	}
	return ""
}

// TestProtocolPage runs the examples of man/tl-protocol.7 against a real
// relay.
func TestProtocolPage(t *testing.T) {
	reqs, answers, relayArgs := pageExchanges(t)
	r := secStartRelay(t, relayArgs...)
	host := strings.TrimPrefix(r.url, "http://")
	epoch := ""
	for i := range reqs {
		req, want := reqs[i], answers[i]
		target := strings.ReplaceAll(req.first, "EPOCH", epoch)
		method, rest, _ := strings.Cut(target, " ")
		path, _, _ := strings.Cut(rest, " ")
		var status string
		var header http.Header
		var body []string
		if strings.EqualFold(req.header("Upgrade"), "websocket") {
			status, header, body = wsExchange(t, "ws://"+host+path, req, len(want.body))
		} else {
			status, header, body = httpExchange(t, method, r.url+path, req, want)
		}
		where := protocolPage + ":" + strconv.Itoa(req.line) + ": " + req.first
		if got := "HTTP/1.1 " + status; got != want.first {
			t.Errorf("%s:\nstatus %q, the page says %q", where, got, want.first)
		}
		for _, h := range want.headers {
			if !matchLine(h[1], header.Get(h[0]), &epoch) {
				t.Errorf("%s:\nheader %s: %q, the page says %q", where, h[0], header.Get(h[0]), h[1])
			}
		}
		for k := 0; k < max(len(body), len(want.body)); k++ {
			var got, w string
			if k < len(body) {
				got = body[k]
			}
			if k < len(want.body) {
				w = want.body[k]
			}
			if !matchLine(w, got, &epoch) {
				t.Errorf("%s:\nbody line %d:\n got %s\nwant %s", where, k+1, got, w)
			}
		}
	}
}

// matchLine compares an answer line with the page's, where EPOCH matches the
// epoch (and learns it the first time) and ACCEPT any handshake answer.
func matchLine(want, got string, epoch *string) bool {
	pat := regexp.QuoteMeta(want)
	pat = strings.ReplaceAll(pat, "ACCEPT", `\S+`)
	if *epoch == "" {
		pat = strings.Replace(pat, "EPOCH", `(?P<epoch>[0-9a-f]+)`, 1)
	}
	pat = strings.ReplaceAll(pat, "EPOCH", regexp.QuoteMeta(*epoch))
	re := regexp.MustCompile("^" + pat + "$")
	m := re.FindStringSubmatch(got)
	if m == nil {
		return false
	}
	if i := re.SubexpIndex("epoch"); i > 0 {
		*epoch = m[i]
	}
	return true
}

// httpExchange sends a plain HTTP request. An NDJSON stream is read for as
// many lines as the page shows (keep-alive blank lines skipped), then
// closed; any other body is read whole.
func httpExchange(t *testing.T, method, url string, req, want message) (string, http.Header, []string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), exchangeWait)
	defer cancel()
	var body io.Reader
	if req.body != nil {
		body = strings.NewReader(strings.Join(req.body, "\n") + "\n")
	}
	hr, err := http.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range req.headers {
		hr.Header.Add(h[0], h[1])
	}
	resp, err := http.DefaultClient.Do(hr)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	var lines []string
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/x-ndjson") {
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(nil, maxAnswerBody)
		for len(lines) < len(want.body) && sc.Scan() {
			if sc.Text() != "" {
				lines = append(lines, sc.Text())
			}
		}
	} else {
		data, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswerBody))
		if err != nil {
			t.Fatalf("%s %s: reading the answer: %v", method, url, err)
		}
		if s := strings.TrimSuffix(string(data), "\n"); s != "" {
			lines = strings.Split(s, "\n")
		}
	}
	return resp.Status, resp.Header, lines
}

// wsExchange opens a WebSocket and reads n lines from its messages.
func wsExchange(t *testing.T, url string, req message, n int) (string, http.Header, []string) {
	t.Helper()
	h := http.Header{}
	for _, kv := range req.headers {
		switch strings.ToLower(kv[0]) {
		case "connection", "upgrade", "sec-websocket-version", "sec-websocket-key":
			// The dialer writes the handshake itself.
		default:
			h.Add(kv[0], kv[1])
		}
	}
	d := websocket.Dialer{HandshakeTimeout: exchangeWait}
	c, resp, err := d.Dial(url, h)
	if err != nil {
		if resp != nil {
			return resp.Status, resp.Header, nil
		}
		t.Fatalf("dial %s: %v", url, err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(exchangeWait))
	var lines []string
	for len(lines) < n {
		_, msg, err := c.ReadMessage()
		if err != nil {
			t.Errorf("%s: after %d lines: %v", url, len(lines), err)
			break
		}
		lines = append(lines, strings.Split(strings.TrimSuffix(string(msg), "\n"), "\n")...)
	}
	return resp.Status, resp.Header, lines
}

// TestRelayIgnoresBOM: an NDJSON body that starts with a UTF-8 byte order
// mark (a file saved by some editors, posted with curl --data-binary) is
// accepted whole by a real relay; a mark further in is line 2's error.
func TestRelayIgnoresBOM(t *testing.T) {
	r := secStartRelay(t)
	post := func(body string) (int, string) {
		resp, err := http.Post(r.url+"/v1/tenants/acme/events", "application/x-ndjson", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := post("\xef\xbb\xbf" + `{"type":"click","path":"/a"}` + "\n" + `{"type":"click","path":"/b"}` + "\n"); code != http.StatusAccepted || !strings.Contains(body, `"accepted":2`) {
		t.Errorf("BOM first: %d %s", code, body)
	}
	if code, body := post(`{"type":"click","path":"/a"}` + "\n\xef\xbb\xbf" + `{"type":"click","path":"/b"}` + "\n"); code != http.StatusBadRequest || !strings.Contains(body, `"line":2`) {
		t.Errorf("BOM on line 2: %d %s", code, body)
	}
}
