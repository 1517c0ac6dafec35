package chat

import (
	"bytes"
	"context"
	"errors"
	"os"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nikolalohinski/gonja/v2/builtins"

	"github.com/gollm/gollm/gguf"
	"github.com/gollm/gollm/internal/testdata"
)

// small are the limits of the hostile templates' tests: small enough that
// each case fails in milliseconds and a few MiB. Time is generous, so that
// only the cases about time depend on the machine's speed (-race makes
// gonja ten times slower).
var small = Limits{
	Time:       10 * time.Second,
	Depth:      32,
	Iterations: 10_000,
	Output:     64 << 10,
	Memory:     1 << 20,
}

// TestHostileTemplates: every template here would hang, crash or exhaust
// the process on gonja as it is (a stack overflow, a panic, 30 s or more,
// gigabytes); each must fail with an error naming what it ran into.
func TestHostileTemplates(t *testing.T) {
	deep := strings.Repeat("(", 50_000) + "1" + strings.Repeat(")", 50_000) // 100 KB
	for _, c := range []struct {
		name, src string
		limits    Limits // zero: small
		want      error
		msg       string
	}{
		// Parse depth: refused before gonja's parser recurses.
		{"100 KB of nested brackets", "{{" + deep + "}}", small, ErrSyntax, "nest 50000 levels deep, more than 256 (MaxDepth)"},
		{"300 nested blocks", strings.Repeat("{% if 1 %}", 300) + strings.Repeat("{% endif %}", 300), small, ErrSyntax, "300 levels deep"},
		{"a chain of 30,000 additions", "{{ " + strings.Repeat("1+", 30_000) + "1 }}", small, ErrSyntax, "more than 256 levels deep (MaxDepth)"},
		{"a chain of 30,000 attributes", "{{ x" + strings.Repeat(".a", 30_000) + " }}", small, ErrSyntax, "MaxDepth"},
		{"a 2 MiB source", strings.Repeat("x", 2<<20), small, ErrSyntax, "more than the 1 MiB a chat template may have"},
		{"nesting past Limits.Depth", "{{ " + strings.Repeat("[", 40) + strings.Repeat("]", 40) + " }}", small, ErrLimit, "deeper than Limits.Depth (32)"},

		// Recursion.
		{"a recursive macro", `{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}`, small, ErrLimit, "nest deeper than Limits.Depth (32)"},
		{"a block that renders itself", `{% block b %}{{ self.b() }}{% endblock %}`, small, ErrLimit, "Limits.Depth"},
		{"a loop that recurses on itself", `{% for x in [1] recursive %}{{ loop([1]) }}{% endfor %}`, small, ErrLimit, "Limits.Depth"},
		{"a template that extends itself", `{% extends "/chat_template.jinja" %}`, small, ErrRender, "no loader"},
		{"a template that includes itself", `{% include "/chat_template.jinja" %}`, small, ErrRender, "no loader"},
		{"a template that imports itself", `{% import "/chat_template.jinja" as t %}`, small, ErrRender, "no loader"},

		// Arithmetic: gonja panics or makes up a number.
		{"modulo by zero", `{{ x % 0 }}`, small, ErrRender, "ZeroDivisionError: integer modulo by zero"},
		{"the fuzzer's modulo by zero", `{%set 0A=0%0%}`, small, ErrRender, "ZeroDivisionError"},
		{"float modulo by zero", `{{ 7.5 % 0 }}`, small, ErrRender, "ZeroDivisionError: float modulo"},
		{"division by zero", `{{ 1/0 }}`, small, ErrRender, "ZeroDivisionError: division by zero"},
		{"float division by zero", `{{ 1.0/0 }}`, small, ErrRender, "ZeroDivisionError: float division by zero"},
		{"floor division by zero", `{{ 7//0 }}`, small, ErrRender, "ZeroDivisionError: integer division or modulo by zero"},

		// Time and iterations.
		{"range(1e8)", `{% for i in range(1e8) %}{% endfor %}`, small, ErrRender, "TypeError: 'float' object cannot be interpreted as an integer"},
		{"range(100000000)", `{% for i in range(100000000) %}{% endfor %}`, small, ErrLimit, "more than the 100000 Hugging Face's sandbox allows"},
		{"nested loops", `{% for i in range(1000) %}{% for j in range(1000) %}{% endfor %}{% endfor %}`, small, ErrLimit, "more than Limits.Iterations (10000) loop iterations"},
		{"nested loops, out of time", `{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}`,
			Limits{Time: 50 * time.Millisecond, Iterations: 1 << 40}, ErrLimit, "longer than Limits.Time (50ms)"},
		{"a macro that calls itself twice", `{% macro f(n) %}{% if n %}{{ f(n-1) }}{{ f(n-1) }}{% endif %}{% endmacro %}{{ f(30) }}`,
			Limits{Time: 50 * time.Millisecond}, ErrLimit, "longer than Limits.Time (50ms)"},

		// Sizes: refused before they are built.
		{"'x'*1e5*1e5", `{{ 'x'*1e5*1e5 }}`, small, ErrRender, "TypeError: can't multiply sequence by non-int of type 'float'"},
		{"'x'*1000*10000000", `{{ 'x'*1000*10000000 }}`, small, ErrLimit, "* would build 10000000000 bytes, more than Limits.Output (64 KiB)"},
		{"[1]*1e10", `{{ [1]*10000000000 }}`, small, ErrLimit, "Limits.Output (64 KiB)"},
		{"center", `{{ 'x' | center(1000000000) }}`, small, ErrLimit, "filter center would build 1000000000 bytes"},
		{"format", `{{ '%1000000000d' | format(1) }}`, small, ErrLimit, "filter format would build"},
		{"format with a width from the arguments", `{{ '%*d' | format(1000000000, 1) }}`, small, ErrLimit, "filter format would build"},
		{"str.format", `{{ '{:>1000000000}'.format(1) }}`, small, ErrLimit, "method format would build"},
		{"str.ljust", `{{ 'x'.ljust(1000000000) }}`, small, ErrLimit, "method ljust would build"},
		{"str.zfill", `{{ 'x'.zfill(1000000000) }}`, small, ErrLimit, "method zfill would build"},
		{"join with a long separator", `{{ range(1000)|join('x'*10000) }}`, small, ErrLimit, "filter join would build"},
		{"replace", `{{ ('x'*1000)|replace('x', 'y'*10000) }}`, small, ErrLimit, "filter replace would build"},
		{"indent", `{{ ('a\n'*10000)|indent(1000) }}`, small, ErrLimit, "filter indent would build"},
		{"batch", `{{ 'abc'|batch(1000000000, fill_with='x')|list|length }}`, small, ErrLimit, "filter batch would build"},
		{"slice", `{{ [1]|slice(1000000000)|length }}`, small, ErrLimit, "filter slice would build"},
		{"list of a long string", `{{ ('x'*60000)|list|length }}`, small, ErrLimit, "filter list would build"},
		{"lipsum", `{{ lipsum(1000000) }}`, small, ErrLimit, "lipsum would build"},
		{"tojson with a huge indent", `{% set ns = namespace(a=[1]) %}{% for i in range(20) %}{% set ns.a = [ns.a] %}{% endfor %}{{ ns.a|tojson(indent=100000) }}`,
			small, ErrLimit, "tojson: the JSON text passes Limits.Output"},

		// Sizes: values grown by a loop.
		{"doubling a string", `{% set ns = namespace(a='x') %}{% for i in range(40) %}{% set ns.a = ns.a ~ ns.a %}{% endfor %}`, small, ErrLimit, "made by ~"},
		{"doubling a list", `{% set ns = namespace(a=[1]) %}{% for i in range(40) %}{% set ns.a = ns.a + ns.a %}{% endfor %}`, small, ErrLimit, "made by +"},
		{"a list holding itself twice, 40 times", `{% set ns = namespace(a=['x']) %}{% for i in range(40) %}{% set ns.a = [ns.a, ns.a] %}{% endfor %}{{ ns.a }}`,
			small, ErrLimit, "a value prints as more than Limits.Output (64 KiB) (made by a literal)"},
		{"a list 1,000 lists deep", `{% set ns = namespace(a=[]) %}{% for i in range(1000) %}{% set ns.a = [ns.a] %}{% endfor %}{{ ns.a }}`,
			small, ErrLimit, "a value nests deeper than Limits.Depth (32)"},
		{"a namespace holding itself", `{% set ns = namespace(x=1) %}{% set ns.x = ns %}{{ ns }}`, small, ErrLimit, "nests deeper than Limits.Depth"},
		{"the output", `{% for i in range(10000) %}{{ 'x' * 1000 }}{% endfor %}`, small, ErrLimit, "the output passes Limits.Output (64 KiB)"},
		{"a macro's text", `{% macro m() %}{% for i in range(10000) %}{{ 'x' * 1000 }}{% endfor %}{% endmacro %}{{ m()|length }}`,
			small, ErrLimit, "the text of a macro or block passes Limits.Output (64 KiB)"},
		{"a set block's text", `{% set x %}{% for i in range(10000) %}{{ 'x' * 1000 }}{% endfor %}{% endset %}`,
			small, ErrLimit, "the text of a macro or block passes Limits.Output"},
		{"garbage", `{% for i in range(10000) %}{% set x = 'y' * 60000 %}{% endfor %}`, small, ErrLimit, "the render builds more than Limits.Memory (1 MiB)"},
		{"a filter mapped over a long list", `{{ range(100000)|map('center', 60000)|list|length }}`, small, ErrLimit, "Limits.Memory (1 MiB)"},
	} {
		t.Run(c.name, func(t *testing.T) {
			tpl, err := NewTemplate(c.src, "<s>", "</s>")
			if err == nil {
				_, err = tpl.WithLimits(c.limits).Render([]Message{{Role: "user", Content: "hi"}}, RenderOptions{Extra: map[string]any{"x": 7}})
			}
			if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.msg) {
				t.Fatalf("got %v\nwant %v mentioning %q", err, c.want, c.msg)
			}
		})
	}
}

