package chat

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strings"

	"github.com/nikolalohinski/gonja/v2/exec"
	"github.com/nikolalohinski/gonja/v2/nodes"
	"github.com/nikolalohinski/gonja/v2/parser"
	"github.com/nikolalohinski/gonja/v2/tokens"
)

// Python semantics that gonja does not have, and how they are added.
//
// Chat templates are written for Jinja2 running in Python, and Hugging Face
// renders them there. gonja, a Go Jinja, agrees on nearly everything. The
// differences that matter for chat templates, and the fix for each:
//
//   - `a + b`: Python adds numbers, concatenates two strings or two lists,
//     and raises TypeError for anything else ("can only concatenate str
//     (not "dict") to str"). gonja concatenates the string forms whenever
//     either side is a string, so a template that passes a dict where it
//     expects a string renders garbage instead of failing.
//   - `a * b`: Python repeats a string or list by an int on either side;
//     gonja only when the string is on the left, and makes 0 otherwise.
//   - `a / b`, `a // b`, `a % b`: Python raises ZeroDivisionError for a
//     zero divisor, floors `//` and gives `%` the divisor's sign. gonja
//     makes +Inf, MinInt64, or panics; it truncates towards zero.
//   - tojson: Hugging Face's is json.dumps(x, ensure_ascii=False): ", " and
//     ": " separators, non-ASCII kept, keys in insertion order. gonja's is Go's
//     encoding/json. Replaced by filterToJSON.
//   - raise_exception(msg): a function Hugging Face adds; here it fails the
//     render with ErrRaised.
//
// After parsing, the rewriter (sandbox.go) turns each operator into one of
// the filters below (`a | __py_add__(b)`), which also keep what they build
// within the render's limits; `~` keeps gonja's meaning and gains the
// limits. It reaches every expression because this package parses the
// statements whose parts gonja keeps unexported ({% set %}, {% with %},
// {% filter %}) itself.

// The filters the rewriter turns operators and literals into.
const (
	pyAddFilter     = "__py_add__"
	pyValueFilter   = "__py_value__"   // checks a list, tuple or dict literal
	pyGetItemFilter = "__py_getitem__" // x[i]
)

var pyOperators = map[tokens.Type]string{
	tokens.Addition:      pyAddFilter,
	tokens.Multiply:      "__py_mul__",
	tokens.Division:      "__py_truediv__",
	tokens.FloorDivision: "__py_floordiv__",
	tokens.Modulo:        "__py_mod__",
	tokens.Tilde:         "__py_concat__",
}

// stateFilter is a filter bound, per render, to the render's state (see
// renderState.filterSet).
type stateFilter func(s *renderState, e *exec.Evaluator, in *exec.Value, params *exec.VarArgs) *exec.Value

// pyFilters are this package's filters: Python's operators and tojson.
var pyFilters = map[string]stateFilter{
	pyAddFilter:       filterPyAdd,
	"__py_mul__":      filterPyMul,
	"__py_truediv__":  filterPyTrueDiv,
	"__py_floordiv__": filterPyFloorDiv,
	"__py_mod__":      filterPyMod,
	"__py_concat__":   filterConcat,
	pyValueFilter:     filterLiteral,
	pyGetItemFilter:   filterPyGetItem,
	"tojson":          filterToJSON,
}

