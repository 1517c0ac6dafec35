// Package chat turns a conversation into the prompt text a model was trained
// on, and splits what the model writes back into its thinking and its answer.
//
// A GGUF file carries its model's chat template (tokenizer.chat_template), a
// Jinja program written for Hugging Face's apply_chat_template. Template
// renders it with gonja in an environment set up like Hugging Face's
// (trim_blocks, lstrip_blocks, loop controls, tojson, raise_exception,
// strftime_now, {% generation %}; see hfenv.go) plus
// the Python behaviours gonja lacks (see pyops.go), so that the rendered
// text is byte for byte what Hugging Face produces.
//
// Reasoning models (Qwen3, DeepSeek-R1) write their thoughts between <think>
// and </think> before the answer; ReasoningParser (reasoning.go) separates
// the two while the text streams in.
package chat

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/nikolalohinski/gonja/v2/builtins"
	"github.com/nikolalohinski/gonja/v2/config"
	"github.com/nikolalohinski/gonja/v2/exec"
	"github.com/nikolalohinski/gonja/v2/loaders"
	"github.com/nikolalohinski/gonja/v2/parser"

	"github.com/gollm/gollm/gguf"
)

// Sentinel errors, wrapped with detail.
var (
	ErrNoTemplate  = errors.New("chat: the model has no chat template")
	ErrSyntax      = errors.New("chat: template syntax error")
	ErrRender      = errors.New("chat: template error")
	ErrRaised      = errors.New("chat: template raised an exception")
	ErrInvalidJSON = errors.New("chat: invalid JSON")
	ErrValue       = errors.New("chat: value cannot be passed to a template")
)

// Message is one turn of a conversation.
type Message struct {
	Role    string // "system", "user", "assistant" or "tool"
	Content string
	// ReasoningContent is the thinking of an earlier assistant turn, kept
	// apart from Content. Empty means none: the variable is then undefined
	// in the template, which lets templates look for <think> in Content.
	ReasoningContent string
	ToolCalls        []ToolCall // an assistant turn's tool calls
	// Extra holds further keys of the message (such as "tool_call_id" or
	// "name"), in order.
	Extra Object
}

// ToolCall is one function call requested by the assistant.
type ToolCall struct {
	ID       string // optional
	Type     string // normally "function"
	Function FunctionCall
}

// FunctionCall names a function and its arguments. Arguments is either the
// JSON text of the arguments (a string) or the decoded value, usually an
// Object; templates treat the two differently (Qwen3 prints a string as it
// is and an object through tojson).
type FunctionCall struct {
	Name      string
	Arguments any
}

// RenderOptions are the variables a render passes besides the messages.
type RenderOptions struct {
	// AddGenerationPrompt ends the prompt with the opening of an assistant
	// turn, so the model writes the answer next.
	AddGenerationPrompt bool
	// Tools are the tool (function) definitions offered to the model,
	// usually Objects in OpenAI's format. nil means none.
	Tools []any
	// Extra are more template variables, such as "enable_thinking": false.
	// A "tools" entry is used when Tools is nil.
	Extra map[string]any
}

// Template is a parsed chat template. It is safe for concurrent use: renders
// share the parsed tree, which they only read, and nothing else.
type Template struct {
	source   string
	bos, eos string
	tpl      *exec.Template
	cfg      *config.Config
	loader   loaders.Loader
	depth    int // how deeply the template nests (see Limits.Depth)
	limits   Limits
}