// TestPythonArithmetic: the operators the sandbox takes over from gonja
// compute what Python does (the values were printed by Python 3.11).
func TestPythonArithmetic(t *testing.T) {
	for src, want := range map[string]string{
		`{{ 7/2 }} {{ 6/3 }} {{ -7/2 }}`:                                      "3.5 2.0 -3.5",
		`{{ -7//2 }} {{ 7//-2 }} {{ 7//2 }} {{ 7.5//2 }}`:                     "-4 -4 3 3.0",
		`{{ -7%2 }} {{ 7%-2 }} {{ 7%2 }} {{ -7.5%2 }}`:                        "1 -1 1 0.5",
		`{{ 3*'ab' }}|{{ 'ab'*2 }}|{{ 'ab'*-1 }}|{{ 'a'*true }}`:              "ababab|abab||a",
		`{{ [1,2]*2 }} {{ 2*[1] }} {{ 2*3 }} {{ 2*1.5 }}`:                     "[1, 2, 1, 2] [1, 1] 6 3.0",
		`{{ 'x' ~ 1 ~ none }}`:                                                "x1",
		`{{ range(3) }} {{ range(10, 0, -3)|list }} {{ range(2, 2)|length }}`: "[0, 1, 2] [10, 7, 4, 1] 0",
		// Subscripts as Python has them: gonja took x[-n] only when
		// len(x) > n, so [7][-1] (messages[-1] of a first turn) was None.
		`{{ [7][-1] }} {{ [7, 8][-2] }} {{ [7][-2] is defined }} {{ [7][1] is defined }}`:     "7 7 False False",
		`{{ 'a'[-1] }}{{ 'héllo'[1] }}{{ 'héllo'[-4] }} {{ {'k': 1}['k'] }} {{ (1, 2)[-1] }}`: "aéé 1 2",
	} {
		got, err := render(t, src, nil)
		if err != nil || got != want {
			t.Errorf("%s: got %q, %v; want %q", src, got, err, want)
		}
	}
	for src, msg := range map[string]string{
		`{{ 'a' * 'b' }}`:      "can't multiply sequence by non-int of type 'str'",
		`{{ {} * 2 }}`:         "unsupported operand type(s) for *: 'dict' and 'int'",
		`{{ 'a' / 2 }}`:        "unsupported operand type(s) for /: 'str' and 'int'",
		`{{ '%s' % 1 }}`:       "printf-style formatting",
		`{{ range(1, 2, 0) }}`: "ValueError: range() arg 3 must not be zero",
	} {
		if _, err := render(t, src, nil); !errors.Is(err, ErrRender) || !strings.Contains(err.Error(), msg) {
			t.Errorf("%s: got %v, want an error mentioning %q", src, err, msg)
		}
	}
}