// filterPyGetItem is x[i] as Jinja evaluates it under Python. gonja gets
// negative indexes wrong at the edge: it takes x[-n] only when len(x) > n,
// so messages[-1] of a one-message conversation is None, and templates
// that look at the last message (most do) fail on the first turn. It also
// indexes strings by byte, not by character. Here an integer index of a
// list, tuple or string counts from the end when negative, characters are
// code points, and an index out of range is undefined (as in Jinja, which
// gives Undefined rather than raising); any other subscript (a dict key, an
// attribute named by a string) is gonja's.
func filterPyGetItem(s *renderState, e *exec.Evaluator, in *exec.Value, params *exec.VarArgs) *exec.Value {
	if in.IsError() {
		return in
	}
	if len(params.Args) != 1 {
		return s.raise(pyError("TypeError", "subscript takes one index, not %d", len(params.Args)))
	}
	key := unwrap(params.Args[0])
	if key.IsError() {
		return key
	}
	v := unwrap(in)
	if key.IsInteger() && !key.IsBool() && (v.IsList() || v.IsString()) {
		i := key.Integer()
		if v.IsString() {
			r := []rune(v.String())
			if i < 0 {
				i += len(r)
			}
			if i < 0 || i >= len(r) {
				return exec.AsValue(nil)
			}
			return exec.AsValue(string(r[i]))
		}
		n := v.Len()
		if i < 0 {
			i += n
		}
		if i < 0 || i >= n {
			return exec.AsValue(nil)
		}
		item, _ := v.GetItem(i)
		return item
	}
	var k any
	switch {
	case key.IsString():
		k = key.String()
	case key.IsInteger():
		k = key.Integer()
	case key.IsNil():
		return exec.AsValue(nil)
	default:
		return s.raise(pyError("TypeError", "%s indices must be integers or strings, not %s", pyTypeName(v), pyTypeName(key)))
	}
	if v.IsNil() {
		return s.raise(pyError("TypeError", "'NoneType' object is not subscriptable"))
	}
	item, found := v.GetItem(k)
	if !found && key.IsString() {
		item, found = v.GetAttribute(key.String())
	}
	if !found {
		if item != nil && item.IsError() {
			return item
		}
		return exec.AsValue(nil)
	}
	return item
}

// Errors raised inside gonja come back wrapped in several layers of its
// messages, some flattened to text. So that Render can return the error
// itself, the functions here record the first one in the render's state
// (renderState.fail).

// fail records err for the render that is running and returns it as an
// error value, which stops the template.
func fail(e *exec.Evaluator, err error) *exec.Value {
	if s := evaluatorState(e); s != nil {
		err = s.fail(err)
	}
	return exec.AsValue(err)
}

// raise records err for the render s and returns it as an error value.
func (s *renderState) raise(err error) *exec.Value { return exec.AsValue(s.fail(err)) }

// pyError is Python's exception kind (TypeError, ZeroDivisionError) with
// its message.
func pyError(kind, format string, args ...any) error {
	return fmt.Errorf("%w: %s: "+format, append([]any{ErrRender, kind}, args...)...)
}

// pyTypeName returns the Python type name of a value, for error messages.
func pyTypeName(v *exec.Value) string {
	v = unwrap(v)
	switch {
	case v.IsNil():
		return "NoneType"
	case v.IsBool():
		return "bool"
	case v.IsInteger():
		return "int"
	case v.IsFloat():
		return "float"
	case v.IsString():
		return "str"
	case v.IsList():
		return "list"
	case v.IsDict():
		return "dict"
	case v.IsCallable():
		return "function"
	}
	return v.Val.Type().String()
}

// pyNumber is a Python number: an int (bools are ints) or a float.
type pyNumber struct {
	i       int
	f       float64
	isFloat bool
}

// asNumber returns v as a Python number, if it is one.
func asNumber(v *exec.Value) (pyNumber, bool) {
	switch {
	case v.IsBool():
		if v.Bool() {
			return pyNumber{i: 1}, true
		}
		return pyNumber{}, true
	case v.IsInteger():
		return pyNumber{i: v.Integer()}, true
	case v.IsFloat():
		return pyNumber{f: v.Float(), isFloat: true}, true
	}
	return pyNumber{}, false
}

func (n pyNumber) float() float64 {
	if n.isFloat {
		return n.f
	}
	return float64(n.i)
}

// operands returns the two sides of a binary operator filter.
func operands(s *renderState, op string, in *exec.Value, params *exec.VarArgs) (left, right *exec.Value, err *exec.Value) {
	if len(params.Args) != 1 {
		return nil, nil, s.raise(fmt.Errorf("%w: %s takes exactly one argument", ErrRender, op))
	}
	return unwrap(in), unwrap(params.Args[0]), nil
}

