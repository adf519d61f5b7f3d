package format

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tl-sh/tl/lib/internal/ndjson"
)

// TestByteOrderMark: a UTF-8 BOM at the start of an input (stdin or each
// file) is not part of line 1, as with jq; one further in is an error.
func TestByteOrderMark(t *testing.T) {
	in := ndjson.BOM + `{"path":"/a"}` + "\n" + `{"path":"/b"}` + "\n"
	for _, args := range [][]string{{".path"}, {"--jobs", "1", ".path"}, {"-n", "inputs | .path"}, {"-s", ".[].path"}} {
		r := runFmt(t, in, nil, nil, args...)
		if r.stdout != "\"/a\"\n\"/b\"\n" || r.stderr != "" || r.code != 0 {
			t.Errorf("%v: %v", args, r)
		}
	}
	f := filepath.Join(t.TempDir(), "bom.ndjson")
	os.WriteFile(f, []byte(in), 0o644)
	r := runFmt(t, "", nil, nil, ".path", f, f)
	if r.stdout != "\"/a\"\n\"/b\"\n\"/a\"\n\"/b\"\n" || r.stderr != "" || r.code != 0 {
		t.Errorf("files: %v", r)
	}
	r = runFmt(t, `{"path":"/a"}`+"\n"+ndjson.BOM+`{"path":"/b"}`+"\n", nil, nil, ".path")
	if r.code != exitRuntime {
		t.Errorf("a BOM on line 2 passed: %v", r)
	}
}

// TestMaxErrors: a flood of bad lines prints --max-errors messages and then
// one count, in both the parallel and the sequential pipeline; the good
// lines still go and the status is still 5.
func TestMaxErrors(t *testing.T) {
	in := strings.Repeat("garbage\n", 1000) + `{"path":"/a"}` + "\n"
	for _, tt := range []struct {
		args  []string
		shown int
		more  string
	}{
		{[]string{".path"}, 100, "tl-fmt: 900 more errors not shown (--max-errors 100)\n"},
		{[]string{"--jobs", "3", "--max-errors", "7", ".path"}, 7, "tl-fmt: 993 more errors not shown (--max-errors 7)\n"},
		{[]string{"--max-errors", "10", "-n", "[inputs.path]"}, 10, "tl-fmt: 990 more errors not shown (--max-errors 10)\n"},
		{[]string{"--max-errors", "0", ".path"}, 1000, ""},
	} {
		r := runFmt(t, in, nil, nil, tt.args...)
		shown := strings.Count(r.stderr, ": not JSON, skipped")
		if r.code != exitRuntime || shown != tt.shown || !strings.HasSuffix(r.stderr, tt.more) || !strings.Contains(r.stdout, "/a") {
			t.Errorf("%q: exit %d, %d shown (want %d), stdout %q, stderr ends %q", tt.args, r.code, shown, tt.shown, r.stdout, r.stderr[max(0, len(r.stderr)-200):])
		}
	}
}

func TestErrorCap(t *testing.T) {
	var b strings.Builder
	c := &errorCap{w: &b, max: 3}
	c.write([]byte("a\nb\n"))
	c.write([]byte("c\nd\ne\n"))
	c.write([]byte("f\n"))
	c.finish()
	if want := "a\nb\nc\ntl-fmt: 3 more errors not shown (--max-errors 3)\n"; b.String() != want {
		t.Errorf("got %q, want %q", b.String(), want)
	}
}

// TestBrokenConfigFilter: a filter file in ~/.config/tl/filters that does
// not parse (or cannot be read) is reported and skipped; tl-fmt . and the
// other filters still work. One named by -L is still a compile error.
func TestBrokenConfigFilter(t *testing.T) {
	config := t.TempDir()
	dir := filepath.Join(config, "tl", "filters")
	os.MkdirAll(dir, 0o755)
	writeFile(t, dir, "broken.jq", "# Broken.\ndef broken: select(;\n")
	writeFile(t, dir, "imports.jq", "import \"x\" as x;\ndef imp: .;\n")
	writeFile(t, dir, "undefined.jq", "def undef: nosuchfn(1);\n") // parses, does not compile
	writeFile(t, dir, "buys.jq", "# Buy clicks.\ndef buys: select(.metadata.button == \"buy\");\n")
	os.Mkdir(filepath.Join(dir, "unreadable.jq"), 0o755) // a directory: reading it fails
	vars := map[string]string{"XDG_CONFIG_HOME": config}
	in := `{"type":"click","path":"/a","metadata":{"button":"buy"}}` + "\n" + `{"type":"click","path":"/b"}` + "\n"
	for _, args := range [][]string{{"-c", "."}, {"-r", "buys | .path"}, {"--list"}} {
		r := runFmt(t, in, vars, nil, args...)
		for _, want := range []string{
			"tl-fmt: syntax error in " + filepath.Join(dir, "broken.jq") + ":2: ",
			"tl-fmt: filter file " + filepath.Join(dir, "imports.jq") + ": imports are not supported in filter files (file skipped)\n",
			"tl-fmt: skipping filter file " + filepath.Join(dir, "unreadable.jq") + ": ",
		} {
			if !strings.Contains(r.stderr, want) {
				t.Errorf("%q: stderr lacks %q:\n%s", args, want, r.stderr)
			}
		}
		// Compiling is checked where a program is compiled (--list only parses).
		undef := "tl-fmt: filter file " + filepath.Join(dir, "undefined.jq") + ": function not defined: nosuchfn/1 (file skipped)\n"
		if args[0] != "--list" && !strings.Contains(r.stderr, undef) {
			t.Errorf("%q: stderr lacks %q:\n%s", args, undef, r.stderr)
		}
		if r.code != 0 || r.stdout == "" {
			t.Errorf("%q: %v", args, r)
		}
		if args[0] == "--list" && (strings.Contains(r.stdout, "Broken.") || !strings.Contains(r.stdout, "Buy clicks.")) {
			t.Errorf("--list: %q", r.stdout)
		}
	}
	lib := t.TempDir()
	writeFile(t, lib, "broken.jq", "def broken: select(;\n")
	if r := runFmt(t, in, nil, nil, "-L", lib, "."); r.code != exitCompile {
		t.Errorf("-L with a broken file: %v", r)
	}
}
