package format

import (
	"encoding/json"
	"unicode/utf8"
)

// decodeValid decodes a line that validLine has accepted into the values gojq
// takes (map[string]any, []any, string, json.Number, bool, nil), exactly as
// encoding/json with UseNumber would (TestDecodeMatchesEncodingJSON holds it
// to that), but without reflection: it is about twice as fast, and decoding
// is most of the cost of a line that takes the gojq path.
func decodeValid(line []byte) any {
	v, _ := decodeAt(line, skipSpace(line, 0))
	return v
}

func decodeAt(b []byte, i int) (any, int) {
	switch c := b[i]; {
	case c == '{':
		m := make(map[string]any, 8)
		i = skipSpace(b, i+1)
		if b[i] == '}' {
			return m, i + 1
		}
		for {
			var k string
			k, i = decodeString(b, i)
			i = skipSpace(b, skipSpace(b, i)+1) // past the colon
			var v any
			v, i = decodeAt(b, i)
			m[k] = v
			i = skipSpace(b, i)
			if b[i] == '}' {
				return m, i + 1
			}
			i = skipSpace(b, i+1)
		}
	case c == '[':
		a := []any{}
		i = skipSpace(b, i+1)
		if b[i] == ']' {
			return a, i + 1
		}
		for {
			var v any
			v, i = decodeAt(b, i)
			a = append(a, v)
			i = skipSpace(b, i)
			if b[i] == ']' {
				return a, i + 1
			}
			i = skipSpace(b, i+1)
		}
	case c == '"':
		return decodeString(b, i)
	case c == 't':
		return true, i + 4
	case c == 'f':
		return false, i + 5
	case c == 'n':
		return nil, i + 4
	}
	j := skipNumber(b, i)
	return json.Number(b[i:j]), j
}

// decodeString decodes the valid string at b[i]; one with escapes or bytes
// that are not UTF-8 goes through encoding/json for its exact rules.
func decodeString(b []byte, i int) (string, int) {
	j, esc := skipString(b, i)
	raw := b[i+1 : j-1]
	if !esc {
		plain := true
		for _, c := range raw {
			if c >= utf8.RuneSelf {
				plain = utf8.Valid(raw)
				break
			}
		}
		if plain {
			return string(raw), j
		}
	}
	var s string
	json.Unmarshal(b[i:j], &s)
	return s, j
}
