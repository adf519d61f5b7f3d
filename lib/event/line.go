package event

import (
	"bytes"
)

// Helpers over delivered lines (canonical, see encode.go), read without
// decoding: the relay's filters and tl-tail's resume tracking use them.

var seqPrefix = []byte(`{"seq":`)

// LineSeq returns N from a line starting `{"seq":N,`, or false for any other
// line (a control line, for example).
func LineSeq(line []byte) (uint64, bool) {
	if !bytes.HasPrefix(line, seqPrefix) {
		return 0, false
	}
	var n uint64
	i := len(seqPrefix)
	start := i
	for ; i < len(line) && '0' <= line[i] && line[i] <= '9'; i++ {
		d := uint64(line[i] - '0')
		if n > (1<<64-1-d)/10 {
			return 0, false
		}
		n = n*10 + d
	}
	if i == start || i >= len(line) || line[i] != ',' {
		return 0, false
	}
	return n, true
}

// LineTypePath returns the type and the raw path token (quotes included) of
// a canonical delivered line, or false when line is not one.
func LineTypePath(line []byte) (Type, []byte, bool) {
	// {"seq":N,"tenant_id":"T","timestamp":MS,"type":"X","path":"..."
	i := bytes.Index(line, []byte(`,"type":"`))
	if i < 0 {
		return TypeNone, nil, false
	}
	i += len(`,"type":"`)
	j := bytes.IndexByte(line[i:], '"')
	if j < 0 {
		return TypeNone, nil, false
	}
	typ := ParseType(string(line[i : i+j]))
	i += j + 1
	if !bytes.HasPrefix(line[i:], []byte(`,"path":`)) {
		return TypeNone, nil, false
	}
	i += len(`,"path":`)
	end, _, _, err := scanString(line, i)
	if err != nil {
		return TypeNone, nil, false
	}
	return typ, line[i:end], true
}

// PathHasPrefix reports whether the decoded value of the string token raw
// (quotes included) starts with prefix.
func PathHasPrefix(raw []byte, prefix string) bool {
	s := raw[1 : len(raw)-1]
	if bytes.IndexByte(raw, '\\') >= 0 {
		s = unquote(nil, raw)
	}
	return len(s) >= len(prefix) && string(s[:len(prefix)]) == prefix
}
