package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tl-sh/tl/lib/internal/testkit"
)

// secProc is a tl-relay process started by a Go test (the scripts use
// relay-start instead).
type secProc struct {
	t    *testing.T
	cmd  *exec.Cmd
	url  string // "http://127.0.0.1:PORT" or https
	log  *testkit.SyncBuffer
	done chan struct{} // closed when the process has exited
}

// secStartRelay runs tl-relay with args (plus --listen 127.0.0.1:0 unless
// given), waits for its "listening on URL" line and kills it when the test
// ends.
func secStartRelay(t *testing.T, args ...string) *secProc {
	t.Helper()
	p, err := secTryStartRelay(t, args...)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func secTryStartRelay(t *testing.T, args ...string) (*secProc, error) {
	t.Helper()
	return secTryStartRelayLimited(t, "", args...)
}

// secTryStartRelayLimited is secTryStartRelay with the process limits set
// by a shell's ulimit options (e.g. "-n 1024"; "" for none): tl-relay is
// exec'd by the shell, so the process (and its pid) is the relay's.
func secTryStartRelayLimited(t *testing.T, ulimit string, args ...string) (*secProc, error) {
	t.Helper()
	hasListen := false
	for _, a := range args {
		if a == "--listen" || strings.HasPrefix(a, "--listen=") {
			hasListen = true
		}
	}
	if !hasListen {
		args = append([]string{"--listen", "127.0.0.1:0"}, args...)
	}
	cmd := exec.Command(filepath.Join(binDir, "tl-relay"), args...)
	if ulimit != "" {
		cmd = exec.Command("/bin/sh", append([]string{"-c", `ulimit ` + ulimit + ` && exec "$0" "$@"`, cmd.Path}, args...)...)
	}
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
	log := &testkit.SyncBuffer{}
	rp, err := launchRelay(cmd, log, nil, 30*time.Second)
	if rp == nil {
		return nil, err
	}
	p := &secProc{t: t, cmd: cmd, url: rp.URL, log: log, done: rp.Done}
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-p.done
		if t.Failed() {
			// The tail only: a hostile run logs a line per tenant made.
			lines := strings.Split(strings.TrimSpace(p.log.String()), "\n")
			if len(lines) > 40 {
				lines = append([]string{"..."}, lines[len(lines)-40:]...)
			}
			t.Logf("tl-relay %s log:\n%s", strings.Join(args, " "), strings.Join(lines, "\n"))
		}
	})
	if err != nil {
		return p, fmt.Errorf("%w:\n%s", err, p.log)
	}
	return p, nil
}

// signal sends sig to the relay.
func (p *secProc) signal(sig syscall.Signal) {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatal(err)
	}
}

// kill sends SIGKILL and waits (at most 30s) for the process to go.
func (p *secProc) kill() {
	p.t.Helper()
	p.cmd.Process.Kill()
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		p.t.Fatal("tl-relay did not die within 30s of SIGKILL")
	}
}

// alive reports whether the process is still running.
func (p *secProc) alive() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// rss returns the relay's resident set size in bytes, from /proc.
func (p *secProc) rss() (int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", p.cmd.Process.Pid)
}

// waitLog waits (at most 30s) until the relay's log contains s.
func (p *secProc) waitLog(s string) {
	p.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(p.log.String(), s) {
		if time.Now().After(deadline) {
			p.t.Fatalf("the relay's log never said %q", s)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// secHTTPClient returns a client for the relay, trusting ca when given.
func secHTTPClient(tlsConf *tls.Config) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tlsConf
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// secDo sends one request and returns its status, headers and body.
func secDo(t *testing.T, c *http.Client, method, url, token, ctype string, body []byte, hdr ...string) (int, http.Header, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, resp.Header, string(b)
}

// secWriteFile writes data to dir/name and returns the path.
func secWriteFile(t *testing.T, dir, name, data string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
