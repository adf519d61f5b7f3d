package format

import (
	"encoding/json"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/itchyny/gojq"
)

// fastPrograms are programs the fast path must take, and answer exactly as
// gojq does.
var fastPrograms = []string{
	`.type == "click"`,
	`.type=="click"`,
	`"click" == .type`,
	`.type != "click"`,
	`select(.type == "click")`,
	`select(.metadata.country == "DE") | .path`,
	`select(.type == "click") | select(.metadata.country != "DE") | .path`,
	`.type == "click" and .metadata.country == "DE"`,
	`.type == "click" or .path == "/a"`,
	`(.type == "click") | not`,
	`.type == null`,
	`.metadata == null`,
	`.a.b.c == "deep"`,
	`.a.b == null`,
	`.n == 1`,
	`.m == -1`,
	`.z == 0`,
	`.a == true`,
	`.b == false`,
	`.type == true`,
	`.["type"] == "click"`,
	`."type" == "click"`,
	`.path`,
	`.metadata.country`,
	`.a.b`,
	`.n`,
	`.`,
	`select(.path == "/café")`,
	`.path == "/\u0063"`,
	`.metadata.level == "error"`,
}

// slowPrograms are outside the fast path's grammar.
var slowPrograms = []string{
	`.type == "click" | tostring`,
	`.type? == "click"`,
	`.[0] == 1`,
	`.a[] == 1`,
	`.n == 1.5`,
	`.n == 1e3`,
	`.type == "click\u007f"`,
	`def f: 1; .type == "click"`,
	`.type == $x`,
	`.type | test("c")`,
	`select(.type == "click") | .path | length`,
	`.metadata | keys`,
	`.type == "a" + "b"`,
	`.n == -0`,
}

func TestFastPathApplies(t *testing.T) {
	for _, p := range fastPrograms {
		q, err := gojq.Parse(p)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if compileFast(q) == nil {
			t.Errorf("%s: the fast path does not take it", p)
		}
	}
	for _, p := range slowPrograms {
		q, err := gojq.Parse(p)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if compileFast(q) != nil {
			t.Errorf("%s: the fast path takes it", p)
		}
	}
}

// TestFastEquivalence runs every fast program over the sample events and the
// edge cases (escapes, repeated keys, non-objects, numbers, invalid lines)
// with and without the fast path: outputs, messages and exit statuses must
// be the same, in every output mode.
func TestFastEquivalence(t *testing.T) {
	input := firstLines(readTestdata(t, "events.ndjson"), 1000) + readTestdata(t, "edge.ndjson") + readTestdata(t, "mixed.ndjson")
	for _, p := range fastPrograms {
		for _, mode := range [][]string{{"-o", "json"}, {"-r"}, {"-o", "line"}, {"-o", "pretty", "-C"}, {"-e"}} {
			args := append(append([]string(nil), mode...), p)
			fast := runFmt(t, input, nil, nil, args...)
			slow := runFmt(t, input, nil, func(o *options) { o.noFast = true }, args...)
			if fast.String() != slow.String() {
				t.Errorf("tl-fmt %s: the fast path differs from gojq:\n%s", strings.Join(args, " "),
					lineDiff(slow.String(), fast.String()))
			}
		}
	}
}

// FuzzScan holds the scanner to encoding/json: it must never call valid a
// line that encoding/json refuses, nor invalid one it accepts.
func FuzzScan(f *testing.F) {
	for _, s := range []string{`{}`, `{"a":1}`, `[1,2,{"b":null}]`, `"x\u00e9"`, `-0.5e+3`, `01`, `{"a":}`,
		`{"a":1} x`, `tru`, `"\x01"`, `[` + strings.Repeat("[", 20) + `]`, "\"\xff\"", `{"a":"b","a":"c"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		st := validLine(b)
		ok := json.Valid(b)
		if st == scanUnsure {
			return
		}
		if (st == scanOK) != ok {
			t.Fatalf("validLine(%q) = %v, json.Valid = %v", b, st, ok)
		}
		if st == scanOK {
			checkDecode(t, b)
		}
	})
}

// checkDecode holds decodeValid to encoding/json with UseNumber.
func checkDecode(t *testing.T, line []byte) {
	t.Helper()
	want, err := decodeLine(line)
	if err != nil {
		t.Fatalf("decodeLine(%q): %v", line, err)
	}
	if got := decodeValid(line); !reflect.DeepEqual(got, want) {
		t.Fatalf("decodeValid(%q) = %#v, want %#v", line, got, want)
	}
}

func TestDecodeMatchesEncodingJSON(t *testing.T) {
	input := readTestdata(t, "events.ndjson") + readTestdata(t, "edge.ndjson") + readTestdata(t, "mixed.ndjson") +
		`{"s":"\ud800 lone","t":"\u00e9\n\"","u":"\ud83d\ude00","n":[-0,1.5e-3,12345678901234567890],"e":{},"a":[]}` + "\n"
	n := 0
	for _, line := range strings.Split(input, "\n") {
		if validLine([]byte(line)) == scanOK && strings.TrimSpace(line) != "" {
			checkDecode(t, []byte(line))
			n++
		}
	}
	if n < 10000 {
		t.Fatalf("only %d lines checked", n)
	}
}

// FuzzFastEquivalence runs one line through a few fast programs with and
// without the fast path.
func FuzzFastEquivalence(f *testing.F) {
	edge, err := os.ReadFile("testdata/edge.ndjson")
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range strings.Split(string(edge), "\n") {
		f.Add(s)
	}
	progs := []string{`.type == "click"`, `select(.metadata.country == "DE") | .path`, `.a.b`, `.n == 1`, `.`}
	f.Fuzz(func(t *testing.T, line string) {
		if strings.ContainsAny(line, "\n") {
			return
		}
		for _, p := range progs {
			fast := runFmt(t, line+"\n", nil, nil, p)
			slow := runFmt(t, line+"\n", nil, func(o *options) { o.noFast = true }, p)
			if fast.String() != slow.String() {
				t.Fatalf("%s on %q:\nfast %v\nslow %v", p, line, fast, slow)
			}
		}
	})
}
