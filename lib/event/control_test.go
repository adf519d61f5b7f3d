package event

import (
	"testing"
)

// TestControlLines: the relay's lines are tl-protocol(7)'s, byte for byte,
// and read back as they were written.
func TestControlLines(t *testing.T) {
	hello := AppendHello(nil, "acme", "E", 41)
	if want := `{"control":"hello","tenant":"acme","epoch":"E","last_seq":41}` + "\n"; string(hello) != want {
		t.Errorf("hello %q, want %q", hello, want)
	}
	gap := AppendGap(nil, 5, 9, GapEvicted)
	if want := `{"control":"gap","from_seq":5,"to_seq":9,"reason":"evicted"}` + "\n"; string(gap) != want {
		t.Errorf("gap %q, want %q", gap, want)
	}
	tests := []struct {
		line []byte
		want Control
	}{
		{hello, Control{Control: Hello, Tenant: "acme", Epoch: "E", LastSeq: 41}},
		{gap, Control{Control: Gap, FromSeq: 5, ToSeq: 9, Reason: GapEvicted}},
		{AppendGap([]byte("x"), 1, 1<<64-1, GapEpoch)[1:], Control{Control: Gap, FromSeq: 1, ToSeq: 1<<64 - 1, Reason: GapEpoch}},
		{[]byte(`{"control":"later","extra":[1,2]}`), Control{Control: "later"}},
	}
	for _, tt := range tests {
		if !IsControl(tt.line) {
			t.Errorf("IsControl(%q) = false", tt.line)
		}
		got, err := ParseControl(tt.line)
		if err != nil || got != tt.want {
			t.Errorf("ParseControl(%q) = %+v, %v; want %+v", tt.line, got, err, tt.want)
		}
	}
	for _, bad := range []string{`{"seq":1,"tenant_id":"acme"}`, `{"control":"gap","from_seq":-1}`, `{"control":`, ``} {
		if _, err := ParseControl([]byte(bad)); err == nil {
			t.Errorf("ParseControl(%q) succeeded", bad)
		}
	}
	if IsControl([]byte(`{"seq":1,"control":"hello"}`)) {
		t.Error("a delivery with a control key counts as a control line")
	}
}
