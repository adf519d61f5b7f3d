package format

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tl-sh/tl/lib/cli"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/golden")

// result is what one run of tl-fmt produced.
type result struct {
	stdout, stderr string
	code           int
}

func (r result) String() string {
	return fmt.Sprintf("--- stdout\n%s--- stderr\n%s--- exit %d\n", r.stdout, r.stderr, r.code)
}

// testEnv returns an environment with only vars set.
func testEnv(stdin string, vars map[string]string) (*cli.Env, *bytes.Buffer, *bytes.Buffer) {
	var out, errb bytes.Buffer
	return &cli.Env{
		Stdin:  strings.NewReader(stdin),
		Stdout: &out,
		Stderr: &errb,
		Getenv: func(k string) string { return vars[k] },
	}, &out, &errb
}

// runFmt runs tl-fmt in-process as cli.Main would, after letting mutate
// adjust the parsed options (nil for none).
func runFmt(t testing.TB, stdin string, vars map[string]string, mutate func(*options), args ...string) result {
	t.Helper()
	env, out, errb := testEnv(stdin, vars)
	err := func() error {
		if mutate == nil {
			return Run(context.Background(), args, env)
		}
		o, err := parseArgs(args, env)
		if err != nil || o == nil {
			return err
		}
		mutate(o)
		prog, err := compile(o, env)
		if err != nil {
			return err
		}
		return run(context.Background(), o, prog, env)
	}()
	code, msg := cli.Code(err)
	if msg != "" {
		fmt.Fprintf(errb, "tl-fmt: %s\n", msg)
	}
	return result{out.String(), errb.String(), code}
}

// sampleEvents is the project's one copy of the sample stream, kept by
// lib/event (whose tests need it too).
const sampleEvents = "../event/testdata/events.ndjson"

func readTestdata(t *testing.T, name string) string {
	t.Helper()
	path := filepath.Join("testdata", name)
	if name == "events.ndjson" {
		path = sampleEvents
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// firstLines returns the first n lines of s.
func firstLines(s string, n int) string {
	lines := strings.SplitAfter(s, "\n")
	if len(lines) > n {
		lines = lines[:n]
	}
	return strings.Join(lines, "")
}

// checkGolden compares got with testdata/golden/name.golden, or rewrites it
// under -update.
func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name+".golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from %s:\n%s", name, path, lineDiff(string(want), got))
	}
}

// lineDiff is a small "- want / + got" listing of the differing lines.
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	for i := 0; i < max(len(w), len(g)); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			fmt.Fprintf(&b, "line %d:\n- %q\n+ %q\n", i+1, wl, gl)
		}
	}
	return b.String()
}

