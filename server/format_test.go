package server

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"

	"github.com/gollm/gollm/grammar"
	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/shared"
	"github.com/santhosh-tekuri/jsonschema/v6"
)

// The schema of the response_format tests: nested objects, an array and
// enums, all bounded, so that every answer ends by itself.
const personSchema = `{"type": "object", "properties": {
	"name": {"type": "string", "minLength": 1, "maxLength": 12},
	"role": {"enum": ["admin", "user", "guest"]},
	"tags": {"type": "array", "items": {"type": "string", "maxLength": 6}, "maxItems": 3},
	"address": {"type": "object", "properties": {"city": {"type": "string", "maxLength": 10}, "zip": {"type": "integer", "minimum": 0, "maximum": 99999}},
		"required": ["city"], "additionalProperties": false}},
	"required": ["name", "role", "address"], "additionalProperties": false}`

// TestResponseFormat: with the OpenAI SDK, non-streaming and streaming,
// on the random DeepSeek-R1-Qwen3 (real vocabulary; its template opens a
// thought): "json_schema" answers validate against the schema (checked by
// santhosh-tekuri/jsonschema), "json_object" answers are JSON objects,
// every json_schema answer ends with "stop" by itself (a json_object
// answer may run to max_tokens: a prefix of an object then), all of it content (no
// reasoning), and n = 2 gives two valid answers.
func TestResponseFormat(t *testing.T) {
	ts := newTestServer(t, deepseekModel, Options{Parallel: 2})
	var schema map[string]any
	if err := json.Unmarshal([]byte(personSchema), &schema); err != nil {
		t.Fatal(err)
	}
	sch := compileSchema(t, personSchema)
	withSchema := openai.ChatCompletionNewParamsResponseFormatUnion{OfJSONSchema: &shared.ResponseFormatJSONSchemaParam{
		JSONSchema: shared.ResponseFormatJSONSchemaJSONSchemaParam{Name: "person", Schema: schema, Strict: openai.Bool(true)}}}
	anyObject := openai.ChatCompletionNewParamsResponseFormatUnion{OfJSONObject: &shared.ResponseFormatJSONObjectParam{}}
	check := func(what, content, reasoning, finish string, sch *jsonschema.Schema) {
		t.Helper()
		var v any
		switch {
		case finish != "stop":
			t.Errorf("%s: finish %q, want stop: %q", what, finish, content)
		case reasoning != "":
			t.Errorf("%s: reasoning %q, want none", what, reasoning)
		case json.Unmarshal([]byte(content), &v) != nil:
			t.Errorf("%s: %q is not JSON", what, content)
		case sch != nil:
			if err := validate(sch, content); err != nil {
				t.Errorf("%s: %q does not validate: %v", what, content, err)
			}
		default:
			if _, ok := v.(map[string]any); !ok {
				t.Errorf("%s: %q is not an object", what, content)
			}
		}
	}
	obj, err := grammar.Parse(grammar.JSONObject)
	if err != nil {
		t.Fatal(err)
	}
	ended := map[string]int{}
	for seed := range int64(3) {
		for _, tc := range []struct {
			name string
			rf   openai.ChatCompletionNewParamsResponseFormatUnion
			sch  *jsonschema.Schema
			max  int64
		}{{"json_schema", withSchema, sch, 400}, {"json_object", anyObject, nil, 200}} {
			p := openai.ChatCompletionNewParams{
				Model:          deepseekModel,
				Messages:       []openai.ChatCompletionMessageParamUnion{openai.UserMessage("Describe a person as JSON.")},
				Temperature:    openai.Float(1),
				Seed:           openai.Int(seed),
				MaxTokens:      openai.Int(tc.max),
				ResponseFormat: tc.rf,
			}
			resp, err := ts.client.Chat.Completions.New(context.Background(), p)
			if err != nil {
				t.Fatal(err)
			}
			msg := resp.Choices[0].Message
			content, reasoning, finish, _ := streamChat(t, ts.client, p)
			if tc.name == "json_object" && resp.Choices[0].FinishReason == "length" {
				// Any object is an unbounded language: noise may not
				// close a string before max_tokens. The cut answer is
				// still a prefix of a JSON object.
				if _, err := obj.NewMatcher().AcceptString(msg.Content); err != nil {
					t.Errorf("json_object cut at max_tokens: %q is not a prefix of an object: %v", msg.Content, err)
				}
			} else {
				check(tc.name, msg.Content, reasoningOf(msg), resp.Choices[0].FinishReason, tc.sch)
				check(tc.name+" streaming", content[0], reasoning[0], finish[0], tc.sch)
				ended[tc.name]++
			}
			if content[0] != msg.Content {
				t.Errorf("%s, seed %d: streamed %q, whole %q", tc.name, seed, content[0], msg.Content)
			}
			if seed == 0 {
				t.Logf("%s: %s", tc.name, msg.Content)
			}
		}
	}
	t.Logf("answers that ended by themselves, of 3: %v", ended)
	if ended["json_schema"] != 3 || ended["json_object"] == 0 {
		t.Errorf("answers that ended by themselves: %v; want all 3 json_schema and some json_object", ended)
	}
	p := openai.ChatCompletionNewParams{Model: deepseekModel, Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("Two people.")},
		Temperature: openai.Float(1), Seed: openai.Int(9), MaxTokens: openai.Int(400), N: openai.Int(2), ResponseFormat: withSchema}
	resp, err := ts.client.Chat.Completions.New(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range resp.Choices {
		check("n=2 choice "+string(rune('0'+i)), c.Message.Content, reasoningOf(c.Message), c.FinishReason, sch)
	}
}

