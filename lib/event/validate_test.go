package event

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// splitLines splits an NDJSON file into lines, dropping the final newline.
func splitLines(b []byte) [][]byte {
	return bytes.Split(bytes.TrimSuffix(b, []byte("\n")), []byte("\n"))
}

// TestBadFiles runs every file under testdata/bad (the shared bad cases) and
// checks the first failing line and its message.
func TestBadFiles(t *testing.T) {
	want := map[string]struct {
		line     int
		msg      string
		tooLarge bool
	}{
		"01-not-json.ndjson":               {1, "invalid JSON at byte 1: event must be a JSON object", false},
		"02-truncated.ndjson":              {1, "invalid JSON: unexpected end of input, expected ',' or '}' after a value", false},
		"03-array.ndjson":                  {1, "event must be a JSON object", false},
		"04-null.ndjson":                   {1, "event must be a JSON object", false},
		"05-empty-object.ndjson":           {1, `missing "type"`, false},
		"06-missing-type.ndjson":           {1, `missing "type"`, false},
		"07-unknown-type.ndjson":           {1, "type must be one of pageview, click, custom", false},
		"08-type-not-string.ndjson":        {1, "type must be one of pageview, click, custom", false},
		"09-missing-path.ndjson":           {1, `missing "path"`, false},
		"10-empty-path.ndjson":             {1, "path must be a string of 1 to 2048 bytes", false},
		"11-path-too-long.ndjson":          {1, "path must be a string of 1 to 2048 bytes", false},
		"12-timestamp-string.ndjson":       {1, "timestamp must be an integer number of milliseconds", false},
		"13-timestamp-fraction.ndjson":     {1, "timestamp must be an integer number of milliseconds", false},
		"14-timestamp-huge.ndjson":         {1, "timestamp must be an integer number of milliseconds", false},
		"15-metadata-number.ndjson":        {1, `metadata must be an object of string to string: value of "n" is not a string`, false},
		"16-metadata-nested.ndjson":        {1, `metadata must be an object of string to string: value of "a" is not a string`, false},
		"17-metadata-too-many-keys.ndjson": {1, "metadata must have at most 64 keys", false},
		"18-unknown-field.ndjson":          {1, `unknown field "user"`, false},
		"19-tenant-mismatch.ndjson":        {1, `tenant_id "globex" does not match tenant "acme"`, false},
		"20-event-too-large.ndjson":        {1, "event is larger than 64 KiB", true},
		"21-invalid-utf8.ndjson":           {1, "invalid UTF-8 at byte 26", false},
		"22-duplicate-key.ndjson":          {1, `duplicate key "type"`, false},
		"23-trailing-garbage.ndjson":       {1, "invalid JSON at byte 30: unexpected data after the event object", false},
		"24-good-then-bad-batch.ndjson":    {3, "type must be one of pageview, click, custom", false},
	}
	files, err := filepath.Glob("testdata/bad/*.ndjson")
	if err != nil || len(files) == 0 {
		t.Fatalf("no bad files: %v", err)
	}
	if len(files) != len(want) {
		t.Errorf("%d bad files, %d cases in the table", len(files), len(want))
	}
	var v Validator
	for _, f := range files {
		name := filepath.Base(f)
		t.Run(name, func(t *testing.T) {
			w, ok := want[name]
			if !ok {
				t.Fatalf("no expectation for %s", name)
			}
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			gotLine, gotErr := 0, error(nil)
			for i, line := range splitLines(data) {
				if err := v.Validate(line, "acme"); err != nil {
					gotLine, gotErr = i+1, err
					break
				}
			}
			if gotErr == nil {
				t.Fatalf("every line valid, want line %d: %s", w.line, w.msg)
			}
			if gotLine != w.line || gotErr.Error() != w.msg {
				t.Errorf("line %d: %q\nwant line %d: %q", gotLine, gotErr, w.line, w.msg)
			}
			if errors.Is(gotErr, ErrTooLarge) != w.tooLarge {
				t.Errorf("errors.Is(err, ErrTooLarge) = %v, want %v", !w.tooLarge, w.tooLarge)
			}
			var ve *Error
			if !errors.As(gotErr, &ve) {
				t.Errorf("error %T is not an *event.Error", gotErr)
			}
		})
	}
}

