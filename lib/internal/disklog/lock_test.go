package disklog

import (
	"strings"
	"testing"
)

// TestDirLocked: a second store on a directory in use fails at Open (the
// per-platform lock on DIR/LOCK), and the directory is free again once the
// first is closed.
func TestDirLocked(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir, Options{})
	if s2, err := Open(dir, Options{}); err == nil {
		s2.Close()
		t.Fatal("second Open of a directory in use succeeded")
	} else if !strings.Contains(err.Error(), "in use by another process") {
		t.Fatalf("second Open: %v, want in use by another process", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s3, err := Open(dir, Options{})
	if err != nil {
		t.Fatalf("Open after Close: %v", err)
	}
	s3.Close()
}