// filterPyAdd is `in + params.Args[0]` with Python's rules.
func filterPyAdd(s *renderState, _ *exec.Evaluator, in *exec.Value, params *exec.VarArgs) *exec.Value {
	if in.IsError() {
		return in
	}
	left, right, bad := operands(s, "+", in, params)
	if bad != nil {
		return bad
	}
	lt, rt := pyTypeName(left), pyTypeName(right)
	ln, lok := asNumber(left)
	rn, rok := asNumber(right)
	switch {
	case lok && rok:
		if ln.isFloat || rn.isFloat {
			return exec.AsValue(ln.float() + rn.float())
		}
		return exec.AsValue(ln.i + rn.i)
	case lt == "str" && rt == "str":
		a, b := left.String(), right.String()
		if err := s.allow("+", len(a)+len(b)); err != nil {
			return s.raise(err)
		}
		out := exec.AsValue(a + b)
		if err := s.built("+", out); err != nil {
			return s.raise(err)
		}
		return out
	case lt == "list" && rt == "list":
		out := make([]any, 0, left.Len()+right.Len())
		for _, v := range []*exec.Value{left, right} {
			rv := reflect.Indirect(v.Val)
			for i := range rv.Len() {
				out = append(out, rv.Index(i).Interface())
			}
		}
		value := exec.AsValue(out)
		if err := s.built("+", value); err != nil {
			return s.raise(err)
		}
		return value
	case lt == "str" || lt == "list":
		return s.raise(pyError("TypeError", "can only concatenate %s (not %q) to %s", lt, rt, lt))
	}
	return s.raise(pyError("TypeError", "unsupported operand type(s) for +: '%s' and '%s'", lt, rt))
}

// filterPyMul is `in * params.Args[0]` with Python's rules: numbers
// multiply, and a string or list times an int (on either side) repeats.
func filterPyMul(s *renderState, _ *exec.Evaluator, in *exec.Value, params *exec.VarArgs) *exec.Value {
	if in.IsError() {
		return in
	}
	left, right, bad := operands(s, "*", in, params)
	if bad != nil {
		return bad
	}
	isSeq := func(v *exec.Value) bool { return v.IsString() || v.IsList() }
	ln, lok := asNumber(left)
	rn, rok := asNumber(right)
	switch {
	case lok && rok:
		if ln.isFloat || rn.isFloat {
			return exec.AsValue(ln.float() * rn.float())
		}
		return exec.AsValue(ln.i * rn.i)
	case isSeq(left) && rok && !rn.isFloat:
		return repeat(s, left, rn.i)
	case isSeq(right) && lok && !ln.isFloat:
		return repeat(s, right, ln.i)
	case isSeq(left):
		return s.raise(pyError("TypeError", "can't multiply sequence by non-int of type '%s'", pyTypeName(right)))
	case isSeq(right):
		return s.raise(pyError("TypeError", "can't multiply sequence by non-int of type '%s'", pyTypeName(left)))
	}
	return s.raise(pyError("TypeError", "unsupported operand type(s) for *: '%s' and '%s'", pyTypeName(left), pyTypeName(right)))
}

// repeat is seq * n, refused before it is built when it would print
// longer than Limits.Output.
func repeat(s *renderState, seq *exec.Value, n int) *exec.Value {
	n = max(n, 0)
	if seq.IsString() {
		str := seq.String()
		if err := s.allow("*", mulSat(len(str), n)); err != nil {
			return s.raise(err)
		}
		out := exec.AsValue(strings.Repeat(str, n))
		if err := s.built("*", out); err != nil {
			return s.raise(err)
		}
		return out
	}
	size, err := s.measure(seq)
	if err == nil {
		err = s.allow("*", mulSat(size, n))
	}
	if err != nil {
		return s.raise(err)
	}
	rv := reflect.Indirect(seq.Val)
	out := make([]any, 0, rv.Len()*n)
	for range n {
		for i := range rv.Len() {
			out = append(out, rv.Index(i).Interface())
		}
	}
	value := exec.AsValue(out)
	if err := s.built("*", value); err != nil {
		return s.raise(err)
	}
	return value
}