// TestInvalid covers what the shared files do not.
func TestInvalid(t *testing.T) {
	many := `{"type":"click","path":"/a","metadata":{` + strings.Repeat(`"k":"v",`, 0)
	for i := 0; i < 65; i++ {
		if i > 0 {
			many += ","
		}
		many += `"k` + strings.Repeat("x", i) + `":"v"`
	}
	many += "}}"
	cases := []struct{ in, msg string }{
		{``, "empty line"},
		{`   `, "empty line"},
		{`{`, "invalid JSON: unexpected end of input, expected a key string"},
		{`{"type":"click","path":"/a",}`, "invalid JSON at byte 29: expected a key string"},
		{`{"type" "click"}`, "invalid JSON at byte 9: expected ':' after a key"},
		{`{"type":"click","path":"/a"}}`, "invalid JSON at byte 29: unexpected data after the event object"},
		{`{"type":"click","path":"/a"}{}`, "invalid JSON at byte 29: unexpected data after the event object"},
		{`{"type":"click","path":"/a\x"}`, "invalid JSON at byte 27: invalid escape in string"},
		{`{"type":"click","path":"/a\u12"}`, "invalid JSON at byte 27: invalid \\u escape in string"},
		{`{"type":"click","path":"/a\ud800"}`, "invalid JSON at byte 27: invalid \\u escape in string"},
		{`{"type":"click","path":"/a\udc00\ud800"}`, "invalid JSON at byte 27: invalid \\u escape in string"},
		{"{\"type\":\"click\",\"path\":\"/a\tb\"}", "invalid JSON at byte 27: control character in string"},
		{"{\"type\":\"click\",\"path\":\"/a\x00\"}", "invalid JSON at byte 27: control character in string"},
		{"{\"type\":\"click\",\"path\":\"/\xc3\"}", "invalid UTF-8 at byte 26"},
		{"{\"type\":\"click\",\"path\":\"/\xed\xa0\x80\"}", "invalid UTF-8 at byte 26"},
		{"{\"ty\xffpe\":\"click\",\"path\":\"/a\"}", "invalid UTF-8 at byte 5"},
		{`{"type":"click","path":"/a","timestamp":1.5}`, "timestamp must be an integer number of milliseconds"},
		{`{"type":"click","path":"/a","timestamp":1e3}`, "timestamp must be an integer number of milliseconds"},
		{`{"type":"click","path":"/a","timestamp":null}`, "timestamp must be an integer number of milliseconds"},
		{`{"type":"click","path":"/a","timestamp":9223372036854775808}`, "timestamp is out of range"},
		{`{"type":"click","path":"/a","timestamp":-9223372036854775809}`, "timestamp is out of range"},
		{`{"type":"click","path":"/a","timestamp":99999999999999999999999}`, "timestamp is out of range"},
		{`{"type":"click","path":"/a","timestamp":01}`, "invalid JSON at byte 42: expected ',' or '}' after a value"},
		{`{"type":"click","path":"/a","timestamp":-}`, "invalid JSON at byte 41: invalid number"},
		{`{"type":"click","path":"/a","metadata":null}`, "metadata must be an object of string to string"},
		{`{"type":"click","path":"/a","metadata":[]}`, "metadata must be an object of string to string"},
		{`{"type":"click","path":"/a","metadata":{"a":"b","a":"c"}}`, `duplicate key "a" in metadata`},
		{`{"type":"click","path":"/a","metadata":{"a":"b","\u0061":"c"}}`, `duplicate key "a" in metadata`},
		{`{"type":"click","path":"/a","metadata":{"a":"b"},"metadata":{}}`, `duplicate key "metadata"`},
		{`{"type":"click","path":"/a","\u0074ype":"click"}`, `duplicate key "type"`},
		{`{"type":"click","path":"/a","seq":1,"seq":2}`, `duplicate key "seq"`},
		{`{"type":"click","path":"/a","seq":"1"}`, "seq must be a number"},
		{`{"type":"click","path":"/a","tenant_id":5}`, "tenant_id must be a string"},
		{`{"type":"click","path":"/a","tenant_id":"acme2"}`, `tenant_id "acme2" does not match tenant "acme"`},
		{`{"type":"Click","path":"/a"}`, "type must be one of pageview, click, custom"},
		{`{"type":"click","path":5}`, "path must be a string of 1 to 2048 bytes"},
		{`{"type":"click","path":"/a","User":"x"}`, `unknown field "User"`},
		{many, "metadata must have at most 64 keys"},
		{`"click"`, "event must be a JSON object"},
		{`12`, "event must be a JSON object"},
		{`true`, "event must be a JSON object"},
	}
	var v Validator
	for _, c := range cases {
		err := v.Validate([]byte(c.in), "acme")
		if err == nil {
			t.Errorf("Validate(%q) = nil, want %q", c.in, c.msg)
			continue
		}
		if err.Error() != c.msg {
			t.Errorf("Validate(%q)\n got %q\nwant %q", c.in, err, c.msg)
		}
		if errors.Is(err, ErrTooLarge) {
			t.Errorf("Validate(%q): ErrTooLarge for a small event", c.in)
		}
	}
}

