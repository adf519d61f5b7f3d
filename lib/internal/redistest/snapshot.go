package redistest

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Snapshots let a test stage Redis going back in time: Snapshot copies the
// server's files as they are now (SAVE's dump.rdb, or the append-only
// directory with Persist), and RestartFrom kills the server (SIGKILL),
// puts the copy back and starts it on the same port, as an operator
// restoring a backup would.

// aofDir is redis-server's default appenddirname (Redis 7).
const aofDir = "appendonlydir"

// Snapshot saves the server's data under name. Without Persist it runs
// SAVE and keeps dump.rdb; with Persist (every write fsynced) it copies
// the append-only directory. Nothing may be written meanwhile for the
// copy to be one instant.
func (s *Server) Snapshot(name string) error {
	dst := filepath.Join(s.dir, "snapshots", name)
	if err := os.RemoveAll(dst); err != nil {
		return err
	}
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	if s.opts.Persist {
		return copyDir(filepath.Join(s.dir, aofDir), filepath.Join(dst, aofDir))
	}
	if reply, err := s.Command("SAVE"); err != nil || reply != "+OK" {
		return fmt.Errorf("SAVE: %q %v", reply, err)
	}
	return copyFile(filepath.Join(s.dir, "dump.rdb"), filepath.Join(dst, "dump.rdb"))
}

// RestartFrom kills the server and starts it again on the same port from
// the snapshot name: everything written since the snapshot is gone.
func (s *Server) RestartFrom(name string) error {
	src := filepath.Join(s.dir, "snapshots", name)
	s.Stop()
	if s.opts.Persist {
		if err := os.RemoveAll(filepath.Join(s.dir, aofDir)); err != nil {
			return err
		}
		if err := copyDir(filepath.Join(src, aofDir), filepath.Join(s.dir, aofDir)); err != nil {
			return err
		}
	} else if err := copyFile(filepath.Join(src, "dump.rdb"), filepath.Join(s.dir, "dump.rdb")); err != nil {
		return err
	}
	return s.Restart()
}

// Signal sends sig to the server: SIGSTOP hangs it (connections stay
// open, nothing is answered), SIGCONT wakes it.
func (s *Server) Signal(sig syscall.Signal) error {
	s.mu.Lock()
	cmd := s.cmd
	s.mu.Unlock()
	if cmd == nil {
		return fmt.Errorf("redis-server is not running")
	}
	return cmd.Process.Signal(sig)
}

// Dir returns the directory the server keeps its files in.
func (s *Server) Dir() string { return s.dir }

// Command sends one command (after an AUTH when the server has a
// password) over a new connection and returns the first line of the
// answer ("+OK", ":3", "$5"...), for tests that need no client library.
func (s *Server) Command(args ...string) (string, error) {
	c, err := net.DialTimeout("tcp", s.Addr(), time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(startTimeout))
	r := bufio.NewReader(c)
	if s.opts.Password != "" {
		if _, err := c.Write(resp("AUTH", s.opts.Password)); err != nil {
			return "", err
		}
		if line, err := r.ReadString('\n'); err != nil || line != "+OK\r\n" {
			return "", fmt.Errorf("AUTH: %q %v", line, err)
		}
	}
	if _, err := c.Write(resp(args...)); err != nil {
		return "", err
	}
	line, err := r.ReadString('\n')
	return strings.TrimRight(line, "\r\n"), err
}

// resp encodes a command as a RESP array of bulk strings.
func resp(args ...string) []byte {
	b := fmt.Appendf(nil, "*%d\r\n", len(args))
	for _, a := range args {
		b = fmt.Appendf(b, "$%d\r\n%s\r\n", len(a), a)
	}
	return b
}

func copyDir(src, dst string) error {
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	ents, err := os.ReadDir(src)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if err := copyFile(filepath.Join(src, e.Name()), filepath.Join(dst, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