// TestResponseFormatErrors: a bad response_format is a 400 naming the
// field, and a schema the grammar cannot express is a 400 with the
// grammar's *SchemaError: the path in the schema and the keyword.
func TestResponseFormatErrors(t *testing.T) {
	ts := newTestServer(t, deepseekModel, Options{Parallel: 1})
	msgs := `"messages": [{"role": "user", "content": "hi"}], "max_tokens": 4`
	for _, tc := range []struct{ format, param, want string }{
		{`{"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object", "properties": {"age": {"type": "integer", "multipleOf": 3}}}}}`,
			"response_format.json_schema.schema", `schema at /properties/age: "multipleOf"`},
		{`{"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "string", "pattern": "(?=x)"}}}`,
			"response_format.json_schema.schema", `"pattern"`},
		{`{"type": "json_schema", "json_schema": {"name": "x", "schema": {"$ref": "#/$defs/nope"}}}`,
			"response_format.json_schema.schema", `$ref`},
		{`{"type": "json_schema", "json_schema": {"name": "x"}}`, "response_format.json_schema.schema", "is required"},
		{`{"type": "json_schema", "json_schema": {"schema": {}}}`, "response_format.json_schema.name", "is required"},
		{`{"type": "json_schema"}`, "response_format.json_schema", "is required"},
		{`{"type": "xml"}`, "response_format.type", `not "xml"`},
		{`{}`, "response_format.type", "is required"},
		{`"json"`, "response_format", "must be an object"},
	} {
		code, body := ts.post(t, "/v1/chat/completions", `{`+msgs+`, "response_format": `+tc.format+`}`)
		if code != 400 {
			t.Errorf("%s: status %d, want 400: %s", tc.format, code, body)
			continue
		}
		e := checkErrorShape(t, body)
		if e["param"] != tc.param || !strings.Contains(e["message"].(string), tc.want) {
			t.Errorf("%s: param %v, message %q; want %s, %q", tc.format, e["param"], e["message"], tc.param, tc.want)
		}
	}
	// llama-server's extensions, and one constraint at most.
	for _, tc := range []struct{ fields, param, want string }{
		{`"grammar": "root ::= (\"a\""`, "grammar", "grammar: grammar:1:"},
		{`"grammar": 5`, "grammar", "grammar must be a string"},
		{`"json_schema": {"type": "string", "format": "email"}`, "json_schema", `"format"`},
		{`"grammar": "root ::= \"a\"", "json_schema": {}`, "response_format", "exclude each other"},
		{`"response_format": {"type": "json_object"}, "grammar": "root ::= \"a\""`, "response_format", "exclude each other"},
	} {
		code, body := ts.post(t, "/v1/chat/completions", `{`+msgs+`, `+tc.fields+`}`)
		if code != 400 {
			t.Errorf("%s: status %d, want 400: %s", tc.fields, code, body)
			continue
		}
		e := checkErrorShape(t, body)
		if e["param"] != tc.param || !strings.Contains(e["message"].(string), tc.want) {
			t.Errorf("%s: param %v, message %q; want %s, %q", tc.fields, e["param"], e["message"], tc.param, tc.want)
		}
	}
	// "text" and null are no constraint.
	for _, f := range []string{`{"type": "text"}`, `null`} {
		if code, body := ts.post(t, "/v1/chat/completions", `{`+msgs+`, "response_format": `+f+`}`); code != 200 {
			t.Errorf("%s: status %d: %s", f, code, body)
		}
	}
}

