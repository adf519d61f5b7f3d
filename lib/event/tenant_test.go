package event

import (
	"strings"
	"testing"
)

func TestCheckTenant(t *testing.T) {
	good := []string{"acme", "a", "A9", "acme-prod", "acme.eu_1", strings.Repeat("x", 64)}
	bad := []string{"", "-acme", ".x", "_x", "ac me", "acme/x", "é", strings.Repeat("x", 65), "a\x00"}
	for _, name := range good {
		if err := CheckTenant(name); err != nil {
			t.Errorf("CheckTenant(%q) = %v, want nil", name, err)
		}
	}
	for _, name := range bad {
		if err := CheckTenant(name); err == nil {
			t.Errorf("CheckTenant(%q) = nil, want an error", name)
		}
	}
}
