package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// A small client of the Chrome DevTools Protocol, enough to drive a real
// headless Chromium through a page: open a tab, navigate, evaluate
// JavaScript, click with the mouse. It speaks to the browser's one
// WebSocket with flattened sessions (every command to the tab carries its
// sessionId) and ignores the protocol's events: the tests poll the page
// instead, which keeps the client to one reader and one call at a time.

// cdpTimeout bounds each command, and the browser's start.
const cdpTimeout = 30 * time.Second

// browser is a Chromium process and the DevTools connection to one tab.
type browser struct {
	t       *testing.T
	cmd     *exec.Cmd
	conn    *websocket.Conn
	session string // the tab's sessionId
	stderr  *strings.Builder

	mu      sync.Mutex // guards the fields below and conn's writes
	next    int64
	pending map[int64]chan cdpReply
	err     error // why the reader stopped
}

// cdpReply is the answer to one command.
type cdpReply struct {
	ID     int64           `json:"id"`
	Result json.RawMessage `json:"result"`
	Error  *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// startBrowser runs the headless shell at path with a fresh profile,
// connects to it and opens a blank tab; the browser is closed when the
// test ends. setup, when not empty, is JavaScript run in every document
// of the tab before its own scripts.
func startBrowser(t *testing.T, path, setup string) *browser {
	t.Helper()
	dir := t.TempDir()
	cmd := exec.Command(path,
		"--no-sandbox", // tests may run as root, where the sandbox refuses to start
		"--disable-gpu",
		"--no-first-run",
		"--no-default-browser-check",
		"--disable-extensions",
		"--disable-background-networking",
		"--user-data-dir="+dir,
		"--remote-debugging-address=127.0.0.1",
		"--remote-debugging-port=0",
		"about:blank")
	// Its own process group, so that the cleanup can end the renderers
	// and helpers it forks too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	errPipe, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	b := &browser{t: t, cmd: cmd, stderr: &strings.Builder{}, pending: map[int64]chan cdpReply{}}
	exited := make(chan struct{})
	wsURL := make(chan string, 1)
	var logMu sync.Mutex
	go func() {
		sc := bufio.NewScanner(errPipe)
		for sc.Scan() {
			line := sc.Text()
			logMu.Lock()
			b.stderr.WriteString(line + "\n")
			logMu.Unlock()
			if u, ok := strings.CutPrefix(line, "DevTools listening on "); ok {
				wsURL <- strings.TrimSpace(u)
			}
		}
	}()
	go func() {
		// Wait closes the pipe once the browser has exited, which ends
		// the reader above even if a forked helper still holds it.
		cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		if b.conn != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			b.callCtx(ctx, "", "Browser.close", nil, nil)
			cancel()
			b.conn.Close()
		}
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
	})
	var u string
	select {
	case u = <-wsURL:
	case <-exited:
		logMu.Lock()
		defer logMu.Unlock()
		t.Fatalf("%s exited before listening:\n%s", path, b.stderr.String())
	case <-time.After(cdpTimeout):
		t.Fatalf("%s did not listen within %v", path, cdpTimeout)
	}
	d := websocket.Dialer{HandshakeTimeout: cdpTimeout}
	conn, _, err := d.Dial(u, nil)
	if err != nil {
		t.Fatalf("dial %s: %v", u, err)
	}
	conn.SetReadLimit(64 << 20)
	b.conn = conn
	go b.read()

	var target struct {
		TargetID string `json:"targetId"`
	}
	b.call("", "Target.createTarget", map[string]any{"url": "about:blank"}, &target)
	var att struct {
		SessionID string `json:"sessionId"`
	}
	b.call("", "Target.attachToTarget", map[string]any{"targetId": target.TargetID, "flatten": true}, &att)
	b.session = att.SessionID
	b.call(b.session, "Page.enable", nil, nil)
	if setup != "" {
		b.call(b.session, "Page.addScriptToEvaluateOnNewDocument", map[string]any{"source": setup}, nil)
	}
	return b
}

// read hands each answer to its caller until the connection ends.
func (b *browser) read() {
	for {
		_, data, err := b.conn.ReadMessage()
		if err != nil {
			b.mu.Lock()
			b.err = err
			for id, ch := range b.pending {
				close(ch)
				delete(b.pending, id)
			}
			b.mu.Unlock()
			return
		}
		var r cdpReply
		if json.Unmarshal(data, &r) != nil || r.ID == 0 {
			continue // an event
		}
		b.mu.Lock()
		ch := b.pending[r.ID]
		delete(b.pending, r.ID)
		b.mu.Unlock()
		if ch != nil {
			ch <- r
		}
	}
}