// TestGrammarExtensions: llama-server's "grammar" (GBNF) and
// "json_schema" fields constrain /v1/completions and
// /v1/chat/completions answers.
func TestGrammarExtensions(t *testing.T) {
	ts := newTestServer(t, deepseekModel, Options{Parallel: 1})
	for _, tc := range []struct{ path, body, want string }{
		{"/v1/completions", `{"prompt": "Q: yes or no?\nA:", "max_tokens": 16, "seed": 1, "grammar": "root ::= \" \" (\"yes\" | \"no\") \".\""}`, "yes|no"},
		{"/v1/chat/completions", `{"messages": [{"role": "user", "content": "A color?"}], "max_tokens": 16, "seed": 2,
			"json_schema": {"enum": ["red", "green", "blue"]}}`, "color"},
	} {
		code, body := ts.post(t, tc.path, tc.body)
		if code != 200 {
			t.Fatalf("%s: status %d: %s", tc.path, code, body)
		}
		var resp struct {
			Choices []struct {
				Text         string `json:"text"`
				FinishReason string `json:"finish_reason"`
				Message      struct {
					Content string `json:"content"`
				} `json:"message"`
			} `json:"choices"`
		}
		if err := json.Unmarshal(body, &resp); err != nil {
			t.Fatal(err)
		}
		c := resp.Choices[0]
		out := c.Text + c.Message.Content
		ok := out == " yes." || out == " no."
		if tc.want == "color" {
			ok = out == `"red"` || out == `"green"` || out == `"blue"`
		}
		if !ok || c.FinishReason != "stop" {
			t.Errorf("%s: %q (%s)", tc.path, out, c.FinishReason)
		}
	}
}

