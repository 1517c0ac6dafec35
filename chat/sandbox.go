package chat

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	controlStructures "github.com/nikolalohinski/gonja/v2/builtins/control_structures"
	"github.com/nikolalohinski/gonja/v2/config"
	"github.com/nikolalohinski/gonja/v2/exec"
	"github.com/nikolalohinski/gonja/v2/nodes"
	"github.com/nikolalohinski/gonja/v2/parser"
	"github.com/nikolalohinski/gonja/v2/tokens"
)

// How the limits are enforced on gonja, which has none of its own.
//
// Before parsing, sourceNesting counts how deeply the source nests
// brackets and blocks: gonja's parser recurses once per level, about 2 KiB
// of Go stack each, and a Go stack overflow kills the process (it cannot
// be recovered), so a source nested deeper than MaxDepth is refused before
// the parser sees it.
//
// After parsing, a rewriter walks the tree once, bounded by MaxDepth
// levels, and measures its depth. It rewrites it so that every step of a
// render passes through this package:
//
//   - every printed value and piece of text becomes a printStatement, and
//     every statement is wrapped in a limitedStatement: both check the
//     clock, and write through the render's meter, which counts the text
//     against Limits.Memory and keeps each buffer within Limits.Output;
//   - the body of every loop, macro, {% call %} (caller()) and {% block %}
//     starts with a guardStatement, which counts loop iterations and the
//     run-time nesting of loops and calls;
//   - Python's operators (+ * / // % and ~) and list, tuple and dict
//     literals become filters (pyops.go), which check sizes and raise
//     ZeroDivisionError;
//   - statements the rewriter cannot see into are refused, so that no
//     body escapes it.
//
// At render time each render gets its own filters and methods, bound to
// its renderState (checked.go): they refuse to build values too large to
// print, before building them where an argument says how large.

// stateKey names the render's state in the template context. It holds
// spaces, so no template can name, read or replace it.
const stateKey = "chat render state"

// stateOf returns the state of the render r belongs to.
func stateOf(r *exec.Renderer) *renderState {
	if m, ok := r.Output.(*meter); ok {
		return m.state
	}
	return contextState(r.Environment.Context)
}

// evaluatorState returns the state of the render e belongs to.
func evaluatorState(e *exec.Evaluator) *renderState {
	if e == nil || e.Environment == nil {
		return nil
	}
	return contextState(e.Environment.Context)
}

func contextState(ctx *exec.Context) *renderState {
	if ctx == nil {
		return nil
	}
	v, _ := ctx.Get(stateKey)
	s, _ := v.(*renderState)
	return s
}

// errNoState is returned by the statements of a template executed other
// than by Render, which never happens.
var errNoState = fmt.Errorf("%w: internal error: a template statement ran outside a render", ErrRender)

// bodyTags are the statements whose parsers read a body up to an end tag
// ({% set x %} without '=' too).
var bodyTags = map[string]bool{
	"if": true, "for": true, "macro": true, "call": true, "filter": true, "with": true,
	"block": true, "generation": true, "autoescape": true, "raw": true,
}

// sourceNesting returns how deeply source nests brackets and blocks: the
// depth of recursion gonja's parser will need for it. It lexes the source
// with gonja's lexer, which does not recurse.
func sourceNesting(source string, cfg *config.Config) int {
	stream := tokens.LexAll(source, cfg)
	depth, deepest := 0, 0
	openingSet := false // inside {% set x %} so far without '=': a block set
	for !stream.End() {
		t := stream.Next()
		switch t.Type {
		case tokens.LeftParenthesis, tokens.LeftBracket, tokens.LeftBrace:
			depth++
		case tokens.RightParenthesis, tokens.RightBracket, tokens.RightBrace:
			depth = max(depth-1, 0)
		case tokens.Assign:
			openingSet = false
		case tokens.BlockEnd:
			if openingSet {
				depth++
				openingSet = false
			}
		case tokens.BlockBegin:
			name := stream.Current()
			switch {
			case name.Type != tokens.Name:
			case strings.HasPrefix(name.Val, "end"):
				// A stray end tag is a syntax error the parser reports
				// when it gets there, before anything after it.
				depth = max(depth-1, 0)
			case bodyTags[name.Val]:
				depth++
			case name.Val == "set":
				openingSet = true
			}
		}
		deepest = max(deepest, depth)
	}
	return deepest
}

// rewriter rewrites a parsed template (see the comment at the top) and
// measures how deeply it nests: each statement and each node of an
// expression is a level.
type rewriter struct {
	seen    map[*nodes.Wrapper]bool // bodies already rewritten
	deepest int
	err     error
}

