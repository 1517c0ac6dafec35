package grammar

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// JSON Schema to GBNF.
//
// FromJSONSchema writes a grammar whose every sentence is a JSON document
// that validates against the schema. It covers the subset that
// structured-output APIs use:
//
//   - type (one or an array of them), and without type a type inferred
//     from the keywords (properties → object, items → array, minLength →
//     string, minimum → integer), else any JSON value;
//   - properties, required, additionalProperties; items, prefixItems,
//     minItems, maxItems; enum, const; anyOf, oneOf; $ref to "#",
//     "#/$defs/…" or "#/definitions/…", recursion included;
//   - minLength, maxLength; minimum, maximum, exclusiveMinimum,
//     exclusiveMaximum for integers; pattern (the regex subset below);
//     format date, time, date-time and uuid.
//
// Annotations (title, description, default, examples, $schema, $id,
// $comment, deprecated, readOnly, writeOnly) are ignored. Any other
// keyword is a *SchemaError naming it and where it is.
//
// The grammar may be narrower than the schema but never wider:
//   - properties come in the schema's order; a required one must appear,
//     an optional one may be left out; no property beyond those listed is
//     generated, whatever additionalProperties says, unless no properties
//     are listed (then additionalProperties: a schema or true gives a map
//     of any keys);
//   - oneOf is generated as anyOf: its branches should not overlap;
//   - an integer has at most 16 digits, a number's fraction at most 16 and
//     its exponent at most 2; a date's February has 28 days; a time has no
//     leap second;
//   - whitespace is "", " ", or a newline and up to 20 spaces or tabs, in
//     the places JSON allows it, and none before or after the document;
//   - a string's \u escapes exclude surrogates, so a character is one code
//     point, as minLength and maxLength count them.
//
// The pattern subset: literals, escapes (\d \w \s \D \W \S, \n \t \r and
// escaped punctuation), classes […] and [^…] with ranges, ., groups ( … )
// and (?: … ), alternation |, the quantifiers * + ? {m} {m,} {m,n}, and ^
// and $ at the very start and end. A pattern without ^ or $ may have
// anything before or after the match, as JSON Schema says. Backreferences,
// lookaround and other constructs are errors.

// JSONObject is the GBNF of any JSON object: "json_object" mode.
const JSONObject = `root ::= object
` + jsonPrims

const jsonPrims = `value ::= object | array | string | number | boolean | null
object ::= "{" ws ( string ws ":" ws value ( ws "," ws string ws ":" ws value )* ws )? "}"
array ::= "[" ws ( value ( ws "," ws value )* ws )? "]"
string ::= "\"" char* "\""
char ::= [^"\\\x7F\x00-\x1F] | "\\" ( ["\\/bfnrt] | "u" hex4 )
hex4 ::= ( [0-9a-cA-CeEfF] [0-9a-fA-F] | [dD] [0-7] ) [0-9a-fA-F]{2}
number ::= integer ( "." [0-9]{1,16} )? ( [eE] [-+]? [0-9]{1,2} )?
integer ::= "-"? ( "0" | [1-9] [0-9]{0,15} )
boolean ::= "true" | "false"
null ::= "null"
ws ::= | " " | "\n" [ \t]{0,20}
`

// SchemaError is a schema that FromJSONSchema cannot translate: Path is a
// JSON pointer to the schema object, Keyword the keyword at fault.
type SchemaError struct {
	Path    string
	Keyword string
	Msg     string
}

func (e *SchemaError) Error() string {
	path := e.Path
	if path == "" {
		path = "/"
	}
	if e.Keyword == "" {
		return fmt.Sprintf("schema at %s: %s", path, e.Msg)
	}
	return fmt.Sprintf("schema at %s: %q: %s", path, e.Keyword, e.Msg)
}

// JSONSchema translates a schema and parses the result.
func JSONSchema(schema []byte) (*Grammar, error) {
	src, err := FromJSONSchema(schema)
	if err != nil {
		return nil, err
	}
	return Parse(src)
}

// Limits of the translation.
const (
	maxSchemaBytes = 1 << 20
	maxSchemaDepth = 64   // nested subschemas
	maxSchemaRules = 4096 // rules generated
)

