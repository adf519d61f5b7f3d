package relaycmd

import (
	"strings"
	"testing"
)

// TestListenLines: what printListen and printAdmin write, ListenURL and
// AdminURL read back, and no other line passes for one.
func TestListenLines(t *testing.T) {
	var b strings.Builder
	printListen(&b, "https", "127.0.0.1:7")
	printAdmin(&b, "http", "127.0.0.1:8")
	lines := strings.SplitAfter(b.String(), "\n")
	if u, ok := ListenURL(lines[0]); !ok || u != "https://127.0.0.1:7" {
		t.Errorf("ListenURL(%q) = %q, %v", lines[0], u, ok)
	}
	if u, ok := AdminURL(lines[1]); !ok || u != "http://127.0.0.1:8" {
		t.Errorf("AdminURL(%q) = %q, %v", lines[1], u, ok)
	}
	for _, l := range []string{lines[1], "tl-relay: started", "tl-relay: listening on ", "msg=listening on http://x"} {
		if u, ok := ListenURL(l); ok {
			t.Errorf("ListenURL(%q) = %q, want none", l, u)
		}
	}
	if u, ok := AdminURL(lines[0]); ok {
		t.Errorf("AdminURL(%q) = %q, want none", lines[0], u)
	}
}