// environment is Hugging Face's template environment in gonja terms, less
// what each render binds to its own limits (filters, methods, and the
// functions in renderState.functions; see Render).
var environment = sync.OnceValue(func() *exec.Environment {
	statements := exec.NewControlStructureSet(map[string]parser.ControlStructureParser{})
	for _, name := range []string{"autoescape", "block", "break", "call", "continue", "do", "for", "if", "macro", "raw"} {
		p, ok := builtins.ControlStructures.Get(name)
		if !ok {
			panic("chat: gonja has no statement " + name)
		}
		mustOK(statements.Register(name, p))
	}
	mustOK(statements.Register("set", parseSet))
	mustOK(statements.Register("generation", parseGeneration))
	mustOK(statements.Register("with", parseWith))
	mustOK(statements.Register("filter", parseFilterBlock))
	for _, name := range []string{"include", "import", "from", "extends"} {
		mustOK(statements.Register(name, noLoaderParser(name)))
	}
	// Not "trans": Hugging Face's Jinja has no i18n extension.

	functions := map[string]any{
		"raise_exception": raiseException,
		"strftime_now":    strftimeNow,
	}
	for _, name := range []string{"cycler", "joiner"} {
		functions[name], _ = builtins.GlobalFunctions.Get(name)
	}
	// Not gonja's global variable "gonja": a map shared by every render,
	// which a template could change ({% set gonja.x = 1 %}) under the
	// others. Not its gettext functions, which Hugging Face lacks.
	return &exec.Environment{
		Context:           exec.NewContext(functions),
		Tests:             builtins.Tests,
		ControlStructures: statements,
	}
})

func mustOK(err error) {
	if err != nil {
		panic(err) // only on a programming error in the setup above
	}
}

// NewTemplate parses a chat template. bos and eos are the texts of the
// model's BOS and EOS tokens, available to the template as bos_token and
// eos_token. Its renders are bounded by DefaultLimits; see WithLimits.
func NewTemplate(source, bos, eos string) (*Template, error) {
	cfg := config.New()
	cfg.TrimBlocks = true      // drop the first newline after a block tag
	cfg.LeftStripBlocks = true // strip spaces before a block tag on its line
	if len(source) > maxSource {
		return nil, fmt.Errorf("%w: the template is %d bytes, more than the %s a chat template may have", ErrSyntax, len(source), bytesText(maxSource))
	}
	if n := sourceNesting(source, cfg); n > MaxDepth {
		return nil, fmt.Errorf("%w: brackets and blocks nest %d levels deep, more than %d (MaxDepth)", ErrSyntax, n, MaxDepth)
	}
	const name = "/chat_template.jinja"
	loader, err := loaders.NewMemoryLoader(map[string]string{name: source})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSyntax, err)
	}
	tpl, err := parseTemplate(name, cfg, loader)
	if err != nil {
		return nil, err
	}
	var w rewriter
	if err := rewrite(&w, tpl); err != nil {
		return nil, err
	}
	return &Template{source: source, bos: bos, eos: eos, tpl: tpl, cfg: cfg, loader: loader,
		depth: w.deepest, limits: DefaultLimits()}, nil
}

// parseTemplate parses, turning a parser panic into an error.
func parseTemplate(name string, cfg *config.Config, loader loaders.Loader) (tpl *exec.Template, err error) {
	defer func() {
		if r := recover(); r != nil {
			tpl, err = nil, fmt.Errorf("%w: %v", ErrSyntax, r)
		}
	}()
	tpl, err = exec.NewTemplate(name, cfg, loader, environment())
	if err != nil {
		// gonja's message repeats the whole template source; keep the cause.
		msg := err.Error()
		if i := strings.LastIndex(msg, "': "); i >= 0 {
			msg = msg[i+3:]
		}
		return nil, fmt.Errorf("%w: %s", ErrSyntax, msg)
	}
	return tpl, nil
}

// rewrite runs the rewriter on tpl, turning a panic into an error.
func rewrite(w *rewriter, tpl *exec.Template) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %v", ErrSyntax, r)
		}
	}()
	w.template(tpl.Root())
	return w.err
}

// WithLimits returns a template that renders like t within limits; zero
// fields take their defaults. It shares t's parsed tree.
func (t *Template) WithLimits(limits Limits) *Template {
	c := *t
	c.limits = limits.orDefaults()
	return &c
}

// Limits returns the limits t renders within.
func (t *Template) Limits() Limits { return t.limits }