// object is a JSON object that keeps its keys' order.
type object struct {
	keys []string
	vals map[string]any
}

func (o *object) get(k string) (any, bool) { v, ok := o.vals[k]; return v, ok }

// decodeOrdered reads one JSON value with objects as *object and numbers
// as json.Number.
func decodeOrdered(d *json.Decoder, depth int) (any, error) {
	if depth > 2*maxSchemaDepth {
		return nil, fmt.Errorf("nested more than %d deep", 2*maxSchemaDepth)
	}
	t, err := d.Token()
	if err != nil {
		return nil, err
	}
	switch t {
	case json.Delim('{'):
		o := &object{vals: map[string]any{}}
		for d.More() {
			kt, err := d.Token()
			if err != nil {
				return nil, err
			}
			k := kt.(string)
			v, err := decodeOrdered(d, depth+1)
			if err != nil {
				return nil, err
			}
			if _, dup := o.vals[k]; dup {
				return nil, fmt.Errorf("key %q appears twice in one object", k)
			}
			o.keys = append(o.keys, k)
			o.vals[k] = v
		}
		_, err := d.Token()
		return o, err
	case json.Delim('['):
		var a []any
		for d.More() {
			v, err := decodeOrdered(d, depth+1)
			if err != nil {
				return nil, err
			}
			a = append(a, v)
		}
		_, err := d.Token()
		return a, err
	}
	return t, nil
}

// schemaGen writes rules. Each rule body is kept once: a second rule with
// the same body is the first one's name.
type schemaGen struct {
	root   any
	names  map[string]bool   // names in use
	bodies map[string]string // body → name
	rules  []string          // "name ::= body" in order
	refs   map[string]string // $ref → its rule's name
	depth  int
}

func (g *schemaGen) fresh(base string) string {
	var b strings.Builder
	for _, r := range base {
		if r < 128 && isNameByte(byte(r)) {
			b.WriteRune(r)
		} else {
			b.WriteByte('-')
		}
	}
	name := b.String()
	if name == "" {
		name = "r"
	}
	if len(name) > 40 {
		name = name[:40]
	}
	for i := 1; g.names[name]; i++ {
		name = fmt.Sprintf("%s-%d", strings.TrimRight(b.String()[:min(b.Len(), 40)], "-0123456789"), i)
	}
	g.names[name] = true
	return name
}

// rule returns a rule named after base with the given body, or the rule
// that already has it.
func (g *schemaGen) rule(base, body string) (string, error) {
	if n, ok := g.bodies[body]; ok {
		return n, nil
	}
	if len(g.rules) >= maxSchemaRules {
		return "", &SchemaError{Msg: fmt.Sprintf("more than %d grammar rules", maxSchemaRules)}
	}
	n := g.fresh(base)
	g.bodies[body] = n
	g.rules = append(g.rules, n+" ::= "+body)
	return n, nil
}

// FromJSONSchema translates a JSON Schema into GBNF; see the comment at the
// top of schema.go for the subset.
func FromJSONSchema(schema []byte) (string, error) {
	if len(schema) > maxSchemaBytes {
		return "", &SchemaError{Msg: fmt.Sprintf("schema is %d bytes, more than the limit %d", len(schema), maxSchemaBytes)}
	}
	d := json.NewDecoder(bytes.NewReader(schema))
	d.UseNumber()
	root, err := decodeOrdered(d, 0)
	if err != nil {
		return "", &SchemaError{Msg: "not JSON: " + err.Error()}
	}
	if _, err := d.Token(); err != io.EOF {
		return "", &SchemaError{Msg: "not JSON: more after the schema"}
	}
	g := &schemaGen{root: root, names: map[string]bool{"root": true}, bodies: map[string]string{}, refs: map[string]string{}}
	for _, p := range []string{"value", "object", "array", "string", "char", "hex4", "number", "integer", "boolean", "null", "ws"} {
		g.names[p] = true
	}
	expr, err := g.value(root, "")
	if err != nil {
		return "", err
	}
	var b strings.Builder
	b.WriteString("root ::= " + expr + "\n")
	for _, r := range g.rules {
		b.WriteString(r + "\n")
	}
	b.WriteString(jsonPrims)
	return b.String(), nil
}

