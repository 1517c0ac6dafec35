package chat

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/gollm/gollm/internal/testdata"
)

// FuzzRender parses and renders arbitrary sources. Whatever the source,
// NewTemplate and Render must return, with the text or an error of this
// package: no panic may escape, and nothing may overflow the stack, run
// out of memory or run on. (Panics gonja raises and the sandbox recovers
// are errors like any other.) The limits are small so that each input
// takes little time.
//
//	go test -run '^$' -fuzz=FuzzRender -fuzztime=10m -timeout=0 ./chat
func FuzzRender(f *testing.F) {
	for _, file := range []string{"qwen3.jinja", "deepseek-r1-0528-qwen3-8b.jinja"} {
		source, err := os.ReadFile(testdata.Path("templates", file))
		check(f, err)
		f.Add(string(source))
	}
	for _, seed := range []string{
		`{{ messages[0].content | upper }}{% for m in messages %}{{ m.role ~ ':' ~ m.content }}{% endfor %}`,
		`{% for t in tools %}{{ t | tojson(indent=2) }}{% endfor %}{{ bos_token + eos_token }}`,
		`{% set ns = namespace(x=0, l=[]) %}{% for i in range(5) %}{% set ns.x = ns.x + i %}{% set ns.l = ns.l + [i] %}{% endfor %}{{ ns.x }}{{ ns.l|join(',') }}`,
		`{% macro m(a, b=2) %}{{ a * b }}{{ caller() if caller is defined }}{% endmacro %}{% call m(3) %}c{% endcall %}{{ m('x', 3) }}`,
		`{% for x in [[1, [2]], [3]] recursive %}{{ x if x is number else loop(x) }}{% endfor %}`,
		`{% with a = 1 %}{% filter upper %}{{ a / 2 }} {{ 7 // 2 }} {{ -7 % 3 }}{% endfilter %}{% endwith %}`,
		`{% block b %}{{ self.b() if false }}x{% endblock %}{% raw %}{{ y }}{% endraw %}`,
		`{% if add_generation_prompt %}{% generation %}go{% endgeneration %}{% elif x %}{% else %}{% endif %}`,
		`{{ '%5d|%s' | format(3, 'x') }}{{ '{0}-{1:>4}'.format('a', 'b') }}{{ 'a b'.split(' ')|list }}`,
		`{{ 'x' | center(9) }}{{ 'a\nb' | indent(2, true) }}{{ [1, 2, 3] | batch(2, fill_with=0) | list }}{{ [1, 2, 3] | slice(2) | list }}`,
		`{{ {'b': 1, 'a': [1, 2.5, none, true]} | tojson(sort_keys=true) }}{{ raise_exception('no') if false }}{{ strftime_now('%Y') }}`,
		`{% for i in range(3) %}{% if loop.first %}{% continue %}{% endif %}{{ loop.index }}{% if i > 1 %}{% break %}{% endif %}{% endfor %}`,
		`{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}`,
		`{% include "x" %}{% extends "/chat_template.jinja" %}`,
		`{%set 0A=0%0%}{{ 1/0 }}{{ 'x'*100000*100000 }}`,
		`{% set ns = namespace(a=['x']) %}{% for i in range(40) %}{% set ns.a = [ns.a, ns.a] %}{% endfor %}{{ ns.a }}`,
		`{% set ns = namespace(x=1) %}{% set ns.x = ns %}{{ ns }}`,
		`{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}`,
		"{{" + strings.Repeat("(", 300) + "1" + strings.Repeat(")", 300) + "}}",
	} {
		f.Add(seed)
	}
	msgs := []Message{
		{Role: "system", Content: "Be brief."},
		{Role: "user", Content: "Weather in Paris?"},
		{Role: "assistant", Content: "<think>\nhm\n</think>\n\n", ToolCalls: []ToolCall{{Type: "function", Function: FunctionCall{"get_weather", Object{{"city", "Paris"}}}}}},
		{Role: "tool", Content: `{"temp_c": 18}`},
		{Role: "assistant", Content: "It is 18 °C."},
	}
	opts := RenderOptions{
		AddGenerationPrompt: true,
		Tools:               []any{Object{{"type", "function"}, {"function", Object{{"name", "get_weather"}, {"parameters", Object{{"type", "object"}}}}}}},
		Extra:               map[string]any{"enable_thinking": false, "x": 7},
	}
	const hangAfter = 10 * time.Second // a hundred times Limits.Time
	limits := Limits{Time: 100 * time.Millisecond, Depth: 64, Iterations: 10_000, Output: 64 << 10, Memory: 4 << 20}
	f.Fuzz(func(t *testing.T, source string) {
		// A source that runs on would only stall the fuzzer's worker;
		// this makes it a crash, with every goroutine's stack, that the
		// fuzzer records as a failing input.
		watchdog := time.AfterFunc(hangAfter, func() {
			buf := make([]byte, 1<<20)
			panic(fmt.Sprintf("one source took more than %v:\n%s", hangAfter, buf[:runtime.Stack(buf, true)]))
		})
		defer watchdog.Stop()
		tpl, err := NewTemplate(source, "<s>", "</s>")
		if err != nil {
			if !errors.Is(err, ErrSyntax) {
				t.Fatalf("NewTemplate: %v does not wrap ErrSyntax", err)
			}
			return
		}
		out, err := tpl.WithLimits(limits).Render(msgs, opts)
		switch {
		case err == nil && len(out) > limits.Output:
			t.Fatalf("rendered %d bytes, more than Limits.Output (%d)", len(out), limits.Output)
		case err != nil && !errors.Is(err, ErrRender) && !errors.Is(err, ErrLimit) && !errors.Is(err, ErrRaised):
			t.Fatalf("Render: %v wraps none of ErrRender, ErrLimit, ErrRaised", err)
		}
	})
}
