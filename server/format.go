package server

import (
	"encoding/json"
	"errors"
	"strings"
	"sync"

	"github.com/gollm/gollm/grammar"
)

// response_format: structured output, in OpenAI's shape.
//
//	{"type": "text"}          no constraint (as when absent)
//	{"type": "json_object"}   any JSON object (grammar.JSONObject)
//	{"type": "json_schema", "json_schema": {"name": "person", "strict": true,
//	    "schema": {"type": "object", "properties": {…}, "required": […]}}}
//
// The schema becomes a grammar (grammar.JSONSchema) that constrains every
// token of the answer (see the root package's constrain.go): the answer
// is always a JSON text that validates against the schema, and it ends
// by itself where the schema is complete. "strict" is accepted and
// changes nothing: the constraint is always strict. A schema the grammar
// cannot express (an unsupported keyword, a pattern outside the regex
// subset, over the size limits) is a 400 whose message is the grammar's:
//
//	response_format.json_schema.schema: schema at /properties/age: "multipleOf": not supported
//
// llama-server's extensions are accepted too, on both endpoints:
// "grammar", a GBNF string, and "json_schema", a schema object. At most
// one of the three per request; a GBNF grammar that does not parse is a
// 400 naming its line and column.
//
// A constrained answer is all answer: a template that opens a thought
// (DeepSeek-R1) gets none, since "<think>" is a special token and the
// grammar refuses it, so the thought/answer split is off.

type responseFormat struct {
	Type       *string `json:"type"`
	JSONSchema *struct {
		Name        *string         `json:"name"`
		Description *string         `json:"description"`
		Schema      json.RawMessage `json:"schema"`
		Strict      *bool           `json:"strict"`
	} `json:"json_schema"`
}

// constraintFields are the constraint fields both endpoints accept.
type constraintFields struct {
	ResponseFormat json.RawMessage `json:"response_format"`
	Grammar        *string         `json:"grammar"`
	JSONSchema     json.RawMessage `json:"json_schema"`
}

// grammar reads the constraint fields: nil when none is set.
func (f *constraintFields) grammar() (*grammar.Grammar, *apiError) {
	set := func(raw json.RawMessage) bool { return len(raw) > 0 && string(raw) != "null" }
	n := 0
	for _, ok := range []bool{set(f.ResponseFormat), f.Grammar != nil, set(f.JSONSchema)} {
		if ok {
			n++
		}
	}
	switch {
	case n > 1:
		return nil, badRequest("response_format", "response_format, grammar and json_schema exclude each other: send one")
	case f.Grammar != nil:
		g, err := grammar.Parse(*f.Grammar)
		if err != nil {
			return nil, badRequest("grammar", "grammar: %s", shorten(err.Error(), 500))
		}
		return g, nil
	case set(f.JSONSchema):
		g, err := grammar.JSONSchema(f.JSONSchema)
		if err != nil {
			return nil, badRequest("json_schema", "json_schema: %s", shorten(err.Error(), 500))
		}
		return g, nil
	}
	return responseGrammar(f.ResponseFormat)
}

// jsonObject is grammar.JSONObject, parsed once.
var jsonObject = sync.OnceValues(func() (*grammar.Grammar, error) { return grammar.Parse(grammar.JSONObject) })

