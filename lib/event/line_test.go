package event

import (
	"os"
	"testing"
)

func TestLineSeq(t *testing.T) {
	cases := []struct {
		line string
		seq  uint64
		ok   bool
	}{
		{`{"seq":1,"tenant_id":"a"}`, 1, true},
		{`{"seq":18446744073709551615,"x":1}`, 1<<64 - 1, true},
		{`{"seq":18446744073709551616,"x":1}`, 0, false},
		{`{"seq":,"x":1}`, 0, false},
		{`{"seq":12}`, 0, false},
		{`{"control":"hello"}`, 0, false},
		{``, 0, false},
	}
	for _, c := range cases {
		seq, ok := LineSeq([]byte(c.line))
		if seq != c.seq || ok != c.ok {
			t.Errorf("LineSeq(%q) = %d, %v; want %d, %v", c.line, seq, ok, c.seq, c.ok)
		}
	}
}

func TestLineTypePathAndPrefix(t *testing.T) {
	cases := []struct {
		line   string
		typ    Type
		path   string
		prefix string
		match  bool
	}{
		{`{"seq":1,"tenant_id":"a","timestamp":1,"type":"click","path":"/checkout/x","metadata":{}}`, Click, `"/checkout/x"`, "/checkout", true},
		{`{"seq":1,"tenant_id":"a","timestamp":1,"type":"pageview","path":"/c","metadata":{}}`, Pageview, `"/c"`, "/checkout", false},
		{`{"seq":1,"tenant_id":"a","timestamp":1,"type":"custom","path":"\/check\u006fut","metadata":{"type":"x"}}`, Custom, `"\/check\u006fut"`, "/checkout", true},
		{`{"seq":1,"tenant_id":"a","timestamp":1,"type":"custom","path":"/","metadata":{}}`, Custom, `"/"`, "", true},
	}
	for _, c := range cases {
		typ, path, ok := LineTypePath([]byte(c.line))
		if !ok || typ != c.typ || string(path) != c.path {
			t.Errorf("LineTypePath(%s) = %v %s %v; want %v %s", c.line, typ, path, ok, c.typ, c.path)
			continue
		}
		if got := PathHasPrefix(path, c.prefix); got != c.match {
			t.Errorf("PathHasPrefix(%s, %q) = %v", path, c.prefix, got)
		}
	}
	if _, _, ok := LineTypePath([]byte(`{"control":"gap"}`)); ok {
		t.Error("LineTypePath accepted a control line")
	}
}

func TestTypeNames(t *testing.T) {
	for _, typ := range []Type{Pageview, Click, Custom} {
		if ParseType(typ.String()) != typ {
			t.Errorf("ParseType(%q) != %v", typ.String(), typ)
		}
	}
	if ParseType("") != TypeNone || Type(9).String() != "" {
		t.Error("TypeNone round trip")
	}
}

// BenchmarkValidateEncode is the ingest hot path per event: validate a
// sample line and encode its delivered form.
func BenchmarkValidateEncode(b *testing.B) {
	data, err := os.ReadFile("testdata/events.ndjson")
	if err != nil {
		b.Fatal(err)
	}
	lines := splitLines(data)[:1000]
	var total int
	for _, l := range lines {
		total += len(l) + 1
	}
	var v Validator
	buf := make([]byte, 0, 4096)
	b.ReportAllocs()
	b.SetBytes(int64(total / len(lines)))
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		line := lines[i%len(lines)]
		if err := v.Validate(line, ""); err != nil {
			b.Fatal(err)
		}
		buf = v.AppendBody(buf[:0], "acme", 1)
	}
}

func BenchmarkLineTypePath(b *testing.B) {
	line := []byte(`{"seq":123456,"tenant_id":"acme","timestamp":1795824000141,"type":"custom","path":"/checkout","metadata":{"session":"s2c4f29"}}`)
	b.ReportAllocs()
	for b.Loop() {
		_, p, _ := LineTypePath(line)
		if !PathHasPrefix(p, "/check") {
			b.Fatal("no match")
		}
	}
}
