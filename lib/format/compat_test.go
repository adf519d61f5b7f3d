package format

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/itchyny/gojq"
)

// TestExitStatus holds tl-fmt to jq 1.7's documented exit statuses and
// error wording: 2 usage, 3 compile error (with a caret under the fault), 5
// runtime error or bad input, and -e's 1 (last output false or null) and 4
// (no output). One documented difference: jq's status follows the last
// input only, tl-fmt's is 5 when any line failed (it keeps going).
func TestExitStatus(t *testing.T) {
	dir, progDir := t.TempDir(), t.TempDir()
	progFile := filepath.Join(progDir, "prog.jq")
	os.WriteFile(progFile, []byte("# a comment\n.a |\n  .b ]\n"), 0o644)
	good := filepath.Join(dir, "good.ndjson")
	os.WriteFile(good, []byte(`{"a":1}`+"\n"), 0o644)

	tests := []struct {
		name   string
		stdin  string
		args   []string
		code   int
		stdout string
		stderr string // a substring of stderr ("" for empty)
	}{
		{"ok", `{"a":1}`, []string{".a"}, 0, "1\n", ""},
		{"syntax error caret", "", []string{".a | ]"}, 3, "", "syntax error: unexpected token \"]\"\n    .a | ]\n         ^\n"},
		{"syntax error eof", "", []string{".a["}, 3, "", "syntax error: unexpected EOF\n    .a[\n       ^\n"},
		{"syntax error in file", "", []string{"-f", progFile}, 3, "", "syntax error in " + progFile + ":3: unexpected token \"]\"\n      .b ]\n         ^\n"},
		{"undefined function", "", []string{"nosuch(1)"}, 3, "", "compile error: function not defined: nosuch/1"},
		{"undefined variable", "", []string{"$nope"}, 3, "", "compile error: variable not defined: $nope"},
		{"unknown flag", "", []string{"--bogus"}, 2, "", "unknown flag: --bogus\ntry 'tl-fmt --help'"},
		{"bad output mode", "", []string{"-o", "yaml"}, 2, "", "-o yaml: must be line, json or pretty"},
		{"bad color", "", []string{"--color=sometimes"}, 2, "", "--color=sometimes: must be auto, always or never"},
		{"arg missing value", "", []string{"--arg", "x"}, 2, "", "--arg takes two parameters"},
		{"argjson invalid", "", []string{"--argjson", "x", "{"}, 2, "", "--argjson x: invalid JSON text"},
		{"missing program file", "", []string{"-f", filepath.Join(dir, "none.jq")}, 2, "", "reading program"},
		{"missing input file", "", []string{".a", filepath.Join(dir, "none"), good}, 2, "1\n", "could not open " + filepath.Join(dir, "none")},
		{"runtime error", `{"a":"x"}`, []string{".a + 1"}, 5, "", `error (at <stdin>:1): cannot add: string ("x") and number (1)`},
		{"runtime error then ok", "{\"a\":\"x\"}\n{\"a\":2}\n", []string{".a + 1"}, 5, "3\n", "error (at <stdin>:1)"},
		{"error builtin", `{"a":1}`, []string{`error("boom")`}, 5, "", "error (at <stdin>:1): boom"},
		{"bad input", "{\"a\":1}\nnope\n", []string{".a"}, 5, "1\n", "<stdin>:2: not JSON, skipped"},
		{"-e truthy", "1\n", []string{"-e", "."}, 0, "1\n", ""},
		{"-e null", "1\nnull\n", []string{"-e", "."}, 1, "1\nnull\n", ""},
		{"-e false", "false\n", []string{"-e", "."}, 1, "", ""}, // a boolean is a predicate: false prints nothing
		{"-e no output", "1\n2\n", []string{"-e", "empty"}, 4, "", ""},
		{"-e no input", "", []string{"-e", "."}, 4, "", ""},
		{"-e predicate last false", "{\"t\":1}\n{\"t\":2}\n", []string{"-e", ".t == 1"}, 1, "{\"t\":1}\n", ""},
		{"-e predicate last true", "{\"t\":2}\n{\"t\":1}\n", []string{"-e", ".t == 1"}, 0, "{\"t\":1}\n", ""},
		{"-e error wins", "{\"a\":\"x\"}\n", []string{"-e", ".a + 1"}, 5, "", "error (at <stdin>:1)"},
		{"-e select none", "{\"t\":2}\n", []string{"-e", "select(.t == 1)"}, 4, "", ""},
		{"halt_error string", "", []string{"-n", `"bye\n" | halt_error`}, 5, "", "bye\n"},
		{"halt_error code", "", []string{"-n", `{"a":1} | halt_error(1)`}, 1, "", "{\"a\":1}\n"},
		{"halt", "1\n2\n", []string{"if . == 2 then halt else . end"}, 0, "1\n", ""},
		{"null input", "", []string{"-n", "1 + 1"}, 0, "2\n", ""},
		{"input", "{\"a\":1}\n{\"a\":2}\n", []string{"-c", "[., input]"}, 0, "[{\"a\":1},{\"a\":2}]\n", ""},
		{"input past the end", "1\n2\n3\n", []string{"-c", "[., input]"}, 5, "[1,2]\n", "error (at <stdin>:3): No more inputs"},
		{"error object", "1", []string{`error({a: 1})`}, 5, "", "error (at <stdin>:1) (not a string): {\"a\":1}"},
		{"inputs", "1\n2\n3\n", []string{"-n", "[inputs] | add"}, 0, "6\n", ""},
		{"slurp", "1\n2\nnope\n3\n", []string{"-s", "-c", "[length, add]"}, 5, "[3,6]\n", "<stdin>:3: not JSON, skipped"},
		{"slurp null input", "1\n2\n", []string{"-s", "-n", "-c", "."}, 0, "null\n", ""}, // as jq: -n wins
		{"slurp empty", "", []string{"-s", "-c", "."}, 0, "[]\n", ""},
		{"raw output", `{"s":"a\tb"}`, []string{"-r", ".s"}, 0, "a\tb\n", ""},
		{"args", "", []string{"-n", "-c", "--arg", "s", "x", "--argjson", "j", `{"k":[1]}`, "[$s, $j, $ARGS.named.s]"}, 0, "[\"x\",{\"k\":[1]},\"x\"]\n", ""},
		{"from file", `{"a":{"b":2}}`, []string{"-f", writeFile(t, progDir, "ok.jq", ".a\n| .b")}, 0, "2\n", ""},
		{"library path import", "", []string{"-n", "-L", dir, `import "mod" as m; m::two`}, 0, "2\n",
			""},
		{"flags after args", `{"a":"x"}`, []string{".a", "-r"}, 0, "x\n", ""},
		{"double dash", `{"a":"x"}`, []string{"-r", "--", ".a"}, 0, "x\n", ""},
		{"env", "", []string{"-n", "$ENV | type"}, 0, "\"object\"\n", ""},
	}
	writeFile(t, dir, "mod.jq", "def two: 2;")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runFmt(t, tt.stdin, nil, nil, tt.args...)
			if r.code != tt.code {
				t.Errorf("exit %d, want %d\n%v", r.code, tt.code, r)
			}
			if r.stdout != tt.stdout {
				t.Errorf("stdout %q, want %q", r.stdout, tt.stdout)
			}
			if tt.stderr == "" && r.stderr != "" {
				t.Errorf("stderr %q, want none", r.stderr)
			}
			if !strings.Contains(r.stderr, tt.stderr) {
				t.Errorf("stderr %q, want it to contain %q", r.stderr, tt.stderr)
			}
		})
	}
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestJQCompat compares tl-fmt's outputs with jq's on the sample events,
// value by value (computed objects come out with sorted keys, as in gojq).
// Where no jq is installed the reference is gojq itself, run the plain way
// (Query.Run per decoded input).
func TestJQCompat(t *testing.T) {
	input := firstLines(readTestdata(t, "events.ndjson"), 2000) + readTestdata(t, "edge.ndjson")
	tests := []struct{ ours, jq string }{
		{`.type == "click"`, `select(.type == "click")`},
		{`.type != "click" and .metadata.country == "DE"`, `select(.type != "click" and .metadata.country == "DE")`},
		{`.path`, `.path`},
		{`select(.metadata.country == "DE") | .path`, `select(.metadata.country == "DE") | .path`},
		{`{type, c: .metadata.country}`, `{type, c: .metadata.country}`},
		{`.metadata | keys`, `.metadata | keys`},
		{`[.type, .timestamp]`, `[.type, .timestamp]`},
		{`.timestamp / 1000 | floor`, `.timestamp / 1000 | floor`},
		{`.metadata.country | ascii_downcase?`, `.metadata.country | ascii_downcase?`},
		{`.n`, `.n`},
	}
	jq, err := exec.LookPath("jq")
	for _, tt := range tests {
		t.Run(tt.ours, func(t *testing.T) {
			r := runFmt(t, input, nil, nil, "-c", tt.ours)
			var want []string
			if err == nil {
				cmd := exec.Command(jq, "-c", tt.jq)
				cmd.Stdin = strings.NewReader(onlyValid(input))
				out, _ := cmd.Output()
				want = normalize(t, string(out))
			} else {
				want = gojqReference(t, tt.jq, onlyValid(input))
			}
			got := normalize(t, r.stdout)
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("outputs differ from the reference:\n%s", lineDiff(strings.Join(want, "\n"), strings.Join(got, "\n")))
			}
		})
	}
}

