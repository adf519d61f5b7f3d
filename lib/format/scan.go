package format

import (
	"bytes"
	"unicode/utf8"
)

// This file holds a small JSON scanner that works on a line's raw bytes. It
// validates a value at least as strictly as encoding/json (FuzzScan checks
// that) and finds the values of an object's keys without building anything,
// which is what lets the fast path answer `.type == "click"` with no decoding.

// maxDepth bounds nesting like encoding/json does (it refuses deeper input);
// past it the scanner gives up and the line takes the slow path.
const maxDepth = 10000

// scanStatus is the scanner's verdict on a line.
type scanStatus int

const (
	scanOK      scanStatus = iota // valid, and the answer is exact
	scanInvalid                   // not valid JSON
	scanUnsure                    // valid or not, the fast path cannot answer: decode it
)

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func skipSpace(b []byte, i int) int {
	for i < len(b) && isSpace(b[i]) {
		i++
	}
	return i
}

// trimSpace returns b without JSON whitespace at either end.
func trimSpace(b []byte) []byte {
	i, j := 0, len(b)
	for i < j && isSpace(b[i]) {
		i++
	}
	for j > i && isSpace(b[j-1]) {
		j--
	}
	return b[i:j]
}

// skipValue returns the index just past the JSON value starting at b[i] (no
// leading space), or -1 when it is invalid, -2 when it nests too deep.
func skipValue(b []byte, i, depth int) int {
	if i >= len(b) {
		return -1
	}
	switch c := b[i]; {
	case c == '"':
		j, _ := skipString(b, i)
		return j
	case c == '{':
		if depth >= maxDepth {
			return -2
		}
		i = skipSpace(b, i+1)
		if i < len(b) && b[i] == '}' {
			return i + 1
		}
		for {
			if i >= len(b) || b[i] != '"' {
				return -1
			}
			if i, _ = skipString(b, i); i < 0 {
				return -1
			}
			i = skipSpace(b, i)
			if i >= len(b) || b[i] != ':' {
				return -1
			}
			i = skipSpace(b, i+1)
			if i = skipValue(b, i, depth+1); i < 0 {
				return i
			}
			i = skipSpace(b, i)
			if i >= len(b) {
				return -1
			}
			if b[i] == '}' {
				return i + 1
			}
			if b[i] != ',' {
				return -1
			}
			i = skipSpace(b, i+1)
		}
	case c == '[':
		if depth >= maxDepth {
			return -2
		}
		i = skipSpace(b, i+1)
		if i < len(b) && b[i] == ']' {
			return i + 1
		}
		for {
			if i = skipValue(b, i, depth+1); i < 0 {
				return i
			}
			i = skipSpace(b, i)
			if i >= len(b) {
				return -1
			}
			if b[i] == ']' {
				return i + 1
			}
			if b[i] != ',' {
				return -1
			}
			i = skipSpace(b, i+1)
		}
	case c == 't':
		return literal(b, i, "true")
	case c == 'f':
		return literal(b, i, "false")
	case c == 'n':
		return literal(b, i, "null")
	case c == '-' || ('0' <= c && c <= '9'):
		return skipNumber(b, i)
	}
	return -1
}

func literal(b []byte, i int, lit string) int {
	if len(b)-i >= len(lit) && string(b[i:i+len(lit)]) == lit {
		return i + len(lit)
	}
	return -1
}

// skipString returns the index just past the string starting at b[i] (a
// quote) and whether it holds an escape; -1 when it is invalid. Like
// encoding/json it accepts bytes that are not UTF-8 (the decoder replaces
// them), and refuses control characters.
func skipString(b []byte, i int) (int, bool) {
	escaped := false
	i++
	for {
		// The common case: a run of plain bytes.
		j := i
		for j < len(b) && b[j] >= 0x20 && b[j] != '"' && b[j] != '\\' {
			j++
		}
		i = j
		if i >= len(b) || b[i] < 0x20 {
			return -1, false
		}
		if b[i] == '"' {
			return i + 1, escaped
		}
		// A backslash.
		escaped = true
		i++
		if i >= len(b) {
			return -1, false
		}
		switch b[i] {
		case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			i++
		case 'u':
			if len(b)-i < 5 {
				return -1, false
			}
			for _, h := range b[i+1 : i+5] {
				if !isHex(h) {
					return -1, false
				}
			}
			i += 5
		default:
			return -1, false
		}
	}
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// skipNumber returns the index just past the number at b[i], or -1.
func skipNumber(b []byte, i int) int {
	if b[i] == '-' {
		i++
	}
	if i >= len(b) {
		return -1
	}
	switch {
	case b[i] == '0':
		i++
	case '1' <= b[i] && b[i] <= '9':
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
		}
	default:
		return -1
	}
	if i < len(b) && b[i] == '.' {
		i++
		j := i
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
		}
		if i == j {
			return -1
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		j := i
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
		}
		if i == j {
			return -1
		}
	}
	return i
}