func (w *rewriter) fail(format string, args ...any) {
	if w.err == nil {
		w.err = fmt.Errorf("%w: "+format, append([]any{ErrSyntax}, args...)...)
	}
}

// at records that the walk is level deep, and reports whether it may go
// on: past MaxDepth it stops, so that its own recursion stays bounded.
func (w *rewriter) at(level int) bool {
	w.deepest = max(w.deepest, level)
	if level > MaxDepth {
		w.fail("the template nests more than %d levels deep (MaxDepth)", MaxDepth)
		return false
	}
	return w.err == nil
}

func (w *rewriter) template(t *nodes.Template) {
	w.seen = map[*nodes.Wrapper]bool{}
	t.Nodes = w.nodes(t.Nodes, 1)
	// A {% block %} statement holds only its name; its body is here. It
	// runs for the statement and for every self.name() call, which can
	// recurse, so it is guarded like a macro.
	for _, body := range t.Blocks {
		w.guard(body, 1, false)
	}
	for _, m := range t.Macros {
		w.macro(m, 1)
	}
}

// wrapper rewrites a body that runs once each time its statement runs.
func (w *rewriter) wrapper(body *nodes.Wrapper, level int) {
	if body == nil || w.seen[body] || !w.at(level) {
		return
	}
	w.seen[body] = true
	body.Nodes = w.nodes(body.Nodes, level)
}

// guard rewrites a body that runs repeatedly (a loop's) or recursively (a
// macro's), putting its nodes under a guardStatement.
func (w *rewriter) guard(body *nodes.Wrapper, level int, iteration bool) {
	if body == nil || w.seen[body] || !w.at(level) {
		return
	}
	w.seen[body] = true
	inner := &nodes.Wrapper{Location: body.Location, Nodes: w.nodes(body.Nodes, level+1), EndTag: body.EndTag, Trim: body.Trim, LStrip: body.LStrip}
	body.Nodes = []nodes.Node{&nodes.ControlStructureBlock{
		Location:         body.Location,
		Name:             "guard",
		ControlStructure: &guardStatement{body: inner, iteration: iteration},
	}}
}

func (w *rewriter) macro(m *nodes.Macro, level int) {
	if m == nil || !w.at(level) {
		return
	}
	if !w.seen[m.Wrapper] {
		for _, p := range m.Kwargs {
			p.Value = w.expr(p.Value, level+1)
		}
	}
	w.guard(m.Wrapper, level+1, false)
}

// nodes rewrites the nodes of a body and returns them.
func (w *rewriter) nodes(list []nodes.Node, level int) []nodes.Node {
	for i, n := range list {
		if !w.at(level) {
			break
		}
		switch n := n.(type) {
		case *nodes.Comment:
		case *nodes.Data:
			list[i] = printNode(n)
		case *nodes.Output:
			n.Expression = w.expr(n.Expression, level+1)
			n.Condition = w.expr(n.Condition, level+1)
			n.Alternative = w.expr(n.Alternative, level+1)
			list[i] = printNode(n)
		case *nodes.ControlStructureBlock:
			w.statement(n, level)
		default:
			w.fail("unexpected %T in the template", n)
		}
	}
	return list
}

// statement rewrites the parts of one statement, then wraps it in a
// limitedStatement.
func (w *rewriter) statement(block *nodes.ControlStructureBlock, level int) {
	inner := level + 1
	switch cs := block.ControlStructure.(type) {
	case *controlStructures.IfControlStructure:
		for i := range cs.Conditions {
			cs.Conditions[i] = w.expr(cs.Conditions[i], inner)
		}
		for _, body := range cs.Wrappers {
			w.wrapper(body, inner)
		}
	case *controlStructures.ForControlStructure:
		cs.ObjectEvaluator = w.expr(cs.ObjectEvaluator, inner)
		cs.IfCondition = w.expr(cs.IfCondition, inner)
		w.guard(cs.BodyWrapper, inner, true)
		w.wrapper(cs.EmptyWrapper, inner)
	case *setStatement:
		cs.target = w.expr(cs.target, inner)
		cs.expression = w.expr(cs.expression, inner)
		cs.condition = w.expr(cs.condition, inner)
		cs.alternative = w.expr(cs.alternative, inner)
		w.wrapper(cs.body, inner)
	case *controlStructures.MacroControlStructure:
		w.macro(cs.Macro, inner)
	case *controlStructures.CallControlStructure:
		cs.Call = w.expr(cs.Call, inner).(*nodes.Call) // a call stays a call
		w.guard(cs.Body, inner, false)
	case *controlStructures.DoControlStructure:
		cs.Expression = w.expr(cs.Expression, inner)
	case *controlStructures.AutoescapeControlStructure:
		w.wrapper(cs.Wrapper, inner)
	case *generationBlock:
		w.wrapper(cs.body, inner)
	case *withStatement:
		for _, a := range cs.assignments {
			a.Value = w.expr(a.Value, inner)
		}
		w.wrapper(cs.body, inner)
	case *filterBlock:
		for _, f := range cs.filters {
			w.filterCall(f, inner)
		}
		w.wrapper(cs.body, inner)
	case *controlStructures.BlockControlStructure, *controlStructures.RawControlStructure,
		*controlStructures.BreakControlStructure, *controlStructures.ContinueControlStructure,
		*noLoaderStatement:
		// Nothing inside, or (a block) its body is in Template.Blocks.
	default:
		// A statement whose parts the rewriter cannot reach could run
		// loops or print text outside the limits.
		w.fail("the %q statement is not supported in chat templates", block.Name)
		return
	}
	cs, ok := block.ControlStructure.(exec.ControlStructure)
	if !ok {
		w.fail("the %q statement cannot be executed", block.Name)
		return
	}
	block.ControlStructure = &limitedStatement{inner: cs}
}