// onlyValid drops the lines jq would stop at (tl-fmt skips them).
func onlyValid(s string) string {
	var b strings.Builder
	for _, line := range strings.SplitAfter(s, "\n") {
		var v any
		if json.Unmarshal([]byte(line), &v) == nil && validLine(trimSpace([]byte(strings.TrimSuffix(line, "\n")))) != scanUnsure {
			b.WriteString(line)
		}
	}
	return b.String()
}

// normalize decodes each output line and re-encodes it with sorted keys.
func normalize(t *testing.T, s string) []string {
	t.Helper()
	var out []string
	sc := bufio.NewScanner(strings.NewReader(s))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		// Numbers as float64: jq 1.6 rewrites 1.0 as 1, jq 1.7 and gojq keep it.
		var v any
		if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
			t.Fatalf("output line %q: %v", sc.Text(), err)
		}
		b, _ := gojq.Marshal(v)
		out = append(out, string(b))
	}
	return out
}

func gojqReference(t *testing.T, prog, input string) []string {
	t.Helper()
	q, err := gojq.Parse(prog)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, line := range strings.Split(strings.TrimSpace(input), "\n") {
		v, err := decodeLine([]byte(line))
		if err != nil {
			continue
		}
		iter := q.Run(v)
		for {
			x, ok := iter.Next()
			if !ok {
				break
			}
			if _, isErr := x.(error); isErr {
				break
			}
			b, _ := gojq.Marshal(x)
			out = append(out, string(b))
		}
	}
	return out
}
