// Package redistest runs a private redis-server for tests: on a free
// loopback port, without persistence unless asked, and stoppable and
// restartable on the same port so that tests can stage a broker outage.
// It is used by lib/internal/redislog's tests and by the e2e harness.
package redistest

import (
	"bufio"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tl-sh/tl/lib/internal/testkit"
)

// startTimeout bounds how long a redis-server may take to answer PING.
const startTimeout = 15 * time.Second

// startAttempts is how many free ports Start tries: another process may
// take the port between our probe and redis-server's bind.
const startAttempts = 5

// Options choose how the server runs.
type Options struct {
	// Persist turns on the append-only file with fsync on every write, so
	// that a stop and restart keeps every acknowledged write.
	Persist bool
	// Password, when set, is required of clients (--requirepass); URL
	// carries it.
	Password string
}

// Server is one redis-server process, restartable on the same port.
type Server struct {
	dir  string
	port int
	opts Options

	mu   sync.Mutex // guards cmd and done
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
}

// New starts a server for t in a temporary directory and stops it when t
// ends.
func New(t testing.TB, opts Options) *Server {
	t.Helper()
	testkit.NeedTool(t, "redis-server") // skips outside CI, fails under CI=true
	s, err := Start(t.TempDir(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// Start starts a redis-server that keeps its files (log, append-only file)
// in dir, on a free port of 127.0.0.1.
func Start(dir string, opts Options) (*Server, error) {
	var err error
	for i := 0; i < startAttempts; i++ {
		var port int
		port, err = freePort()
		if err != nil {
			return nil, err
		}
		s := &Server{dir: dir, port: port, opts: opts}
		if err = s.start(); err == nil {
			return s, nil
		}
	}
	return nil, err
}

// freePort asks the kernel for a free loopback port. Redis cannot listen
// on port 0 and report the port it got, so we pick one and hand it over.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Addr returns host:port.
func (s *Server) Addr() string { return "127.0.0.1:" + strconv.Itoa(s.port) }

// URL returns the redis:// URL of database 0.
func (s *Server) URL() string {
	if s.opts.Password != "" {
		u := url.URL{Scheme: "redis", User: url.UserPassword("", s.opts.Password), Host: s.Addr(), Path: "/0"}
		return u.String()
	}
	return "redis://" + s.Addr() + "/0"
}

// start runs the process and waits until it answers PING.
func (s *Server) start() error {
	args := []string{
		"--port", strconv.Itoa(s.port),
		"--bind", "127.0.0.1",
		"--dir", s.dir,
		"--logfile", filepath.Join(s.dir, "redis.log"),
		"--save", "",
		"--daemonize", "no",
		"--unixsocket", "",
	}
	if s.opts.Persist {
		args = append(args, "--appendonly", "yes", "--appendfsync", "always")
	} else {
		args = append(args, "--appendonly", "no")
	}
	if s.opts.Password != "" {
		args = append(args, "--requirepass", s.opts.Password)
	}
	cmd := exec.Command("redis-server", args...)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting redis-server: %w", err)
	}
	done := make(chan struct{})
	go func() {
		cmd.Wait()
		close(done)
	}()
	deadline := time.Now().Add(startTimeout)
	for {
		if ping(s.Addr(), s.opts.Password) == nil {
			break
		}
		select {
		case <-done:
			log, _ := os.ReadFile(filepath.Join(s.dir, "redis.log"))
			return fmt.Errorf("redis-server on port %d exited early: %s", s.port, tail(log))
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			<-done
			return fmt.Errorf("redis-server on port %d did not answer PING within %v", s.port, startTimeout)
		}
	}
	s.mu.Lock()
	s.cmd, s.done = cmd, done
	s.mu.Unlock()
	return nil
}

// ping sends one PING over a raw connection, after an AUTH when password
// is set.
func ping(addr, password string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Second))
	cmd := "PING\r\n"
	if password != "" {
		cmd = fmt.Sprintf("*2\r\n$4\r\nAUTH\r\n$%d\r\n%s\r\n", len(password), password) + cmd
	}
	if _, err := c.Write([]byte(cmd)); err != nil {
		return err
	}
	r := bufio.NewReader(c)
	if password != "" {
		if line, err := r.ReadString('\n'); err != nil || line != "+OK\r\n" {
			return fmt.Errorf("AUTH: %q %v", line, err)
		}
	}
	line, err := r.ReadString('\n')
	if err != nil {
		return err
	}
	if line != "+PONG\r\n" {
		return fmt.Errorf("unexpected answer to PING: %q", line)
	}
	return nil
}

func tail(b []byte) []byte {
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return b
}

// Stop kills the server (SIGKILL: an outage, not a graceful shutdown) and
// waits for it to exit. Without Persist its data is gone. Stopping a
// stopped server does nothing.
func (s *Server) Stop() {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.cmd, s.done = nil, nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Signal(syscall.SIGKILL)
	<-done
}

// Restart starts the server again on the same port (stopping it first if it
// runs). The port was ours a moment ago; should another process have
// taken it, Restart retries for a while before failing.
func (s *Server) Restart() error {
	s.Stop()
	var err error
	for i := 0; i < startAttempts; i++ {
		if err = s.start(); err == nil {
			return nil
		}
		time.Sleep(200 * time.Millisecond)
	}
	return err
}

// Running reports whether the server process is up.
func (s *Server) Running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cmd != nil
}

// Close stops the server; it is safe to call more than once.
func (s *Server) Close() { s.Stop() }
