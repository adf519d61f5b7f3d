package format

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/tl-sh/tl/lib/ndjson"
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
