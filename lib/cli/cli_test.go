package cli

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestCode(t *testing.T) {
	tests := []struct {
		err  error
		code int
		msg  string
	}{
		{nil, 0, ""},
		{errors.New("boom"), 1, "boom"},
		{Usagef("bad flag %q", "-x"), 2, `bad flag "-x"`},
		{Exit(5, nil), 5, ""},
		{Exit(3, errors.New("compile")), 3, "compile"},
		{fmt.Errorf("wrapped: %w", Exit(2, errors.New("u"))), 2, "wrapped: u"},
		{Silent, 1, ""},
		{Exit(1, Silent), 1, ""},
	}
	for _, tt := range tests {
		code, msg := Code(tt.err)
		if code != tt.code || msg != tt.msg {
			t.Errorf("Code(%v) = %d, %q; want %d, %q", tt.err, code, msg, tt.code, tt.msg)
		}
	}
}

func TestVersionLine(t *testing.T) {
	line := VersionLine("tl-x")
	if !strings.HasPrefix(line, "tl-x ") || !strings.Contains(line, "go1.") {
		t.Fatalf("VersionLine = %q", line)
	}
}

// TestVersionOf: the hash is never shown twice (an untagged build used to
// print "tl-post ec78057 (commit ec78057, ...)").
func TestVersionOf(t *testing.T) {
	tests := []struct{ ver, rev, wantVer, wantRev string }{
		{"v1.2.0", "abc1234", "v1.2.0", "abc1234"},
		{"v1.2.0-3-gabc1234-dirty", "abc1234-dirty", "v1.2.0-3-gabc1234-dirty", "abc1234-dirty"},
		{"abc1234", "abc1234", "devel", "abc1234"},
		{"abc1234-dirty", "abc1234-dirty", "devel", "abc1234-dirty"},
		{"", "", "devel", "unknown"},
	}
	for _, tt := range tests {
		if v, r := versionOf(tt.ver, tt.rev, nil); v != tt.wantVer || r != tt.wantRev {
			t.Errorf("versionOf(%q, %q) = %q, %q; want %q, %q", tt.ver, tt.rev, v, r, tt.wantVer, tt.wantRev)
		}
	}
}