// FromGGUF parses the chat template stored in a GGUF file
// (tokenizer.chat_template), with the texts of its BOS and EOS tokens.
func FromGGUF(f *gguf.File) (*Template, error) {
	source, err := f.String("tokenizer.chat_template")
	if errors.Is(err, gguf.ErrKeyNotFound) {
		return nil, ErrNoTemplate
	}
	if err != nil {
		return nil, fmt.Errorf("chat: %w", err)
	}
	tokens, _ := f.Strings("tokenizer.ggml.tokens")
	text := func(key string) string {
		id, err := f.Uint(key)
		if err != nil || id >= uint64(len(tokens)) {
			return ""
		}
		return tokens[id]
	}
	return NewTemplate(source, text("tokenizer.ggml.bos_token_id"), text("tokenizer.ggml.eos_token_id"))
}

// Source returns the template text.
func (t *Template) Source() string { return t.source }

// BOS and EOS return the token texts given to the template.
func (t *Template) BOS() string { return t.bos }
func (t *Template) EOS() string { return t.eos }

// Render renders a conversation. The variables are those of Hugging Face's
// apply_chat_template: messages, tools, add_generation_prompt, bos_token,
// eos_token, and opts.Extra. It stops with an error wrapping ErrLimit when
// the template exceeds one of t's Limits.
func (t *Template) Render(msgs []Message, opts RenderOptions) (string, error) {
	return t.RenderContext(context.Background(), msgs, opts)
}

// RenderContext is Render, stopping also when ctx is done.
func (t *Template) RenderContext(ctx context.Context, msgs []Message, opts RenderOptions) (text string, err error) {
	limits := t.limits.orDefaults() // a Template made as a literal has none
	if t.depth > limits.Depth {
		return "", limitError("the template nests %d levels deep, deeper than Limits.Depth (%d)", t.depth, limits.Depth)
	}
	s := &renderState{ctx: ctx, limits: limits, deadline: time.Now().Add(limits.Time)}
	vars := s.functions()
	vars["bos_token"] = t.bos
	vars["eos_token"] = t.eos
	vars["tools"] = nil // Hugging Face passes tools=None when there are none
	vars["documents"] = nil
	for k, v := range opts.Extra {
		cv, err := toTemplateValue(v, 0)
		if err != nil {
			return "", fmt.Errorf("variable %q: %w", k, err)
		}
		vars[k] = cv
	}
	if opts.Tools != nil {
		tools, err := toTemplateValue(opts.Tools, 0)
		if err != nil {
			return "", fmt.Errorf("tools: %w", err)
		}
		vars["tools"] = tools
	}
	messages := make([]any, len(msgs))
	for i, m := range msgs {
		d, err := m.templateValue()
		if err != nil {
			return "", fmt.Errorf("message %d: %w", i, err)
		}
		messages[i] = d
	}
	vars["messages"] = messages
	vars["add_generation_prompt"] = opts.AddGenerationPrompt
	vars[stateKey] = s

	// Each render has its own environment: the shared functions and
	// statements, and filters and methods bound to s.
	bound := boundSets.Get().(*boundSet)
	bound.state = s
	defer func() {
		bound.state = nil
		boundSets.Put(bound)
	}()
	shared := environment()
	env := &exec.Environment{
		Context:           shared.Context.Inherit().Update(exec.NewContext(vars)),
		Filters:           bound.filters,
		Tests:             shared.Tests,
		ControlStructures: shared.ControlStructures,
		Methods:           bound.methods,
	}
	var out strings.Builder
	s.out = &meter{w: &out, state: s}
	defer func() {
		// gonja panics on some input; the limits keep it from overflowing
		// its stack or memory, which could not be recovered.
		if r := recover(); r != nil {
			text, err = "", fmt.Errorf("%w: the template engine failed: %v", ErrRender, r)
		}
	}()
	execErr := exec.NewRenderer(env, s.out, t.cfg, t.loader, t.tpl).Execute()
	switch {
	case s.err != nil:
		return "", s.err // a limit, or raised by this package's filters: the clear message
	case execErr != nil:
		return "", newGonjaError(execErr)
	}
	return out.String(), nil
}

