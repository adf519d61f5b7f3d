// Package event owns the tl event: its schema (tl-protocol(7), "The event"),
// validation of one ingested line, and its canonical encoding. The relay and
// tl-post share it, so a line tl-post accepts locally is a line the relay
// accepts.
//
// Validation is a hand-rolled single pass over the bytes (no encoding/json,
// no maps): it is the hot path of ingestion. Valid string tokens are copied
// through byte for byte when encoding, never decoded and re-encoded.
package event

import (
	"errors"
	"fmt"
)

// Limits from tl-protocol(7).
const (
	MaxEventSize    = 64 << 10 // bytes of one event line, as sent
	MaxPathLen      = 2048     // bytes of the decoded path
	MaxMetadataKeys = 64
)

// Type is an event type.
type Type uint8

// The event types tl-protocol(7) allows. TypeNone is the zero value (no type).
const (
	TypeNone Type = iota
	Pageview
	Click
	Custom
)

var typeNames = [...]string{TypeNone: "", Pageview: "pageview", Click: "click", Custom: "custom"}

// String returns the type's wire name ("" for TypeNone).
func (t Type) String() string {
	if int(t) < len(typeNames) {
		return typeNames[t]
	}
	return ""
}

// ParseType returns the Type named s, or TypeNone.
func ParseType(s string) Type {
	switch s {
	case "pageview":
		return Pageview
	case "click":
		return Click
	case "custom":
		return Custom
	}
	return TypeNone
}

// ErrTooLarge is matched (errors.Is) by the error for an event over
// MaxEventSize: the relay answers it with 413 rather than 400.
var ErrTooLarge = errors.New("event too large")

// ErrTenantMismatch is matched (errors.Is) by the error for a tenant_id
// other than the tenant the event is published to.
var ErrTenantMismatch = errors.New("tenant_id does not match")

// Error is a validation error. Msg names the problem, for example
// `type must be one of pageview, click, custom`.
type Error struct {
	Msg      string
	TooLarge bool // the event is over MaxEventSize
	Mismatch bool // its tenant_id is not the tenant it is published to
}

func (e *Error) Error() string { return e.Msg }

// Is makes errors.Is(err, ErrTooLarge) true for an oversized event.
func (e *Error) Is(target error) bool {
	return target == ErrTooLarge && e.TooLarge || target == ErrTenantMismatch && e.Mismatch
}

func errorf(format string, a ...any) error { return &Error{Msg: fmt.Sprintf(format, a...)} }

// Messages used in more than one place, kept here so they stay consistent.
const (
	msgType      = "type must be one of pageview, click, custom"
	msgPath      = "path must be a string of 1 to 2048 bytes"
	msgTimestamp = "timestamp must be an integer number of milliseconds"
	msgMetadata  = "metadata must be an object of string to string"
	msgTenantID  = "tenant_id must be a string"
	msgSeq       = "seq must be a number"
	msgNotObject = "event must be a JSON object"
)
