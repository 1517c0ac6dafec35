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
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"sync"

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

// Template is a parsed chat template. It is safe for concurrent use.
type Template struct {
	source   string
	bos, eos string
	mu       sync.Mutex // gonja templates are not documented as reentrant
	tpl      *exec.Template
}

// environment is Hugging Face's template environment in gonja terms.
var environment = sync.OnceValue(func() *exec.Environment {
	filters := exec.NewFilterSet(map[string]exec.FilterFunction{})
	filters.Update(builtins.Filters)
	mustOK(filters.Replace("tojson", filterToJSON))
	mustOK(filters.Register(pyAddFilter, filterPyAdd))

	statements := exec.NewControlStructureSet(map[string]parser.ControlStructureParser{})
	statements.Update(builtins.ControlStructures)
	mustOK(statements.Replace("set", parseSet))
	mustOK(statements.Register("generation", parseGeneration))

	ctx := exec.EmptyContext().
		Update(builtins.GlobalFunctions).
		Update(builtins.GlobalVariables).
		Update(exec.NewContext(map[string]any{
			"raise_exception": raiseException,
			"strftime_now":    strftimeNow,
		}))
	return &exec.Environment{
		Context:           ctx,
		Filters:           filters,
		Tests:             builtins.Tests,
		ControlStructures: statements,
		Methods:           builtins.Methods,
	}
})

func mustOK(err error) {
	if err != nil {
		panic(err) // only on a programming error in the setup above
	}
}

// NewTemplate parses a chat template. bos and eos are the texts of the
// model's BOS and EOS tokens, available to the template as bos_token and
// eos_token.
func NewTemplate(source, bos, eos string) (*Template, error) {
	cfg := config.New()
	cfg.TrimBlocks = true      // drop the first newline after a block tag
	cfg.LeftStripBlocks = true // strip spaces before a block tag on its line
	const name = "/chat_template.jinja"
	loader, err := loaders.NewMemoryLoader(map[string]string{name: source})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSyntax, err)
	}
	tpl, err := parseTemplate(name, cfg, loader)
	if err != nil {
		return nil, err
	}
	rewritePlus(tpl.Root())
	return &Template{source: source, bos: bos, eos: eos, tpl: tpl}, nil
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
// eos_token, and opts.Extra.
func (t *Template) Render(msgs []Message, opts RenderOptions) (string, error) {
	vars := map[string]any{
		"bos_token": t.bos,
		"eos_token": t.eos,
		"tools":     nil, // Hugging Face passes tools=None when there are none
		"documents": nil,
	}
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
	rec := &renderErrors{}
	vars[errorsVar] = rec

	t.mu.Lock()
	defer t.mu.Unlock()
	out, err := t.tpl.ExecuteToString(exec.NewContext(vars))
	switch {
	case rec.first != nil:
		return "", rec.first // raised by this package's filters: the clear message
	case err != nil:
		return "", fmt.Errorf("%w: %w", ErrRender, err)
	}
	return out, nil
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