// responseGrammar reads response_format: nil when absent or "text".
func responseGrammar(raw json.RawMessage) (*grammar.Grammar, *apiError) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var f responseFormat
	if err := json.Unmarshal(raw, &f); err != nil {
		return nil, badRequest("response_format", "response_format must be an object such as {\"type\": \"json_object\"}: %s", shorten(err.Error(), 200))
	}
	if f.Type == nil {
		return nil, badRequest("response_format.type", "response_format.type is required: text, json_object or json_schema")
	}
	switch *f.Type {
	case "text":
		return nil, nil
	case "json_object":
		g, err := jsonObject()
		if err != nil {
			return nil, errorf(500, "", "", "the JSON object grammar does not parse: %v", err)
		}
		return g, nil
	case "json_schema":
	default:
		return nil, badRequest("response_format.type", "response_format.type is text, json_object or json_schema, not %q", shorten(*f.Type, 40))
	}
	js := f.JSONSchema
	switch {
	case js == nil:
		return nil, badRequest("response_format.json_schema", "response_format.json_schema is required with type json_schema: {\"name\": …, \"schema\": {…}}")
	case js.Name == nil || *js.Name == "":
		return nil, badRequest("response_format.json_schema.name", "response_format.json_schema.name is required")
	case len(*js.Name) > 64:
		return nil, badRequest("response_format.json_schema.name", "response_format.json_schema.name is %d bytes, at most 64 are allowed", len(*js.Name))
	case len(js.Schema) == 0 || string(js.Schema) == "null":
		return nil, badRequest("response_format.json_schema.schema", "response_format.json_schema.schema is required: a JSON Schema")
	}
	g, err := grammar.JSONSchema(js.Schema)
	if err != nil {
		var se *grammar.SchemaError
		msg := err.Error()
		if !errors.As(err, &se) {
			msg = "the schema's grammar is refused: " + msg
		}
		return nil, badRequest("response_format.json_schema.schema", "response_format.json_schema.schema: %s", shorten(msg, 500))
	}
	return g, nil
}

// Tool calls, constrained. When a request offers tools (and no
// response_format), and the model calls tools the Qwen3/Hermes way (its
// template tells it to write <tool_call>…</tool_call>, and both are
// single tokens of its vocabulary), the answer gets a lazy grammar
// (gollm.GenerateOptions.Trigger): text stays free, but from each
// <tool_call> token to its </tool_call> the model can only write
//
//	\n{"name": "<one of the tools>", "arguments": <that tool's parameters>}\n
//
// so every call parses and its arguments validate against the declared
// JSON Schema. A tool whose parameters the grammar cannot express leaves
// the request unconstrained, as before (the calls are still parsed, and a
// malformed one stays content): strictness is not worth refusing a
// request that worked. With a response_format (or grammar, json_schema)
// as well, that constraint wins and covers the whole answer, which then
// has no tool calls: <tool_call> is a special token no grammar spells.

// wireTool is one entry of "tools".
type wireTool struct {
	Type     string `json:"type"`
	Function struct {
		Name       string          `json:"name"`
		Parameters json.RawMessage `json:"parameters"`
	} `json:"function"`
}

// toolCallGrammar is the grammar of one call's inside, or nil when a tool
// cannot be expressed.
func toolCallGrammar(tools json.RawMessage) *grammar.Grammar {
	var list []wireTool
	if json.Unmarshal(tools, &list) != nil || len(list) == 0 {
		return nil
	}
	var calls []string
	for _, t := range list {
		if t.Type != "function" || t.Function.Name == "" {
			return nil
		}
		name, _ := json.Marshal(t.Function.Name)
		params := t.Function.Parameters
		if len(params) == 0 || string(params) == "null" {
			params = json.RawMessage(`{"type": "object"}`)
		}
		// Written by hand, not marshalled from a map: the grammar keeps
		// the properties' order, and the model writes "name" first.
		calls = append(calls, `{"type": "object", "properties": {"name": {"const": `+string(name)+`}, "arguments": `+string(params)+
			`}, "required": ["name", "arguments"], "additionalProperties": false}`)
	}
	src, err := grammar.FromJSONSchema([]byte(`{"anyOf": [` + strings.Join(calls, ", ") + `]}`))
	if err != nil {
		return nil
	}
	// The schema's grammar starts "root ::= X"; the call is X between
	// newlines, as Qwen3's template shows it.
	first, rest, _ := strings.Cut(src, "\n")
	body, ok := strings.CutPrefix(first, "root ::= ")
	if !ok {
		return nil
	}
	g, err := grammar.Parse(`root ::= "\n" ( ` + body + ` ) "\n"` + "\n" + rest)
	if err != nil {
		return nil
	}
	return g
}