func (w *rewriter) exprs(list []nodes.Expression, level int) {
	for i := range list {
		list[i] = w.expr(list[i], level)
	}
}

func (w *rewriter) kwargs(m map[string]nodes.Expression, level int) {
	for k, v := range m {
		m[k] = w.expr(v, level)
	}
}

func (w *rewriter) filterCall(f *nodes.FilterCall, level int) {
	w.exprs(f.Args, level)
	w.kwargs(f.Kwargs, level)
}

// expr returns e rewritten: each Python operator becomes its filter and
// each literal list, tuple or dict gets checked once built (pyops.go).
func (w *rewriter) expr(e nodes.Expression, level int) nodes.Expression {
	if e == nil || !w.at(level) {
		return e
	}
	inner := level + 1
	switch n := e.(type) {
	case *nodes.BinaryExpression:
		n.Left, n.Right = w.expr(n.Left, inner), w.expr(n.Right, inner)
		if n.Operator == nil || n.Operator.Token == nil {
			return e
		}
		if name, ok := pyOperators[n.Operator.Token.Type]; ok {
			return withFilter(n.Left, n.Operator.Token, name, n.Right)
		}
	case *nodes.FilteredExpression:
		n.Expression = w.expr(n.Expression, inner)
		for _, f := range n.Filters {
			w.filterCall(f, inner)
		}
	case *nodes.TestExpression:
		n.Expression = w.expr(n.Expression, inner)
		if n.Test != nil {
			w.exprs(n.Test.Args, inner)
			w.kwargs(n.Test.Kwargs, inner)
		}
	case *nodes.Call:
		// For a method call, gonja evaluates Parent, which the parser
		// made the same node as the receiver in Func: keep them the same.
		receiver := func() nodes.Node {
			if g, ok := n.Func.(*nodes.GetAttribute); ok {
				return g.Node
			}
			return nil
		}
		sameParent := n.Parent != nil && n.Parent == receiver()
		n.Func = w.expr(n.Func, inner)
		if sameParent {
			n.Parent = receiver()
		}
		w.exprs(n.Args, inner)
		w.kwargs(n.Kwargs, inner)
	case *nodes.GetItem:
		n.Node, n.Arg = w.expr(n.Node, inner), w.expr(n.Arg, inner)
		if n.Arg != nil {
			return withFilter(n.Node, n.Location, pyGetItemFilter, n.Arg)
		}
	case *nodes.GetSlice:
		n.Node, n.Start, n.End, n.Step = w.expr(n.Node, inner), w.expr(n.Start, inner), w.expr(n.End, inner), w.expr(n.Step, inner)
	case *nodes.GetAttribute:
		n.Node = w.expr(n.Node, inner)
	case *nodes.Negation:
		n.Term = w.expr(n.Term, inner)
	case *nodes.UnaryExpression:
		n.Term = w.expr(n.Term, inner)
	case *nodes.List:
		w.exprs(n.Val, inner)
		return withFilter(n, n.Location, pyValueFilter)
	case *nodes.Tuple:
		w.exprs(n.Val, inner)
		return withFilter(n, n.Location, pyValueFilter)
	case *nodes.Dict:
		for _, p := range n.Pairs {
			p.Key, p.Value = w.expr(p.Key, inner), w.expr(p.Value, inner)
		}
		return withFilter(n, n.Token, pyValueFilter)
	case *nodes.Variable:
		for _, p := range n.Parts {
			w.exprs(p.Args, inner)
			w.kwargs(p.Kwargs, inner)
		}
	}
	return e
}

