package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tl-sh/tl/lib/internal/testkit"
)

// cookbookCommands returns the command lines of the README's Cookbook: the
// lines of its indented code blocks, without their trailing "# comment",
// and whether each follows its stream until Ctrl-C.
func cookbookCommands(t *testing.T) (cmds []string, follow []bool) {
	t.Helper()
	readme, err := os.ReadFile(filepath.Join(repoRoot(t), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, sec, ok := strings.Cut(string(readme), "\n## Cookbook\n")
	if !ok {
		t.Fatal("README.md has no Cookbook section")
	}
	if i := strings.Index(sec, "\n## "); i >= 0 {
		sec = sec[:i]
	}
	for _, line := range strings.Split(sec, "\n") {
		if !strings.HasPrefix(line, "    ") {
			continue
		}
		cmd, comment, _ := strings.Cut(strings.TrimSpace(line), "  #")
		cmds = append(cmds, strings.TrimSpace(cmd))
		follow = append(follow, strings.Contains(comment, "until Ctrl-C"))
	}
	return cmds, follow
}

// TestReadmeCookbook runs every pipeline of the README's Cookbook with the
// built binaries against a relay holding the sample events, while a feeder
// keeps posting to acme. A pipeline that ends must exit 0 and print
// something; one that follows its stream must print something before it is
// stopped.
func TestReadmeCookbook(t *testing.T) {
	cmds, follow := cookbookCommands(t)
	if len(cmds) < 8 {
		t.Fatalf("found %d cookbook commands, want at least 8", len(cmds))
	}
	r := startRelay(t, "127.0.0.1:0")
	dir := t.TempDir()

	// A recorded file whose timestamps span 2 s: replayed at 10x in ~0.2 s.
	var rec bytes.Buffer
	for i := 0; i < 20; i++ {
		fmt.Fprintf(&rec, `{"tenant_id":"demo","timestamp":%d,"type":"pageview","path":"/p%d"}`+"\n", 1795824000000+int64(i)*100, i)
	}
	if err := os.WriteFile(filepath.Join(dir, "recorded.ndjson"), rec.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	events, err := os.ReadFile(filepath.Join(repoRoot(t), "lib", "event", "testdata", "events.ndjson"))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := publish(http.DefaultClient, r.url, "acme", filterTenant(events, "acme")); !ok {
		t.Fatal("could not publish the sample events")
	}

	// The feeder: a click, an error and a custom event on acme every 50 ms.
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		body := []byte(`{"type":"click","path":"/buy","metadata":{"button":"buy"}}` + "\n" +
			`{"type":"custom","path":"/api","metadata":{"name":"error","message":"boom"}}` + "\n")
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				publish(http.DefaultClient, r.url, "acme", body)
			}
		}
	}()
	defer func() { stop(); wg.Wait() }()

	for i, line := range cmds {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			runCookbookLine(t, dir, r.url, line, follow[i])
		})
	}
}

func runCookbookLine(t *testing.T, dir, relay, line string, follow bool) {
	cmd := exec.Command("bash", "-c", line)
	cmd.Dir = dir
	cmd.Env = []string{"PATH=" + binDir + ":" + os.Getenv("PATH"), "HOME=" + dir, "TL_RELAY=" + relay, "GORACE=" + os.Getenv("GORACE")}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // to stop the whole pipeline
	var stdout, stderr testkit.SyncBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	const limit = 60 * time.Second
	deadline := time.After(limit)
	if follow {
		// It follows its stream until Ctrl-C: send that once it has
		// printed something (the check below fails it if it never did).
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
	wait:
		for strings.TrimSpace(stdout.String()) == "" {
			select {
			case err := <-done:
				t.Fatalf("%s\nended (%v) but should follow until Ctrl-C; stderr:\n%s", line, err, stderr.String())
			case <-deadline:
				break wait
			case <-tick.C:
			}
		}
		interrupt(cmd, done)
	} else {
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("%s\nfailed: %v; stderr:\n%s", line, err, stderr.String())
			}
		case <-deadline:
			interrupt(cmd, done)
			t.Fatalf("%s\ndid not end within %v; stderr:\n%s", line, limit, stderr.String())
		}
	}
	if strings.Contains(line, "| tl-post") || strings.HasPrefix(line, "tl-post") {
		// tl-post's summary says how much went out.
		if !publishedSome.MatchString(stderr.String()) {
			t.Fatalf("%s\npublished nothing; stderr:\n%s", line, stderr.String())
		}
	} else if strings.TrimSpace(stdout.String()) == "" {
		t.Fatalf("%s\nprinted nothing; stderr:\n%s", line, stderr.String())
	}
	t.Logf("%s\n%s", line, firstLines(stdout.String(), 3))
}

// interrupt sends Ctrl-C to cmd's pipeline and waits for it to end (it is
// killed after 10 s more).
func interrupt(cmd *exec.Cmd, done <-chan error) {
	syscall.Kill(-cmd.Process.Pid, syscall.SIGINT)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}
}

var publishedSome = regexp.MustCompile(`published [1-9][0-9]* events`)

func firstLines(s string, n int) string {
	lines := strings.SplitAfterN(s, "\n", n+1)
	if len(lines) > n {
		lines = lines[:n]
	}
	return strings.Join(lines, "")
}

// filterTenant keeps the lines of an NDJSON file naming tenant.
func filterTenant(ndjson []byte, tenant string) []byte {
	var out bytes.Buffer
	for _, l := range bytes.SplitAfter(ndjson, []byte("\n")) {
		if bytes.Contains(l, []byte(`"tenant_id":"`+tenant+`"`)) {
			out.Write(l)
		}
	}
	return out.Bytes()
}
