package event

import (
	"unicode/utf8"
)

// The JSON primitives the validator needs: strings (with UTF-8 and escape
// checks, and their decoded length), numbers, whitespace. Each works on the
// whole line and an index, and never allocates on the valid path.

// plain[c] is true for a byte that may appear unescaped in a JSON string
// without further checks: printable ASCII other than '"' and '\\'.
var plain = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func skipSpace(b []byte, i int) int {
	for i < len(b) && isSpace(b[i]) {
		i++
	}
	return i
}

// syntaxErr reports a JSON syntax problem at byte offset i (shown 1-based).
func syntaxErr(b []byte, i int, what string) error {
	if i >= len(b) {
		return errorf("invalid JSON: unexpected end of input, %s", what)
	}
	return errorf("invalid JSON at byte %d: %s", i+1, what)
}

// scanString scans the JSON string whose opening quote is b[i]. It returns
// the index just past the closing quote, the length of the decoded string in
// bytes, and whether it holds escapes (so its raw bytes differ from its
// decoded ones).
func scanString(b []byte, i int) (end, n int, esc bool, err error) {
	i++ // opening quote
	start := i
	for {
		// Fast path: a run of plain ASCII.
		for i < len(b) && plain[b[i]] {
			i++
		}
		n += i - start
		if i >= len(b) {
			return 0, 0, false, syntaxErr(b, i, "unterminated string")
		}
		c := b[i]
		switch {
		case c == '"':
			return i + 1, n, esc, nil
		case c == '\\':
			esc = true
			if i+1 >= len(b) {
				return 0, 0, false, syntaxErr(b, i+1, "unterminated string")
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
				n++
			case 'u':
				r, size, ok := unicodeEscape(b, i)
				if !ok {
					return 0, 0, false, errorf("invalid JSON at byte %d: invalid \\u escape in string", i+1)
				}
				i += size
				n += utf8.RuneLen(r)
			default:
				return 0, 0, false, errorf("invalid JSON at byte %d: invalid escape in string", i+1)
			}
		case c < 0x20:
			return 0, 0, false, errorf("invalid JSON at byte %d: control character in string", i+1)
		default: // c >= 0x80
			r, size := utf8.DecodeRune(b[i:])
			if r == utf8.RuneError && size <= 1 {
				return 0, 0, false, errorf("invalid UTF-8 at byte %d", i+1)
			}
			i += size
			n += size
		}
		start = i
	}
}

// unicodeEscape decodes the \uXXXX escape at b[i] (a backslash), joining a
// surrogate pair. A lone surrogate is refused: it has no UTF-8 form.
func unicodeEscape(b []byte, i int) (r rune, size int, ok bool) {
	r1, ok := hex4(b, i+2)
	if !ok {
		return 0, 0, false
	}
	if r1 < 0xD800 || r1 > 0xDFFF {
		return r1, 6, true
	}
	if r1 >= 0xDC00 || i+12 > len(b) || b[i+6] != '\\' || b[i+7] != 'u' {
		return 0, 0, false
	}
	r2, ok := hex4(b, i+8)
	if !ok || r2 < 0xDC00 || r2 > 0xDFFF {
		return 0, 0, false
	}
	return 0x10000 + (r1-0xD800)<<10 + (r2 - 0xDC00), 12, true
}

func hex4(b []byte, i int) (rune, bool) {
	if i+4 > len(b) {
		return 0, false
	}
	var r rune
	for _, c := range b[i : i+4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// unquote appends the decoded contents of the valid string token raw
// (quotes included) to dst. Only called for tokens with escapes.
func unquote(dst, raw []byte) []byte {
	raw = raw[1 : len(raw)-1]
	for i := 0; i < len(raw); {
		c := raw[i]
		if c != '\\' {
			dst = append(dst, c)
			i++
			continue
		}
		switch raw[i+1] {
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r, size, _ := unicodeEscape(raw, i)
			dst = utf8.AppendRune(dst, r)
			i += size
			continue
		default: // " \ /
			dst = append(dst, raw[i+1])
		}
		i += 2
	}
	return dst
}

// scanNumber scans the JSON number at b[i]. It returns the index past it and
// whether it is an integer (no fraction, no exponent).
func scanNumber(b []byte, i int) (end int, isInt bool, err error) {
	start := i
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && '1' <= b[i] && b[i] <= '9':
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
		}
	default:
		return 0, false, syntaxErr(b, start, "invalid number")
	}
	isInt = true
	if i < len(b) && b[i] == '.' {
		isInt = false
		i++
		d := i
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
		}
		if i == d {
			return 0, false, syntaxErr(b, i, "invalid number")
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		isInt = false
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		d := i
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
		}
		if i == d {
			return 0, false, syntaxErr(b, i, "invalid number")
		}
	}
	return i, isInt, nil
}

// parseInt64 parses a JSON integer token (as checked by scanNumber),
// reporting false when it does not fit an int64.
func parseInt64(tok []byte) (int64, bool) {
	neg := tok[0] == '-'
	if neg {
		tok = tok[1:]
	}
	var u uint64
	for _, c := range tok {
		d := uint64(c - '0')
		if u > (1<<63)/10 {
			return 0, false
		}
		u = u*10 + d
		if u > 1<<63 {
			return 0, false
		}
	}
	if neg {
		return -int64(u), true // -(1<<63) wraps to itself, which is right
	}
	if u > 1<<63-1 {
		return 0, false
	}
	return int64(u), true
}
