package format

import (
	"io"
	"testing"

	"github.com/itchyny/gojq"
)

// TestNeedsSequential: only programs that read inputs, write to stderr or
// halt, themselves or through the named filters they use, give up the
// parallel engine.
func TestNeedsSequential(t *testing.T) {
	files, err := loadLibrary(&options{}, func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	lib, _, err := parseLibrary(files, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		prog string
		want bool
	}{
		{`.type == "click"`, false},
		{`clicks | .path`, false},
		{`errors`, false},
		{`tenant("acme")`, false},
		{`top_paths`, true},
		{`by_button(10)`, true},
		{`[., input]`, true},
		{`first(inputs)`, true},
		{`debug`, true},
		{`.a | stderr`, true},
		{`if . then halt else . end`, true},
		{`def f: input; f`, true},
		{`def input: 1; .`, false},
	}
	for _, tt := range tests {
		q, err := gojq.Parse(tt.prog)
		if err != nil {
			t.Fatal(err)
		}
		if got := needsSequential(q, lib); got != tt.want {
			t.Errorf("needsSequential(%s) = %v, want %v", tt.prog, got, tt.want)
		}
	}
}
