package event

import "fmt"

// MaxTenantLen is the longest tenant name tl-protocol(7) allows.
const MaxTenantLen = 64

// CheckTenant reports whether name is a valid tenant name:
// ^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$.
func CheckTenant(name string) error {
	if name == "" {
		return fmt.Errorf("tenant name is empty")
	}
	if len(name) > MaxTenantLen {
		return fmt.Errorf("tenant name %.20q... is longer than %d characters", name, MaxTenantLen)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case i > 0 && (c == '.' || c == '_' || c == '-'):
		default:
			return fmt.Errorf("tenant name %q: must match ^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$", name)
		}
	}
	return nil
}