// TestStatements: the statements the sandbox parses itself, and what it
// refuses or leaves out as Hugging Face's environment does.
func TestStatements(t *testing.T) {
	for src, want := range map[string]string{
		`{% with a = 1, b = 2 %}{{ a + b }}{% endwith %}{{ a }}`:                                                 "3",
		`{% filter upper %}ab{{ 'c' + 'd' }}{% endfilter %}`:                                                     "ABCD",
		`{% filter replace('a', 'b') | upper %}aa{% endfilter %}`:                                                "BB",
		`{% for i in [1, 2, 3] %}{% if i == 2 %}{% continue %}{% endif %}{{ i }}{% endfor %}`:                    "13",
		`{% for i in [1, 2, 3] %}{% if i == 2 %}{% break %}{% endif %}{{ i }}{% endfor %}`:                       "1",
		`{% macro m(x) %}<{{ caller() }}{{ x }}>{% endmacro %}{% call m(1) %}{{ 'a' + 'b' }}{% endcall %}`:       "<ab1>",
		`{% raw %}{{ x }}{% endraw %}`:                                                                           "{{ x }}",
		`{% set ns = namespace(l=[]) %}{% for i in range(3) %}{% set ns.l = ns.l + [i] %}{% endfor %}{{ ns.l }}`: "[0, 1, 2]",
		`{{ gonja }}|{{ _ }}`: "|",
	} {
		got, err := render(t, src, nil)
		if err != nil || got != want {
			t.Errorf("%s: got %q, %v; want %q", src, got, err, want)
		}
	}
	if _, err := NewTemplate(`{% trans %}x{% endtrans %}`, "", ""); !errors.Is(err, ErrSyntax) {
		t.Errorf("trans: %v, want ErrSyntax", err)
	}
}

