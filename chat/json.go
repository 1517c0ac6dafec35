package chat

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/nikolalohinski/gonja/v2/exec"
)

// Object is a JSON object that keeps its keys in the order they were
// written. Chat templates print tool definitions and tool-call arguments
// with tojson, and Python keeps a dict's insertion order, so a Go map (whose
// order is random) would print the keys differently from Hugging Face.
type Object []Field

// Field is one key of an Object.
type Field struct {
	Key   string
	Value any
}

// Get returns the value of key and whether it is present.
func (o Object) Get(key string) (any, bool) {
	for _, f := range o {
		if f.Key == key {
			return f.Value, true
		}
	}
	return nil, false
}

// DecodeJSON parses one JSON value the way Python's json.loads does, keeping
// object key order: objects become Object, arrays []any, numbers int64 when
// written without a fraction or exponent (else float64), and strings, bools
// and null become string, bool and nil. A repeated key keeps its first
// position and its last value, as in Python.
func DecodeJSON(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	v, err := decodeValue(dec)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidJSON, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("%w: data after the JSON value", ErrInvalidJSON)
	}
	return v, nil
}

func decodeValue(dec *json.Decoder) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			obj := Object{}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, err
				}
				key := kt.(string) // the decoder guarantees a string key here
				v, err := decodeValue(dec)
				if err != nil {
					return nil, err
				}
				if i := obj.index(key); i >= 0 {
					obj[i].Value = v
				} else {
					obj = append(obj, Field{key, v})
				}
			}
			_, err := dec.Token() // '}'
			return obj, err
		case '[':
			list := []any{}
			for dec.More() {
				v, err := decodeValue(dec)
				if err != nil {
					return nil, err
				}
				list = append(list, v)
			}
			_, err := dec.Token() // ']'
			return list, err
		}
		return nil, fmt.Errorf("unexpected %v", t)
	case json.Number:
		return parseNumber(t)
	}
	return tok, nil // string, bool or nil
}

func (o Object) index(key string) int {
	for i, f := range o {
		if f.Key == key {
			return i
		}
	}
	return -1
}