// validLine reports whether line (without its newline) is exactly one JSON
// value with optional surrounding whitespace.
func validLine(line []byte) scanStatus {
	i := skipSpace(line, 0)
	j := skipValue(line, i, 0)
	switch {
	case j == -2:
		return scanUnsure
	case j < 0:
		return scanInvalid
	case skipSpace(line, j) != len(line):
		return scanInvalid
	}
	return scanOK
}

// fields finds, in the JSON object obj (trimmed, starting with '{'), the
// values of keys, storing each value's raw bytes in vals (nil when absent;
// the last wins when a key repeats, as with encoding/json). It validates
// the whole object on the way. A key written with escapes makes the answer
// unsure, since it might spell one of keys.
func fields(obj []byte, keys []string, vals [][]byte) scanStatus {
	for k := range vals {
		vals[k] = nil
	}
	i := skipSpace(obj, 1)
	if i < len(obj) && obj[i] == '}' {
		i++
		return endStatus(obj, i)
	}
	unsure := false
	for {
		if i >= len(obj) || obj[i] != '"' {
			return scanInvalid
		}
		start := i
		end, esc := skipString(obj, i)
		if end < 0 {
			return scanInvalid
		}
		if esc {
			unsure = true
		}
		key := obj[start+1 : end-1]
		i = skipSpace(obj, end)
		if i >= len(obj) || obj[i] != ':' {
			return scanInvalid
		}
		i = skipSpace(obj, i+1)
		vstart := i
		i = skipValue(obj, i, 1)
		if i == -2 {
			return scanUnsure
		}
		if i < 0 {
			return scanInvalid
		}
		for k, want := range keys {
			if string(key) == want {
				vals[k] = obj[vstart:i]
			}
		}
		i = skipSpace(obj, i)
		if i >= len(obj) {
			return scanInvalid
		}
		if obj[i] == '}' {
			i++
			break
		}
		if obj[i] != ',' {
			return scanInvalid
		}
		i = skipSpace(obj, i+1)
	}
	if st := endStatus(obj, i); st != scanOK {
		return st
	}
	if unsure {
		return scanUnsure
	}
	return scanOK
}

func endStatus(obj []byte, i int) scanStatus {
	if skipSpace(obj, i) != len(obj) {
		return scanInvalid
	}
	return scanOK
}

// plainString returns the contents of the raw JSON string s when they
// decode to themselves (no escapes, valid UTF-8) and so can be compared or
// printed as they are.
func plainString(s []byte) ([]byte, bool) {
	if len(s) < 2 || s[0] != '"' {
		return nil, false
	}
	in := s[1 : len(s)-1]
	if bytes.IndexByte(in, '\\') >= 0 {
		return nil, false
	}
	for _, c := range in {
		if c >= utf8.RuneSelf {
			return in, utf8.Valid(in)
		}
	}
	return in, true
}

// printableString reports whether the raw JSON string s is exactly what the
// jq encoder would write for its value: plain, and free of DEL, which jq
// writes as \u007f.
func printableString(s []byte) bool {
	in, ok := plainString(s)
	return ok && bytes.IndexByte(in, 0x7f) < 0
}

// smallInt reports whether the raw JSON number n is an integer literal that
// every decoder reads exactly and every encoder writes back as it is: at
// most 15 digits, no leading zero, no "-0", no fraction or exponent.
func smallInt(n []byte) bool {
	d := n
	if len(d) > 0 && d[0] == '-' {
		d = d[1:]
	}
	if len(d) == 0 || len(d) > 15 || (d[0] == '0' && (len(d) > 1 || len(n) != len(d))) {
		return false
	}
	for _, c := range d {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
