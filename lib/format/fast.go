package format

import (
	"bytes"

	"github.com/itchyny/gojq"
)

// The fast path answers the filters people type most, such as
// `.type == "click"`, `select(.metadata.country == "DE") | .path` or `.path`,
// straight from a line's bytes, with no decoding and no gojq run. It
// recognises a small grammar on gojq's syntax tree:
//
//	prog := (select(pred) '|')* out
//	out  := pred | select(pred) | path | '.'
//	pred := cmp | pred 'and' pred | pred 'or' pred | pred '|' 'not' | '(' pred ')'
//	cmp  := path ('=='|'!=') lit | lit ('=='|'!=') path
//	path := '.' name ('.' name)*       (also ."name" and .["name"])
//	lit  := "string" | integer | true | false | null
//
// on object inputs. Whenever a line falls outside what it can answer exactly
// (the input is not an object, a key or string has escapes, a number is not
// a small integer, a path goes through a non-object) it says so, and that
// line takes the gojq path. TestFastEquivalence holds it to gojq's answers.

// fastResult is what the fast path made of one line.
type fastResult int

const (
	fastUnsure  fastResult = iota // take the gojq path
	fastInvalid                   // not JSON (the slow path words the error)
	fastNone                      // no output (select said no)
	fastFalse                     // the output is false
	fastTrue                      // the output is true: pass the line through
	fastPass                      // the output is the input itself
	fastValue                     // the output is the raw JSON value returned
)

// fastProg is a compiled fast-path program.
type fastProg struct {
	keys    []string // distinct top-level keys the program reads
	selects []fastPred
	pred    *fastPred // the output is this predicate's value, when set
	path    *fastPath
	// identity: the output is the input (neither pred nor path set)
}

// fastPath is a path of object keys; top indexes fastProg.keys.
type fastPath struct {
	top  int
	rest [][]string // each further key, as a one-key list for fields
}

// fastPred is a boolean expression over paths.
type fastPred struct {
	op   gojq.Operator // OpEq, OpNe, OpAnd, OpOr; 0 for not
	l, r *fastPred     // for and/or; l alone for not
	path *fastPath
	lit  []byte // the literal as canonical raw JSON
	kind byte   // the literal's first byte: '"', 't', 'f', 'n' or a digit/'-'
}

// compileFast returns a fast program for q, or nil when q is outside the
// grammar. q must have no definitions or imports of its own.
func compileFast(q *gojq.Query) *fastProg {
	if q == nil || len(q.FuncDefs) > 0 || len(q.Imports) > 0 || q.Meta != nil {
		return nil
	}
	p := &fastProg{}
	if pred := p.predOf(q); pred != nil {
		p.pred = pred
		return p
	}
	for q.Op == gojq.OpPipe {
		sel := p.selectOf(q.Left)
		if sel == nil {
			return nil
		}
		p.selects = append(p.selects, *sel)
		q = q.Right
	}
	if sel := p.selectOf(q); sel != nil {
		p.selects = append(p.selects, *sel)
		return p
	}
	if t := termOf(q); t != nil && t.Type == gojq.TermTypeIdentity && len(t.SuffixList) == 0 {
		return p
	}
	if path := p.pathOf(q); path != nil {
		p.path = path
		return p
	}
	if pred := p.predOf(q); pred != nil {
		p.pred = pred
		return p
	}
	return nil
}

// termOf unwraps q to its single term, through parentheses.
func termOf(q *gojq.Query) *gojq.Term {
	for q != nil && q.Op == 0 && q.Term != nil && len(q.FuncDefs) == 0 && q.Meta == nil && len(q.Imports) == 0 {
		t := q.Term
		if t.Type == gojq.TermTypeQuery && len(t.SuffixList) == 0 {
			q = t.Query
			continue
		}
		return t
	}
	return nil
}

func (p *fastProg) selectOf(q *gojq.Query) *fastPred {
	t := termOf(q)
	if t == nil || t.Type != gojq.TermTypeFunc || len(t.SuffixList) > 0 ||
		t.Func.Name != "select" || len(t.Func.Args) != 1 {
		return nil
	}
	return p.predOf(t.Func.Args[0])
}

