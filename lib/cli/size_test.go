package cli

import "testing"

// TestSize: every command reads sizes the same way, in any case.
func TestSize(t *testing.T) {
	ok := map[string]int64{
		"0": 0, "1048576": 1 << 20, "7B": 7, "7b": 7,
		"64KiB": 64 << 10, "64kib": 64 << 10, "64K": 64 << 10, "64k": 64 << 10, "64KB": 64 << 10, "64 kb": 64 << 10,
		"64MiB": 64 << 20, "64mib": 64 << 20, "64MIB": 64 << 20, "64M": 64 << 20, "64MB": 64 << 20, "64 MiB": 64 << 20,
		"2MiB": 2 << 20, "2GiB": 2 << 30, "2g": 2 << 30, " 3M ": 3 << 20,
	}
	for in, want := range ok {
		var v Size
		if err := v.Set(in); err != nil || int64(v) != want {
			t.Errorf("Set(%q) = %d, %v; want %d", in, v, err, want)
		}
	}
	for _, bad := range []string{"", "x", "MiB", "-1", "+1", "1.5MiB", "1e6", "64 MiBs", "64TiB", "99999999999GiB", "0x10"} {
		if n, err := ParseSize(bad); err == nil {
			t.Errorf("ParseSize(%q) = %d, accepted", bad, n)
		}
	}
	for n, want := range map[int64]string{64 << 20: "64MiB", 1000: "1000", 2 << 30: "2GiB", 4 << 10: "4KiB", 0: "0", 1<<20 + 1: "1048577"} {
		v := Size(n)
		if v.String() != want {
			t.Errorf("Size(%d).String() = %q, want %q", n, v.String(), want)
		}
	}
}
