// Package relayproc starts a tl-relay process for the benchmark tools under
// scripts/ and measures it from /proc.
package relayproc

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/tl-sh/tl/lib/relaycmd"
)

// Relay is a running tl-relay.
type Relay struct {
	cmd   *exec.Cmd
	Addr  string // host:port of its listener
	Admin string // host:port of --admin-listen, "" without
}

// Start starts bin on a free loopback port with args (after --listen) and
// waits for the line naming its address. Its later stderr (warnings such as
// slow subscribers) goes to this process's stderr.
func Start(bin string, args ...string) (*Relay, error) { return StartWith(nil, bin, args...) }

// StartWith is Start with bin run through the command prefix (e.g.
// "taskset", "-c", "0"), which must exec it in its own process (so that the
// process measured is the relay).
func StartWith(prefix []string, bin string, args ...string) (*Relay, error) {
	argv := append(append(append([]string(nil), prefix...), bin, "--listen", "127.0.0.1:0"), args...)
	cmd := exec.Command(argv[0], argv[1:]...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	br := bufio.NewReader(stderr)
	line, err := br.ReadString('\n')
	if err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		return nil, fmt.Errorf("relay did not start: %v", err)
	}
	u, _ := relaycmd.ListenURL(line)
	r := &Relay{cmd: cmd, Addr: hostPort(u)}
	if r.Addr == "" {
		r.Stop()
		return nil, fmt.Errorf("relay's first line names no address: %q", line)
	}
	for _, a := range args {
		if a == "--admin-listen" {
			// The admin address comes on the next line.
			if line, err = br.ReadString('\n'); err == nil {
				u, _ := relaycmd.AdminURL(line)
				r.Admin = hostPort(u)
			}
		}
	}
	go io.Copy(os.Stderr, br)
	return r, nil
}

// hostPort returns the host:port of an http:// or https:// URL, "" for
// anything else.
func hostPort(url string) string {
	for _, scheme := range []string{"http://", "https://"} {
		if hp, ok := strings.CutPrefix(url, scheme); ok {
			return strings.TrimRight(hp, "/")
		}
	}
	return ""
}

// Stop ends the relay with SIGTERM (SIGKILL after 30 s).
func (r *Relay) Stop() {
	r.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { r.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		r.cmd.Process.Kill()
		<-done
	}
}

// CPU returns the relay's user+system CPU time so far.
func (r *Relay) CPU() time.Duration { return ProcCPU(r.cmd.Process.Pid) }

// RSSKiB returns the relay's resident set size in KiB.
func (r *Relay) RSSKiB() int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", r.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			return n
		}
	}
	return 0
}

// clockTick is the kernel's USER_HZ, the unit of /proc/PID/stat's times
// (100 on every Linux architecture Go runs on).
const clockTick = 100

// ProcCPU returns process pid's user+system CPU time so far.
func ProcCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the command name (which may hold spaces) in parentheses.
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64) // field 14, utime
	st, _ := strconv.ParseInt(f[12], 10, 64) // field 15, stime
	return time.Duration(ut+st) * time.Second / clockTick
}
