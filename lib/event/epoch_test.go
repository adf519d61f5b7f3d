package event

import (
	"regexp"
	"testing"
)

func TestNewEpoch(t *testing.T) {
	re := regexp.MustCompile(`^[0-9a-f]{16}$`)
	seen := map[string]bool{}
	for range 100 {
		e := NewEpoch()
		if !re.MatchString(e) {
			t.Fatalf("NewEpoch() = %q, want 16 hex digits", e)
		}
		if seen[e] {
			t.Fatalf("NewEpoch() repeated %q", e)
		}
		seen[e] = true
	}
}