// withFilter returns `e | name(args...)`.
func withFilter(e nodes.Expression, at *tokens.Token, name string, args ...nodes.Expression) nodes.Expression {
	return &nodes.FilteredExpression{
		Expression: e,
		Filters:    []*nodes.FilterCall{{Token: at, Name: name, Args: args, Kwargs: map[string]nodes.Expression{}}},
	}
}

// printStatement prints a piece of text or an {{ expression }}, as gonja
// does, through the render's meter.
type printStatement struct{ node nodes.Node }

func printNode(n nodes.Node) *nodes.ControlStructureBlock {
	return &nodes.ControlStructureBlock{Location: n.Position(), Name: "print", ControlStructure: &printStatement{node: n}}
}

func (p *printStatement) Position() *tokens.Token { return p.node.Position() }
func (p *printStatement) String() string          { return p.node.String() }

func (p *printStatement) Execute(r *exec.Renderer, _ *nodes.ControlStructureBlock) error {
	s := stateOf(r)
	if s == nil {
		return errNoState
	}
	if err := s.tick(); err != nil {
		return err
	}
	_, err := s.metered(r).Visit(p.node)
	return s.settled(err)
}

// limitedStatement runs a statement after checking the clock, with its
// output through the render's meter: the statements that write (raw,
// call) then write through it, and so do those they run.
type limitedStatement struct{ inner exec.ControlStructure }

func (l *limitedStatement) Position() *tokens.Token { return l.inner.Position() }
func (l *limitedStatement) String() string          { return l.inner.String() }

func (l *limitedStatement) Execute(r *exec.Renderer, block *nodes.ControlStructureBlock) error {
	s := stateOf(r)
	if s == nil {
		return errNoState
	}
	if err := s.tick(); err != nil {
		return err
	}
	return s.settled(l.inner.Execute(s.metered(r), block))
}

// guardStatement runs the body of a loop (one iteration), macro, call
// block or block, counting it against Limits.Iterations and Limits.Depth.
// It runs the body in the scope it is in, as the body would have run.
type guardStatement struct {
	body      *nodes.Wrapper
	iteration bool
}

func (g *guardStatement) Position() *tokens.Token { return g.body.Position() }
func (g *guardStatement) String() string          { return "guard" }

func (g *guardStatement) Execute(r *exec.Renderer, _ *nodes.ControlStructureBlock) error {
	s := stateOf(r)
	if s == nil {
		return errNoState
	}
	defer s.leave()
	if err := s.enter(g.iteration); err != nil {
		return err
	}
	err := nodes.Walk(r, g.body)
	if err == nil || isLoopControl(err) {
		return err // break and continue pass through as errors
	}
	// The first error to leave a loop body or a macro is the render's
	// error: Jinja's exceptions end a render too.
	return s.fail(newGonjaError(err))
}

// isLoopControl reports whether err is {% break %} or {% continue %} on
// its way to its loop.
func isLoopControl(err error) bool {
	var b *controlStructures.LoopBreakError
	var c *controlStructures.LoopContinueError
	return errors.As(err, &b) || errors.As(err, &c)
}

// settled returns the render's error in place of err once the render has
// one. An error rises through every statement and macro call it is
// nested in, and gonja wraps it at each: around a statement with a
// message, and at a macro call by copying the text of everything wrapped
// so far into a new message (exec/calls.go). Nested n levels, the copies
// add up to n²/2 messages: 30,000 levels (a recursive macro called 128
// deep, its call inside 240 nested ifs) took minutes and gigabytes to
// report one error. Returning the recorded error at each statement keeps
// every copy one message long.
func (s *renderState) settled(err error) error {
	if err != nil && s.err != nil {
		return s.err
	}
	return err
}

// noLoaderStatement is {% include %}, {% import %}, {% from %} and
// {% extends %}. Hugging Face renders chat templates without a loader, so
// in Jinja these parse and then fail when they run, with "no loader for
// this environment specified"; so here. (gonja's own would read this
// template again, and one that includes itself never ends.)
type noLoaderStatement struct {
	location *tokens.Token
	name     string
}

// noLoaderParser returns the parser of the named statement.
func noLoaderParser(name string) parser.ControlStructureParser {
	return func(p *parser.Parser, args *parser.Parser) (nodes.ControlStructure, error) {
		s := &noLoaderStatement{location: p.Current(), name: name}
		for !args.End() { // the arguments are not needed
			args.Consume()
		}
		return s, nil
	}
}