// parseNumber reads a JSON number as Python does: int without '.', 'e' or
// 'E', else float.
func parseNumber(n json.Number) (any, error) {
	s := string(n)
	if !strings.ContainsAny(s, ".eE") {
		if i, err := strconv.ParseInt(s, 10, 64); err == nil {
			return i, nil
		}
		// Python's int is unbounded; beyond int64 keep the nearest float.
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil && !math.IsInf(f, 0) {
		return nil, err
	}
	return f, nil
}

// jsonOptions are the arguments of Python's json.dumps that tojson accepts.
type jsonOptions struct {
	ensureASCII bool
	indent      int // spaces per level; -1: everything on one line
	itemSep     string
	keySep      string
	sortKeys    bool
	limit       int // the most bytes to write (Limits.Output)
}

// errLong stops tojson once its text passes o.limit: a list holding
// one value many times, or a large indent, can print far more than its
// size in memory.
func (o *jsonOptions) errLong() error {
	return limitError("tojson: the JSON text passes Limits.Output (%s)", bytesText(o.limit))
}

// writePyJSON writes v as Python's json.dumps(v, ...) would.
func writePyJSON(b *strings.Builder, v *exec.Value, o *jsonOptions, depth int) error {
	if depth > 100 {
		return fmt.Errorf("tojson: nesting deeper than 100 levels")
	}
	if b.Len() > o.limit {
		return o.errLong()
	}
	v = unwrap(v)
	if v.IsNil() {
		b.WriteString("null")
		return nil
	}
	rv := v.Val
	for rv.Kind() == reflect.Pointer || rv.Kind() == reflect.Interface {
		if rv.IsNil() {
			b.WriteString("null")
			return nil
		}
		rv = rv.Elem()
	}
	if rv.Type() == exec.TypeDict {
		d := rv.Interface().(exec.Dict)
		keys := make([]string, len(d.Pairs))
		vals := make([]*exec.Value, len(d.Pairs))
		for i, p := range d.Pairs {
			k, err := pyJSONKey(unwrap(p.Key))
			if err != nil {
				return err
			}
			keys[i], vals[i] = k, p.Value
		}
		return writeObject(b, keys, vals, o, depth)
	}
	switch rv.Kind() {
	case reflect.Bool:
		if rv.Bool() {
			b.WriteString("true")
		} else {
			b.WriteString("false")
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		b.WriteString(strconv.FormatInt(rv.Int(), 10))
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		b.WriteString(strconv.FormatUint(rv.Uint(), 10))
	case reflect.Float32, reflect.Float64:
		f := rv.Float()
		switch {
		case math.IsNaN(f):
			b.WriteString("NaN")
		case math.IsInf(f, 1):
			b.WriteString("Infinity")
		case math.IsInf(f, -1):
			b.WriteString("-Infinity")
		default:
			b.WriteString(pyFloatRepr(f))
		}
	case reflect.String:
		writePyString(b, rv.String(), o.ensureASCII)
	case reflect.Slice, reflect.Array:
		if rv.Len() == 0 {
			b.WriteString("[]")
			return nil
		}
		b.WriteByte('[')
		for i := range rv.Len() {
			if i > 0 {
				b.WriteString(o.itemSep)
			}
			if err := newline(b, o, depth+1); err != nil {
				return err
			}
			if err := writePyJSON(b, exec.ToValue(rv.Index(i)), o, depth+1); err != nil {
				return err
			}
		}
		if err := newline(b, o, depth); err != nil {
			return err
		}
		b.WriteByte(']')
	case reflect.Map:
		// A map made inside the template (namespace(), a Go map passed in):
		// it has no order, so its keys are sorted.
		keys := make([]string, 0, rv.Len())
		byKey := map[string]*exec.Value{}
		for _, k := range rv.MapKeys() {
			ks, err := pyJSONKey(exec.ToValue(k))
			if err != nil {
				return err
			}
			keys = append(keys, ks)
			byKey[ks] = exec.ToValue(rv.MapIndex(k))
		}
		sort.Strings(keys)
		vals := make([]*exec.Value, len(keys))
		for i, k := range keys {
			vals[i] = byKey[k]
		}
		return writeObject(b, keys, vals, o, depth)
	default:
		return fmt.Errorf("tojson: Object of type %s is not JSON serializable", rv.Type())
	}
	return nil
}

func writeObject(b *strings.Builder, keys []string, vals []*exec.Value, o *jsonOptions, depth int) error {
	if len(keys) == 0 {
		b.WriteString("{}")
		return nil
	}
	order := make([]int, len(keys))
	for i := range order {
		order[i] = i
	}
	if o.sortKeys {
		sort.SliceStable(order, func(i, j int) bool { return keys[order[i]] < keys[order[j]] })
	}
	b.WriteByte('{')
	for n, i := range order {
		if n > 0 {
			b.WriteString(o.itemSep)
		}
		if err := newline(b, o, depth+1); err != nil {
			return err
		}
		writePyString(b, keys[i], o.ensureASCII)
		b.WriteString(o.keySep)
		if err := writePyJSON(b, vals[i], o, depth+1); err != nil {
			return err
		}
	}
	if err := newline(b, o, depth); err != nil {
		return err
	}
	b.WriteByte('}')
	return nil
}

func newline(b *strings.Builder, o *jsonOptions, depth int) error {
	if o.indent >= 0 {
		if b.Len()+1+mulSat(o.indent, depth) > o.limit {
			return o.errLong()
		}
		b.WriteByte('\n')
		b.WriteString(strings.Repeat(" ", o.indent*depth))
	}
	return nil
}

// pyJSONKey converts a dict key as json.dumps does: strings as they are,
// numbers and bools spelled out, None as "null".
func pyJSONKey(k *exec.Value) (string, error) {
	switch {
	case k.IsNil():
		return "null", nil
	case k.IsString():
		return k.String(), nil
	case k.IsBool():
		if k.Bool() {
			return "true", nil
		}
		return "false", nil
	case k.IsInteger():
		return strconv.Itoa(k.Integer()), nil
	case k.IsFloat():
		return pyFloatRepr(k.Float()), nil
	}
	return "", fmt.Errorf("tojson: keys must be str, int, float, bool or None, not %s", pyTypeName(k))
}

// writePyString writes a JSON string literal as Python's json module does:
// `"` and `\` escaped, \n \r \t \b \f by name, other control characters as
// \u00XX; with ensureASCII every non-ASCII character as \uXXXX (UTF-16
// surrogate pairs above U+FFFF), without it non-ASCII text as it is.
// Unlike Go's encoder it does not escape <, >, & or U+2028/U+2029.
func writePyString(b *strings.Builder, s string, ensureASCII bool) {
	const hex = "0123456789abcdef"
	b.WriteByte('"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch c {
			case '"':
				b.WriteString(`\"`)
			case '\\':
				b.WriteString(`\\`)
			case '\n':
				b.WriteString(`\n`)
			case '\r':
				b.WriteString(`\r`)
			case '\t':
				b.WriteString(`\t`)
			case '\b':
				b.WriteString(`\b`)
			case '\f':
				b.WriteString(`\f`)
			default:
				if c < 0x20 || (ensureASCII && c == 0x7f) {
					b.WriteString(`\u00`)
					b.WriteByte(hex[c>>4])
					b.WriteByte(hex[c&15])
				} else {
					b.WriteByte(c)
				}
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if !ensureASCII {
			b.WriteString(s[i : i+size])
		} else {
			writeU := func(u rune) {
				b.WriteString(`\u`)
				for shift := 12; shift >= 0; shift -= 4 {
					b.WriteByte(hex[(u>>shift)&15])
				}
			}
			if r > 0xFFFF {
				r -= 0x10000
				writeU(0xD800 + (r >> 10))
				writeU(0xDC00 + (r & 0x3FF))
			} else {
				writeU(r)
			}
		}
		i += size
	}
	b.WriteByte('"')
}

// pyFloatRepr formats f as Python's repr(float): the shortest digits that
// read back to f, in positional notation when the decimal exponent is in
// [-4, 16), else scientific with at least two exponent digits; a
// positional number always shows a fraction ("1.0").
func pyFloatRepr(f float64) string {
	if f == 0 {
		if math.Signbit(f) {
			return "-0.0"
		}
		return "0.0"
	}
	s := strconv.FormatFloat(f, 'e', -1, 64) // d.ddde±XX, shortest digits
	mant, expStr, _ := strings.Cut(s, "e")
	exp, _ := strconv.Atoi(expStr)
	neg := strings.HasPrefix(mant, "-")
	digits := strings.Replace(strings.TrimPrefix(mant, "-"), ".", "", 1)
	var out string
	switch {
	case exp < -4 || exp >= 16:
		out = digits[:1]
		if len(digits) > 1 {
			out += "." + digits[1:]
		}
		sign := "+"
		if exp < 0 {
			sign, exp = "-", -exp
		}
		out += fmt.Sprintf("e%s%02d", sign, exp)
	case exp < 0:
		out = "0." + strings.Repeat("0", -exp-1) + digits
	case exp+1 >= len(digits):
		out = digits + strings.Repeat("0", exp+1-len(digits)) + ".0"
	default:
		out = digits[:exp+1] + "." + digits[exp+1:]
	}
	if neg {
		out = "-" + out
	}
	return out
}

// unwrap follows values that wrap other values.
func unwrap(v *exec.Value) *exec.Value {
	for {
		inner, ok := v.Interface().(*exec.Value)
		if !ok {
			return v
		}
		v = inner
	}
}
