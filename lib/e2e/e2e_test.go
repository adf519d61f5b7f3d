package e2e

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/tl-sh/tl/lib/internal/testkit"
)

var update = flag.Bool("update", false, "update testscript golden output in place")

// binDir holds the tl binaries built for this test run.
var binDir string

func TestMain(m *testing.M) {
	flag.Parse()
	dir, err := os.MkdirTemp("", "tl-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	if err := buildBinaries(dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// buildBinaries builds every command under cmd/ into dir, with the race
// detector when the tests themselves run under it.
func buildBinaries(dir string) error {
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..")
	args := []string{"build", "-o", dir + string(os.PathSeparator)}
	if raceEnabled {
		args = append(args, "-race")
	}
	mains, _ := filepath.Glob(filepath.Join(root, "cmd", "*", "main.go"))
	if len(mains) == 0 {
		return nil
	}
	for _, m := range mains {
		args = append(args, "./cmd/"+filepath.Base(filepath.Dir(m)))
	}
	cmd := exec.Command("go", args...)
	cmd.Dir = root
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("building tl binaries: %w", err)
	}
	return nil
}

func TestScripts(t *testing.T) {
	testscript.Run(t, Params("testdata/script"))
}

// Params returns the testscript parameters for the scripts in dir: the
// binaries on PATH, TL_RELAY cleared, and the relay commands.
func Params(dir string) testscript.Params {
	return testscript.Params{
		Dir:                 dir,
		UpdateScripts:       *update,
		RequireExplicitExec: true,
		// [tool:NAME]: NAME is installed; a script skips without it
		// ([!tool:redis-server] skip), except under CI=true, where a
		// missing tool fails it.
		Condition: testkit.ToolCondition,
		Setup: func(env *testscript.Env) error {
			env.Setenv("PATH", binDir+string(os.PathListSeparator)+env.Getenv("PATH"))
			env.Setenv("TL_RELAY", "")
			env.Setenv("TL_TOKEN", "")
			env.Setenv("NO_COLOR", "")
			env.Setenv("TESTDATA", filepath.Join(mustAbs("testdata")))
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"relay-start": cmdRelayStart,
			"relay-stop":  cmdRelaySignal(syscall.SIGTERM),
			"relay-kill":  cmdRelaySignal(syscall.SIGKILL),
			"sleep":       cmdSleep,
			// stream_test.go: read a tenant's deliveries; a proxy losing 202s.
			"stream":        cmdStream,
			"stream-match":  cmdStreamMatch,
			"swallow-proxy": cmdSwallowProxy,
			// netcmds_test.go: free ports, a proxy that cuts connections, output checks.
			"free-port":   cmdFreePort,
			"proxy-start": cmdProxyStart,
			"proxy-cut":   cmdProxyCut,
			"wait-lines":  cmdWaitLines,
			"seq-check":   cmdSeqCheck,
			// relay_cmds_test.go: plain HTTP requests and background subscribers.
			"http":      cmdHTTP,
			"sub-start": cmdSubStart,
			"sub-wait":  cmdSubWait,
			// durable_test.go: damage a file like a failing disk.
			"corrupt": cmdCorrupt,
			// certs_test.go: a test CA and server certificate.
			"gencert": cmdGencert,
			// redis_cmds_test.go: a private redis-server, stopped and restarted.
			"redis-start":   cmdRedisStart,
			"redis-stop":    cmdRedisStop,
			"redis-restart": cmdRedisRestart,
			"wait-status":   cmdWaitStatus,
		},
	}
}

func mustAbs(p string) string {
	a, err := filepath.Abs(p)
	if err != nil {
		panic(err)
	}
	return a
}

// relayProc is a relay started by a script.
type relayProc struct {
	cmd  *exec.Cmd
	done chan struct{}
}

// relayTable holds the relays each running script started, by name. Scripts
// run in parallel, so it is guarded by relayMu.
var (
	relayMu    sync.Mutex
	relayTable = map[*testscript.TestScript]map[string]*relayProc{}
)

// cmdRelayStart starts tl-relay in the background:
//
//	relay-start [-name NAME] [tl-relay flags...]
//
// It waits for the "listening on URL" line (the first) and for the
// "started" log line (after start-up logging: data directory recovery, the
// broker), sets $TL_RELAY (and
// $TL_RELAY_<NAME> when named) to that URL, and stops the relay when the
// script ends. The relay's stderr goes to $WORK/relay-NAME.log.
func cmdRelayStart(ts *testscript.TestScript, neg bool, args []string) {
	if neg {
		ts.Fatalf("unsupported: ! relay-start")
	}
	name := "main"
	if len(args) >= 2 && args[0] == "-name" {
		name, args = args[1], args[2:]
	}
	hasListen := false
	for _, a := range args {
		if a == "--listen" || strings.HasPrefix(a, "--listen=") {
			hasListen = true
		}
	}
	if !hasListen {
		args = append([]string{"--listen", "127.0.0.1:0"}, args...)
	}
	logPath := ts.MkAbs("relay-" + name + ".log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	ts.Check(err)
	cmd := exec.Command(filepath.Join(binDir, "tl-relay"), args...)
	cmd.Dir = ts.MkAbs(".")
	cmd.Env = scriptEnv(ts)
	startedc := make(chan struct{})
	started := false
	onLine := func(line string) {
		// The "started" line comes after start-up logging (data directory
		// recovery, the broker).
		if !started && (strings.Contains(line, "msg=started") || strings.Contains(line, `"msg":"started"`)) {
			close(startedc) // every line before it is in the log now
			started = true
		}
	}
	rp, err := launchRelay(cmd, logf, onLine, 20*time.Second)
	if rp == nil {
		ts.Fatalf("tl-relay: %v", err)
	}
	done := rp.Done
	go func() { <-done; logf.Close() }()
	url := rp.URL
	switch {
	case errors.Is(err, errExited):
		data, _ := os.ReadFile(logPath)
		ts.Fatalf("tl-relay exited before listening:\n%s", data)
	case err != nil:
		cmd.Process.Kill()
		ts.Fatalf("%v", err)
	}
	if !quietLog(args) { // else no "started" line comes
		select {
		case <-startedc:
		case <-done:
			data, _ := os.ReadFile(logPath)
			ts.Fatalf("tl-relay exited before it started:\n%s", data)
		case <-time.After(60 * time.Second):
			cmd.Process.Kill()
			ts.Fatalf("tl-relay did not log \"started\" within 60s")
		}
	}
	p := &relayProc{cmd: cmd, done: done}
	relayMu.Lock()
	if relayTable[ts] == nil {
		relayTable[ts] = map[string]*relayProc{}
		ts.Defer(func() {
			relayMu.Lock()
			procs := relayTable[ts]
			delete(relayTable, ts)
			relayMu.Unlock()
			for _, p := range procs {
				p.cmd.Process.Kill()
				<-p.done
			}
		})
	}
	old := relayTable[ts][name]
	relayTable[ts][name] = p
	relayMu.Unlock()
	if old != nil {
		old.cmd.Process.Kill()
		<-old.done
	}
	ts.Setenv("TL_RELAY", url)
	ts.Setenv("TL_RELAY_"+strings.ToUpper(name), url)
}

// quietLog reports whether tl-relay's args set a log level above info,
// which hides the "started" line.
func quietLog(args []string) bool {
	for i, a := range args {
		v, ok := strings.CutPrefix(a, "--log-level=")
		if !ok && a == "--log-level" && i+1 < len(args) {
			v, ok = args[i+1], true
		}
		if ok && v != "debug" && v != "info" {
			return true
		}
	}
	return false
}

// scriptEnv returns the script's environment for a child process.
func scriptEnv(ts *testscript.TestScript) []string {
	var env []string
	for _, k := range []string{"PATH", "HOME", "TMPDIR", "WORK", "TL_RELAY", "TL_TOKEN", "GORACE"} {
		env = append(env, k+"="+ts.Getenv(k))
	}
	return env
}

// cmdRelaySignal stops a relay started by relay-start with sig and waits for
// it to exit: relay-stop [NAME] / relay-kill [NAME]. relay-stop fails the
// script unless the relay exits 0 within 15s.
func cmdRelaySignal(sig syscall.Signal) func(ts *testscript.TestScript, neg bool, args []string) {
	return func(ts *testscript.TestScript, neg bool, args []string) {
		name := "main"
		if len(args) > 0 {
			name = args[0]
		}
		relayMu.Lock()
		p := relayTable[ts][name]
		delete(relayTable[ts], name)
		relayMu.Unlock()
		if p == nil {
			ts.Fatalf("no relay named %q", name)
		}
		ts.Check(p.cmd.Process.Signal(sig))
		select {
		case <-p.done:
		case <-time.After(15 * time.Second):
			p.cmd.Process.Kill()
			<-p.done
			ts.Fatalf("tl-relay %s did not exit within 15s of %v", name, sig)
		}
		if sig == syscall.SIGTERM {
			code := p.cmd.ProcessState.ExitCode()
			if (code != 0) != neg {
				ts.Fatalf("tl-relay %s exited %d after SIGTERM", name, code)
			}
		}
	}
}

// cmdSleep pauses the script: sleep DURATION (for example 200ms).
func cmdSleep(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 {
		ts.Fatalf("usage: sleep DURATION")
	}
	d, err := time.ParseDuration(args[0])
	ts.Check(err)
	time.Sleep(d)
}
