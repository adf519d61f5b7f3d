package format

// This file is tl-fmt's JSON writer for people: it re-emits valid JSON text
// compact or indented, with or without jq's colours. It works on bytes, not
// on values, so an event that passes through keeps its key order and its
// number literals exactly; computed values reach it as gojq.Marshal's jq-style
// text. (gojq's own colour encoder is not exported.)

// styler writes JSON text with an indent (0: compact) and a palette (nil: no
// colour).
type styler struct {
	indent int
	pal    *palette
}

// plain reports whether the styler would copy compact input unchanged.
func (s *styler) plain() bool { return s.indent == 0 && s.pal == nil }

// appendJSON appends the styled form of src, which must be valid JSON.
func (s *styler) appendJSON(dst, src []byte) []byte {
	i := skipSpace(src, 0)
	dst, _ = s.value(dst, src, i, 0)
	return dst
}

func (s *styler) color(dst []byte, c string) []byte {
	if s.pal != nil && c != "" {
		dst = append(dst, c...)
	}
	return dst
}

func (s *styler) reset(dst []byte, c string) []byte {
	if s.pal != nil && c != "" {
		dst = append(dst, reset...)
	}
	return dst
}

func (s *styler) newline(dst []byte, depth int) []byte {
	if s.indent == 0 {
		return dst
	}
	dst = append(dst, '\n')
	for range depth * s.indent {
		dst = append(dst, ' ')
	}
	return dst
}

// value appends the value at src[i] and returns the index after it.
func (s *styler) value(dst, src []byte, i, depth int) ([]byte, int) {
	var p palette
	if s.pal != nil {
		p = *s.pal
	}
	switch c := src[i]; c {
	case '{', '[':
		col, end := p.object, byte('}')
		if c == '[' {
			col, end = p.array, ']'
		}
		dst = s.color(dst, col)
		dst = append(dst, c)
		i = skipSpace(src, i+1)
		if src[i] == end {
			dst = append(dst, end)
			return s.reset(dst, col), i + 1
		}
		for n := 0; ; n++ {
			if n > 0 {
				dst = s.color(dst, col)
				dst = append(dst, ',')
			}
			dst = s.newline(dst, depth+1)
			dst = s.reset(dst, col)
			if c == '{' {
				j, _ := skipString(src, i)
				dst = s.color(dst, p.key)
				dst = append(dst, src[i:j]...)
				dst = s.reset(dst, p.key)
				dst = s.color(dst, col)
				dst = append(dst, ':')
				dst = s.reset(dst, col)
				if s.indent > 0 {
					dst = append(dst, ' ')
				}
				i = skipSpace(src, skipSpace(src, j)+1)
			}
			dst, i = s.value(dst, src, i, depth+1)
			i = skipSpace(src, i)
			if src[i] == end {
				break
			}
			i = skipSpace(src, i+1) // past the comma
		}
		dst = s.color(dst, col)
		dst = s.newline(dst, depth)
		dst = append(dst, end)
		return s.reset(dst, col), i + 1
	case '"':
		j, _ := skipString(src, i)
		dst = s.color(dst, p.str)
		dst = append(dst, src[i:j]...)
		return s.reset(dst, p.str), j
	case 't':
		return s.scalar(dst, src[i:i+4], p.trueC), i + 4
	case 'f':
		return s.scalar(dst, src[i:i+5], p.falseC), i + 5
	case 'n':
		return s.scalar(dst, src[i:i+4], p.null), i + 4
	}
	j := skipNumber(src, i)
	return s.scalar(dst, src[i:j], p.number), j
}

func (s *styler) scalar(dst, tok []byte, col string) []byte {
	dst = s.color(dst, col)
	dst = append(dst, tok...)
	return s.reset(dst, col)
}
