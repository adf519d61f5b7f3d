package redistest

import (
	"bufio"
	"net"
	"strings"
	"testing"
	"time"
)

// do sends one inline command and returns the first line of the answer.
func do(t *testing.T, addr, cmd string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte(cmd + "\r\n")); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(c)
	line, err := r.ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	if strings.HasPrefix(line, "$") && line != "$-1\r\n" {
		line, err = r.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
	}
	return strings.TrimSpace(line)
}

func TestStopRestart(t *testing.T) {
	tests := []struct {
		name    string
		persist bool
		want    string // GET k after a restart
	}{
		{"without persistence the data goes", false, "$-1"},
		{"with persistence it stays", true, "v"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New(t, Options{Persist: tt.persist})
			addr := s.Addr()
			if got := do(t, addr, "SET k v"); got != "+OK" {
				t.Fatalf("SET: %q", got)
			}
			s.Stop()
			if s.Running() {
				t.Fatal("running after Stop")
			}
			if _, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
				t.Fatal("still accepting connections after Stop")
			}
			s.Stop() // twice is fine
			if err := s.Restart(); err != nil {
				t.Fatal(err)
			}
			if s.Addr() != addr || !s.Running() {
				t.Fatalf("restarted on %s (running %v), want %s", s.Addr(), s.Running(), addr)
			}
			if got := do(t, addr, "GET k"); got != tt.want {
				t.Errorf("GET k after restart: %q, want %q", got, tt.want)
			}
		})
	}
}