func (p *fastProg) predOf(q *gojq.Query) *fastPred {
	if q == nil {
		return nil
	}
	switch q.Op {
	case gojq.OpAnd, gojq.OpOr:
		l, r := p.predOf(q.Left), p.predOf(q.Right)
		if l == nil || r == nil {
			return nil
		}
		return &fastPred{op: q.Op, l: l, r: r}
	case gojq.OpPipe:
		if t := termOf(q.Right); t != nil && t.Type == gojq.TermTypeFunc && t.Func.Name == "not" &&
			len(t.Func.Args) == 0 && len(t.SuffixList) == 0 {
			if l := p.predOf(q.Left); l != nil {
				return &fastPred{l: l}
			}
		}
		return nil
	case gojq.OpEq, gojq.OpNe:
		path, lit := p.pathOf(q.Left), literalOf(q.Right)
		if path == nil {
			path, lit = p.pathOf(q.Right), literalOf(q.Left)
		}
		if path == nil || lit == nil {
			return nil
		}
		return &fastPred{op: q.Op, path: path, lit: lit, kind: lit[0]}
	case 0:
		if q.Term != nil && q.Term.Type == gojq.TermTypeQuery && len(q.Term.SuffixList) == 0 &&
			len(q.FuncDefs) == 0 && len(q.Imports) == 0 && q.Meta == nil {
			return p.predOf(q.Term.Query)
		}
	}
	return nil
}

// literalOf returns the canonical raw JSON of a literal term, or nil.
func literalOf(q *gojq.Query) []byte {
	t := termOf(q)
	if t == nil || len(t.SuffixList) > 0 {
		return nil
	}
	switch t.Type {
	case gojq.TermTypeUnary:
		// -1 parses as unary minus applied to 1.
		if u := t.Unary; u.Op == gojq.OpSub && u.Term != nil && u.Term.Type == gojq.TermTypeNumber &&
			len(u.Term.SuffixList) == 0 && smallInt([]byte(u.Term.Number)) && u.Term.Number != "0" {
			return []byte("-" + u.Term.Number)
		}
	case gojq.TermTypeNull:
		return []byte("null")
	case gojq.TermTypeTrue:
		return []byte("true")
	case gojq.TermTypeFalse:
		return []byte("false")
	case gojq.TermTypeNumber:
		if smallInt([]byte(t.Number)) {
			return []byte(t.Number)
		}
	case gojq.TermTypeString:
		if t.Str == nil || t.Str.Queries != nil {
			return nil
		}
		b, _ := gojq.Marshal(t.Str.Str)
		if !printableString(b) {
			return nil
		}
		return b
	}
	return nil
}

// pathOf returns the key path of a plain index chain such as .a.b, or nil.
func (p *fastProg) pathOf(q *gojq.Query) *fastPath {
	t := termOf(q)
	if t == nil || t.Type != gojq.TermTypeIndex {
		return nil
	}
	first, ok := keyOf(t.Index)
	if !ok {
		return nil
	}
	path := &fastPath{}
	for _, s := range t.SuffixList {
		if s.Index == nil || s.Iter || s.Optional {
			return nil
		}
		k, ok := keyOf(s.Index)
		if !ok {
			return nil
		}
		path.rest = append(path.rest, []string{k})
	}
	path.top = -1
	for i, k := range p.keys {
		if k == first {
			path.top = i
		}
	}
	if path.top < 0 {
		path.top = len(p.keys)
		p.keys = append(p.keys, first)
	}
	return path
}

func keyOf(ix *gojq.Index) (string, bool) {
	switch {
	case ix == nil || ix.IsSlice || ix.End != nil:
		return "", false
	case ix.Name != "":
		return ix.Name, ix.Start == nil && ix.Str == nil
	case ix.Str != nil && ix.Str.Queries == nil && ix.Start == nil:
		return ix.Str.Str, true
	case ix.Start != nil && ix.Str == nil:
		if t := termOf(ix.Start); t != nil && t.Type == gojq.TermTypeString && len(t.SuffixList) == 0 &&
			t.Str != nil && t.Str.Queries == nil {
			return t.Str.Str, true
		}
	}
	return "", false
}

// fastState is one worker's scratch space for the fast path.
type fastState struct {
	vals [][]byte
	sub  [][]byte
}

