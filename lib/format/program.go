package format

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"strings"
	"unicode/utf8"

	"github.com/itchyny/gojq"

	"github.com/tl-sh/tl/lib/cli"
)

// program is a compiled jq program, ready to run on every line.
type program struct {
	code   *gojq.Code
	fast   *fastProg // nil when the fast path does not apply
	values []any     // the variables' values, in the order code expects
	// sequential: the program reads further inputs (input, inputs), writes
	// to stderr (debug, stderr) or stops the run (halt): lines are then
	// processed one by one, in order, on one goroutine.
	sequential bool
	inputs     *inputIter
}

// seqFuncs are the builtins that make a program sequential.
var seqFuncs = map[string]bool{
	"input": true, "inputs": true, "debug": true, "stderr": true,
	"halt": true, "halt_error": true, "input_filename": true, "input_line_number": true,
}

// compile parses and compiles the program once.
func compile(o *options, env *cli.Env) (*program, error) {
	files, err := loadLibrary(o, env.Getenv, env.Stderr)
	if err != nil {
		return nil, err
	}
	q, err := gojq.Parse(o.filter)
	if err != nil {
		name := "<arg>"
		if o.fromFile != "" {
			name = o.fromFile
		}
		return nil, parseError(name, o.filter, err, o.fromFile != "")
	}
	p := &program{}
	vars := append([]string(nil), o.vars...)
	p.values = append([]any(nil), o.values...)
	vars = append(vars, "$ARGS")
	p.values = append(p.values, map[string]any{"named": o.named, "positional": []any{}})
	opts := []gojq.CompilerOption{
		gojq.WithModuleLoader(gojq.NewModuleLoader(o.libDirs)),
		// $ENV and env: the process environment, read once here.
		gojq.WithEnvironLoader(os.Environ),
		gojq.WithVariables(vars),
	}
	// gojq compiles every definition, used or not, so the library's use of
	// inputs needs an input iterator even where no program reaches it; it
	// is fed only in sequential mode.
	p.inputs = &inputIter{}
	it := p.inputs
	{
		opts = append(opts, gojq.WithInputIter(it),
			// As in jq: debug writes ["DEBUG:",v] and stderr v, compact, on
			// stderr; input_filename names the current file (null for stdin).
			gojq.WithFunction("debug", 0, 0, func(v any, _ []any) any {
				b, _ := marshal([]any{"DEBUG:", v})
				env.Stderr.Write(append(b, '\n'))
				return v
			}),
			gojq.WithFunction("stderr", 0, 0, func(v any, _ []any) any {
				b, _ := marshal(v)
				env.Stderr.Write(b)
				return v
			}),
			gojq.WithFunction("input_filename", 0, 0, func(any, []any) any {
				if it.src == nil || it.src.name == "" || it.src.name == "-" {
					return nil
				}
				return it.src.name
			}),
		)
	}
	// The library is parsed with the program's compiler options, so that a
	// personal filter file that does not compile is found and skipped.
	libDefs, _, err := parseLibrary(files, env.Stderr, opts...)
	if err != nil {
		return nil, err
	}
	if !o.noFast && !o.nullInput && !o.slurp && !shadowsFastBuiltins(libDefs) {
		p.fast = compileFast(q)
	}
	p.sequential = o.nullInput || o.slurp || needsSequential(q, libDefs)
	q.FuncDefs = append(libDefs, q.FuncDefs...)

	code, err := gojq.Compile(q, opts...)
	if err != nil {
		var qe interface {
			QueryParseError() (string, string, error)
		}
		if errors.As(err, &qe) {
			name, src, perr := qe.QueryParseError()
			return nil, parseError(name, src, perr, true)
		}
		return nil, cli.Exit(exitCompile, fmt.Errorf("compile error: %w", err))
	}
	p.code = code
	return p, nil
}

