package grammar

import (
	"encoding/json"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// The nested schema the benchmark names: objects, arrays, enums.
const nestedSchema = `{
  "type": "object",
  "properties": {
    "id": {"type": "integer", "minimum": 1, "maximum": 99999},
    "status": {"enum": ["active", "inactive", "banned"]},
    "profile": {
      "type": "object",
      "properties": {
        "name": {"type": "string", "minLength": 1, "maxLength": 20},
        "tags": {"type": "array", "items": {"enum": ["a", "b", "c"]}, "maxItems": 3}
      },
      "required": ["name"],
      "additionalProperties": false
    },
    "scores": {"type": "array", "items": {"type": "number"}, "minItems": 1, "maxItems": 4}
  },
  "required": ["id", "status", "profile"],
  "additionalProperties": false
}`

var schemaTable = []struct {
	name   string
	schema string
	accept []string
	reject []string
}{
	{"string", `{"type": "string"}`, []string{`""`, `"abc"`, `"a\"b\\c\u00e9\n"`, `"日本"`}, []string{`abc`, `"a`, `"\ud800"`, "\"\x01\"", `1`}},
	{"integer", `{"type": "integer"}`, []string{`0`, `-12`, `9999999999999999`}, []string{`01`, `1.5`, `"1"`, `-`, `1e3`}},
	{"number", `{"type": "number"}`, []string{`0`, `-1.25`, `3e10`, `2.5E-3`}, []string{`.5`, `1.`, `+1`, `NaN`}},
	{"boolean", `{"type": "boolean"}`, []string{`true`, `false`}, []string{`True`, `1`, `null`}},
	{"null", `{"type": "null"}`, []string{`null`}, []string{`nul`, `{}`}},
	{"type array", `{"type": ["string", "null"]}`, []string{`"x"`, `null`}, []string{`1`, `[]`}},
	{"object", `{"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer"}}, "required": ["name"], "additionalProperties": false}`,
		[]string{`{"name":"Al"}`, `{"name": "Al", "age": 3}`, "{\n  \"name\": \"Al\",\n  \"age\": 3\n}"},
		[]string{`{}`, `{"age": 3}`, `{"age": 3, "name": "Al"}`, `{"name": "Al", "x": 1}`, `{"name": 1}`, `{"name":"Al",}`}},
	{"all optional", `{"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}, "c": {"type": "integer"}}}`,
		[]string{`{}`, `{"a":1}`, `{"b":2}`, `{"c":3}`, `{"a":1,"c":3}`, `{"a":1,"b":2,"c":3}`},
		[]string{`{,"a":1}`, `{"a":1,}`, `{"b":2,"a":1}`}},
	{"nested", nestedSchema,
		[]string{`{"id": 7, "status": "banned", "profile": {"name": "x", "tags": ["a", "c"]}, "scores": [1.5]}`, `{"id":99999,"status":"active","profile":{"name":"日本"}}`},
		[]string{`{"id": 0, "status": "banned", "profile": {"name": "x"}}`, `{"id": 7, "status": "gone", "profile": {"name": "x"}}`, `{"id": 7, "status": "active", "profile": {"name": ""}}`,
			`{"id": 7, "status": "active", "profile": {"name": "x", "tags": ["a", "b", "c", "a"]}}`, `{"id": 7, "status": "active", "profile": {"name": "x"}, "scores": []}`}},
	{"array bounds", `{"type": "array", "items": {"type": "integer"}, "minItems": 1, "maxItems": 3}`,
		[]string{`[1]`, `[1, 2]`, `[ 1,2,3 ]`}, []string{`[]`, `[1,2,3,4]`, `[1,]`, `["a"]`}},
	{"array any", `{"type": "array"}`, []string{`[]`, `[1, "a", null, [true], {"k": {}}]`}, []string{`[`, `{}`}},
	{"tuple", `{"type": "array", "prefixItems": [{"type": "string"}, {"type": "integer"}], "items": false, "minItems": 2}`,
		[]string{`["a", 1]`}, []string{`["a"]`, `["a", 1, 2]`, `[1, "a"]`, `[]`}},
	{"tuple then items", `{"type": "array", "prefixItems": [{"const": "cmd"}], "items": {"type": "boolean"}, "maxItems": 3}`,
		[]string{`[]`, `["cmd"]`, `["cmd", true]`, `["cmd", true, false]`}, []string{`[true]`, `["cmd", true, false, true]`, `["cmd", "cmd"]`}},
	{"enum", `{"enum": ["red", 1, null, {"a": [1, 2]}, "q\"uote"]}`,
		[]string{`"red"`, `1`, `null`, `{"a":[1,2]}`, `"q\"uote"`}, []string{`"blue"`, `2`, `{"a": [1, 2]}`}},
	{"enum with type", `{"type": "string", "enum": ["a", 1]}`, []string{`"a"`}, []string{`1`}},
	{"const", `{"const": "fixed"}`, []string{`"fixed"`}, []string{`"fixe"`, `"fixed "`}},
	{"anyOf", `{"anyOf": [{"type": "string", "maxLength": 2}, {"type": "integer", "minimum": 0}]}`,
		[]string{`"ab"`, `0`, `42`}, []string{`"abc"`, `-1`, `null`}},
	{"oneOf", `{"oneOf": [
		{"type": "object", "properties": {"kind": {"const": "circle"}, "r": {"type": "number"}}, "required": ["kind", "r"], "additionalProperties": false},
		{"type": "object", "properties": {"kind": {"const": "square"}, "side": {"type": "number"}}, "required": ["kind", "side"], "additionalProperties": false}]}`,
		[]string{`{"kind": "circle", "r": 1}`, `{"kind": "square", "side": 2}`}, []string{`{"kind": "circle", "side": 1}`, `{"kind": "square"}`}},
	{"recursive $ref", `{"$defs": {"node": {"type": "object", "properties": {"value": {"type": "integer"},
		"children": {"type": "array", "items": {"$ref": "#/$defs/node"}}}, "required": ["value"], "additionalProperties": false}}, "$ref": "#/$defs/node"}`,
		[]string{`{"value": 1}`, `{"value": 1, "children": [{"value": 2, "children": []}, {"value": 3}]}`},
		[]string{`{"children": []}`, `{"value": 1, "children": [{}]}`}},
	{"definitions", `{"definitions": {"id": {"type": "string", "format": "uuid"}}, "type": "object", "properties": {"ids": {"type": "array", "items": {"$ref": "#/definitions/id"}}}, "required": ["ids"]}`,
		[]string{`{"ids": ["123e4567-e89b-12d3-a456-426614174000"]}`, `{"ids": []}`}, []string{`{"ids": ["123e4567"]}`}},
	{"string length", `{"type": "string", "minLength": 2, "maxLength": 4}`, []string{`"ab"`, `"日本語"`, `"a\nbc"`, `"\u00e9\u00e9"`}, []string{`"a"`, `"abcde"`, `""`}},
	{"integer range", `{"type": "integer", "minimum": -5, "maximum": 12}`,
		[]string{`-5`, `-1`, `0`, `7`, `10`, `12`}, []string{`-6`, `13`, `20`, `-10`, `-0`, `012`}},
	{"integer minimum", `{"type": "integer", "minimum": 100}`, []string{`100`, `999`, `1000`, `123456789`}, []string{`99`, `0`, `-100`}},
	{"integer exclusive", `{"type": "integer", "exclusiveMinimum": -3, "exclusiveMaximum": 0}`, []string{`-2`, `-1`}, []string{`-3`, `0`, `1`}},
	{"integer wide range", `{"type": "integer", "minimum": 15, "maximum": 8327}`,
		[]string{`15`, `19`, `99`, `100`, `999`, `8000`, `8327`, `8299`}, []string{`14`, `8328`, `8400`, `9000`, `1`}},
	{"pattern", `{"type": "string", "pattern": "^[a-z]+-[0-9]{2,3}$"}`, []string{`"ab-12"`, `"x-999"`}, []string{`"ab-1"`, `"AB-12"`, `"ab-1234"`, `"ab12"`}},
	{"pattern unanchored", `{"type": "string", "pattern": "a|[bB]"}`, []string{`"a"`, `"xxByy"`, `"cbc"`}, []string{`"c"`, `""`}},
	{"pattern escapes", `{"pattern": "^\\d{3}\\.\\w+ \"q\\\\(?:x|y)?$"}`, []string{`"123.a_1 \"q\\"`, `"000.Z \"q\\y"`}, []string{`"12.a \"q\\"`, `"123.a \"q\\z"`}},
	{"pattern classes", `{"type": "string", "pattern": "^[^a-c\"]\\S.$"}`, []string{`"d1x"`, `"\\\\ "`, `"zz\""`}, []string{`"a1x"`, `"\"1x"`, `"d x"`}},
	{"date", `{"type": "string", "format": "date"}`, []string{`"2026-12-08"`, `"2024-02-28"`, `"1999-04-30"`}, []string{`"2026-13-01"`, `"2026-02-30"`, `"2026-04-31"`, `"2026-1-01"`}},
	{"time", `{"type": "string", "format": "time"}`, []string{`"12:34:56Z"`, `"23:59:59.123+05:30"`}, []string{`"24:00:00Z"`, `"12:34:56"`, `"12:60:00Z"`}},
	{"date-time", `{"type": "string", "format": "date-time"}`, []string{`"2026-12-08T04:05:00Z"`}, []string{`"2026-12-08 04:05:00Z"`, `"2026-12-08"`}},
	{"uuid", `{"type": "string", "format": "uuid"}`, []string{`"123e4567-e89b-12d3-a456-426614174000"`}, []string{`"123e4567e89b12d3a456426614174000"`, `"g23e4567-e89b-12d3-a456-426614174000"`}},
	{"map", `{"type": "object", "additionalProperties": {"type": "integer"}}`, []string{`{}`, `{"a": 1, "b": 2}`}, []string{`{"a": "x"}`}},
	{"no extra properties", `{"type": "object", "additionalProperties": false}`, []string{`{}`, `{ }`}, []string{`{"a": 1}`}},
	{"any object", `{"type": "object"}`, []string{`{}`, `{"a": [1, {"b": null}]}`}, []string{`[]`, `"x"`}},
	{"empty schema", `{}`, []string{`1`, `"x"`, `[{}]`, `null`}, []string{`x`, ``}},
	{"true", `true`, []string{`1`, `{"a": "b"}`}, []string{`{a}`}},
	{"inferred types", `{"properties": {"n": {"minimum": 0, "maximum": 3}, "s": {"maxLength": 1}}, "required": ["n", "s"]}`,
		[]string{`{"n": 3, "s": "a"}`}, []string{`{"n": 4, "s": "a"}`, `{"n": 1, "s": "ab"}`, `[]`}},
	{"annotations", `{"$schema": "https://json-schema.org/draft/2020-12/schema", "title": "T", "description": "d", "type": "boolean", "default": true, "examples": [false]}`,
		[]string{`true`}, []string{`"true"`}},
}

// validator compiles schema with the independent validator, formats
// asserted.
func validator(t testing.TB, schema string) *jsonschema.Schema {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(strings.NewReader(schema))
	if err != nil {
		t.Fatalf("schema: %v", err)
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	if err := c.AddResource("schema.json", doc); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile("schema.json")
	if err != nil {
		t.Fatalf("compile: %v", err)
	}
	return sch
}

func validates(sch *jsonschema.Schema, s string) error {
	inst, err := jsonschema.UnmarshalJSON(strings.NewReader(s))
	if err != nil {
		return err
	}
	return sch.Validate(inst)
}

// randomSentence walks the grammar at random: at each step a uniformly
// chosen allowed byte, or the end where the grammar may end (with
// probability 1/4). It gives up (ok false) after maxLen bytes.
func randomSentence(g *Grammar, rng *rand.Rand, maxLen int) (string, bool) {
	m := g.NewMatcher()
	var out []byte
	allowed := make([]byte, 0, 256)
	for len(out) < maxLen {
		if m.CanEnd() && (m.Done() || rng.IntN(4) == 0) {
			return string(out), true
		}
		allowed = allowed[:0]
		for b := range 256 {
			if m.Allows(byte(b)) {
				allowed = append(allowed, byte(b))
			}
		}
		if len(allowed) == 0 {
			return string(out), false
		}
		b := allowed[rng.IntN(len(allowed))]
		if err := m.AcceptByte(b); err != nil {
			return string(out), false
		}
		out = append(out, b)
	}
	return string(out), false
}

func TestSchemaTable(t *testing.T) {
	if len(schemaTable) < 25 {
		t.Fatalf("%d schemas, want at least 25", len(schemaTable))
	}
	for _, tc := range schemaTable {
		t.Run(tc.name, func(t *testing.T) {
			src, err := FromJSONSchema([]byte(tc.schema))
			if err != nil {
				t.Fatalf("FromJSONSchema: %v", err)
			}
			g, err := Parse(src)
			if err != nil {
				t.Fatalf("Parse: %v\n%s", err, src)
			}
			sch := validator(t, tc.schema)
			for _, s := range tc.accept {
				if err := validates(sch, s); err != nil {
					t.Errorf("the test's own %s is invalid: %v", s, err)
				}
				if ok, err := matches(g, s); !ok || err != nil {
					t.Errorf("%s rejected (%v), want accepted\n%s", s, err, src)
				}
			}
			for _, s := range tc.reject {
				if ok, _ := matches(g, s); ok {
					t.Errorf("%s accepted, want rejected\n%s", s, src)
				}
			}
			// Every random sentence of the grammar validates.
			rng := rand.New(rand.NewPCG(13, uint64(len(tc.name))))
			done := 0
			for range 60 {
				s, ok := randomSentence(g, rng, 600)
				if !ok {
					continue
				}
				done++
				if !json.Valid([]byte(s)) {
					t.Fatalf("random sentence %q is not JSON", s)
				}
				if err := validates(sch, s); err != nil {
					t.Fatalf("random sentence %s does not validate: %v\n%s", s, err, src)
				}
			}
			if done < 10 {
				t.Errorf("only %d of 60 random walks finished", done)
			}
		})
	}
}

func TestJSONObject(t *testing.T) {
	g := mustParse(t, JSONObject)
	for _, s := range []string{`{}`, `{"a": [1, 2.5, "x", {"b": null}], "c": true}`} {
		if ok, err := matches(g, s); !ok || err != nil {
			t.Errorf("%s rejected (%v)", s, err)
		}
	}
	for _, s := range []string{`[]`, `1`, `"x"`, ` {}`, `{"a"}`} {
		if ok, _ := matches(g, s); ok {
			t.Errorf("%s accepted", s)
		}
	}
}

var badSchemas = []struct {
	schema  string
	path    string
	keyword string
}{
	{`{"type": "string", "not": {}}`, "", "not"},
	{`{"allOf": [{}]}`, "", "allOf"},
	{`{"type": "object", "properties": {"a": {"type": "array", "uniqueItems": true}}}`, "/properties/a", "uniqueItems"},
	{`{"type": "object", "patternProperties": {}}`, "", "patternProperties"},
	{`{"type": "number", "minimum": 1}`, "", "minimum"},
	{`{"type": "number", "multipleOf": 2}`, "", "multipleOf"},
	{`{"type": "string", "format": "email"}`, "", "format"},
	{`{"$ref": "http://example.com/s.json"}`, "", "$ref"},
	{`{"$ref": "#/$defs/missing"}`, "", "$ref"},
	{`{"type": "strin"}`, "", "type"},
	{`{"type": "string", "pattern": "(?=a)"}`, "", "pattern"},
	{`{"type": "string", "pattern": "(a)\\1"}`, "", "pattern"},
	{`{"type": "string", "pattern": "a{5000}"}`, "", "pattern"},
	{`{"type": "string", "minLength": 5, "maxLength": 2}`, "", "maxLength"},
	{`{"type": "string", "maxLength": 5000}`, "", "maxLength"},
	{`{"type": "string", "minLength": -1}`, "", "minLength"},
	{`{"type": "array", "maxItems": 5000}`, "", "maxItems"},
	{`{"type": "integer", "minimum": 5, "maximum": 4}`, "", "maximum"},
	{`{"type": "object", "properties": {"a": {}}, "required": ["b"]}`, "", "required"},
	{`{"anyOf": []}`, "", "anyOf"},
	{`{"enum": []}`, "", "enum"},
	{`{"$ref": "#/$defs/a", "type": "string"}`, "", "$ref"},
	{`{"type": "array", "items": {"type": "object", "properties": {"x": {"if": {}}}}}`, "/items/properties/x", "if"},
}

func TestBadSchemas(t *testing.T) {
	for _, tc := range badSchemas {
		_, err := FromJSONSchema([]byte(tc.schema))
		var se *SchemaError
		if !errors.As(err, &se) || se.Path != tc.path || se.Keyword != tc.keyword {
			t.Errorf("%s: error %v, want one at %q naming %q", tc.schema, err, tc.path, tc.keyword)
		}
	}
	for _, s := range []string{``, `{`, `{"a": 1} x`, `[1]`, `false`, `{"a": 1, "a": 2}`} {
		if _, err := FromJSONSchema([]byte(s)); err == nil {
			t.Errorf("%q: no error", s)
		}
	}
}

// FuzzJSONSchema translates anything: never a panic; a translation always
// parses.
func FuzzJSONSchema(f *testing.F) {
	for _, tc := range schemaTable {
		f.Add(tc.schema)
	}
	for _, tc := range badSchemas {
		f.Add(tc.schema)
	}
	f.Fuzz(func(t *testing.T, schema string) {
		src, err := FromJSONSchema([]byte(schema))
		if err != nil {
			return
		}
		if _, err := Parse(src); err != nil {
			var se *SyntaxError
			if errors.As(err, &se) && (strings.Contains(se.Msg, "left recursion") || strings.Contains(se.Msg, "too large") || strings.Contains(se.Msg, "empty string")) {
				return // a schema that is its own first element ({"$ref": "#"}), or too big
			}
			t.Fatalf("the translation of %s does not parse: %v\n%s", schema, err, src)
		}
	})
}