// blockingContext is a context whose Err, the first time a render asks,
// reports that the render has started and waits until it is released: the
// render holding it stops inside the template engine, as a slow template
// would, and for as long as the test wants.
type blockingContext struct {
	context.Context
	inside  chan struct{}
	release chan struct{}
	once    sync.Once
}

func (c *blockingContext) Err() error {
	c.once.Do(func() {
		close(c.inside)
		<-c.release
	})
	return nil
}

// TestRendersRunInParallel: while one render of a template is stopped
// inside the engine, another render of the same template runs to its end.
// (With a lock held for the whole render, as before, this test never
// finishes; go test's timeout reports it.)
func TestRendersRunInParallel(t *testing.T) {
	tpl, err := NewTemplate(`{% for m in messages %}{{ m.role + ': ' + m.content }};{% endfor %}`, "", "")
	check(t, err)
	msgs := []Message{{Role: "user", Content: "hi"}, {Role: "assistant", Content: "hello"}}
	slow := &blockingContext{Context: context.Background(), inside: make(chan struct{}), release: make(chan struct{})}
	done := make(chan error)
	go func() {
		_, err := tpl.RenderContext(slow, msgs, RenderOptions{})
		done <- err
	}()
	<-slow.inside
	got, err := tpl.Render(msgs, RenderOptions{})
	if err != nil || got != "user: hi;assistant: hello;" {
		t.Errorf("the second render: %q, %v", got, err)
	}
	close(slow.release)
	if err := <-done; err != nil {
		t.Errorf("the first render: %v", err)
	}
}

