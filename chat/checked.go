package chat

import (
	"math"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/nikolalohinski/gonja/v2/builtins"
	"github.com/nikolalohinski/gonja/v2/exec"
)

// The filters, methods and functions a render runs, each bound to the
// render's state so that it can keep what it builds within the limits.
//
// Every one checks what it returns: it must print within Limits.Output
// and nest within Limits.Depth, and its size counts against
// Limits.Memory. That check comes after the value is built; the ones whose
// arguments say how large the result will be (a width, a count, a
// separator repeated per item) are also checked before, from those
// arguments (filterChecks and methodChecks), so that `'x' | center(1e9)`
// is refused instead of allocating a gigabyte. Their inputs are bounded
// already: every value a template can reach was built under these checks,
// or passed in by the caller.

// gonjaFilters are gonja's filters this package renders with: all of
// them but tojson, which Hugging Face defines differently (pyops.go).
var gonjaFilters = sync.OnceValue(func() map[string]exec.FilterFunction {
	names := []string{
		"abs", "attr", "batch", "capitalize", "center", "default", "d", "dictsort",
		"e", "escape", "filesizeformat", "first", "float", "forceescape", "format",
		"groupby", "indent", "int", "join", "items", "last", "length", "count",
		"list", "lower", "map", "max", "min", "pprint", "random", "rejectattr",
		"reject", "replace", "reverse", "round", "safe", "selectattr", "select",
		"slice", "sort", "string", "striptags", "sum", "title", "trim", "truncate",
		"unique", "upper", "urlencode", "urlize", "wordcount", "wordwrap", "xmlattr",
	}
	filters := make(map[string]exec.FilterFunction, len(names))
	for _, name := range names {
		f, ok := builtins.Filters.Get(name)
		if !ok {
			panic("chat: gonja has no filter " + name) // TestGonjaBuiltinsCovered
		}
		filters[name] = f
	}
	return filters
})

// boundSet holds the filters and methods of one render, bound to its
// state. Building them takes about 20 µs (some 130 closures and their
// maps), a tenth of a short render, so renders reuse them: the pool hands
// each render a set no other render holds, and Render sets state for the
// time of the render.
type boundSet struct {
	state   *renderState
	filters *exec.FilterSet
	methods exec.Methods
}

var boundSets = sync.Pool{New: func() any { return newBoundSet() }}

func newBoundSet() *boundSet {
	b := &boundSet{}
	filters := make(map[string]exec.FilterFunction, len(gonjaFilters())+len(pyFilters))
	for name, f := range gonjaFilters() {
		filters[name] = b.checkedFilter(name, f)
	}
	for name, f := range pyFilters {
		filters[name] = func(e *exec.Evaluator, in *exec.Value, params *exec.VarArgs) *exec.Value {
			s := b.state
			if err := s.tick(); err != nil {
				return exec.AsValue(err)
			}
			return f(s, e, in, params)
		}
	}
	b.filters = exec.NewFilterSet(filters)
	t := gonjaMethods()
	b.methods = exec.Methods{
		Bool:  checkedMethods(b, t.bools),
		Int:   checkedMethods(b, t.ints),
		Float: checkedMethods(b, t.floats),
		Str:   checkedMethods(b, t.strs),
		Dict:  checkedMethods(b, t.dicts),
		List:  checkedMethods(b, t.lists),
	}
	return b
}

// checkedFilter returns gonja's filter f with the checks.
func (b *boundSet) checkedFilter(name string, f exec.FilterFunction) exec.FilterFunction {
	what := "filter " + name
	before := filterChecks[name]
	return func(e *exec.Evaluator, in *exec.Value, params *exec.VarArgs) *exec.Value {
		s := b.state
		if err := s.tick(); err != nil {
			return exec.AsValue(err)
		}
		if before != nil && !in.IsError() {
			if err := before(s, what, in, params); err != nil {
				return s.raise(err)
			}
		}
		out := f(e, in, params)
		if out == in || out.IsError() {
			return out
		}
		if err := s.built(what, out); err != nil {
			return s.raise(err)
		}
		return out
	}
}

// sizeCheck refuses a filter or method call from its input and
// arguments, before it runs.
type sizeCheck func(s *renderState, what string, in *exec.Value, params *exec.VarArgs) error