// mulSat is a*b for non-negative a and b, or the largest int when that
// overflows.
func mulSat(a, b int) int {
	if a != 0 && b > math.MaxInt/a {
		return math.MaxInt
	}
	return a * b
}

// numbers returns the two sides of an arithmetic operator, or Python's
// TypeError when one is not a number.
func numbers(s *renderState, op string, in *exec.Value, params *exec.VarArgs) (a, b pyNumber, bad *exec.Value) {
	left, right, bad := operands(s, op, in, params)
	if bad != nil {
		return a, b, bad
	}
	a, aok := asNumber(left)
	b, bok := asNumber(right)
	if !aok || !bok {
		if op == "%" && left.IsString() {
			return a, b, s.raise(pyError("TypeError", "printf-style formatting with '%%' is not supported; use the format filter"))
		}
		return a, b, s.raise(pyError("TypeError", "unsupported operand type(s) for %s: '%s' and '%s'", op, pyTypeName(left), pyTypeName(right)))
	}
	return a, b, nil
}

// filterPyTrueDiv is Python's `/`: always a float.
func filterPyTrueDiv(s *renderState, _ *exec.Evaluator, in *exec.Value, params *exec.VarArgs) *exec.Value {
	if in.IsError() {
		return in
	}
	a, b, bad := numbers(s, "/", in, params)
	if bad != nil {
		return bad
	}
	if b.float() == 0 {
		if a.isFloat || b.isFloat {
			return s.raise(pyError("ZeroDivisionError", "float division by zero"))
		}
		return s.raise(pyError("ZeroDivisionError", "division by zero"))
	}
	return exec.AsValue(a.float() / b.float())
}

// filterPyFloorDiv is Python's `//`: rounded down, an int for two ints.
func filterPyFloorDiv(s *renderState, _ *exec.Evaluator, in *exec.Value, params *exec.VarArgs) *exec.Value {
	if in.IsError() {
		return in
	}
	a, b, bad := numbers(s, "//", in, params)
	if bad != nil {
		return bad
	}
	if a.isFloat || b.isFloat {
		if b.float() == 0 {
			return s.raise(pyError("ZeroDivisionError", "float floor division by zero"))
		}
		return exec.AsValue(math.Floor(a.float() / b.float()))
	}
	if b.i == 0 {
		return s.raise(pyError("ZeroDivisionError", "integer division or modulo by zero"))
	}
	q := a.i / b.i // truncated towards zero; Python floors
	if a.i%b.i != 0 && (a.i < 0) != (b.i < 0) {
		q--
	}
	return exec.AsValue(q)
}

// filterPyMod is Python's `%` on numbers: the remainder has the divisor's
// sign. (On a string it is printf-style formatting, which is refused.)
func filterPyMod(s *renderState, _ *exec.Evaluator, in *exec.Value, params *exec.VarArgs) *exec.Value {
	if in.IsError() {
		return in
	}
	a, b, bad := numbers(s, "%", in, params)
	if bad != nil {
		return bad
	}
	if a.isFloat || b.isFloat {
		if b.float() == 0 {
			return s.raise(pyError("ZeroDivisionError", "float modulo"))
		}
		r := math.Mod(a.float(), b.float())
		if r != 0 && (r < 0) != (b.float() < 0) {
			r += b.float()
		}
		return exec.AsValue(r)
	}
	if b.i == 0 {
		return s.raise(pyError("ZeroDivisionError", "integer modulo by zero"))
	}
	r := a.i % b.i
	if r != 0 && (r < 0) != (b.i < 0) {
		r += b.i
	}
	return exec.AsValue(r)
}

