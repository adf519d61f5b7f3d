package format

import (
	"context"
	"errors"
	"fmt"
	"reflect"

	"github.com/itchyny/gojq"
)

// lastKind is the kind of the last output, for -e.
type lastKind int

const (
	lastNone   lastKind = iota // no output yet
	lastFalsy                  // false or null
	lastTruthy                 // anything else
)

// worker runs the program on lines and renders the outputs into out, and
// its messages into errs. Each worker goroutine owns one.
type worker struct {
	ctx  context.Context
	o    *options
	prog *program
	sty  *styler
	pal  *palette // colours for -o line; nil for none
	fast fastState

	out     []byte
	errs    []byte
	last    lastKind
	bad     bool // a line was not JSON
	runtime bool // a line raised an error
	halted  *gojq.HaltError
}

func newWorker(ctx context.Context, o *options, prog *program, pal *palette) *worker {
	w := &worker{ctx: ctx, o: o, prog: prog, pal: pal, sty: &styler{pal: pal}}
	if o.output == "pretty" {
		w.sty.indent = 2
	}
	return w
}

// line processes one input line (without its newline).
func (w *worker) line(raw []byte, name string, n int) {
	line := trimSpace(raw)
	if len(line) == 0 {
		return
	}
	if w.prog.fast != nil {
		r, v := w.prog.fast.run(line, &w.fast)
		switch r {
		case fastNone:
			return
		case fastFalse:
			w.last = lastFalsy
			return
		case fastTrue, fastPass:
			w.last = lastTruthy
			w.emitLine(raw, nil)
			return
		case fastValue:
			w.emitRaw(v)
			return
		}
	}
	v, err := w.decode(line)
	if err != nil {
		w.badLine(name, n, err)
		return
	}
	w.runValue(v, raw, name, n)
}

// decode decodes a line: the scanner checks it, and the hand-rolled
// decoder builds the value; encoding/json words the errors, and takes the
// rare line the scanner cannot judge.
func (w *worker) decode(line []byte) (any, error) {
	switch validLine(line) {
	case scanOK:
		return decodeValid(line), nil
	case scanInvalid:
		if _, err := decodeLine(line); err != nil {
			return nil, err
		}
		// The scanner and encoding/json disagree; trust encoding/json.
	}
	return decodeLine(line)
}

func (w *worker) badLine(name string, n int, err error) {
	w.bad = true
	w.errs = fmt.Appendf(w.errs, "tl-fmt: %s:%d: not JSON, skipped: %v\n", displayName(name), n, err)
}

// runValue runs the program on one decoded input; line is its text as it
// came, without the newline (nil under -n).
func (w *worker) runValue(v any, line []byte, name string, n int) {
	iter := w.prog.code.RunWithContext(w.ctx, v, w.prog.values...)
	for {
		out, ok := iter.Next()
		if !ok {
			return
		}
		if err, ok := out.(error); ok {
			var he *gojq.HaltError
			if errors.As(err, &he) {
				w.halted = he
				return
			}
			if errors.Is(err, context.Canceled) {
				return
			}
			w.runtime = true
			w.errs = fmt.Appendf(w.errs, "tl-fmt: error (at %s:%d)%s\n", displayName(name), n, errorText(err))
			return
		}
		switch out := out.(type) {
		case bool:
			if !out {
				w.last = lastFalsy
				continue
			}
			w.last = lastTruthy
			if line != nil {
				w.emitLine(line, v)
				continue
			}
		case nil:
			w.last = lastFalsy
		case map[string]any:
			w.last = lastTruthy
			if line != nil && sameMap(out, v) {
				w.emitLine(line, out)
				continue
			}
		default:
			w.last = lastTruthy
		}
		w.emitValue(out)
	}
}

// errorText words a runtime error as jq does: error("msg") as ": msg",
// error({...}) as " (not a string): {...}", input past the end as ": No
// more inputs".
func errorText(err error) string {
	var ve gojq.ValueError
	if errors.As(err, &ve) {
		switch v := ve.Value().(type) {
		case string:
			return ": " + v
		case nil:
			return ": null (null) not a string"
		default:
			b, _ := marshal(v)
			return " (not a string): " + string(b)
		}
	}
	if err.Error() == "break" {
		return ": No more inputs"
	}
	return ": " + err.Error()
}

// sameMap reports whether out is the very input map (select, ., and the
// like return it untouched), so that its line can pass through as it came.
func sameMap(out map[string]any, in any) bool {
	m, ok := in.(map[string]any)
	return ok && reflect.ValueOf(out).UnsafePointer() == reflect.ValueOf(m).UnsafePointer()
}

// emitLine writes an input line that passes through, exactly as it came
// when the output is plain JSON; v is its decoded value when known.
func (w *worker) emitLine(line []byte, v any) {
	switch {
	case w.o.output == "line":
		if v == nil {
			var err error
			if v, err = w.decode(trimSpace(line)); err != nil {
				w.out = append(append(w.out, line...), '\n')
				return
			}
		}
		if m, ok := v.(map[string]any); ok {
			var isEvent bool
			if w.out, isEvent = appendEventLine(w.out, m, w.pal); isEvent {
				return
			}
		}
		w.out = append(w.sty.appendJSON(w.out, line), '\n')
	case w.sty.plain():
		w.out = append(append(w.out, line...), '\n')
	default:
		w.out = append(w.sty.appendJSON(w.out, line), '\n')
	}
}

// emitValue writes a computed output.
func (w *worker) emitValue(v any) {
	if s, ok := v.(string); ok && (w.o.raw || w.o.output == "line") {
		w.out = append(append(w.out, s...), '\n')
		return
	}
	if m, ok := v.(map[string]any); ok && w.o.output == "line" {
		var isEvent bool
		if w.out, isEvent = appendEventLine(w.out, m, w.pal); isEvent {
			return
		}
	}
	b, err := marshal(v)
	if err != nil {
		w.runtime = true
		w.errs = fmt.Appendf(w.errs, "tl-fmt: %v\n", err)
		return
	}
	w.out = append(w.sty.appendJSON(w.out, b), '\n')
}

// emitRaw writes a scalar the fast path found: raw JSON that is already
// what gojq.Marshal would write.
func (w *worker) emitRaw(v []byte) {
	switch string(v) {
	case "null", "false":
		w.last = lastFalsy
	default:
		w.last = lastTruthy
	}
	if v[0] == '"' && (w.o.raw || w.o.output == "line") {
		w.out = append(append(w.out, v[1:len(v)-1]...), '\n')
		return
	}
	w.out = append(w.sty.appendJSON(w.out, v), '\n')
}

// haltMessage is what halt_error writes on stderr: a string as it is, any
// other value as JSON and a newline.
func haltMessage(he *gojq.HaltError) []byte {
	v := he.Value()
	if v == nil {
		return nil
	}
	if s, ok := v.(string); ok {
		return []byte(s)
	}
	b, _ := marshal(v)
	return append(b, '\n')
}