// filterChecks are the filters whose arguments say how large their result
// will be.
var filterChecks = map[string]sizeCheck{
	"center": func(s *renderState, what string, in *exec.Value, params *exec.VarArgs) error {
		width, _ := intArg(params, 0, "width")
		return s.allow(what, max(width, len(in.String())))
	},
	"indent": func(s *renderState, what string, in *exec.Value, params *exec.VarArgs) error {
		if !in.IsString() {
			return nil // gonja refuses it
		}
		width := 4
		if v := arg(params, 0, "width"); v != nil {
			if v.IsString() {
				width = len(v.String())
			} else {
				width = v.Integer()
			}
		}
		lines := strings.Count(in.String(), "\n") + 1
		return s.allow(what, len(in.String())+mulSat(lines, max(width, 0)))
	},
	"format": func(s *renderState, what string, in *exec.Value, params *exec.VarArgs) error {
		n, err := s.formatSize(in.String(), '%', params)
		if err != nil {
			return err
		}
		return s.allow(what, n)
	},
	"replace": func(s *renderState, what string, in *exec.Value, params *exec.VarArgs) error {
		count := -1
		if v := arg(params, 2, "count"); v != nil && !v.IsNil() {
			count = v.Integer()
		}
		return s.allow(what, replacedSize(in.String(), argString(params, 0, "old"), argString(params, 1, "new"), count))
	},
	"join": func(s *renderState, what string, in *exec.Value, params *exec.VarArgs) error {
		if !in.IsList() && !in.IsDict() {
			return nil
		}
		size, err := s.measure(in)
		if err != nil {
			return err
		}
		return s.allow(what, size+mulSat(in.Len(), len(argString(params, 0, "d"))))
	},
	"batch": func(s *renderState, what string, in *exec.Value, params *exec.VarArgs) error {
		// With fill_with, the last row is padded up to linecount items.
		fill := arg(params, 1, "fill_with")
		if fill == nil || fill.IsNil() {
			return nil
		}
		lines, _ := intArg(params, 0, "linecount")
		size, err := s.measure(in)
		if err == nil {
			var item int
			item, err = s.measure(fill)
			size += mulSat(max(lines, 0), item+2)
		}
		if err != nil {
			return err
		}
		return s.allow(what, size)
	},
	"slice": func(s *renderState, what string, in *exec.Value, params *exec.VarArgs) error {
		slices, _ := intArg(params, 0, "slices") // each a list, if empty
		size, err := s.measure(in)
		if err != nil {
			return err
		}
		return s.allow(what, size+mulSat(max(slices, 0), 4))
	},
	"list": func(s *renderState, what string, in *exec.Value, _ *exec.VarArgs) error {
		if !in.IsString() {
			return nil
		}
		// One string per character, each printing as 'c', plus ", ".
		return s.allow(what, mulSat(utf8.RuneCountInString(in.String()), 5))
	},
	"pprint": func(s *renderState, what string, in *exec.Value, _ *exec.VarArgs) error {
		// Indented JSON: each line indented two spaces per level.
		size, deepest, err := s.measureDeep(in)
		if err != nil {
			return err
		}
		return s.allow(what, mulSat(size, 2*deepest+1))
	},
}

// gonjaMethods are the methods of gonja's values (`s.upper()`), all of
// them, by the type they belong to.
type methodTables struct {
	bools  map[string]exec.Method[bool]
	ints   map[string]exec.Method[int]
	floats map[string]exec.Method[float64]
	strs   map[string]exec.Method[string]
	dicts  map[string]exec.Method[map[string]any]
	lists  map[string]exec.Method[[]any]
}

var gonjaMethods = sync.OnceValue(func() methodTables {
	all := builtins.Methods
	return methodTables{
		bools:  methodTable(all.Bool, "string", "int", "bit_length", "bit_count", "as_integer_ratio"),
		ints:   methodTable(all.Int, "is_integer", "bit_length", "bit_count", "as_integer_ratio"),
		floats: methodTable(all.Float, "is_integer", "as_integer_ratio", "hex"),
		strs: methodTable(all.Str, "capitalize", "capwords", "casefold", "center", "count", "encode",
			"endswith", "expandtabs", "find", "format", "format_map", "isalnum", "isalpha", "isascii",
			"isdecimal", "isdigit", "islower", "isnumeric", "isprintable", "isspace", "istitle",
			"isupper", "join", "ljust", "lower", "lstrip", "partition", "removeprefix", "removesuffix",
			"replace", "rfind", "rjust", "rpartition", "rsplit", "rstrip", "split", "splitlines",
			"startswith", "strip", "swapcase", "title", "upper", "zfill"),
		dicts: methodTable(all.Dict, "keys", "values", "items", "get", "pop", "setdefault", "update", "copy", "clear"),
		lists: methodTable(all.List, "append", "reverse", "copy"),
	}
})

