// Package testkit holds the small helpers that the tests of several lib/
// packages share. Only _test.go files import it.
//
// It imports no package of this module, so that the tests of any package
// under lib/ can use it without an import cycle.
package testkit

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// SyncBuffer is a bytes.Buffer that a goroutine under test (a logger, a
// command's stdout) may write while the test reads it. The zero value is
// ready to use.
type SyncBuffer struct {
	mu sync.Mutex // guards b
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns everything written so far.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// waitBound is how long WaitFor waits. It only ends a broken test instead of
// letting it hang: the tests run on loaded CI machines, where a condition
// may take seconds, so it is generous and must never decide a result.
const waitBound = 30 * time.Second

// WaitFor polls cond until it holds, and fails the test after waitBound;
// what names the condition in the failure. Call it from the test's
// goroutine, as t.Fatalf requires.
func WaitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitBound)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", waitBound, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// SeqRange returns the seqs from through to, in order (none when to < from):
// what a log should hold or a reader should get.
func SeqRange(from, to uint64) []uint64 {
	var s []uint64
	for i := from; i <= to; i++ {
		s = append(s, i)
	}
	return s
}

// NeedTool returns the path of the program name, which a test needs. When
// it is not installed the test is skipped with one line, except under CI
// (CI=true), where a missing tool is a failure: CI installs every tool
// (.ci/run), and a skip there would hide a test that never ran.
func NeedTool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is not installed (CI=true: a missing tool fails the test)", name)
	}
	t.Skipf("skipped: %s is not installed (.ci/run installs it; see README)", name)
	return ""
}

// ToolCondition answers a testscript condition [tool:NAME] the way NeedTool
// decides: true when NAME is installed, false when not (the script then
// skips), and an error under CI=true.
func ToolCondition(cond string) (bool, error) {
	name, ok := strings.CutPrefix(cond, "tool:")
	if !ok {
		return false, fmt.Errorf("unknown condition %q", cond)
	}
	if _, err := exec.LookPath(name); err == nil {
		return true, nil
	}
	if os.Getenv("CI") == "true" {
		return false, fmt.Errorf("%s is not installed (CI=true: a missing tool fails the script)", name)
	}
	return false, nil
}