// run evaluates the program on one line (trimmed, non-empty); with
// fastValue the returned bytes are the raw JSON to print.
func (p *fastProg) run(line []byte, st *fastState) (fastResult, []byte) {
	if line[0] != '{' {
		if validLine(line) == scanInvalid {
			return fastInvalid, nil
		}
		return fastUnsure, nil
	}
	if cap(st.vals) < len(p.keys) {
		st.vals = make([][]byte, len(p.keys))
	}
	vals := st.vals[:len(p.keys)]
	switch fields(line, p.keys, vals) {
	case scanInvalid:
		return fastInvalid, nil
	case scanUnsure:
		return fastUnsure, nil
	}
	for i := range p.selects {
		switch p.selects[i].eval(vals, st) {
		case fastUnsure:
			return fastUnsure, nil
		case fastFalse:
			return fastNone, nil
		}
	}
	switch {
	case p.pred != nil:
		return p.pred.eval(vals, st), nil
	case p.path != nil:
		v, r := p.path.get(vals, st)
		if r != fastValue {
			return r, nil
		}
		if v == nil {
			return fastValue, []byte("null")
		}
		switch c := v[0]; {
		case c == '"':
			if !printableString(v) {
				return fastUnsure, nil
			}
		case c == '-' || ('0' <= c && c <= '9'):
			if !smallInt(v) {
				return fastUnsure, nil
			}
		case c == '{' || c == '[':
			return fastUnsure, nil
		}
		return fastValue, v
	}
	return fastPass, nil
}

// get returns the raw value at the path (nil for null or absent), with
// fastValue, or fastUnsure when the path goes through a non-object.
func (fp *fastPath) get(vals [][]byte, st *fastState) ([]byte, fastResult) {
	v := vals[fp.top]
	for _, k := range fp.rest {
		if v == nil || string(v) == "null" {
			return nil, fastValue
		}
		if v[0] != '{' {
			return nil, fastUnsure // gojq raises "cannot index"
		}
		if cap(st.sub) < 1 {
			st.sub = make([][]byte, 1)
		}
		sub := st.sub[:1]
		if fields(v, k, sub) != scanOK {
			return nil, fastUnsure
		}
		v = sub[0]
	}
	if string(v) == "null" {
		return nil, fastValue
	}
	return v, fastValue
}

// eval returns fastTrue, fastFalse or fastUnsure.
func (pr *fastPred) eval(vals [][]byte, st *fastState) fastResult {
	switch pr.op {
	case 0: // not
		switch pr.l.eval(vals, st) {
		case fastTrue:
			return fastFalse
		case fastFalse:
			return fastTrue
		}
		return fastUnsure
	case gojq.OpAnd:
		l := pr.l.eval(vals, st)
		if l != fastTrue {
			return l
		}
		return pr.r.eval(vals, st)
	case gojq.OpOr:
		l := pr.l.eval(vals, st)
		if l != fastFalse {
			return l
		}
		return pr.r.eval(vals, st)
	}
	v, r := pr.path.get(vals, st)
	if r != fastValue {
		return r
	}
	eq, r := pr.equal(v)
	if r != fastValue {
		return r
	}
	if eq == (pr.op == gojq.OpEq) {
		return fastTrue
	}
	return fastFalse
}

// equal compares the raw value v (nil for null) with the literal.
func (pr *fastPred) equal(v []byte) (bool, fastResult) {
	if v == nil {
		return pr.kind == 'n', fastValue
	}
	switch c := v[0]; {
	case c == '"':
		if pr.kind != '"' {
			return false, fastValue
		}
		s, ok := plainString(v)
		if !ok {
			return false, fastUnsure
		}
		return bytes.Equal(s, pr.lit[1:len(pr.lit)-1]), fastValue
	case c == '-' || ('0' <= c && c <= '9'):
		if pr.kind != '-' && (pr.kind < '0' || pr.kind > '9') {
			return false, fastValue
		}
		if !smallInt(v) {
			return false, fastUnsure
		}
		return bytes.Equal(v, pr.lit), fastValue
	case c == 't' || c == 'f':
		return string(v) == string(pr.lit), fastValue
	}
	// objects and arrays never equal a scalar literal
	return false, fastValue
}