// TestValid checks good events and their canonical encoding.
func TestValid(t *testing.T) {
	const now = 1700000000000
	cases := []struct{ in, body, object string }{
		{`{"type":"click","path":"/a"}`,
			`"tenant_id":"acme","timestamp":1700000000000,"type":"click","path":"/a","metadata":{}}`,
			`{"tenant_id":"acme","type":"click","path":"/a","metadata":{}}`},
		{" {\"path\" : \"/x\" , \"metadata\" : { \"k\" : \"v\" , \"k2\":\"\" } , \"type\" : \"pageview\" , \"timestamp\" : -5 }\r\n",
			`"tenant_id":"acme","timestamp":-5,"type":"pageview","path":"/x","metadata":{"k":"v","k2":""}}`,
			`{"tenant_id":"acme","timestamp":-5,"type":"pageview","path":"/x","metadata":{"k":"v","k2":""}}`},
		{`{"seq":42,"tenant_id":"acme","timestamp":1795824000141,"type":"custom","path":"/checkout","metadata":{"name":"purchase"}}`,
			`"tenant_id":"acme","timestamp":1795824000141,"type":"custom","path":"/checkout","metadata":{"name":"purchase"}}`,
			`{"tenant_id":"acme","timestamp":1795824000141,"type":"custom","path":"/checkout","metadata":{"name":"purchase"}}`},
		// Escapes are kept as sent, types are written canonically.
		{`{"type":"\u0063lick","path":"/caf\u00e9\/\"q\"","tenant_id":"\u0061cme","metadata":{"\ud83d\ude00":"\n"}}`,
			`"tenant_id":"acme","timestamp":1700000000000,"type":"click","path":"/caf\u00e9\/\"q\"","metadata":{"\ud83d\ude00":"\n"}}`,
			`{"tenant_id":"acme","type":"click","path":"/caf\u00e9\/\"q\"","metadata":{"\ud83d\ude00":"\n"}}`},
		{`{"type":"click","path":"/é日本","metadata":{},"timestamp":9223372036854775807}`,
			`"tenant_id":"acme","timestamp":9223372036854775807,"type":"click","path":"/é日本","metadata":{}}`,
			`{"tenant_id":"acme","timestamp":9223372036854775807,"type":"click","path":"/é日本","metadata":{}}`},
		{`{"type":"click","path":"/a","timestamp":-9223372036854775808,"seq":-1.5e3}`,
			`"tenant_id":"acme","timestamp":-9223372036854775808,"type":"click","path":"/a","metadata":{}}`,
			`{"tenant_id":"acme","timestamp":-9223372036854775808,"type":"click","path":"/a","metadata":{}}`},
		{`{"type":"click","path":"` + strings.Repeat("p", MaxPathLen) + `"}`,
			`"tenant_id":"acme","timestamp":1700000000000,"type":"click","path":"` + strings.Repeat("p", MaxPathLen) + `","metadata":{}}`,
			`{"tenant_id":"acme","type":"click","path":"` + strings.Repeat("p", MaxPathLen) + `","metadata":{}}`},
	}
	var v Validator
	for _, c := range cases {
		if err := v.Validate([]byte(c.in), "acme"); err != nil {
			t.Errorf("Validate(%q) = %v", c.in, err)
			continue
		}
		if got := string(v.AppendBody(nil, "acme", now)); got != c.body+"\n" {
			t.Errorf("AppendBody(%q)\n got %s\nwant %s", c.in, got, c.body)
		}
		if got := string(v.AppendObject(nil, "acme")); got != c.object+"\n" {
			t.Errorf("AppendObject(%q)\n got %s\nwant %s", c.in, got, c.object)
		}
		line := AppendDelivery(nil, 7, v.AppendBody(nil, "acme", now))
		var m map[string]any
		if err := json.Unmarshal(line, &m); err != nil {
			t.Errorf("delivery %s is not JSON: %v", line, err)
		}
		if seq, ok := LineSeq(line); !ok || seq != 7 {
			t.Errorf("LineSeq(%s) = %d, %v", line, seq, ok)
		}
	}
}

