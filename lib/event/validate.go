package event

import (
	"bytes"
	"fmt"
)

// span is a token's bounds in the line: b[s:e], quotes included for strings.
type span struct{ s, e int32 }

// Bits for the top-level keys seen, to find duplicates without a map.
const (
	seenTenant uint8 = 1 << iota
	seenTimestamp
	seenType
	seenPath
	seenMetadata
	seenSeq
)

// Validator checks event lines and encodes them canonically. It keeps the
// last valid event's token positions, so the Append methods must be called
// before the line's bytes change. The zero Validator is ready to use; reuse
// one per goroutine to avoid allocations. A Validator is not safe for
// concurrent use.
type Validator struct {
	// IgnoreTenantID accepts a tenant_id that differs from the tenant given
	// to Validate (tl-post re-posting a tail's output to another tenant);
	// the encoders always write the tenant they are given.
	IgnoreTenantID bool

	line     []byte
	ok       bool // line passed Validate
	typ      Type
	ts       int64
	hasTS    bool
	path     span
	tenantID span // zero when absent
	meta     []span
	mkeys    [][]byte // decoded metadata keys, for the duplicate check
}

// Validate checks one event line against tl-protocol(7). tenant is the tenant
// of the URL: a tenant_id present in the line must equal it, unless tenant
// is "" or IgnoreTenantID is set. Surrounding whitespace (a trailing "\n" or
// "\r\n") is allowed. A line over MaxEventSize fails with an error matching
// ErrTooLarge.
func (v *Validator) Validate(line []byte, tenant string) error {
	v.line, v.ok = line, false
	if len(line) > MaxEventSize {
		if n := len(bytes.TrimRight(line, " \t\r\n")); n > MaxEventSize {
			return &Error{Msg: "event is larger than 64 KiB", TooLarge: true}
		}
	}
	v.typ, v.ts, v.hasTS = TypeNone, 0, false
	v.path, v.tenantID = span{}, span{}
	v.meta, v.mkeys = v.meta[:0], v.mkeys[:0]
	b := line
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		if i < len(b) && (b[i] == '[' || b[i] == '"' || b[i] == '-' || ('0' <= b[i] && b[i] <= '9') ||
			bytes.HasPrefix(b[i:], []byte("null")) || bytes.HasPrefix(b[i:], []byte("true")) ||
			bytes.HasPrefix(b[i:], []byte("false"))) {
			return errorf(msgNotObject)
		}
		if i >= len(b) {
			return errorf("empty line")
		}
		return errorf("invalid JSON at byte %d: %s", i+1, msgNotObject)
	}
	i = skipSpace(b, i+1)
	var seen uint8
	if i < len(b) && b[i] == '}' {
		i++
	} else {
		for {
			if i >= len(b) || b[i] != '"' {
				return syntaxErr(b, i, "expected a key string")
			}
			ks := i
			ke, _, kesc, err := scanString(b, i)
			if err != nil {
				return err
			}
			key := b[ks+1 : ke-1]
			if kesc {
				key = unquote(nil, b[ks:ke])
			}
			i = skipSpace(b, ke)
			if i >= len(b) || b[i] != ':' {
				return syntaxErr(b, i, "expected ':' after a key")
			}
			i = skipSpace(b, i+1)
			var bit uint8
			switch string(key) {
			case "tenant_id":
				bit = seenTenant
			case "timestamp":
				bit = seenTimestamp
			case "type":
				bit = seenType
			case "path":
				bit = seenPath
			case "metadata":
				bit = seenMetadata
			case "seq":
				bit = seenSeq
			default:
				return errorf("unknown field %q", key)
			}
			if seen&bit != 0 {
				return errorf("duplicate key %q", key)
			}
			seen |= bit
			if i, err = v.value(b, i, bit); err != nil {
				return err
			}
			i = skipSpace(b, i)
			if i < len(b) && b[i] == ',' {
				i = skipSpace(b, i+1)
				continue
			}
			if i < len(b) && b[i] == '}' {
				i++
				break
			}
			return syntaxErr(b, i, "expected ',' or '}' after a value")
		}
	}
	if i = skipSpace(b, i); i < len(b) {
		return errorf("invalid JSON at byte %d: unexpected data after the event object", i+1)
	}
	if seen&seenType == 0 {
		return errorf(`missing "type"`)
	}
	if seen&seenPath == 0 {
		return errorf(`missing "path"`)
	}
	if v.tenantID.e != 0 && tenant != "" && !v.IgnoreTenantID {
		if got := v.TenantID(); got != tenant {
			return &Error{Msg: fmt.Sprintf("tenant_id %q does not match tenant %q", got, tenant), Mismatch: true}
		}
	}
	v.ok = true
	return nil
}

