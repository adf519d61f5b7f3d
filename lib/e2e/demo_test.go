package e2e

import (
	"io"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/tl-sh/tl/lib/internal/testkit"
)

// demoWait bounds each step of the demo test (a build on a loaded machine
// included); the test waits on output, never on the clock.
const demoWait = 5 * time.Minute

// TestMakeDemoCtrlC runs `make demo` on a terminal, as a user does: it says
// how to reach the relay from a second terminal, events flow, and Ctrl-C
// (typed on the terminal, so that make gets the SIGINT too) ends it with
// status 0.
func TestMakeDemoCtrlC(t *testing.T) {
	testkit.NeedTool(t, "make")
	cmd := exec.Command("make", "demo", "BUILDDIR="+t.TempDir())
	cmd.Dir = repoRoot(t)
	ptm, err := pty.Start(cmd)
	if err != nil {
		t.Fatal(err)
	}
	defer ptm.Close()
	var out testkit.SyncBuffer
	copied := make(chan struct{})
	go func() {
		io.Copy(&out, ptm) // ends when the terminal's other side closes
		close(copied)
	}()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	waitOut := func(what string, cond func(string) bool) {
		t.Helper()
		deadline := time.Now().Add(demoWait)
		for !cond(out.String()) {
			select {
			case err := <-exited:
				t.Fatalf("make demo ended (%v) before %s:\n%s", err, what, out.String())
			case <-time.After(50 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				cmd.Process.Kill()
				t.Fatalf("no %s within %v:\n%s", what, demoWait, out.String())
			}
		}
	}
	waitOut("second-terminal instructions", func(s string) bool {
		return strings.Contains(s, "demo:   export TL_RELAY=http://127.0.0.1:")
	})
	waitOut("three events", func(s string) bool { return strings.Contains(s, "#3") })
	ptm.Write([]byte{3}) // Ctrl-C, through the terminal's line discipline
	var werr error
	select {
	case werr = <-exited:
	case <-time.After(demoWait):
		cmd.Process.Kill()
		t.Fatalf("make demo did not end after Ctrl-C:\n%s", out.String())
	}
	if werr != nil {
		t.Errorf("make demo after Ctrl-C: %v; want exit 0. Output:\n%s", werr, out.String())
	}
	ptm.Close()
	<-copied
	if !strings.Contains(out.String(), "demo: stopped") {
		t.Errorf("no stop message:\n%s", out.String())
	}
}