var annotations = map[string]bool{"title": true, "description": true, "default": true, "examples": true,
	"$schema": true, "$id": true, "$comment": true, "deprecated": true, "readOnly": true, "writeOnly": true,
	"$defs": true, "definitions": true}

var supported = map[string]bool{"type": true, "properties": true, "required": true, "additionalProperties": true,
	"items": true, "prefixItems": true, "minItems": true, "maxItems": true, "enum": true, "const": true,
	"anyOf": true, "oneOf": true, "$ref": true, "minLength": true, "maxLength": true, "minimum": true,
	"maximum": true, "exclusiveMinimum": true, "exclusiveMaximum": true, "pattern": true, "format": true}

// value returns a GBNF expression for the values schema s allows.
func (g *schemaGen) value(s any, path string) (string, error) {
	g.depth++
	defer func() { g.depth-- }()
	if g.depth > maxSchemaDepth {
		return "", &SchemaError{Path: path, Msg: fmt.Sprintf("subschemas nested more than %d deep", maxSchemaDepth)}
	}
	switch s := s.(type) {
	case bool:
		if s {
			return "value", nil
		}
		return "", &SchemaError{Path: path, Msg: "the schema false allows no value"}
	case *object:
		return g.objectSchema(s, path)
	}
	return "", &SchemaError{Path: path, Msg: fmt.Sprintf("a schema is an object or a boolean, not %s", jsonKind(s))}
}

func jsonKind(v any) string {
	switch v.(type) {
	case *object:
		return "an object"
	case []any:
		return "an array"
	case string:
		return "a string"
	case json.Number:
		return "a number"
	case bool:
		return "a boolean"
	}
	return "null"
}

func (g *schemaGen) objectSchema(s *object, path string) (string, error) {
	var active []string // the keywords that constrain
	for _, k := range s.keys {
		if annotations[k] {
			continue
		}
		if !supported[k] {
			return "", &SchemaError{Path: path, Keyword: k, Msg: "keyword not supported"}
		}
		active = append(active, k)
	}
	has := func(k string) bool { _, ok := s.vals[k]; return ok }
	alone := func(k string) error {
		for _, o := range active {
			if o != k && o != "type" {
				return &SchemaError{Path: path, Keyword: k, Msg: fmt.Sprintf("%q beside %q is not supported", k, o)}
			}
		}
		return nil
	}
	types, err := g.types(s, path)
	if err != nil {
		return "", err
	}
	switch {
	case has("$ref"):
		for _, o := range active {
			if o != "$ref" {
				return "", &SchemaError{Path: path, Keyword: "$ref", Msg: fmt.Sprintf("%q beside $ref is not supported", o)}
			}
		}
		return g.ref(s.vals["$ref"], path)
	case has("const") || has("enum"):
		var vals []any
		kw := "enum"
		if has("const") {
			if err := alone("const"); err != nil {
				return "", err
			}
			kw = "const"
			vals = []any{s.vals["const"]}
		} else {
			if err := alone("enum"); err != nil {
				return "", err
			}
			a, ok := s.vals["enum"].([]any)
			if !ok || len(a) == 0 {
				return "", &SchemaError{Path: path, Keyword: "enum", Msg: "must be a non-empty array"}
			}
			vals = a
		}
		var alts []string
		for _, v := range vals {
			if types != nil && !typeOf(v, types) {
				continue
			}
			alts = append(alts, gbnfQuote(canonicalJSON(v)))
		}
		if len(alts) == 0 {
			return "", &SchemaError{Path: path, Keyword: kw, Msg: "no value has the schema's type"}
		}
		return g.rule("enum", strings.Join(alts, " | "))
	case has("anyOf") || has("oneOf"):
		kw := "anyOf"
		if has("oneOf") {
			kw = "oneOf"
		}
		if err := alone(kw); err != nil {
			return "", err
		}
		if types != nil {
			return "", &SchemaError{Path: path, Keyword: kw, Msg: "\"type\" beside it is not supported"}
		}
		a, ok := s.vals[kw].([]any)
		if !ok || len(a) == 0 {
			return "", &SchemaError{Path: path, Keyword: kw, Msg: "must be a non-empty array"}
		}
		var alts []string
		for i, sub := range a {
			e, err := g.value(sub, fmt.Sprintf("%s/%s/%d", path, kw, i))
			if err != nil {
				return "", err
			}
			alts = append(alts, e)
		}
		return g.rule(kw, strings.Join(alts, " | "))
	}
	if types == nil {
		types = inferTypes(s)
	}
	if types == nil {
		return "value", nil
	}
	var alts []string
	for _, t := range types {
		e, err := g.typed(t, s, path)
		if err != nil {
			return "", err
		}
		alts = append(alts, e)
	}
	if len(alts) == 1 {
		return alts[0], nil
	}
	return g.rule("types", strings.Join(alts, " | "))
}