// call sends method to the session ("" is the browser) and decodes its
// result into out (when not nil); an error fails the test.
func (b *browser) call(session, method string, params, out any) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), cdpTimeout)
	defer cancel()
	if err := b.callCtx(ctx, session, method, params, out); err != nil {
		b.t.Fatal(err)
	}
}

func (b *browser) callCtx(ctx context.Context, session, method string, params, out any) error {
	ch := make(chan cdpReply, 1)
	b.mu.Lock()
	if b.err != nil {
		b.mu.Unlock()
		return fmt.Errorf("%s: connection lost: %v", method, b.err)
	}
	b.next++
	id := b.next
	b.pending[id] = ch
	msg := map[string]any{"id": id, "method": method}
	if params != nil {
		msg["params"] = params
	}
	if session != "" {
		msg["sessionId"] = session
	}
	b.conn.SetWriteDeadline(time.Now().Add(cdpTimeout))
	err := b.conn.WriteJSON(msg)
	b.mu.Unlock()
	if err != nil {
		return fmt.Errorf("%s: %v", method, err)
	}
	select {
	case r, ok := <-ch:
		if !ok {
			return fmt.Errorf("%s: connection lost", method)
		}
		if r.Error != nil {
			return fmt.Errorf("%s: %d %s", method, r.Error.Code, r.Error.Message)
		}
		if out != nil {
			return json.Unmarshal(r.Result, out)
		}
		return nil
	case <-ctx.Done():
		b.mu.Lock()
		delete(b.pending, id)
		b.mu.Unlock()
		return fmt.Errorf("%s: %v", method, ctx.Err())
	}
}

// eval runs expression in the tab (awaiting a promise) and decodes its
// value into out (when not nil); a JavaScript exception fails the test.
func (b *browser) eval(expression string, out any) {
	b.t.Helper()
	var r struct {
		Result struct {
			Value json.RawMessage `json:"value"`
		} `json:"result"`
		ExceptionDetails *struct {
			Text      string `json:"text"`
			Exception struct {
				Description string `json:"description"`
			} `json:"exception"`
		} `json:"exceptionDetails"`
	}
	b.call(b.session, "Runtime.evaluate", map[string]any{"expression": expression, "returnByValue": true, "awaitPromise": true}, &r)
	if e := r.ExceptionDetails; e != nil {
		b.t.Fatalf("%s: %s %s", expression, e.Text, e.Exception.Description)
	}
	if out != nil {
		if err := json.Unmarshal(r.Result.Value, out); err != nil {
			b.t.Fatalf("%s: %v (value %s)", expression, err, r.Result.Value)
		}
	}
}

// navigate loads url in the tab and waits until its load event has
// passed (document.readyState "complete" at that URL).
func (b *browser) navigate(url string) {
	b.t.Helper()
	var r struct {
		ErrorText string `json:"errorText"`
	}
	b.call(b.session, "Page.navigate", map[string]any{"url": url}, &r)
	if r.ErrorText != "" {
		b.t.Fatalf("navigate %s: %s", url, r.ErrorText)
	}
	b.waitTrue(fmt.Sprintf("document.readyState == 'complete' && location.href == %q", url))
}

// waitTrue polls the boolean expression until it is true (bounded).
func (b *browser) waitTrue(expression string) {
	b.t.Helper()
	deadline := time.Now().Add(cdpTimeout)
	for {
		var ok bool
		ctx, cancel := context.WithTimeout(context.Background(), cdpTimeout)
		var r struct {
			Result struct {
				Value json.RawMessage `json:"value"`
			} `json:"result"`
		}
		err := b.callCtx(ctx, b.session, "Runtime.evaluate", map[string]any{"expression": expression, "returnByValue": true}, &r)
		cancel()
		// Mid-navigation the old document's context is gone: try again.
		if err == nil && json.Unmarshal(r.Result.Value, &ok) == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("never true: %s (last error %v)", expression, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// click presses and releases the left mouse button at the centre of the
// element selector names, as a person would.
func (b *browser) click(selector string) {
	b.t.Helper()
	var at struct{ X, Y float64 }
	b.eval(fmt.Sprintf(`(() => { const r = document.querySelector(%q).getBoundingClientRect(); return {X: r.x + r.width/2, Y: r.y + r.height/2}; })()`, selector), &at)
	for _, typ := range []string{"mousePressed", "mouseReleased"} {
		b.call(b.session, "Input.dispatchMouseEvent", map[string]any{"type": typ, "x": at.X, "y": at.Y, "button": "left", "clickCount": 1}, nil)
	}
}
