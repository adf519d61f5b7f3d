package e2e

import (
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/tl-sh/tl/lib/internal/testkit"
	"github.com/tl-sh/tl/lib/relaycmd"
)

// TestLaunchRelay runs a shell that plays tl-relay's start-up: the URL comes
// from the listening line, every line reaches the log and onLine, and a
// process that ends first is errExited.
func TestLaunchRelay(t *testing.T) {
	sh := testkit.NeedTool(t, "sh")
	var log testkit.SyncBuffer
	var seen []string
	cmd := exec.Command(sh, "-c", `echo "tl-relay: listening on http://127.0.0.1:7" >&2; echo "msg=started" >&2; exec sleep 30`)
	p, err := launchRelay(cmd, &log, func(l string) { seen = append(seen, l) }, 20*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if p.URL != "http://127.0.0.1:7" {
		t.Errorf("URL %q", p.URL)
	}
	testkit.WaitFor(t, "the second line in the log", func() bool { return strings.Contains(log.String(), "msg=started\n") })
	p.Cmd.Process.Kill()
	<-p.Done
	if len(seen) != 2 {
		t.Errorf("onLine saw %q, want 2 lines", seen)
	}

	_, err = launchRelay(exec.Command(sh, "-c", `echo "bad flag" >&2; exit 2`), &log, nil, 20*time.Second)
	if !errors.Is(err, errExited) {
		t.Errorf("a relay that exits: %v, want errExited", err)
	}
	if _, ok := relaycmd.ListenURL("tl-relay: started"); ok {
		t.Error("ListenURL found a URL in a line without one")
	}
}