// TestPathLimitDecoded: the 2048-byte limit counts decoded bytes.
func TestPathLimitDecoded(t *testing.T) {
	var v Validator
	esc := `{"type":"click","path":"` + strings.Repeat(`\u0041`, MaxPathLen) + `"}`
	if err := v.Validate([]byte(esc), ""); err != nil {
		t.Errorf("2048 escaped bytes: %v", err)
	}
	esc = `{"type":"click","path":"` + strings.Repeat(`\u00e9`, MaxPathLen/2+1) + `"}`
	if err := v.Validate([]byte(esc), ""); err == nil || err.Error() != msgPath {
		t.Errorf("2050 decoded bytes: %v, want %q", err, msgPath)
	}
}

// TestTenant checks the tenant_id rules for the relay and for tl-post.
func TestTenant(t *testing.T) {
	line := []byte(`{"seq":9,"tenant_id":"globex","type":"click","path":"/a"}`)
	var v Validator
	if err := v.Validate(line, "acme"); err == nil {
		t.Fatal("tenant mismatch accepted")
	}
	if err := v.Validate(line, ""); err != nil {
		t.Fatalf("no URL tenant: %v", err)
	}
	if got := v.TenantID(); got != "globex" {
		t.Errorf("TenantID = %q, want globex", got)
	}
	v.IgnoreTenantID = true
	if err := v.Validate(line, "acme"); err != nil {
		t.Fatalf("IgnoreTenantID: %v", err)
	}
	want := `{"tenant_id":"acme","type":"click","path":"/a","metadata":{}}` + "\n"
	if got := string(v.AppendObject(nil, "acme")); got != want {
		t.Errorf("re-post line %s, want %s", got, want)
	}
	want = `{"type":"click","path":"/a","metadata":{}}` + "\n"
	if got := string(v.AppendObject(nil, "")); got != want {
		t.Errorf("line without tenant %s, want %s", got, want)
	}
	if err := v.Validate([]byte(`{"type":"click","path":"/a"}`), "acme"); err != nil || v.TenantID() != "" {
		t.Errorf("absent tenant_id: %v, %q", err, v.TenantID())
	}
}

// TestTooLarge: the size limit is on the line as sent, trailing newline aside.
func TestTooLarge(t *testing.T) {
	pad := func(n int) []byte {
		head := `{"type":"custom","path":"/a","metadata":{"b":"`
		tail := `"}}`
		return []byte(head + strings.Repeat("x", n-len(head)-len(tail)) + tail)
	}
	var v Validator
	if err := v.Validate(append(pad(MaxEventSize), "\r\n"...), "acme"); err != nil {
		t.Errorf("event of exactly 64 KiB: %v", err)
	}
	err := v.Validate(pad(MaxEventSize+1), "acme")
	if !errors.Is(err, ErrTooLarge) {
		t.Errorf("64 KiB + 1: %v, want ErrTooLarge", err)
	}
}

func TestAppendWithoutValidatePanics(t *testing.T) {
	var v Validator
	_ = v.Validate([]byte(`{}`), "")
	defer func() {
		if recover() == nil {
			t.Error("AppendBody after a failed Validate did not panic")
		}
	}()
	v.AppendBody(nil, "acme", 0)
}

// TestEventsFile validates the shared sample file line by line.
func TestEventsFile(t *testing.T) {
	data, err := os.ReadFile("testdata/events.ndjson")
	if err != nil {
		t.Fatal(err)
	}
	var v Validator
	var buf []byte
	lines := splitLines(data)
	for i, line := range lines {
		if err := v.Validate(line, ""); err != nil {
			t.Fatalf("line %d: %v", i+1, err)
		}
		buf = v.AppendObject(buf[:0], v.TenantID())
		// The samples are canonical already (apart from seq): encoding
		// them again gives the same bytes.
		if string(buf) != string(line)+"\n" {
			t.Fatalf("line %d: re-encoded as\n%s\nwant\n%s", i+1, buf, line)
		}
	}
	if len(lines) != 10000 {
		t.Errorf("%d sample lines, want 10000", len(lines))
	}
}
