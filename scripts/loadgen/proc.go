package main

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
)

// relay is a tl-relay process started for one scenario.
type relay struct {
	cmd   *exec.Cmd
	addr  string // host:port of its listener
	admin string // host:port of --admin-listen (pprof), "" without
}

// startRelay starts bin on a free loopback port and waits for the line
// naming its address.
func startRelay(bin string, args ...string) (*relay, error) {
	cmd := exec.Command(bin, append([]string{"--listen", "127.0.0.1:0", "--log-level", "error"}, args...)...)
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
	r := &relay{cmd: cmd}
	r.addr = addrIn(line)
	if r.addr == "" {
		r.stop()
		return nil, fmt.Errorf("relay's first line names no address: %q", line)
	}
	for _, a := range args {
		if a == "--admin-listen" {
			// The admin address comes on the next line.
			if line, err = br.ReadString('\n'); err == nil {
				r.admin = addrIn(line)
			}
		}
	}
	go io.Copy(os.Stderr, br) // warnings (slow subscribers) go on stderr
	return r, nil
}

// addrIn returns the host:port of the first http:// URL in line.
func addrIn(line string) string {
	for _, f := range strings.Fields(line) {
		if u, ok := strings.CutPrefix(f, "http://"); ok {
			return strings.TrimRight(u, "/,)")
		}
	}
	return ""
}

// stop ends the relay with SIGTERM (SIGKILL after 20 s).
func (r *relay) stop() {
	r.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { r.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		r.cmd.Process.Kill()
		<-done
	}
}

// clockTick is the kernel's USER_HZ, the unit of /proc/PID/stat's times
// (100 on every Linux architecture Go runs on).
const clockTick = 100

// cpu returns the relay's user+system CPU time so far.
func (r *relay) cpu() time.Duration { return procCPU(r.cmd.Process.Pid) }

func procCPU(pid int) time.Duration {
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

// rssKiB returns the relay's resident set size in KiB.
func (r *relay) rssKiB() int {
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

// selfCPU returns this process's user+system CPU time so far.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// raiseFileLimit lifts the soft limit on open files to the hard limit and
// returns it.
func raiseFileLimit() (uint64, error) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0, err
	}
	rl.Cur = rl.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0, err
	}
	return rl.Cur, nil
}