func TestGolden(t *testing.T) {
	small := readTestdata(t, "small.ndjson")
	mixed := readTestdata(t, "mixed.ndjson")
	events := readTestdata(t, "events.ndjson")
	first3 := firstLines(small, 3)
	tests := []struct {
		name  string
		input string
		vars  map[string]string
		args  []string
	}{
		{"identity", small, nil, nil},
		{"predicate-click", small, nil, []string{`.type=="click"`}},
		{"predicate-not", small, nil, []string{`.type=="click" | not`}},
		{"path", small, nil, []string{".path"}},
		{"path-raw", small, nil, []string{"-r", ".path"}},
		{"select-pipe", small, nil, []string{`select(.metadata.country=="DE") | .path`}},
		{"object", small, nil, []string{"{type, path, country: .metadata.country}"}},
		{"arg", small, nil, []string{"--arg", "t", "pageview", "--argjson", "n", "2", `select(.type == $t) | [.path, $n]`}},
		{"mixed-identity", mixed, nil, nil},
		{"mixed-line", mixed, nil, []string{"-o", "line"}},
		{"mixed-path", mixed, nil, []string{".path"}},
		{"line", small, nil, []string{"-o", "line"}},
		{"line-color", first3, nil, []string{"-o", "line", "-C"}},
		{"pretty", first3, nil, []string{"-o", "pretty"}},
		{"pretty-color", first3, nil, []string{"-o", "pretty", "-C"}},
		{"json-color", first3, nil, []string{"-C", "{a: [1, null, true, false, \"s\", {}], path}"}},
		{"jq-colors", first3, map[string]string{"JQ_COLORS": "1;31:0;33"}, []string{"-C", "[null, false, .path]"}},
		{"jq-colors-invalid", first3, map[string]string{"JQ_COLORS": "red"}, []string{"-C", "[null, .path]"}},
		{"compact-beats-line", first3, nil, []string{"-c", ".metadata"}},
		{"filter-clicks", small, nil, []string{"clicks"}},
		{"filter-pageviews", small, nil, []string{"pageviews"}},
		{"filter-customs", small, nil, []string{"customs"}},
		{"filter-errors", firstLines(events, 1500), nil, []string{"errors"}},
		{"filter-errors-level", mixed, nil, []string{"errors"}},
		{"filter-tenant", small, nil, []string{`tenant("globex") | .path`}},
		{"filter-under", small, nil, []string{`under("/checkout")`}},
		{"filter-top-paths", firstLines(events, 250), nil, []string{"top_paths(100)"}},
		{"filter-top-paths-null-input", firstLines(events, 250), nil, []string{"-n", "top_paths(100)"}},
		{"filter-by-button", firstLines(events, 250), nil, []string{"by_button(30)"}},
		{"filter-by-country", firstLines(events, 250), nil, []string{"-c", "by_country(200)"}},
		{"filter-in-program", small, nil, []string{"-r", `clicks | "\(.metadata.button) \(.path)"`}},
		{"list", "", nil, []string{"--list"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runFmt(t, tt.input, tt.vars, nil, tt.args...)
			checkGolden(t, tt.name, "$ tl-fmt "+strings.Join(tt.args, " ")+"\n"+r.String())
		})
	}
}

// TestPredicatePassesBytes checks that a selected line is written exactly
// as it came, whitespace and key order and escapes included.
func TestPredicatePassesBytes(t *testing.T) {
	in := "  {\"z\":1, \"type\":\"click\",\"path\":\"/\\u00e9\",\"a\":1.50}\t\n{\"type\":\"pageview\",\"path\":\"/\"}\n"
	for _, prog := range []string{`.type == "click"`, `select(.type == "click")`, `.a == 1.5`, `.path | startswith("/")`} {
		for _, noFast := range []bool{false, true} {
			r := runFmt(t, in, nil, func(o *options) { o.noFast = noFast }, prog)
			want := "  {\"z\":1, \"type\":\"click\",\"path\":\"/\\u00e9\",\"a\":1.50}\t\n"
			if prog == `.path | startswith("/")` {
				want += "{\"type\":\"pageview\",\"path\":\"/\"}\n"
			}
			if r.stdout != want || r.code != 0 {
				t.Errorf("%s (noFast %v): got %q, exit %d; want %q", prog, noFast, r.stdout, r.code, want)
			}
		}
	}
}

func TestMalformedLineMidStream(t *testing.T) {
	in := "{\"type\":\"click\",\"path\":\"/a\"}\n{broken\n\n{\"type\":\"click\",\"path\":\"/b\"}\n"
	for _, args := range [][]string{{`.type=="click"`}, {".path"}, {"--jobs", "1", "."}, {"-n", "[inputs | .path]"}} {
		r := runFmt(t, in, nil, nil, args...)
		if r.code != exitRuntime {
			t.Errorf("%v: exit %d, want %d", args, r.code, exitRuntime)
		}
		if !strings.Contains(r.stderr, "<stdin>:2: not JSON, skipped") {
			t.Errorf("%v: stderr %q does not name line 2", args, r.stderr)
		}
		if !strings.Contains(r.stdout, "/b") {
			t.Errorf("%v: the stream stopped at the bad line: %q", args, r.stdout)
		}
	}
	// With files, messages name the file.
	dir := t.TempDir()
	f := filepath.Join(dir, "in.ndjson")
	os.WriteFile(f, []byte(in), 0o644)
	r := runFmt(t, "", nil, nil, ".path", f, f)
	if want := f + ":2: not JSON, skipped"; strings.Count(r.stderr, want) != 2 {
		t.Errorf("stderr %q: want %q twice", r.stderr, want)
	}
	if r.stdout != "\"/a\"\n\"/b\"\n\"/a\"\n\"/b\"\n" || r.code != exitRuntime {
		t.Errorf("got %q exit %d", r.stdout, r.code)
	}
}