func TestRenderContextCanceled(t *testing.T) {
	tpl, err := NewTemplate(`{% for i in range(10) %}{{ i }}{% endfor %}`, "", "")
	check(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := tpl.RenderContext(ctx, nil, RenderOptions{}); !errors.Is(err, context.Canceled) || !errors.Is(err, ErrRender) {
		t.Errorf("got %v, want context.Canceled and ErrRender", err)
	}
}

func TestLimits(t *testing.T) {
	tpl, err := NewTemplate(`x`, "", "")
	check(t, err)
	if got := tpl.Limits(); got != DefaultLimits() {
		t.Errorf("a new template's limits: %+v", got)
	}
	got := tpl.WithLimits(Limits{Time: time.Minute, Depth: 1000}).Limits()
	want := DefaultLimits()
	want.Time, want.Depth = time.Minute, MaxDepth
	if got != want {
		t.Errorf("WithLimits: %+v, want %+v", got, want)
	}
	if tpl.Limits() != DefaultLimits() {
		t.Error("WithLimits changed the template it was called on")
	}
}

// TestRealTemplatesWithinLimits renders real templates for a conversation
// of about Limits.Output, and checks that the defaults leave them room: a
// quarter of Limits.Memory is enough.
func TestRealTemplatesWithinLimits(t *testing.T) {
	var msgs []Message
	for i := range 200 {
		content := strings.Repeat("word ", 100) // 500 bytes
		if i%2 == 0 {
			msgs = append(msgs, Message{Role: "user", Content: content})
		} else {
			msgs = append(msgs, Message{Role: "assistant", Content: "<think>\nhmm\n</think>\n\n" + content})
		}
	}
	for _, file := range []string{"qwen3.jinja", "deepseek-r1-0528-qwen3-8b.jinja"} {
		source, err := os.ReadFile(testdata.Path("templates", file))
		check(t, err)
		tpl, err := NewTemplate(string(source), "<s>", "</s>")
		check(t, err)
		if tpl.depth*4 > defaultDepth {
			t.Errorf("%s nests %d levels deep, more than a quarter of the default Limits.Depth", file, tpl.depth)
		}
		out, err := tpl.WithLimits(Limits{Time: time.Minute}).Render(msgs, RenderOptions{AddGenerationPrompt: true})
		check(t, err)
		// Scale the limits to this output: as if it were Limits.Output.
		limits := Limits{Time: time.Minute, Output: len(out), Memory: len(out) * defaultMemory / defaultOutput / 4}
		if _, err := tpl.WithLimits(limits).Render(msgs, RenderOptions{AddGenerationPrompt: true}); err != nil {
			t.Errorf("%s within %+v: %v", file, limits, err)
		}
	}
}

// TestGonjaBuiltinsCovered: the sandbox renders with gonja's filters,
// methods and statements listed by name; a gonja release that adds one
// should be noticed, and the new one checked before it is added.
func TestGonjaBuiltinsCovered(t *testing.T) {
	keys := func(set any, field string) []string {
		var names []string
		for _, k := range reflect.ValueOf(set).Elem().FieldByName(field).MapKeys() {
			names = append(names, k.String())
		}
		slices.Sort(names)
		return names
	}
	var listed []string
	for name := range gonjaFilters() {
		listed = append(listed, name)
	}
	listed = append(listed, "tojson") // Hugging Face's, in pyops.go
	slices.Sort(listed)
	if all := keys(builtins.Filters, "filters"); !slices.Equal(all, listed) {
		t.Errorf("gonja's filters %v\nlisted %v", all, listed)
	}
	tables := gonjaMethods()
	for _, c := range []struct {
		set    any
		listed int
	}{
		{builtins.Methods.Bool, len(tables.bools)}, {builtins.Methods.Int, len(tables.ints)},
		{builtins.Methods.Float, len(tables.floats)}, {builtins.Methods.Str, len(tables.strs)},
		{builtins.Methods.Dict, len(tables.dicts)}, {builtins.Methods.List, len(tables.lists)},
	} {
		if all := keys(c.set, "methods"); len(all) != c.listed {
			t.Errorf("gonja has methods %v, %d listed", all, c.listed)
		}
	}
	want := []string{"autoescape", "block", "break", "call", "continue", "do", "extends", "filter", "for", "from",
		"if", "import", "include", "macro", "raw", "set", "trans", "with"}
	if all := keys(builtins.ControlStructures, "statements"); !slices.Equal(all, want) {
		t.Errorf("gonja's statements %v, known %v", all, want)
	}
}

// TestFromGGUFHostile: FromGGUF returns a template whose source parses,
// even if it cannot render (the root package then loads the model and
// reports the template's error when it is used), and a clean ErrSyntax for
// one that the sandbox refuses to parse.
func TestFromGGUFHostile(t *testing.T) {
	file := func(source string) *gguf.File {
		w := gguf.NewWriter()
		check(t, w.Set("tokenizer.chat_template", gguf.String(source)))
		check(t, w.Set("tokenizer.ggml.tokens", gguf.ArrayOf([]string{"<s>", "</s>"})))
		check(t, w.Set("tokenizer.ggml.bos_token_id", gguf.Uint32(0)))
		var b bytes.Buffer
		_, err := w.WriteTo(&b)
		check(t, err)
		f, err := gguf.Parse(b.Bytes())
		check(t, err)
		return f
	}
	tpl, err := FromGGUF(file(`{{ bos_token }}{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}`))
	check(t, err)
	if _, err := tpl.Render(nil, RenderOptions{}); !errors.Is(err, ErrLimit) {
		t.Errorf("rendering a recursive macro: %v, want ErrLimit", err)
	}
	deep := "{{" + strings.Repeat("[", 100_000) + strings.Repeat("]", 100_000) + "}}"
	if _, err := FromGGUF(file(deep)); !errors.Is(err, ErrSyntax) {
		t.Errorf("a template nested 100,000 levels: %v, want ErrSyntax", err)
	}
}

// TestDeepErrorsStayShort: an error raised at the bottom of deep nesting
// is reported once, not once per level. gonja copies the text of an error
// into a new message at every macro call it rises through, so a limit hit
// by a recursive macro called inside 240 nested blocks (60,000 levels in
// all) took minutes and gigabytes to report; its message is now one line,
// and so is that of an error of gonja's own raised 200 calls deep.
func TestDeepErrorsStayShort(t *testing.T) {
	ifs := func(n int, body string) string {
		return strings.Repeat("{% if 1 %}", n) + body + strings.Repeat("{% endif %}", n)
	}
	for _, c := range []struct {
		name, src string
		want      error
	}{
		{"a limit", `{% macro f() %}` + ifs(240, "{{ f() }}") + `{% endmacro %}{{ f() }}`, ErrLimit},
		{"gonja's error", `{% macro f(n) %}` + ifs(20, "{% if n %}{{ f(n-1) }}{% else %}{{ x.nope() }}{% endif %}") + `{% endmacro %}{{ f(200) }}`, ErrRender},
	} {
		t.Run(c.name, func(t *testing.T) {
			tpl, err := NewTemplate(c.src, "", "")
			check(t, err)
			_, err = tpl.WithLimits(Limits{Depth: MaxDepth, Time: time.Minute}).Render(nil, RenderOptions{Extra: map[string]any{"x": 7}})
			if !errors.Is(err, c.want) || len(err.Error()) > 300 {
				t.Fatalf("got %d bytes of %v, want %v in at most 300 bytes", len(err.Error()), err, c.want)
			}
			t.Logf("%v", err)
		})
	}
}
