package event

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// FuzzValidate checks the hand-rolled validator against encoding/json: an
// accepted line is valid JSON holding a valid event, its canonical body says
// the same thing, and the body validates again to the same bytes.
func FuzzValidate(f *testing.F) {
	files, _ := filepath.Glob("testdata/bad/*.ndjson")
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		if len(data) > 4096 {
			data = data[:4096]
		}
		for _, line := range splitLines(data) {
			f.Add(line)
		}
	}
	if data, err := os.ReadFile("testdata/events.ndjson"); err == nil {
		for _, line := range splitLines(data)[:20] {
			f.Add(line)
		}
	}
	for _, s := range []string{
		`{"type":"click","path":"/a"}`,
		`{"seq":1,"tenant_id":"acme","timestamp":-1,"type":"custom","path":"/\u00e9\/","metadata":{"a":"\ud83d\ude00","b":""}}`,
		` { "type" : "pageview" , "path" : "/" } `,
		`{"type":"click","path":"/a","metadata":{"a":"b","\u0061":"c"}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		var v Validator
		if err := v.Validate(line, "acme"); err != nil {
			if err.Error() == "" {
				t.Fatal("empty error message")
			}
			return
		}
		if !json.Valid(line) {
			t.Fatalf("accepted invalid JSON %q", line)
		}
		var in map[string]any
		if err := json.Unmarshal(line, &in); err != nil {
			t.Fatalf("accepted %q: %v", line, err)
		}
		for k := range in {
			switch k {
			case "tenant_id", "timestamp", "type", "path", "metadata", "seq":
			default:
				t.Fatalf("accepted unknown key %q in %q", k, line)
			}
		}
		if p, _ := in["path"].(string); len(p) < 1 || len(p) > MaxPathLen {
			t.Fatalf("accepted path %q", in["path"])
		}
		body := v.AppendBody(nil, "acme", 5)
		obj := append([]byte("{"), body...)
		var out map[string]any
		if err := json.Unmarshal(obj, &out); err != nil {
			t.Fatalf("body of %q is not JSON: %s: %v", line, obj, err)
		}
		if out["type"] != in["type"] || out["path"] != in["path"] || out["tenant_id"] != "acme" {
			t.Fatalf("body %s does not match %q", obj, line)
		}
		if m, ok := in["metadata"]; ok && !reflect.DeepEqual(m, out["metadata"]) {
			t.Fatalf("metadata %v became %v", m, out["metadata"])
		}
		// The encoded line is a fixed point.
		var v2 Validator
		if err := v2.Validate(obj, "acme"); err != nil {
			t.Fatalf("body %s of %q does not validate: %v", obj, line, err)
		}
		if again := v2.AppendBody(nil, "acme", 6); !bytes.Equal(again, body) {
			t.Fatalf("re-encoding changed\n%s\nto\n%s", body, again)
		}
		delivered := AppendDelivery(nil, 3, body)
		typ, path, ok := LineTypePath(delivered)
		if !ok || typ != v.Type() || !PathHasPrefix(path, in["path"].(string)) {
			t.Fatalf("LineTypePath(%s) = %v %s %v", delivered, typ, path, ok)
		}
	})
}
