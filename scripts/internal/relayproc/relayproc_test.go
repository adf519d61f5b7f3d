package relayproc

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestHostPort(t *testing.T) {
	for url, want := range map[string]string{
		"http://127.0.0.1:41234":  "127.0.0.1:41234",
		"https://127.0.0.1:8443/": "127.0.0.1:8443",
		"":                        "",
		"ws://127.0.0.1:1":        "",
	} {
		if got := hostPort(url); got != want {
			t.Errorf("hostPort(%q) = %q, want %q", url, got, want)
		}
	}
}

// TestStartStop: a stand-in relay (a shell script printing the two lines
// tl-relay prints) is started, its addresses read, measured and stopped.
func TestStartStop(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "fake-relay")
	script := "#!/bin/sh\n" +
		"echo 'tl-relay: listening on http://127.0.0.1:41234' >&2\n" +
		"echo 'tl-relay: admin on http://127.0.0.1:9090' >&2\n" +
		"exec sleep 60\n"
	if err := os.WriteFile(bin, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	r, err := Start(bin, "--admin-listen", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if r.Addr != "127.0.0.1:41234" || r.Admin != "127.0.0.1:9090" {
		t.Errorf("Addr %q, Admin %q", r.Addr, r.Admin)
	}
	if r.RSSKiB() <= 0 {
		t.Error("no RSS for a running process")
	}
	start := time.Now()
	r.Stop()
	if time.Since(start) > 20*time.Second {
		t.Error("SIGTERM did not stop it")
	}
	if ProcCPU(os.Getpid()) < 0 {
		t.Error("negative CPU time")
	}
}