func TestLongLine(t *testing.T) {
	long := `{"path":"` + strings.Repeat("x", maxLine) + `"}`
	in := `{"path":"/a"}` + "\n" + long + "\n" + `{"path":"/b"}` + "\n"
	for _, jobs := range []string{"1", "2"} {
		r := runFmt(t, in, nil, nil, "--jobs", jobs, ".path")
		if r.stdout != "\"/a\"\n\"/b\"\n" || r.code != exitRuntime ||
			!strings.Contains(r.stderr, "<stdin>:2: line longer than 16 MiB, skipped") {
			t.Errorf("jobs %s: %v", jobs, r)
		}
	}
}

// TestUserFilters: filters from the config directory and from -L are listed
// and usable, a later definition hides an earlier one, and a library that
// redefines select turns the fast path off rather than being ignored.
func TestUserFilters(t *testing.T) {
	config, lib := t.TempDir(), t.TempDir()
	os.MkdirAll(filepath.Join(config, "tl", "filters"), 0o755)
	writeFile(t, filepath.Join(config, "tl", "filters"), "buys.jq", "# Buy clicks.\ndef buys: select(.metadata.button == \"buy\");\n")
	writeFile(t, filepath.Join(config, "tl", "filters"), "clicks.jq", "# My clicks.\ndef clicks: select(.type == \"click\" and .path != \"/skip\");\n")
	writeFile(t, lib, "slow.jq", "# Slow ones.\ndef slow($ms): select((.metadata.ms // \"0\" | tonumber) >= $ms);\n")
	vars := map[string]string{"XDG_CONFIG_HOME": config}
	in := `{"type":"click","path":"/a","metadata":{"button":"buy","ms":"900"}}` + "\n" +
		`{"type":"click","path":"/skip","metadata":{"button":"buy"}}` + "\n" +
		`{"type":"pageview","path":"/b","metadata":{"ms":"10"}}` + "\n"

	r := runFmt(t, "", vars, nil, "-L", lib, "--list")
	listed := strings.Join(strings.Fields(r.stdout), " ")
	for _, want := range []string{"buys Buy clicks. (" + config, "clicks My clicks. (", "slow($ms) Slow ones. (" + lib, "top_paths, top_paths($n)"} {
		if !strings.Contains(listed, want) {
			t.Errorf("--list lacks %q:\n%s", want, r.stdout)
		}
	}
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"-r", "buys | .path"}, "/a\n/skip\n"},
		{[]string{"-r", "clicks | .path"}, "/a\n"},
		{[]string{"-L", lib, "-r", "slow(500) | .path"}, "/a\n"},
		{[]string{"-r", `def clicks: select(.path == "/b"); clicks | .path`}, "/b\n"},
	}
	for _, tt := range tests {
		r := runFmt(t, in, vars, nil, tt.args...)
		if r.stdout != tt.want || r.code != 0 {
			t.Errorf("%v: %v; want stdout %q", tt.args, r, tt.want)
		}
	}

	// A filter file that does not parse is a compile error naming it.
	bad := t.TempDir()
	writeFile(t, bad, "broken.jq", "def broken: select(;\n")
	r = runFmt(t, "", nil, nil, "-L", bad, ".")
	if r.code != exitCompile || !strings.Contains(r.stderr, "syntax error in "+filepath.Join(bad, "broken.jq")+":1") {
		t.Errorf("broken filter file: %v", r)
	}
	// -L names a directory that must exist.
	if r := runFmt(t, "", nil, nil, "-L", filepath.Join(bad, "none"), "."); r.code != 2 {
		t.Errorf("missing -L directory: %v", r)
	}

	// Redefining select in a library: the fast path must not answer for it.
	odd := t.TempDir()
	writeFile(t, odd, "odd.jq", "# Odd.\ndef select(f): if f then \"picked\" else empty end;\n")
	r = runFmt(t, in, nil, nil, "-L", odd, `select(.type == "click")`)
	if r.stdout != "\"picked\"\n\"picked\"\n" {
		t.Errorf("select redefined: %v", r)
	}
}
