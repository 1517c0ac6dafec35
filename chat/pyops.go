package chat

import (
	"bytes"
	"fmt"
	"reflect"
	"slices"
	"strings"

	controlStructures "github.com/nikolalohinski/gonja/v2/builtins/control_structures"
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
//     expects a string renders garbage instead of failing. After parsing,
//     every `+` in the template is rewritten into the filter __py_add__,
//     which implements Python's rules (rewritePlus below).
//   - tojson: Hugging Face's is json.dumps(x, ensure_ascii=False): ", " and
//     ": " separators, non-ASCII kept, keys in insertion order. gonja's is Go's
//     encoding/json. Replaced by filterToJSON.
//   - raise_exception(msg): a function Hugging Face adds; here it fails the
//     render with ErrRaised.
//
// The `+` rewrite needs to reach every expression of the template. gonja's
// own {% set %} keeps its expression in unexported fields, so this package
// registers its own `set` (setStatement), with the same syntax and meaning.
// Expressions inside {% with %} and {% filter %} blocks are out of reach and
// keep gonja's `+`; no chat template we know uses those blocks.

const pyAddFilter = "__py_add__"

// Errors raised inside gonja come back wrapped in several layers of its
// messages, some flattened to text. So that Render can return the error
// itself, the functions here also record the first one in a renderErrors
// passed to the template as a hidden variable.
const errorsVar = "__chat_render_errors__"

type renderErrors struct{ first error }

// fail records err for the render that is running and returns it as an
// error value, which stops the template.
func fail(e *exec.Evaluator, err error) *exec.Value {
	if e != nil {
		if v, ok := e.Environment.Context.Get(errorsVar); ok {
			if rec, ok := v.(*renderErrors); ok && rec.first == nil {
				rec.first = err
			}
		}
	}
	return exec.AsValue(err)
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

// filterPyAdd is `in + params.Args[0]` with Python's rules.
func filterPyAdd(e *exec.Evaluator, in *exec.Value, params *exec.VarArgs) *exec.Value {
	if in.IsError() {
		return in
	}
	if len(params.Args) != 1 {
		return fail(e, fmt.Errorf("%w: __py_add__ takes exactly one argument", ErrRender))
	}
	left, right := unwrap(in), unwrap(params.Args[0])
	lt, rt := pyTypeName(left), pyTypeName(right)
	isNum := func(t string) bool { return t == "int" || t == "float" || t == "bool" }
	asInt := func(v *exec.Value) int {
		if v.IsBool() {
			if v.Bool() {
				return 1
			}
			return 0
		}
		return v.Integer()
	}
	asFloat := func(v *exec.Value) float64 {
		if v.IsFloat() {
			return v.Float()
		}
		return float64(asInt(v))
	}
	switch {
	case isNum(lt) && isNum(rt):
		if lt == "float" || rt == "float" {
			return exec.AsValue(asFloat(left) + asFloat(right))
		}
		return exec.AsValue(asInt(left) + asInt(right))
	case lt == "str" && rt == "str":
		return exec.AsValue(left.String() + right.String())
	case lt == "list" && rt == "list":
		out := make([]any, 0, left.Len()+right.Len())
		for _, v := range []*exec.Value{left, right} {
			rv := reflect.Indirect(v.Val)
			for i := range rv.Len() {
				out = append(out, rv.Index(i).Interface())
			}
		}
		return exec.AsValue(out)
	case lt == "str" || lt == "list":
		return fail(e, fmt.Errorf("%w: can only concatenate %s (not %q) to %s", ErrRender, lt, rt, lt))
	}
	return fail(e, fmt.Errorf("%w: unsupported operand type(s) for +: '%s' and '%s'", ErrRender, lt, rt))
}

// filterToJSON is Hugging Face's tojson: json.dumps(x, ensure_ascii=False,
// indent=None, separators=None, sort_keys=False).
func filterToJSON(e *exec.Evaluator, in *exec.Value, params *exec.VarArgs) *exec.Value {
	if in.IsError() {
		return in
	}
	// Hugging Face's signature: tojson(x, ensure_ascii=False, indent=None,
	// separators=None, sort_keys=False); arguments by position or name.
	names := []string{"ensure_ascii", "indent", "separators", "sort_keys"}
	if len(params.Args) > len(names) {
		return fail(e, fmt.Errorf("%w: tojson takes at most %d arguments", ErrRender, len(names)))
	}
	args := map[string]*exec.Value{}
	for i, v := range params.Args {
		args[names[i]] = v
	}
	for name, v := range params.KwArgs {
		if _, dup := args[name]; dup || !slices.Contains(names, name) {
			return fail(e, fmt.Errorf("%w: tojson: unexpected or repeated argument %q", ErrRender, name))
		}
		args[name] = v
	}
	o := jsonOptions{indent: -1}
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
				return fail(e, fmt.Errorf("%w: tojson: indent must be an integer", ErrRender))
			}
			if v.IsInteger() {
				o.indent = max(v.Integer(), 0)
			}
		case "separators":
			if !v.IsNil() && (!v.IsList() || v.Len() != 2) {
				return fail(e, fmt.Errorf("%w: tojson: separators must be a pair of strings", ErrRender))
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
		return fail(e, fmt.Errorf("%w: %w", ErrRender, err))
	}
	return exec.AsSafeValue(b.String())
}

// raiseException is the template function raise_exception(message).
func raiseException(e *exec.Evaluator, params *exec.VarArgs) *exec.Value {
	msg := ""
	if len(params.Args) > 0 {
		msg = params.Args[0].String()
	}
	return fail(e, fmt.Errorf("%w: %s", ErrRaised, msg))
}

// rewritePlus replaces every `a + b` below n by `a | __py_add__(b)`.
func rewritePlus(n nodes.Node) {
	switch n := n.(type) {
	case *nodes.Template:
		for _, c := range n.Nodes {
			rewritePlus(c)
		}
		for _, m := range n.Macros {
			rewriteMacro(m)
		}
	case *nodes.Wrapper:
		if n != nil {
			for _, c := range n.Nodes {
				rewritePlus(c)
			}
		}
	case *nodes.Output:
		n.Expression = rewriteExpr(n.Expression)
		n.Condition = rewriteExpr(n.Condition)
		n.Alternative = rewriteExpr(n.Alternative)
	case *nodes.ControlStructureBlock:
		switch cs := n.ControlStructure.(type) {
		case *controlStructures.IfControlStructure:
			for i := range cs.Conditions {
				cs.Conditions[i] = rewriteExpr(cs.Conditions[i])
			}
			for _, w := range cs.Wrappers {
				rewritePlus(w)
			}
		case *controlStructures.ForControlStructure:
			cs.ObjectEvaluator = rewriteExpr(cs.ObjectEvaluator)
			cs.IfCondition = rewriteExpr(cs.IfCondition)
			rewritePlus(cs.BodyWrapper)
			rewritePlus(cs.EmptyWrapper)
		case *setStatement:
			cs.target = rewriteExpr(cs.target)
			cs.expression = rewriteExpr(cs.expression)
			cs.condition = rewriteExpr(cs.condition)
			cs.alternative = rewriteExpr(cs.alternative)
			rewritePlus(cs.body)
		case *controlStructures.MacroControlStructure:
			rewriteMacro(cs.Macro)
		case *controlStructures.CallControlStructure:
			cs.Call = rewriteExpr(cs.Call).(*nodes.Call)
			rewritePlus(cs.Body)
		case *controlStructures.DoControlStructure:
			cs.Expression = rewriteExpr(cs.Expression)
		case *generationBlock:
			rewritePlus(cs.body)
		}
	}
}

func rewriteMacro(m *nodes.Macro) {
	if m == nil {
		return
	}
	for _, p := range m.Kwargs {
		p.Value = rewriteExpr(p.Value)
	}
	rewritePlus(m.Wrapper)
}

func rewriteExprs(list []nodes.Expression) {
	for i := range list {
		list[i] = rewriteExpr(list[i])
	}
}

func rewriteKwargs(m map[string]nodes.Expression) {
	for k, v := range m {
		m[k] = rewriteExpr(v)
	}
}

// rewriteExpr returns e with every addition inside it rewritten.
func rewriteExpr(e nodes.Expression) nodes.Expression {
	switch n := e.(type) {
	case *nodes.BinaryExpression:
		n.Left, n.Right = rewriteExpr(n.Left), rewriteExpr(n.Right)
		if n.Operator != nil && n.Operator.Token != nil && n.Operator.Token.Type == tokens.Addition {
			return &nodes.FilteredExpression{
				Expression: n.Left,
				Filters:    []*nodes.FilterCall{{Token: n.Operator.Token, Name: pyAddFilter, Args: []nodes.Expression{n.Right}}},
			}
		}
	case *nodes.FilteredExpression:
		n.Expression = rewriteExpr(n.Expression)
		for _, f := range n.Filters {
			rewriteExprs(f.Args)
			rewriteKwargs(f.Kwargs)
		}
	case *nodes.TestExpression:
		n.Expression = rewriteExpr(n.Expression)
		if n.Test != nil {
			rewriteExprs(n.Test.Args)
			rewriteKwargs(n.Test.Kwargs)
		}
	case *nodes.Call:
		n.Func = rewriteExpr(n.Func)
		rewriteExprs(n.Args)
		rewriteKwargs(n.Kwargs)
	case *nodes.GetItem:
		n.Node, n.Arg = rewriteExpr(n.Node), rewriteExpr(n.Arg)
	case *nodes.GetSlice:
		n.Node, n.Start, n.End, n.Step = rewriteExpr(n.Node), rewriteExpr(n.Start), rewriteExpr(n.End), rewriteExpr(n.Step)
	case *nodes.GetAttribute:
		n.Node = rewriteExpr(n.Node)
	case *nodes.Negation:
		n.Term = rewriteExpr(n.Term)
	case *nodes.UnaryExpression:
		n.Term = rewriteExpr(n.Term)
	case *nodes.List:
		rewriteExprs(n.Val)
	case *nodes.Tuple:
		rewriteExprs(n.Val)
	case *nodes.Dict:
		for _, p := range n.Pairs {
			p.Key, p.Value = rewriteExpr(p.Key), rewriteExpr(p.Value)
		}
	case *nodes.Variable:
		for _, p := range n.Parts {
			rewriteExprs(p.Args)
			rewriteKwargs(p.Kwargs)
		}
	}
	return e
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
	}
	return nil
}