// TestToolCallsConstrained: with tools offered to a model that calls
// them the Qwen3 way, every <tool_call> span is constrained (a lazy
// grammar): the random Qwen3, its <tool_call> logit raised by logit_bias
// so that it calls often, makes only calls of declared functions whose
// arguments validate against their parameters, non-streaming and
// streaming alike (the same calls), with finish_reason "tool_calls"; only
// a call that max_tokens cuts stays in the content, unfinished.
func TestToolCallsConstrained(t *testing.T) {
	ts := newTestServer(t, qwen3Synth, Options{Parallel: 1})
	open, ok := loadModel(t, qwen3Synth).Tokenizer().TokenID("<tool_call>")
	if !ok {
		t.Fatal("no <tool_call> token")
	}
	weather := `{"type": "object", "properties": {"city": {"type": "string", "maxLength": 16}, "unit": {"enum": ["c", "f"]}}, "required": ["city"], "additionalProperties": false}`
	add := `{"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}}, "required": ["a", "b"], "additionalProperties": false}`
	schemas := map[string]*jsonschema.Schema{"get_weather": compileSchema(t, weather), "add": compileSchema(t, add)}
	tool := func(name, params string) openai.ChatCompletionToolUnionParam {
		var p map[string]any
		if err := json.Unmarshal([]byte(params), &p); err != nil {
			t.Fatal(err)
		}
		return openai.ChatCompletionFunctionTool(shared.FunctionDefinitionParam{Name: name, Parameters: p})
	}
	calls := 0
	for seed := range int64(4) {
		p := openai.ChatCompletionNewParams{
			Model:       qwen3Synth,
			Messages:    []openai.ChatCompletionMessageParamUnion{openai.UserMessage("What is the weather in Paris, and 2+2?")},
			Tools:       []openai.ChatCompletionToolUnionParam{tool("get_weather", weather), tool("add", add)},
			Temperature: openai.Float(1),
			Seed:        openai.Int(seed),
			MaxTokens:   openai.Int(200),
			LogitBias:   map[string]int64{strconv.Itoa(int(open)): 2},
		}
		resp, err := ts.client.Chat.Completions.New(context.Background(), p)
		if err != nil {
			t.Fatal(err)
		}
		var whole []string
		for _, c := range resp.Choices[0].Message.ToolCalls {
			f := c.Function
			whole = append(whole, f.Name+f.Arguments)
			if sch := schemas[f.Name]; sch == nil {
				t.Errorf("seed %d: a call of %q", seed, f.Name)
			} else if err := validate(sch, f.Arguments); err != nil {
				t.Errorf("seed %d: %s(%s): %v", seed, f.Name, f.Arguments, err)
			}
		}
		// A call stays in the content only when max_tokens cut it.
		content := resp.Choices[0].Message.Content
		if i := strings.LastIndex(content, "<tool_call>"); i >= 0 &&
			(resp.Choices[0].FinishReason != "length" || strings.Contains(content[i:], "</tool_call>") || strings.Count(content, "<tool_call>") > 1) {
			t.Errorf("seed %d: a whole call left in the content: %q", seed, content)
		}
		if len(whole) > 0 && resp.Choices[0].FinishReason != "tool_calls" && resp.Choices[0].FinishReason != "length" {
			t.Errorf("seed %d: finish %q after calls", seed, resp.Choices[0].FinishReason)
		}
		calls += len(whole)
		// Streaming: the same calls, each whole in one delta.
		st := ts.client.Chat.Completions.NewStreaming(context.Background(), p)
		var streamed []string
		for st.Next() {
			for _, ch := range st.Current().Choices {
				for _, c := range ch.Delta.ToolCalls {
					streamed = append(streamed, c.Function.Name+c.Function.Arguments)
				}
			}
		}
		if err := st.Err(); err != nil {
			t.Fatal(err)
		}
		st.Close()
		if strings.Join(streamed, "|") != strings.Join(whole, "|") {
			t.Errorf("seed %d: streamed calls %q, whole %q", seed, streamed, whole)
		}
		if seed == 0 {
			t.Logf("calls: %q", whole)
		}
	}
	if calls < 4 {
		t.Errorf("%d calls in 4 answers: the test should see several", calls)
	}
	t.Logf("%d calls, all valid", calls)
}

func compileSchema(t testing.TB, schema string) *jsonschema.Schema {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(strings.NewReader(schema))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	if err := c.AddResource("schema.json", doc); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile("schema.json")
	if err != nil {
		t.Fatal(err)
	}
	return sch
}

func validate(sch *jsonschema.Schema, s string) error {
	inst, err := jsonschema.UnmarshalJSON(strings.NewReader(s))
	if err != nil {
		return err
	}
	return sch.Validate(inst)
}
