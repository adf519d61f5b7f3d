package e2e

import (
	"bufio"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tl-sh/tl/lib/internal/testkit"
)

// TestRelayProcsFloor: a relay given one CPU (taskset -c 0) runs with two
// Ps, so that a POST never waits for the fan-out to give way (relaycmd's
// minProcs); GOMAXPROCS set by the user is kept, and with every CPU this
// test may use (no taskset) it keeps the runtime's own count when that is
// two or more. The figure is the relay's own go_sched_gomaxprocs_threads in
// /metrics.
func TestRelayProcsFloor(t *testing.T) {
	taskset := testkit.NeedTool(t, "taskset")
	relay := filepath.Join(binDir, "tl-relay")
	for _, c := range []struct {
		name string
		argv []string
		env  string
		want string
	}{
		{"one CPU", []string{taskset, "-c", "0", relay}, "", "2"},
		{"one CPU, GOMAXPROCS=1", []string{taskset, "-c", "0", relay}, "GOMAXPROCS=1", "1"},
		{"every CPU", []string{relay}, "", strconv.Itoa(max(2, runtime.NumCPU()))},
	} {
		t.Run(c.name, func(t *testing.T) {
			cmd := exec.Command(c.argv[0], append(c.argv[1:], "--listen", "127.0.0.1:0")...)
			cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
			if c.env != "" {
				cmd.Env = append(cmd.Env, c.env)
			}
			log := &testkit.SyncBuffer{}
			p, err := launchRelay(cmd, log, nil, 30*time.Second)
			if p == nil {
				t.Fatal(err)
			}
			defer func() { cmd.Process.Kill(); <-p.Done }()
			if err != nil {
				t.Fatalf("%v\n%s", err, log)
			}
			if got := gauge(t, p.URL+"/metrics", "go_sched_gomaxprocs_threads"); got != c.want {
				t.Errorf("GOMAXPROCS %s, want %s", got, c.want)
			}
		})
	}
}

// gauge returns the value of the unlabelled metric name at url.
func gauge(t *testing.T, url, name string) string {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	sc := bufio.NewScanner(res.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			return v
		}
	}
	t.Fatalf("no %s in %s (%v)", name, url, sc.Err())
	return ""
}