// filterConcat is `~`, as gonja has it (the string forms, joined), within
// Limits.Output.
func filterConcat(s *renderState, _ *exec.Evaluator, in *exec.Value, params *exec.VarArgs) *exec.Value {
	if in.IsError() {
		return in
	}
	if len(params.Args) != 1 {
		return s.raise(fmt.Errorf("%w: ~ takes exactly one argument", ErrRender))
	}
	a, err := s.printedLen(in)
	if err != nil {
		return s.raise(err)
	}
	b, err := s.printedLen(params.Args[0])
	if err != nil {
		return s.raise(err)
	}
	if err := s.allow("~", a+b); err != nil {
		return s.raise(err)
	}
	out := exec.AsValue(in.String() + params.Args[0].String())
	if err := s.built("~", out); err != nil {
		return s.raise(err)
	}
	return out
}

// filterLiteral checks a list, tuple or dict written in the template once
// it is built: it may hold values that are large already, each time it
// runs, as in {% set x = [x, x] %} in a loop.
func filterLiteral(s *renderState, _ *exec.Evaluator, in *exec.Value, _ *exec.VarArgs) *exec.Value {
	if in.IsError() {
		return in
	}
	if err := s.built("a literal", in); err != nil {
		return s.raise(err)
	}
	return in
}

// filterToJSON is Hugging Face's tojson: json.dumps(x, ensure_ascii=False,
// indent=None, separators=None, sort_keys=False).
func filterToJSON(s *renderState, _ *exec.Evaluator, in *exec.Value, params *exec.VarArgs) *exec.Value {
	if in.IsError() {
		return in
	}
	// Hugging Face's signature: tojson(x, ensure_ascii=False, indent=None,
	// separators=None, sort_keys=False); arguments by position or name.
	names := []string{"ensure_ascii", "indent", "separators", "sort_keys"}
	if len(params.Args) > len(names) {
		return s.raise(fmt.Errorf("%w: tojson takes at most %d arguments", ErrRender, len(names)))
	}
	args := map[string]*exec.Value{}
	for i, v := range params.Args {
		args[names[i]] = v
	}
	for name, v := range params.KwArgs {
		if _, dup := args[name]; dup || !slices.Contains(names, name) {
			return s.raise(fmt.Errorf("%w: tojson: unexpected or repeated argument %q", ErrRender, name))
		}
		args[name] = v
	}
	o := jsonOptions{indent: -1, limit: s.limits.Output}
	var separators *exec.Value
	for name, v := range args {
		v = unwrap(v)
		switch name {
		case "ensure_ascii":
			o.ensureASCII = v.IsTrue()
		case "sort_keys":
			o.sortKeys = v.IsTrue()
		case "indent":
			if !v.IsNil() && !v.IsInteger() {
				return s.raise(fmt.Errorf("%w: tojson: indent must be an integer", ErrRender))
			}
			if v.IsInteger() {
				o.indent = max(v.Integer(), 0)
			}
		case "separators":
			if !v.IsNil() && (!v.IsList() || v.Len() != 2) {
				return s.raise(fmt.Errorf("%w: tojson: separators must be a pair of strings", ErrRender))
			}
			separators = v
		}
	}
	// json.dumps's defaults: ", " between items on one line, "," when
	// indenting (the newline follows); ": " after keys.
	o.itemSep, o.keySep = ", ", ": "
	if o.indent >= 0 {
		o.itemSep = ","
	}
	if separators != nil && !separators.IsNil() {
		o.itemSep, o.keySep = separators.Index(0).String(), separators.Index(1).String()
	}
	var b strings.Builder
	if err := writePyJSON(&b, in, &o, 0); err != nil {
		if !errors.Is(err, ErrLimit) {
			err = fmt.Errorf("%w: %w", ErrRender, err)
		}
		return s.raise(err)
	}
	out := exec.AsSafeValue(b.String())
	if err := s.built("tojson", out); err != nil {
		return s.raise(err)
	}
	return out
}

// raiseException is the template function raise_exception(message).
func raiseException(e *exec.Evaluator, params *exec.VarArgs) *exec.Value {
	msg := ""
	if len(params.Args) > 0 {
		msg = params.Args[0].String()
	}
	return fail(e, fmt.Errorf("%w: %s", ErrRaised, msg))
}