func (s *noLoaderStatement) Position() *tokens.Token { return s.location }
func (s *noLoaderStatement) String() string {
	return fmt.Sprintf("%s(Line=%d Col=%d)", s.name, s.location.Line, s.location.Col)
}

func (s *noLoaderStatement) Execute(r *exec.Renderer, _ *nodes.ControlStructureBlock) error {
	err := fmt.Errorf("%w: {%% %s %%}: no loader for this environment specified (chat templates cannot load other templates)", ErrRender, s.name)
	if st := stateOf(r); st != nil {
		return st.fail(err)
	}
	return err
}

// withStatement is {% with a = x, b = y %}...{% endwith %}: the body runs
// in a scope of its own with the variables set. gonja's keeps its parts
// out of the rewriter's reach.
type withStatement struct {
	location    *tokens.Token
	assignments []*nodes.Pair // Key is a *nodes.Name
	body        *nodes.Wrapper
}

func (s *withStatement) Position() *tokens.Token { return s.location }
func (s *withStatement) String() string {
	return fmt.Sprintf("with(Line=%d Col=%d)", s.location.Line, s.location.Col)
}

func parseWith(p *parser.Parser, args *parser.Parser) (nodes.ControlStructure, error) {
	s := &withStatement{location: p.Current()}
	for !args.End() {
		name := args.Match(tokens.Name)
		if name == nil {
			return nil, args.Error("Expected an identifier", args.Current())
		}
		if args.Match(tokens.Assign) == nil {
			return nil, args.Error("Expected '='.", args.Current())
		}
		value, err := args.ParseExpression()
		if err != nil {
			return nil, err
		}
		s.assignments = append(s.assignments, &nodes.Pair{Key: &nodes.Name{Name: name}, Value: value})
		if args.Match(tokens.Comma) == nil {
			break
		}
	}
	if !args.End() {
		return nil, args.Error("Malformed 'with' tag args.", args.Current())
	}
	body, endargs, err := p.WrapUntil("endwith")
	if err != nil {
		return nil, err
	}
	if !endargs.End() {
		return nil, endargs.Error("Arguments not allowed here.", nil)
	}
	s.body = body
	return s, nil
}

func (s *withStatement) Execute(r *exec.Renderer, _ *nodes.ControlStructureBlock) error {
	sub := r.Inherit()
	for _, a := range s.assignments {
		v := r.Eval(a.Value) // in the enclosing scope, as Jinja does
		if v.IsError() {
			return v
		}
		sub.Environment.Context.Set(a.Key.(*nodes.Name).Name.Val, v)
	}
	return sub.ExecuteWrapper(s.body)
}

// filterBlock is {% filter f | g(x) %}...{% endfilter %}: the body's text
// passed through the filters. gonja's keeps its parts out of reach.
type filterBlock struct {
	location *tokens.Token
	filters  []*nodes.FilterCall
	body     *nodes.Wrapper
}

func (b *filterBlock) Position() *tokens.Token { return b.location }
func (b *filterBlock) String() string {
	return fmt.Sprintf("filter(Line=%d Col=%d)", b.location.Line, b.location.Col)
}

func parseFilterBlock(p *parser.Parser, args *parser.Parser) (nodes.ControlStructure, error) {
	b := &filterBlock{location: p.Current()}
	for !args.End() {
		f, err := args.ParseFilter()
		if err != nil {
			return nil, err
		}
		b.filters = append(b.filters, f)
		if args.Match(tokens.Pipe) == nil {
			break
		}
	}
	if len(b.filters) == 0 || !args.End() {
		return nil, args.Error("Malformed filter-tag args.", args.Current())
	}
	body, endargs, err := p.WrapUntil("endfilter")
	if err != nil {
		return nil, err
	}
	if !endargs.End() {
		return nil, endargs.Error("endfilter takes no arguments", nil)
	}
	b.body = body
	return b, nil
}

func (b *filterBlock) Execute(r *exec.Renderer, _ *nodes.ControlStructureBlock) error {
	var buf bytes.Buffer
	sub := r.Inherit()
	sub.Output = &buf
	if err := sub.ExecuteWrapper(b.body); err != nil {
		return err
	}
	value := exec.AsValue(buf.String())
	for _, f := range b.filters {
		value = r.Evaluator().ExecuteFilter(f, value)
		if value.IsError() {
			return value
		}
	}
	_, err := io.WriteString(r.Output, value.String())
	return err
}