func methodTable[I any](set *exec.MethodSet[I], names ...string) map[string]exec.Method[I] {
	table := make(map[string]exec.Method[I], len(names))
	for _, name := range names {
		m, ok := set.Get(name)
		if !ok {
			panic("chat: gonja has no method " + name) // TestGonjaBuiltinsCovered
		}
		table[name] = m
	}
	return table
}

func checkedMethods[I any](b *boundSet, table map[string]exec.Method[I]) *exec.MethodSet[I] {
	checked := make(map[string]exec.Method[I], len(table))
	for name, m := range table {
		checked[name] = checkedMethod(b, name, m)
	}
	return exec.NewMethodSet(checked)
}

// mutators are the methods that change their receiver, which is checked
// after them as any value built.
var mutators = map[string]bool{"append": true, "update": true, "setdefault": true}

func checkedMethod[I any](b *boundSet, name string, m exec.Method[I]) exec.Method[I] {
	what := "method " + name
	before := methodChecks[name]
	return func(self I, selfValue *exec.Value, params *exec.VarArgs) (any, error) {
		s := b.state
		if err := s.tick(); err != nil {
			return nil, err
		}
		if before != nil && selfValue.IsString() {
			if err := before(s, what, selfValue, params); err != nil {
				return nil, s.fail(err)
			}
		}
		out, err := m(self, selfValue, params)
		if err != nil {
			return nil, err
		}
		if err := s.built(what, exec.AsValue(out)); err != nil {
			return nil, err
		}
		if mutators[name] {
			if err := s.built(what, selfValue); err != nil {
				return nil, err
			}
		}
		return out, nil
	}
}

// methodChecks are the string methods whose arguments say how large their
// result will be.
var methodChecks = map[string]sizeCheck{
	"center": justified, "ljust": justified, "rjust": justified,
	"zfill": func(s *renderState, what string, in *exec.Value, params *exec.VarArgs) error {
		width, _ := intArg(params, 0, "width")
		return s.allow(what, max(width, len(in.String())))
	},
	"expandtabs": func(s *renderState, what string, in *exec.Value, params *exec.VarArgs) error {
		// gonja's takes (substr, tabsize); a tab becomes up to tabsize spaces.
		tab, _ := intArg(params, 1, "tabsize")
		str := in.String()
		return s.allow(what, len(str)+mulSat(strings.Count(str, "\t"), max(tab, 0)))
	},
	"format": pyFormat, "format_map": pyFormat,
	"replace": func(s *renderState, what string, in *exec.Value, params *exec.VarArgs) error {
		count := -1
		if v := arg(params, 2, "count"); v != nil && v.IsInteger() {
			count = v.Integer()
		}
		return s.allow(what, replacedSize(in.String(), argString(params, 0, "old"), argString(params, 1, "new"), count))
	},
	"join": func(s *renderState, what string, in *exec.Value, params *exec.VarArgs) error {
		items := arg(params, 0, "iterable")
		if items == nil || !items.IsList() {
			return nil
		}
		size, err := s.measure(items)
		if err != nil {
			return err
		}
		return s.allow(what, size+mulSat(items.Len(), len(in.String())))
	},
}

// justified checks center, ljust and rjust: width characters, each up to
// the fill character's length in bytes.
func justified(s *renderState, what string, in *exec.Value, params *exec.VarArgs) error {
	width, _ := intArg(params, 0, "width")
	fill := max(len(argString(params, 1, "fillchar")), 1)
	return s.allow(what, len(in.String())+mulSat(max(width, 0), fill))
}

func pyFormat(s *renderState, what string, in *exec.Value, params *exec.VarArgs) error {
	n, err := s.formatSize(in.String(), '{', params)
	if err != nil {
		return err
	}
	return s.allow(what, n)
}