// templateValue converts a message to the dict a template sees.
func (m Message) templateValue() (*exec.Dict, error) {
	o := Object{{"role", m.Role}, {"content", m.Content}}
	if m.ReasoningContent != "" {
		o = append(o, Field{"reasoning_content", m.ReasoningContent})
	}
	if len(m.ToolCalls) > 0 {
		calls := make([]any, len(m.ToolCalls))
		for i, c := range m.ToolCalls {
			call := Object{}
			if c.ID != "" {
				call = append(call, Field{"id", c.ID})
			}
			call = append(call, Field{"type", c.Type},
				Field{"function", Object{{"name", c.Function.Name}, {"arguments", c.Function.Arguments}}})
			calls[i] = call
		}
		o = append(o, Field{"tool_calls", calls})
	}
	for _, f := range m.Extra {
		if o.index(f.Key) < 0 {
			o = append(o, f)
		}
	}
	v, err := toTemplateValue(o, 0)
	if err != nil {
		return nil, err
	}
	return v.(*exec.Dict), nil
}

// toTemplateValue converts a Go value to what the template engine works
// with: Object and maps become ordered dicts, slices lists, numbers int or
// float64.
func toTemplateValue(v any, depth int) (any, error) {
	if depth > 100 {
		return nil, fmt.Errorf("%w: nested more than 100 levels", ErrValue)
	}
	switch x := v.(type) {
	case nil, string, bool, int, float64:
		return x, nil
	case json.Number:
		return parseNumber(x)
	case Object:
		d := exec.NewDict()
		for _, f := range x {
			cv, err := toTemplateValue(f.Value, depth+1)
			if err != nil {
				return nil, err
			}
			d.Pairs = append(d.Pairs, &exec.Pair{Key: exec.AsValue(f.Key), Value: exec.ToValue(cv)})
		}
		return d, nil
	case map[string]any: // no order of its own: sorted keys
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		o := make(Object, len(keys))
		for i, k := range keys {
			o[i] = Field{k, x[k]}
		}
		return toTemplateValue(o, depth)
	case Message:
		return x.templateValue()
	case json.RawMessage:
		dv, err := DecodeJSON(x)
		if err != nil {
			return nil, err
		}
		return toTemplateValue(dv, depth)
	case *exec.Dict, *exec.Value:
		return x, nil
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return int(rv.Int()), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return int(rv.Uint()), nil
	case reflect.Float32:
		return rv.Float(), nil
	case reflect.Slice, reflect.Array:
		list := make([]any, rv.Len())
		for i := range list {
			cv, err := toTemplateValue(rv.Index(i).Interface(), depth+1)
			if err != nil {
				return nil, err
			}
			list[i] = cv
		}
		return list, nil
	}
	return nil, fmt.Errorf("%w: %T", ErrValue, v)
}

// gonjaError is an error of gonja's own, told in one line. gonja wraps an
// error once for every statement it rises through ("Unable to execute
// controlStructure at line 1: IfControlStructure(Line=1 Col=23): …"),
// which says little and grows with the template's nesting; Error gives
// the line of the innermost statement and the cause. Unwrap still gives
// the whole chain.
type gonjaError struct {
	err  error
	line string // "line 3: ", or ""
	root string
}

func newGonjaError(err error) error {
	g := &gonjaError{err: err, root: rootCause(err).Error()}
	msg := err.Error()
	if i := strings.LastIndex(msg, " at line "); i >= 0 {
		rest := msg[i+len(" at line "):]
		if j := strings.IndexByte(rest, ':'); j > 0 {
			g.line = "line " + rest[:j] + ": "
		}
	}
	return g
}

func (g *gonjaError) Error() string   { return ErrRender.Error() + ": " + g.line + g.root }
func (g *gonjaError) Unwrap() []error { return []error{ErrRender, g.err} }

// rootCause follows pkg/errors' causes, and errors held in gonja's values,
// to the error at the bottom.
func rootCause(err error) error {
	for range 1000 { // a chain is as long as the nesting, at most MaxDepth per call
		switch e := err.(type) {
		case interface{ Cause() error }:
			if e.Cause() == nil {
				return err
			}
			err = e.Cause()
		case *exec.Value:
			inner, ok := e.Interface().(error)
			if !ok || inner == error(e) {
				return err
			}
			err = inner
		default:
			return err
		}
	}
	return err
}
