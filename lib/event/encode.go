package event

import (
	"strconv"
)

// The canonical encoding: keys in a fixed order, no whitespace, string tokens
// copied through as they were sent. A delivered line is
//
//	{"seq":N,"tenant_id":"T","timestamp":MS,"type":"click","path":"/x","metadata":{...}}\n
//
// The relay stores `{"seq":N,` + body, where body is what AppendBody writes.

// AppendBody appends the canonical body of the last valid event (everything
// a delivered line holds after `{"seq":N,`, newline included) to dst.
// tenant is written as tenant_id; now is the timestamp written when the
// event had none. It panics if the last Validate failed.
func (v *Validator) AppendBody(dst []byte, tenant string, now int64) []byte {
	v.mustBeValid()
	dst = append(dst, `"tenant_id":"`...)
	dst = append(dst, tenant...)
	dst = append(dst, `","timestamp":`...)
	ts := now
	if v.hasTS {
		ts = v.ts
	}
	dst = strconv.AppendInt(dst, ts, 10)
	return v.appendRest(append(dst, ','))
}

// AppendObject appends the last valid event as a JSON object line without
// seq, ready to post: tenant_id is tenant (left out when tenant is ""), and
// timestamp is left out when the event had none, so the relay sets it. It
// panics if the last Validate failed.
func (v *Validator) AppendObject(dst []byte, tenant string) []byte {
	v.mustBeValid()
	dst = append(dst, '{')
	if tenant != "" {
		dst = append(dst, `"tenant_id":"`...)
		dst = append(dst, tenant...)
		dst = append(dst, `",`...)
	}
	if v.hasTS {
		dst = append(dst, `"timestamp":`...)
		dst = strconv.AppendInt(dst, v.ts, 10)
		dst = append(dst, ',')
	}
	return v.appendRest(dst)
}

// appendRest appends `"type":...,"path":...,"metadata":{...}}` and "\n".
func (v *Validator) appendRest(dst []byte) []byte {
	dst = append(dst, `"type":"`...)
	dst = append(dst, v.typ.String()...)
	dst = append(dst, `","path":`...)
	dst = append(dst, v.line[v.path.s:v.path.e]...)
	dst = append(dst, `,"metadata":{`...)
	for j := 0; j < len(v.meta); j += 2 {
		if j > 0 {
			dst = append(dst, ',')
		}
		k, val := v.meta[j], v.meta[j+1]
		dst = append(dst, v.line[k.s:k.e]...)
		dst = append(dst, ':')
		dst = append(dst, v.line[val.s:val.e]...)
	}
	return append(dst, "}}\n"...)
}

func (v *Validator) mustBeValid() {
	if !v.ok {
		panic("event: Append called without a successful Validate")
	}
}

// AppendDelivery appends a delivered line: `{"seq":N,` followed by body.
func AppendDelivery(dst []byte, seq uint64, body []byte) []byte {
	dst = append(dst, `{"seq":`...)
	dst = strconv.AppendUint(dst, seq, 10)
	dst = append(dst, ',')
	return append(dst, body...)
}

// Validate checks one event line for tenant (see Validator.Validate). It
// allocates a Validator: loops should keep their own.
func Validate(line []byte, tenant string) error {
	var v Validator
	return v.Validate(line, tenant)
}
