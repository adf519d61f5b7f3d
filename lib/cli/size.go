package cli

import (
	"fmt"
	"strconv"
	"strings"
)

// Size is a byte-size flag value (a pflag.Value), the one size syntax of
// every tl command: a whole number of bytes with an optional unit, any case,
// with or without a space: 1048576, 512KiB, 64MiB, 64mib, 64M, 64 MB, 2GiB.
// K, KB and KiB (and M, G likewise) all mean powers of 1024, as buffer and
// history sizes are usually meant; a fraction (1.5MiB) is refused.
type Size int64

// maxSize bounds a size so that it fits any int on 64-bit systems with room
// to add to it.
const maxSize = 1 << 62

// sizeUnits are tried in order, so the longer suffixes come first.
var sizeUnits = []struct {
	suffix string
	mult   int64
}{
	{"kib", 1 << 10}, {"mib", 1 << 20}, {"gib", 1 << 30},
	{"kb", 1 << 10}, {"mb", 1 << 20}, {"gb", 1 << 30},
	{"k", 1 << 10}, {"m", 1 << 20}, {"g", 1 << 30}, {"b", 1},
}

// ParseSize reads a size in the syntax of Size.
func ParseSize(s string) (int64, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	mult := int64(1)
	for _, u := range sizeUnits {
		if rest, ok := strings.CutSuffix(t, u.suffix); ok {
			t, mult = strings.TrimSpace(rest), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n < 0 || n > maxSize/mult || t[0] == '+' {
		return 0, fmt.Errorf("%q is not a size (like 1048576, 64KiB, 8MiB)", s)
	}
	return n * mult, nil
}

// FormatSize writes n in the largest unit that divides it: 64MiB, 1000.
func FormatSize(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return strconv.FormatInt(n>>30, 10) + "GiB"
	case n >= 1<<20 && n%(1<<20) == 0:
		return strconv.FormatInt(n>>20, 10) + "MiB"
	case n >= 1<<10 && n%(1<<10) == 0:
		return strconv.FormatInt(n>>10, 10) + "KiB"
	}
	return strconv.FormatInt(n, 10)
}

func (v *Size) String() string { return FormatSize(int64(*v)) }

// Type names the value in pflag's usage: "--max-body size".
func (v *Size) Type() string { return "size" }

// Set parses s.
func (v *Size) Set(s string) error {
	n, err := ParseSize(s)
	if err != nil {
		return err
	}
	*v = Size(n)
	return nil
}
