package format

import (
	"encoding/json"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/tl-sh/tl/lib/event"
)

// This file renders -o line: one line per event for a person at a terminal,
//
//	2026-11-27T00:00:00.141Z #42 acme     custom   /checkout country=JP name=purchase
//
// time (UTC, milliseconds), seq when present, tenant, type, path, and the
// metadata as key=value sorted by key (a value with spaces or quotes is
// quoted), coloured by type. A relay control line (event.ControlKey) reads
// "-- gap from_seq=5 to_seq=9 reason=evicted"; any other value is written as
// compact JSON.

// Widths the tenant and type columns are padded to, so that paths line up
// for the usual tenant names and the three event types.
const (
	tenantWidth = 8
	typeWidth   = 8
)

// appendEventLine appends the line for v and reports whether v looked like
// an event or a control line (else the caller writes it as JSON).
func appendEventLine(dst []byte, v map[string]any, pal *palette) ([]byte, bool) {
	col := func(c string) {
		if pal != nil {
			dst = append(dst, c...)
		}
	}
	end := func() {
		if pal != nil {
			dst = append(dst, reset...)
		}
	}
	if ctl, ok := v[event.ControlKey].(string); ok {
		col(lineControl)
		dst = append(dst, "-- "...)
		dst = append(dst, ctl...)
		for _, k := range sortedKeys(v) {
			if k != event.ControlKey {
				dst = appendKV(dst, k, v[k])
			}
		}
		end()
		return append(dst, '\n'), true
	}
	typ, ok1 := v["type"].(string)
	path, ok2 := v["path"].(string)
	if !ok1 || !ok2 {
		return dst, false
	}
	col(lineDim)
	dst = appendTime(dst, v["timestamp"])
	if seq, ok := v["seq"]; ok {
		dst = append(dst, " #"...)
		dst = appendScalar(dst, seq)
	}
	end()
	dst = append(dst, ' ')
	tenant, _ := v["tenant_id"].(string)
	if tenant == "" {
		tenant = "-"
	}
	col(lineTenant)
	dst = appendPadded(dst, tenant, tenantWidth)
	end()
	dst = append(dst, ' ')
	col(typeColor(typ))
	dst = appendPadded(dst, typ, typeWidth)
	end()
	dst = append(dst, ' ')
	col(linePath)
	dst = append(dst, sanitize(path)...)
	end()
	if md, ok := v["metadata"].(map[string]any); ok {
		for _, k := range sortedKeys(md) {
			dst = append(dst, ' ')
			col(lineDim)
			dst = append(dst, sanitize(k)...)
			dst = append(dst, '=')
			end()
			dst = appendValue(dst, md[k])
		}
	}
	return append(dst, '\n'), true
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func appendKV(dst []byte, k string, v any) []byte {
	dst = append(dst, ' ')
	dst = append(dst, sanitize(k)...)
	dst = append(dst, '=')
	return appendValue(dst, v)
}

// appendValue writes a metadata value: a plain string as it is, a string
// that would be ambiguous quoted, anything else as JSON.
func appendValue(dst []byte, v any) []byte {
	if s, ok := v.(string); ok {
		if s == "" || strings.ContainsFunc(s, func(r rune) bool {
			return unicode.IsSpace(r) || r == '"' || r == '=' || !unicode.IsPrint(r)
		}) {
			return strconv.AppendQuote(dst, s)
		}
		return append(dst, s...)
	}
	return appendScalar(dst, v)
}

func appendScalar(dst []byte, v any) []byte {
	b, err := marshal(v)
	if err != nil {
		return append(dst, '?')
	}
	return append(dst, b...)
}

// sanitize keeps terminal control characters in event text from reaching
// the terminal.
func sanitize(s string) string {
	if !strings.ContainsFunc(s, unicode.IsControl) {
		return s
	}
	q := strconv.Quote(s)
	return q[1 : len(q)-1]
}

func appendPadded(dst []byte, s string, w int) []byte {
	s = sanitize(s)
	dst = append(dst, s...)
	for n := len([]rune(s)); n < w; n++ {
		dst = append(dst, ' ')
	}
	return dst
}

// appendTime writes a millisecond timestamp as RFC 3339 in UTC.
func appendTime(dst []byte, ts any) []byte {
	var ms float64
	switch t := ts.(type) {
	case json.Number:
		f, err := t.Float64()
		if err != nil {
			return append(dst, "-"...)
		}
		ms = f
	case float64:
		ms = t
	case int:
		ms = float64(t)
	default:
		return append(dst, "-"...)
	}
	if math.IsNaN(ms) || math.Abs(ms) > 1e15 {
		return append(dst, "-"...)
	}
	return time.UnixMilli(int64(ms)).UTC().AppendFormat(dst, "2006-01-02T15:04:05.000Z")
}