// types reads "type": nil if absent.
func (g *schemaGen) types(s *object, path string) ([]string, error) {
	v, ok := s.get("type")
	if !ok {
		return nil, nil
	}
	var list []any
	switch v := v.(type) {
	case string:
		list = []any{v}
	case []any:
		list = v
	}
	if len(list) == 0 {
		return nil, &SchemaError{Path: path, Keyword: "type", Msg: "must be a type name or a non-empty array of them"}
	}
	var out []string
	for _, t := range list {
		name, _ := t.(string)
		switch name {
		case "string", "number", "integer", "boolean", "null", "object", "array":
		default:
			return nil, &SchemaError{Path: path, Keyword: "type", Msg: fmt.Sprintf("unknown type %v", t)}
		}
		if name == "integer" && slicesContains(out, "number") || name == "number" && slicesContains(out, "integer") {
			return nil, &SchemaError{Path: path, Keyword: "type", Msg: "both number and integer"}
		}
		if !slicesContains(out, name) {
			out = append(out, name)
		}
	}
	return out, nil
}

func slicesContains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func inferTypes(s *object) []string {
	has := func(ks ...string) bool {
		for _, k := range ks {
			if _, ok := s.vals[k]; ok {
				return true
			}
		}
		return false
	}
	switch {
	case has("properties", "required", "additionalProperties"):
		return []string{"object"}
	case has("items", "prefixItems", "minItems", "maxItems"):
		return []string{"array"}
	case has("minLength", "maxLength", "pattern", "format"):
		return []string{"string"}
	case has("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
		return []string{"integer"}
	}
	return nil
}

// typeOf reports whether v has one of the types.
func typeOf(v any, types []string) bool {
	for _, t := range types {
		switch v := v.(type) {
		case *object:
			if t == "object" {
				return true
			}
		case []any:
			if t == "array" {
				return true
			}
		case string:
			if t == "string" {
				return true
			}
		case bool:
			if t == "boolean" {
				return true
			}
		case nil:
			if t == "null" {
				return true
			}
		case json.Number:
			if t == "number" {
				return true
			}
			if t == "integer" {
				if f, err := v.Float64(); err == nil && f == math.Trunc(f) {
					return true
				}
			}
		}
	}
	return false
}

// canonicalJSON writes v compactly, keys in their order.
func canonicalJSON(v any) string {
	switch v := v.(type) {
	case *object:
		var parts []string
		for _, k := range v.keys {
			parts = append(parts, canonicalJSON(k)+":"+canonicalJSON(v.vals[k]))
		}
		return "{" + strings.Join(parts, ",") + "}"
	case []any:
		var parts []string
		for _, e := range v {
			parts = append(parts, canonicalJSON(e))
		}
		return "[" + strings.Join(parts, ",") + "]"
	case string:
		var b bytes.Buffer
		e := json.NewEncoder(&b)
		e.SetEscapeHTML(false)
		e.Encode(v)
		return strings.TrimSuffix(b.String(), "\n")
	case json.Number:
		return v.String()
	case bool:
		return strconv.FormatBool(v)
	}
	return "null"
}

// gbnfQuote writes s as a GBNF literal.
func gbnfQuote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x20 || r == 0x7F:
			fmt.Fprintf(&b, `\x%02X`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// ref resolves "#", "#/$defs/name" and "#/definitions/name".
func (g *schemaGen) ref(v any, path string) (string, error) {
	ref, ok := v.(string)
	if !ok {
		return "", &SchemaError{Path: path, Keyword: "$ref", Msg: "must be a string"}
	}
	if n, ok := g.refs[ref]; ok {
		return n, nil
	}
	var target any
	base := "ref"
	switch {
	case ref == "#":
		target = g.root
	case strings.HasPrefix(ref, "#/$defs/") || strings.HasPrefix(ref, "#/definitions/"):
		parts := strings.SplitN(ref[2:], "/", 2)
		name := strings.NewReplacer("~1", "/", "~0", "~").Replace(parts[1])
		if ro, ok := g.root.(*object); ok {
			if defs, ok := ro.vals[parts[0]].(*object); ok {
				target, ok = defs.vals[name]
				_ = ok
			}
		}
		base = name
	default:
		return "", &SchemaError{Path: path, Keyword: "$ref", Msg: fmt.Sprintf("%q: only \"#\", \"#/$defs/…\" and \"#/definitions/…\" are supported", ref)}
	}
	if target == nil {
		return "", &SchemaError{Path: path, Keyword: "$ref", Msg: fmt.Sprintf("%q points at nothing", ref)}
	}
	if len(g.rules) >= maxSchemaRules {
		return "", &SchemaError{Msg: fmt.Sprintf("more than %d grammar rules", maxSchemaRules)}
	}
	name := g.fresh("def-" + base)
	g.refs[ref] = name
	i := len(g.rules)
	g.rules = append(g.rules, "") // reserved: the body may refer to name
	e, err := g.value(target, strings.TrimPrefix(ref, "#"))
	if err != nil {
		return "", err
	}
	g.rules[i] = name + " ::= " + e
	return name, nil
}

// intKeyword reads a non-negative integer keyword, -1 if absent.
func intKeyword(s *object, k, path string, limit int) (int, error) {
	v, ok := s.get(k)
	if !ok {
		return -1, nil
	}
	n, ok := v.(json.Number)
	i, err := n.Int64()
	if !ok || err != nil || i < 0 {
		return 0, &SchemaError{Path: path, Keyword: k, Msg: fmt.Sprintf("must be a non-negative integer, not %v", v)}
	}
	if i > int64(limit) {
		return 0, &SchemaError{Path: path, Keyword: k, Msg: fmt.Sprintf("%d exceeds the limit %d", i, limit)}
	}
	return int(i), nil
}

// typed returns the expression for the values of type t under s.
func (g *schemaGen) typed(t string, s *object, path string) (string, error) {
	switch t {
	case "null", "boolean", "number":
		if t == "number" {
			for _, k := range []string{"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"} {
				if _, ok := s.get(k); ok {
					return "", &SchemaError{Path: path, Keyword: k, Msg: "bounds are supported for integers only"}
				}
			}
		}
		return t, nil
	case "integer":
		return g.integer(s, path)
	case "string":
		return g.str(s, path)
	case "array":
		return g.array(s, path)
	}
	return g.object(s, path)
}

func (g *schemaGen) str(s *object, path string) (string, error) {
	lo, err := intKeyword(s, "minLength", path, DefaultLimits.MaxRepeat)
	if err != nil {
		return "", err
	}
	hi, err := intKeyword(s, "maxLength", path, DefaultLimits.MaxRepeat)
	if err != nil {
		return "", err
	}
	pat, hasPat := s.get("pattern")
	format, hasFormat := s.get("format")
	if (hasPat || hasFormat) && (lo >= 0 || hi >= 0) {
		kw := "pattern"
		if !hasPat {
			kw = "format"
		}
		return "", &SchemaError{Path: path, Keyword: kw, Msg: "together with minLength or maxLength is not supported"}
	}
	if hasPat && hasFormat {
		return "", &SchemaError{Path: path, Keyword: "pattern", Msg: "together with format is not supported"}
	}
	switch {
	case hasFormat:
		f, _ := format.(string)
		body, ok := formats[f]
		if !ok {
			return "", &SchemaError{Path: path, Keyword: "format", Msg: fmt.Sprintf("%q is not supported (date, time, date-time, uuid are)", format)}
		}
		return g.rule("format-"+f, `"\"" `+body+` "\""`)
	case hasPat:
		p, ok := pat.(string)
		if !ok {
			return "", &SchemaError{Path: path, Keyword: "pattern", Msg: "must be a string"}
		}
		e, err := regexToGBNF(p)
		if err != nil {
			return "", &SchemaError{Path: path, Keyword: "pattern", Msg: err.Error()}
		}
		return g.rule("pattern", `"\"" `+e+` "\""`)
	}
	if lo < 0 && hi < 0 {
		return "string", nil
	}
	if hi >= 0 && lo > hi {
		return "", &SchemaError{Path: path, Keyword: "maxLength", Msg: fmt.Sprintf("%d is less than minLength %d", hi, lo)}
	}
	return g.rule("string", `"\"" char`+bounds(max(lo, 0), hi)+` "\""`)
}

// bounds writes {lo,hi}, hi < 0 meaning none.
func bounds(lo, hi int) string {
	if hi < 0 {
		return fmt.Sprintf("{%d,}", lo)
	}
	return fmt.Sprintf("{%d,%d}", lo, hi)
}

const (
	dateBody = `[0-9]{4} "-" ( ( "0" [13578] | "1" [02] ) "-" ( "0" [1-9] | [12] [0-9] | "3" [01] ) | ( "0" [469] | "11" ) "-" ( "0" [1-9] | [12] [0-9] | "30" ) | "02-" ( "0" [1-9] | "1" [0-9] | "2" [0-8] ) )`
	timeBody = `( [01] [0-9] | "2" [0-3] ) ":" [0-5] [0-9] ":" [0-5] [0-9] ( "." [0-9]{1,9} )? ( "Z" | [+-] ( [01] [0-9] | "2" [0-3] ) ":" [0-5] [0-9] )`
)

var formats = map[string]string{
	"date":      dateBody,
	"time":      timeBody,
	"date-time": dateBody + ` "T" ` + timeBody,
	"uuid":      `[0-9a-fA-F]{8} "-" [0-9a-fA-F]{4} "-" [0-9a-fA-F]{4} "-" [0-9a-fA-F]{4} "-" [0-9a-fA-F]{12}`,
}

func (g *schemaGen) array(s *object, path string) (string, error) {
	lo, err := intKeyword(s, "minItems", path, DefaultLimits.MaxRepeat)
	if err != nil {
		return "", err
	}
	hi, err := intKeyword(s, "maxItems", path, DefaultLimits.MaxRepeat)
	if err != nil {
		return "", err
	}
	lo = max(lo, 0)
	if hi >= 0 && lo > hi {
		return "", &SchemaError{Path: path, Keyword: "maxItems", Msg: fmt.Sprintf("%d is less than minItems %d", hi, lo)}
	}
	var prefix []string
	if v, ok := s.get("prefixItems"); ok {
		a, ok := v.([]any)
		if !ok {
			return "", &SchemaError{Path: path, Keyword: "prefixItems", Msg: "must be an array of schemas"}
		}
		for i, sub := range a {
			e, err := g.value(sub, fmt.Sprintf("%s/prefixItems/%d", path, i))
			if err != nil {
				return "", err
			}
			prefix = append(prefix, e)
		}
	}
	item := "value"
	if v, ok := s.get("items"); ok {
		if b, ok := v.(bool); ok && !b {
			item = ""
		} else {
			e, err := g.value(v, path+"/items")
			if err != nil {
				return "", err
			}
			item = e
		}
	}
	k := len(prefix)
	if item == "" { // no items beyond the prefix
		if hi < 0 || hi > k {
			hi = k
		}
		if lo > k {
			return "", &SchemaError{Path: path, Keyword: "minItems", Msg: fmt.Sprintf("%d but items is false after %d prefixItems", lo, k)}
		}
	}
	if hi >= 0 && hi < k { // maxItems cuts the prefix short
		prefix, k = prefix[:hi], hi
	}
	if hi > DefaultLimits.MaxRepeat {
		return "", &SchemaError{Path: path, Keyword: "maxItems", Msg: fmt.Sprintf("%d exceeds the limit %d", hi, DefaultLimits.MaxRepeat)}
	}
	if hi == 0 {
		return g.rule("array", `"[" ws "]"`)
	}
	// Elements i… (i ≥ 1), each after a comma: the tail of items beyond the
	// prefix, then the prefix's elements from the back.
	sep := `ws "," ws `
	tail := ""
	if item != "" && (hi < 0 || hi > k) {
		from := max(k, 1) // index of the first element the tail holds
		tlo, thi := max(lo-from, 0), -1
		if hi >= 0 {
			thi = hi - from
		}
		tail = "( " + sep + item + " )" + bounds(tlo, thi)
	}
	first := ""
	if k == 0 {
		first = item + " " + tail
	} else {
		rest := tail
		for i := k - 1; i >= 1; i-- {
			part := sep + prefix[i] + " " + rest
			if i >= lo { // optional: fewer than i+1 elements are allowed
				part = "( " + part + " )?"
			}
			rest = part
		}
		first = prefix[0] + " " + rest
	}
	body := `"[" ws ` + first + ` ws "]"`
	if lo == 0 {
		body = `"[" ws ( ` + first + ` ws )? "]"`
	}
	return g.rule("array", body)
}

func (g *schemaGen) object(s *object, path string) (string, error) {
	var props *object
	if v, ok := s.get("properties"); ok {
		if props, ok = v.(*object); !ok {
			return "", &SchemaError{Path: path, Keyword: "properties", Msg: "must be an object"}
		}
	}
	required := map[string]bool{}
	if v, ok := s.get("required"); ok {
		a, ok := v.([]any)
		if !ok {
			return "", &SchemaError{Path: path, Keyword: "required", Msg: "must be an array of names"}
		}
		for _, n := range a {
			name, ok := n.(string)
			if !ok {
				return "", &SchemaError{Path: path, Keyword: "required", Msg: "must be an array of names"}
			}
			if props == nil || props.vals[name] == nil {
				if ap, ok := s.get("additionalProperties"); !ok || ap != false {
					return "", &SchemaError{Path: path, Keyword: "required", Msg: fmt.Sprintf("%q is not in properties (not supported)", name)}
				}
				return "", &SchemaError{Path: path, Keyword: "required", Msg: fmt.Sprintf("%q is not in properties and additionalProperties is false: no object validates", name)}
			}
			required[name] = true
		}
	}
	if props == nil || len(props.keys) == 0 {
		ap, ok := s.get("additionalProperties")
		switch {
		case !ok || ap == true:
			return "object", nil
		case ap == false:
			return g.rule("object", `"{" ws "}"`)
		}
		e, err := g.value(ap, path+"/additionalProperties")
		if err != nil {
			return "", err
		}
		kv := `string ws ":" ws ` + e
		return g.rule("object", `"{" ws ( `+kv+` ( ws "," ws `+kv+` )* ws )? "}"`)
	}
	if v, ok := s.get("additionalProperties"); ok {
		if _, ok := v.(bool); !ok {
			if _, ok := v.(*object); !ok {
				return "", &SchemaError{Path: path, Keyword: "additionalProperties", Msg: "must be a boolean or a schema"}
			}
		}
	}
	n := len(props.keys)
	members := make([]string, n)
	for i, k := range props.keys {
		e, err := g.value(props.vals[k], path+"/properties/"+strings.NewReplacer("~", "~0", "/", "~1").Replace(k))
		if err != nil {
			return "", err
		}
		members[i] = gbnfQuote(canonicalJSON(k)) + ` ws ":" ws ` + e
	}
	// after[i]: the members from i on, each after a comma.
	after := make([]string, n+1)
	for i := n - 1; i >= 0; i-- {
		part := `ws "," ws ` + members[i]
		if !required[props.keys[i]] {
			part = "( " + part + " )?"
		}
		if after[i+1] != "" {
			part += " " + after[i+1]
		}
		name, err := g.rule("obj-after", part)
		if err != nil {
			return "", err
		}
		after[i] = name
	}
	// first[i]: the members from i on, the first of them without a comma;
	// not empty.
	first := ""
	anyRequired := false
	for i := n - 1; i >= 0; i-- {
		alt := members[i]
		if after[i+1] != "" {
			alt += " " + after[i+1]
		}
		if required[props.keys[i]] {
			anyRequired = true
			first = alt
		} else if first != "" {
			first = alt + " | " + first
		} else {
			first = alt
		}
		name, err := g.rule("obj-first", first)
		if err != nil {
			return "", err
		}
		first = name
	}
	body := `"{" ws ` + first + ` ws "}"`
	if !anyRequired {
		body = `"{" ws ( ` + first + ` ws )? "}"`
	}
	return g.rule("object", body)
}

// integer writes an integer in [minimum, maximum].
func (g *schemaGen) integer(s *object, path string) (string, error) {
	const limit = 9999999999999999 // 16 digits
	lo, hi := int64(-limit), int64(limit)
	bounded := false
	for _, k := range []string{"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"} {
		v, ok := s.get(k)
		if !ok {
			continue
		}
		num, ok := v.(json.Number)
		f, err := num.Float64()
		if !ok || err != nil || math.IsInf(f, 0) {
			return "", &SchemaError{Path: path, Keyword: k, Msg: fmt.Sprintf("must be a number, not %v", v)}
		}
		bounded = true
		clamp := func(x float64) int64 { return int64(math.Max(-limit-1, math.Min(limit+1, x))) }
		switch k {
		case "minimum":
			lo = max(lo, clamp(math.Ceil(f)))
		case "exclusiveMinimum":
			lo = max(lo, clamp(math.Floor(f)+1))
		case "maximum":
			hi = min(hi, clamp(math.Floor(f)))
		case "exclusiveMaximum":
			hi = min(hi, clamp(math.Ceil(f)-1))
		}
	}
	if !bounded {
		return "integer", nil
	}
	lo, hi = max(lo, -limit), min(hi, limit)
	if lo > hi {
		return "", &SchemaError{Path: path, Keyword: "maximum", Msg: fmt.Sprintf("no integer lies between the bounds (%d > %d)", lo, hi)}
	}
	var alts []string
	if lo < 0 {
		neg := positiveRange(max(-hi, 1), -lo)
		alts = append(alts, `"-" ( `+neg+` )`)
	}
	if hi >= 0 {
		alts = append(alts, positiveRange(max(lo, 0), hi))
	}
	return g.rule("int", strings.Join(alts, " | "))
}

// positiveRange writes the decimal numerals of [a, b], 0 ≤ a ≤ b, without
// leading zeros: one part per number of digits.
func positiveRange(a, b int64) string {
	var alts []string
	for digits := len(strconv.FormatInt(a, 10)); digits <= len(strconv.FormatInt(b, 10)); digits++ {
		lo := int64(math.Pow10(digits - 1))
		if digits == 1 {
			lo = 0
		}
		hi := int64(math.Pow10(digits)) - 1
		lo, hi = max(lo, a), min(hi, b)
		if lo > hi {
			continue
		}
		alts = append(alts, sameLength(strconv.FormatInt(lo, 10), strconv.FormatInt(hi, 10)))
	}
	return strings.Join(alts, " | ")
}

// sameLength writes the numerals from a to b, both of the same length, as a
// GBNF expression, digit by digit.
func sameLength(a, b string) string {
	if a == "" {
		return `""`
	}
	if a == b {
		return `"` + a + `"`
	}
	if a[0] == b[0] {
		return `"` + a[:1] + `" ( ` + sameLength(a[1:], b[1:]) + ` )`
	}
	rest := len(a) - 1
	any := func(n int) string {
		if n == 0 {
			return ""
		}
		return fmt.Sprintf(" [0-9]{%d}", n)
	}
	if strings.Trim(a[1:], "0") == "" && strings.Trim(b[1:], "9") == "" {
		return fmt.Sprintf("[%c-%c]", a[0], b[0]) + any(rest)
	}
	var alts []string
	alts = append(alts, `"`+a[:1]+`" ( `+sameLength(a[1:], strings.Repeat("9", rest))+` )`)
	if a[0]+1 <= b[0]-1 {
		alts = append(alts, fmt.Sprintf("[%c-%c]", a[0]+1, b[0]-1)+any(rest))
	}
	alts = append(alts, `"`+b[:1]+`" ( `+sameLength(strings.Repeat("0", rest), b[1:])+` )`)
	return strings.Join(alts, " | ")
}