// setStatement is {% set %}: `set x = expr`, `set ns.attr = expr`,
// `set d[key] = expr`, `set x = a if cond else b`, and the block form
// `{% set x %}...{% endset %}`. It behaves as gonja's, with its parts in
// fields this package can rewrite.
type setStatement struct {
	location    *tokens.Token
	target      nodes.Expression
	expression  nodes.Expression
	condition   nodes.Expression
	alternative nodes.Expression
	body        *nodes.Wrapper
}

func (s *setStatement) Position() *tokens.Token { return s.location }
func (s *setStatement) String() string {
	return fmt.Sprintf("set(Line=%d Col=%d)", s.location.Line, s.location.Col)
}

func parseSet(p *parser.Parser, args *parser.Parser) (nodes.ControlStructure, error) {
	s := &setStatement{location: p.Current()}
	target, err := args.ParseVariableOrLiteral()
	if err != nil {
		return nil, fmt.Errorf("set: unable to parse the target: %w", err)
	}
	switch target.(type) {
	case *nodes.Name, *nodes.GetItem, *nodes.GetAttribute:
		s.target = target
	default:
		return nil, fmt.Errorf("set: unexpected target %s", target)
	}
	if args.Match(tokens.Assign) == nil { // block form
		if !args.End() {
			return nil, args.Error("Expected '=' or end of tag for block-set.", args.Current())
		}
		wrapper, endargs, err := p.WrapUntil("endset")
		if err != nil {
			return nil, err
		}
		if !endargs.End() {
			return nil, endargs.Error("endset takes no arguments", nil)
		}
		s.body = wrapper
		return s, nil
	}
	if s.expression, err = args.ParseExpression(); err != nil {
		return nil, err
	}
	condition, alternative, err := args.ParseCondition()
	if err != nil {
		return nil, err
	}
	if condition != nil {
		if alternative == nil {
			return nil, args.Error("Malformed 'set' if else condition", args.Current())
		}
		s.condition, s.alternative = condition, alternative
	}
	if !args.End() {
		return nil, args.Error("Malformed 'set' tag args.", args.Current())
	}
	return s, nil
}

func (s *setStatement) Execute(r *exec.Renderer, _ *nodes.ControlStructureBlock) error {
	var value *exec.Value
	switch {
	case s.body != nil:
		var buf bytes.Buffer
		sub := r.Inherit()
		sub.Output = &buf
		if err := sub.ExecuteWrapper(s.body); err != nil {
			return err
		}
		value = exec.AsSafeValue(buf.String())
	case s.condition != nil:
		cond := r.Eval(s.condition)
		if cond.IsError() {
			return cond
		}
		if !cond.IsNil() && cond.IsTrue() {
			value = r.Eval(s.expression)
		} else {
			value = r.Eval(s.alternative)
		}
	default:
		value = r.Eval(s.expression)
	}
	if value.IsError() {
		return value
	}
	switch t := s.target.(type) {
	case *nodes.Name:
		r.Environment.Context.Set(t.Name.Val, value.Interface())
	case *nodes.GetAttribute:
		obj := r.Eval(t.Node)
		if obj.IsError() {
			return obj
		}
		if err := obj.Set(exec.AsValue(t.Attribute), value.Interface()); err != nil {
			return fmt.Errorf("set %s: %w", t, err)
		}
		return checkContainer(r, obj)
	case *nodes.GetItem:
		obj := r.Eval(t.Node)
		if obj.IsError() {
			return obj
		}
		key := r.Eval(t.Arg)
		if key.IsError() {
			return key
		}
		if err := obj.Set(key, value.Interface()); err != nil {
			return fmt.Errorf("set %s: %w", t, err)
		}
		return checkContainer(r, obj)
	}
	return nil
}

// checkContainer checks a dict or namespace after {% set %} put a value
// in it: that is how a template could make a value hold itself, which
// would print forever ({% set ns.x = ns %}), or make one larger than
// Limits.Output by doubling it in a loop.
func checkContainer(r *exec.Renderer, obj *exec.Value) error {
	s := stateOf(r)
	if s == nil {
		return errNoState
	}
	if _, err := s.measure(obj); err != nil {
		return s.fail(err)
	}
	return nil
}