// arg returns the argument named name, else the one at position i, else
// nil.
func arg(params *exec.VarArgs, i int, name string) *exec.Value {
	if params == nil {
		return nil
	}
	if v, ok := params.KwArgs[name]; ok {
		return v
	}
	if i < len(params.Args) {
		return params.Args[i]
	}
	return nil
}

func intArg(params *exec.VarArgs, i int, name string) (int, bool) {
	v := arg(params, i, name)
	if v == nil || !v.IsInteger() {
		return 0, false
	}
	return v.Integer(), true
}

func argString(params *exec.VarArgs, i int, name string) string {
	if v := arg(params, i, name); v != nil && !v.IsNil() {
		return v.String()
	}
	return ""
}

// replacedSize is the length of str with (up to count, if count >= 0)
// occurrences of old replaced by new. An empty old matches before every
// character and at the end.
func replacedSize(str, old, new string, count int) int {
	n := utf8.RuneCountInString(str) + 1
	if old != "" {
		n = strings.Count(str, old)
	}
	if count >= 0 {
		n = min(n, count)
	}
	return len(str) + mulSat(n, max(len(new)-len(old), 0))
}

// formatSize bounds the length of format filled in with params, for
// printf-style formats (marker '%', the format filter) and Python's
// str.format (marker '{'): each directive may print the largest argument,
// padded to the largest width or precision written in a directive or,
// where one comes from the arguments ('*' or a nested '{'), passed as one.
func (s *renderState) formatSize(format string, marker byte, params *exec.VarArgs) (int, error) {
	largest := 0
	values := append([]*exec.Value{}, params.Args...)
	for _, v := range params.KwArgs {
		values = append(values, v)
	}
	for _, v := range values {
		n, err := s.printedLen(v)
		if err != nil {
			return 0, err
		}
		largest = max(largest, n)
	}
	widths, fromArgs := formatWidths(format, marker)
	if fromArgs {
		for _, v := range values {
			if v.IsInteger() {
				widths = max(widths, v.Integer())
			}
		}
	}
	directives := strings.Count(format, string(marker))
	return addSat(len(format), mulSat(directives, addSat(largest, max(widths, 0)))), nil
}

// addSat is a+b for non-negative a and b, or the largest int when that
// overflows.
func addSat(a, b int) int {
	if a > math.MaxInt-b {
		return math.MaxInt
	}
	return a + b
}

// formatWidths returns the largest number written inside a directive of
// format, and whether a width or precision comes from the arguments.
func formatWidths(format string, marker byte) (largest int, fromArgs bool) {
	inDirective := false
	nesting := 0
	for i := 0; i < len(format); i++ {
		c := format[i]
		switch {
		case marker == '%' && c == '%':
			inDirective = true
			continue
		case marker == '%' && inDirective && c == '*':
			fromArgs = true
		case marker == '%' && inDirective && !strings.ContainsRune("+-# 0.[]123456789", rune(c)):
			inDirective = false // the verb ends the directive
		case marker == '{' && c == '{':
			nesting++
			fromArgs = fromArgs || nesting > 1
		case marker == '{' && c == '}':
			nesting = max(nesting-1, 0)
		}
		if (inDirective || nesting > 0) && c >= '0' && c <= '9' {
			j := i
			for j < len(format) && format[j] >= '0' && format[j] <= '9' {
				j++
			}
			n, err := strconv.Atoi(format[i:j])
			if err != nil {
				n = math.MaxInt // out of range
			}
			largest = max(largest, n)
			i = j - 1
		}
	}
	return largest, fromArgs
}

// printedLen returns the length of v's text: exact for a string, else as
// measured.
func (s *renderState) printedLen(v *exec.Value) (int, error) {
	if v == nil {
		return 0, nil
	}
	if v.IsString() {
		return len(v.String()), nil
	}
	return s.measure(v)
}

// measureDeep is measure, also returning how many containers deep v goes.
func (s *renderState) measureDeep(v *exec.Value) (size, deepest int, err error) {
	size, err = s.measure(v)
	if err != nil {
		return 0, 0, err
	}
	m := measurer{budget: s.limits.Output, maxDepth: s.limits.Depth}
	m.walk(v.Val, 0)
	return size, m.deepest, nil
}

