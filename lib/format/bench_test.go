package format

import (
	"bytes"
	"context"
	"io"
	"os"
	"testing"

	"github.com/tl-sh/tl/lib/cli"
)

// benchLines is the sample events, one slice per line.
func benchLines(b *testing.B) ([][]byte, int64) {
	data, err := os.ReadFile(sampleEvents)
	if err != nil {
		b.Fatal(err)
	}
	return bytes.Split(bytes.TrimSuffix(data, []byte("\n")), []byte("\n")), int64(len(data))
}

// benchWorker compiles prog as Run would and returns a worker for it.
func benchWorker(b *testing.B, noFast bool, args ...string) *worker {
	env := &cli.Env{Stdin: bytes.NewReader(nil), Stdout: io.Discard, Stderr: io.Discard,
		Getenv: func(string) string { return "" }}
	o, err := parseArgs(args, env)
	if err != nil {
		b.Fatal(err)
	}
	o.noFast = noFast
	prog, err := compile(o, env)
	if err != nil {
		b.Fatal(err)
	}
	return newWorker(context.Background(), o, prog, nil)
}

// BenchmarkLine measures one worker on the sample events, per line.
func BenchmarkLine(b *testing.B) {
	cases := []struct {
		name   string
		noFast bool
		args   []string
	}{
		{"fast/predicate", false, []string{`.type=="click"`}},
		{"fast/select-path", false, []string{`select(.metadata.country=="DE") | .path`}},
		{"gojq/predicate", true, []string{`.type=="click"`}},
		{"gojq/object", true, []string{`{type, path}`}},
		{"line-mode", false, []string{"-o", "line", "."}},
		{"pretty-color", false, []string{"-o", "pretty", "-C", "."}},
	}
	lines, size := benchLines(b)
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			w := benchWorker(b, c.noFast, c.args...)
			b.ReportAllocs()
			b.SetBytes(size / int64(len(lines)))
			i := 0
			for b.Loop() {
				w.line(lines[i], "", i+1)
				w.out, w.errs = w.out[:0], w.errs[:0]
				if i++; i == len(lines) {
					i = 0
				}
			}
		})
	}
}

// BenchmarkRun measures a whole run over the sample file, every core.
func BenchmarkRun(b *testing.B) {
	data, err := os.ReadFile(sampleEvents)
	if err != nil {
		b.Fatal(err)
	}
	for _, prog := range []string{`.type=="click"`, `.type | . == "click"`} {
		b.Run(prog, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				env := &cli.Env{Stdin: bytes.NewReader(data), Stdout: io.Discard, Stderr: io.Discard,
					Getenv: func(string) string { return "" }}
				if err := Run(context.Background(), []string{prog}, env); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkScan measures the validating scanner alone.
func BenchmarkScan(b *testing.B) {
	lines, size := benchLines(b)
	vals := make([][]byte, 1)
	b.ReportAllocs()
	b.SetBytes(size / int64(len(lines)))
	i := 0
	for b.Loop() {
		fields(lines[i], []string{"type"}, vals)
		if i++; i == len(lines) {
			i = 0
		}
	}
}