// value checks the value of the key marked by bit at b[i], recording it.
func (v *Validator) value(b []byte, i int, bit uint8) (int, error) {
	switch bit {
	case seenType:
		if i >= len(b) || b[i] != '"' {
			return 0, errorf(msgType)
		}
		end, _, esc, err := scanString(b, i)
		if err != nil {
			return 0, err
		}
		name := b[i+1 : end-1]
		if esc {
			name = unquote(nil, b[i:end])
		}
		if v.typ = ParseType(string(name)); v.typ == TypeNone {
			return 0, errorf(msgType)
		}
		return end, nil
	case seenPath:
		if i >= len(b) || b[i] != '"' {
			return 0, errorf(msgPath)
		}
		end, n, _, err := scanString(b, i)
		if err != nil {
			return 0, err
		}
		if n < 1 || n > MaxPathLen {
			return 0, errorf(msgPath)
		}
		v.path = span{int32(i), int32(end)}
		return end, nil
	case seenTenant:
		if i >= len(b) || b[i] != '"' {
			return 0, errorf(msgTenantID)
		}
		end, _, _, err := scanString(b, i)
		if err != nil {
			return 0, err
		}
		v.tenantID = span{int32(i), int32(end)}
		return end, nil
	case seenTimestamp:
		if i >= len(b) || (b[i] != '-' && (b[i] < '0' || b[i] > '9')) {
			return 0, errorf(msgTimestamp)
		}
		end, isInt, err := scanNumber(b, i)
		if err != nil {
			return 0, err
		}
		if !isInt {
			return 0, errorf(msgTimestamp)
		}
		ts, ok := parseInt64(b[i:end])
		if !ok {
			return 0, errorf("timestamp is out of range")
		}
		v.ts, v.hasTS = ts, true
		return end, nil
	case seenSeq:
		if i >= len(b) || (b[i] != '-' && (b[i] < '0' || b[i] > '9')) {
			return 0, errorf(msgSeq)
		}
		end, _, err := scanNumber(b, i)
		return end, err
	default: // seenMetadata
		return v.metadata(b, i)
	}
}

// metadata checks an object of string to string with at most
// MaxMetadataKeys distinct keys.
func (v *Validator) metadata(b []byte, i int) (int, error) {
	if i >= len(b) || b[i] != '{' {
		return 0, errorf(msgMetadata)
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return i + 1, nil
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return 0, syntaxErr(b, i, "expected a key string in metadata")
		}
		ks := i
		ke, _, kesc, err := scanString(b, i)
		if err != nil {
			return 0, err
		}
		if len(v.mkeys) == MaxMetadataKeys {
			return 0, errorf("metadata must have at most %d keys", MaxMetadataKeys)
		}
		key := b[ks+1 : ke-1]
		if kesc {
			key = unquote(nil, b[ks:ke])
		}
		for _, k := range v.mkeys {
			if bytes.Equal(k, key) {
				return 0, errorf("duplicate key %q in metadata", key)
			}
		}
		v.mkeys = append(v.mkeys, key)
		i = skipSpace(b, ke)
		if i >= len(b) || b[i] != ':' {
			return 0, syntaxErr(b, i, "expected ':' after a key")
		}
		i = skipSpace(b, i+1)
		if i >= len(b) || b[i] != '"' {
			return 0, errorf("%s: value of %q is not a string", msgMetadata, key)
		}
		vs := i
		ve, _, _, err := scanString(b, i)
		if err != nil {
			return 0, err
		}
		v.meta = append(v.meta, span{int32(ks), int32(ke)}, span{int32(vs), int32(ve)})
		i = skipSpace(b, ve)
		if i < len(b) && b[i] == ',' {
			i = skipSpace(b, i+1)
			continue
		}
		if i < len(b) && b[i] == '}' {
			return i + 1, nil
		}
		return 0, syntaxErr(b, i, "expected ',' or '}' in metadata")
	}
}

// Type returns the last valid event's type.
func (v *Validator) Type() Type { return v.typ }

// Timestamp returns the last valid event's timestamp, and whether it had one.
func (v *Validator) Timestamp() (int64, bool) { return v.ts, v.hasTS }

// TenantID returns the last validated event's tenant_id ("" when absent).
func (v *Validator) TenantID() string {
	if v.tenantID.e == 0 {
		return ""
	}
	raw := v.line[v.tenantID.s:v.tenantID.e]
	if bytes.IndexByte(raw, '\\') < 0 {
		return string(raw[1 : len(raw)-1])
	}
	return string(unquote(nil, raw))
}