// functions are the global functions of the render s that need its state;
// Render puts them among the template's variables.
func (s *renderState) functions() map[string]any {
	return map[string]any{
		"range":     s.rangeFunction,
		"namespace": s.checkedFunction("namespace", "namespace"),
		"dict":      s.checkedFunction("dict", "dict"),
		"lipsum": func(e *exec.Evaluator, params *exec.VarArgs) *exec.Value {
			// n paragraphs of min to max words, each word up to 16 bytes.
			n, ok := intArg(params, 0, "n")
			if !ok {
				n = 5
			}
			lo, ok := intArg(params, 2, "min")
			if !ok {
				lo = 20
			}
			hi, ok := intArg(params, 3, "max")
			if !ok {
				hi = 100
			}
			if err := s.allow("lipsum", mulSat(mulSat(max(n, 0), max(hi-lo, 0)), 16)); err != nil {
				return s.raise(err)
			}
			return s.checkedFunction("lipsum", "lipsum")(e, params)
		},
	}
}

// gonjaFunctions are the global functions of gonja's that renders call
// through checkedFunction.
var gonjaFunctions = sync.OnceValue(func() map[string]reflect.Value {
	functions := map[string]reflect.Value{}
	for _, name := range []string{"namespace", "dict", "lipsum"} {
		f, ok := builtins.GlobalFunctions.Get(name)
		if !ok {
			panic("chat: gonja has no function " + name)
		}
		functions[name] = reflect.ValueOf(f)
	}
	return functions
})

// checkedFunction returns gonja's global function name, its result checked.
func (s *renderState) checkedFunction(what, name string) func(*exec.Evaluator, *exec.VarArgs) *exec.Value {
	fn := gonjaFunctions()[name]
	return func(e *exec.Evaluator, params *exec.VarArgs) *exec.Value {
		if err := s.tick(); err != nil {
			return exec.AsValue(err)
		}
		out := exec.ToValue(fn.Call([]reflect.Value{reflect.ValueOf(e), reflect.ValueOf(params)})[0].Interface())
		if out.IsError() {
			return out
		}
		if err := s.built(what, out); err != nil {
			return s.raise(err)
		}
		return out
	}
}

// rangeFunction is Python's range([start,] stop[, step]), as a list, and
// at most maxRange long as in Jinja's sandbox. (gonja's feeds a channel
// from a goroutine, which runs on forever when a loop over it breaks.)
func (s *renderState) rangeFunction(_ *exec.Evaluator, params *exec.VarArgs) *exec.Value {
	if len(params.KwArgs) > 0 || len(params.Args) < 1 || len(params.Args) > 3 {
		return s.raise(pyError("TypeError", "range expected 1 to 3 integer arguments"))
	}
	bounds := make([]int, len(params.Args))
	for i, v := range params.Args {
		n, ok := asNumber(unwrap(v))
		if !ok || n.isFloat {
			return s.raise(pyError("TypeError", "'%s' object cannot be interpreted as an integer", pyTypeName(v)))
		}
		bounds[i] = n.i
	}
	start, stop, step := 0, bounds[0], 1
	if len(bounds) > 1 {
		start, stop = bounds[0], bounds[1]
	}
	if len(bounds) > 2 {
		step = bounds[2]
	}
	if step == 0 {
		return s.raise(pyError("ValueError", "range() arg 3 must not be zero"))
	}
	length := rangeLen(start, stop, step)
	if length > maxRange {
		return s.raise(limitError("range(%d, %d, %d) has %d items, more than the %d Hugging Face's sandbox allows (Jinja's MAX_RANGE)", start, stop, step, length, maxRange))
	}
	n := int(length)
	if err := s.spend(n * 8); err != nil {
		return s.raise(err)
	}
	out := make([]int, n)
	for i := range out {
		out[i] = start + i*step
	}
	return exec.AsValue(out)
}

// rangeLen is len(range(start, stop, step)) for step != 0, computed
// without overflow (the distance between two ints fits a uint64).
func rangeLen(start, stop, step int) uint64 {
	var distance, stride uint64
	switch {
	case step > 0 && start < stop:
		distance, stride = uint64(stop)-uint64(start), uint64(step)
	case step < 0 && start > stop:
		distance, stride = uint64(start)-uint64(stop), uint64(-(step+1))+1
	default:
		return 0
	}
	return (distance-1)/stride + 1
}