// shadowsFastBuiltins reports whether the library redefines a builtin the
// fast path assumes (select, not).
func shadowsFastBuiltins(defs []*gojq.FuncDef) bool {
	for _, d := range defs {
		if (d.Name == "select" && len(d.Args) == 1) || (d.Name == "not" && len(d.Args) == 0) {
			return true
		}
	}
	return false
}

// needsSequential reports whether q calls, directly or through the library
// functions it uses, any of seqFuncs.
func needsSequential(q *gojq.Query, lib []*gojq.FuncDef) bool {
	byName := map[string][]*gojq.FuncDef{}
	for _, d := range lib {
		byName[d.Name] = append(byName[d.Name], d)
	}
	seen := map[string]bool{}
	queue := calls(q)
	for len(queue) > 0 {
		name := queue[0]
		queue = queue[1:]
		if seen[name] {
			continue
		}
		seen[name] = true
		if seqFuncs[name] {
			return true
		}
		for _, d := range byName[name] {
			queue = append(queue, calls(d.Body)...)
		}
	}
	return false
}

// calls lists the names of the functions node calls. It walks gojq's syntax
// tree by reflection, which keeps it correct as the tree's shape grows.
func calls(node any) []string {
	var names []string
	var walk func(v reflect.Value)
	walk = func(v reflect.Value) {
		switch v.Kind() {
		case reflect.Pointer, reflect.Interface:
			if !v.IsNil() {
				walk(v.Elem())
			}
		case reflect.Slice:
			for i := range v.Len() {
				walk(v.Index(i))
			}
		case reflect.Struct:
			if v.CanAddr() {
				if f, ok := v.Addr().Interface().(*gojq.Func); ok {
					names = append(names, f.Name)
				}
			}
			for i := range v.NumField() {
				if v.Type().Field(i).IsExported() {
					walk(v.Field(i))
				}
			}
		}
	}
	walk(reflect.ValueOf(node))
	return names
}

// parseError words a syntax error with a caret under the fault, as jq and
// gojq do:
//
//	tl-fmt: syntax error: unexpected token "]"
//	    .a | ]
//	         ^
//
// and with the file and line number when the program came from a file.
func parseError(name, src string, err error, file bool) error {
	var pe *gojq.ParseError
	if !errors.As(err, &pe) {
		return cli.Exit(exitCompile, fmt.Errorf("syntax error: %w", err))
	}
	offset := min(max(pe.Offset-len(pe.Token), 0), len(src))
	lineStart := strings.LastIndexByte(src[:offset], '\n') + 1
	lineEnd := strings.IndexByte(src[offset:], '\n')
	if lineEnd < 0 {
		lineEnd = len(src)
	} else {
		lineEnd += offset
	}
	line := src[lineStart:lineEnd]
	col := utf8.RuneCountInString(src[lineStart:offset])
	lineNo := strings.Count(src[:offset], "\n") + 1
	var b strings.Builder
	if file || strings.Contains(src, "\n") {
		fmt.Fprintf(&b, "syntax error in %s:%d: %v\n", name, lineNo, pe)
	} else {
		fmt.Fprintf(&b, "syntax error: %v\n", pe)
	}
	fmt.Fprintf(&b, "    %s\n    %s^", strings.TrimRight(line, "\r"), strings.Repeat(" ", col))
	return cli.Exit(exitCompile, errors.New(b.String()))
}

// parseJSONValue decodes one JSON text as gojq expects its inputs.
func parseJSONValue(s string) (any, error) {
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("trailing data")
	}
	return v, nil
}

// decodeLine decodes a line that validLine accepted or could not judge.
func decodeLine(line []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if off := dec.InputOffset(); skipSpace(line, int(off)) != len(line) {
		// Word it as encoding/json does.
		var x any
		if err := json.Unmarshal(line, &x); err != nil {
			return nil, err
		}
		return nil, errors.New("invalid JSON")
	}
	return v, nil
}

// marshal writes v as compact jq-style JSON.
func marshal(v any) ([]byte, error) { return gojq.Marshal(v) }
