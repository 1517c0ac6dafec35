package chat

import (
	"errors"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

// render is a one-message-free render helper for expression tests.
func render(t *testing.T, source string, extra map[string]any) (string, error) {
	t.Helper()
	tpl, err := NewTemplate(source, "<s>", "</s>")
	if err != nil {
		return "", err
	}
	return tpl.Render(nil, RenderOptions{Extra: extra})
}

func TestPythonPlus(t *testing.T) {
	obj := Object{{"a", 1}}
	for _, c := range []struct {
		src, want string
		vars      map[string]any
		err       string
	}{
		{src: `{{ 1 + 2 }}`, want: "3"},
		{src: `{{ 1 + 2.5 }}`, want: "3.5"},
		{src: `{{ true + 1 }}`, want: "2"},
		{src: `{{ 'a' + 'b' }}`, want: "ab"},
		{src: `{{ ([1] + [2, 3]) | length }}`, want: "3"},
		{src: `{% set x = 'p' + 'q' %}{{ x }}`, want: "pq"},
		{src: `{% set ns = namespace(s='') %}{% for i in [1,2] %}{% set ns.s = ns.s + 'x' %}{% endfor %}{{ ns.s }}`, want: "xx"},
		{src: `{% if 'a' + 'b' == 'ab' %}yes{% endif %}`, want: "yes"},
		{src: `{% for c in ['a'] + ['b'] %}{{ c }}{% endfor %}`, want: "ab"},
		{src: `{{ 'x' ~ 1 }}`, want: "x1"}, // ~ stringifies, as in Python
		{src: `{{ 'a' + d }}`, vars: map[string]any{"d": obj}, err: `can only concatenate str (not "dict") to str`},
		{src: `{{ 'a' + 1 }}`, err: `can only concatenate str (not "int") to str`},
		{src: `{{ 'a' + none }}`, err: `can only concatenate str (not "NoneType") to str`},
		{src: `{{ [1] + 'a' }}`, err: `can only concatenate list (not "str") to list`},
		{src: `{{ 1 + 'a' }}`, err: `unsupported operand type(s) for +: 'int' and 'str'`},
		{src: `{% set x = 'a' + 2 %}`, err: `can only concatenate str (not "int") to str`},
	} {
		got, err := render(t, c.src, c.vars)
		if c.err != "" {
			if err == nil || !errors.Is(err, ErrRender) || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%s: got %q, %v; want error %q", c.src, got, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("%s: got %q, %v; want %q", c.src, got, err, c.want)
		}
	}
}

func TestToJSON(t *testing.T) {
	v := Object{
		{"name", "météo <&> \u2028 \"q\" \\ \n\t\x01"},
		{"n", int64(3)},
		{"f", 1.5},
		{"big", 1e16},
		{"small", 0.0001},
		{"tiny", 1e-5},
		{"whole", 2.0},
		{"ok", true},
		{"none", nil},
		{"list", []any{int64(1), "two", Object{}}},
		{"empty", []any{}},
		{"z", Object{{"b", 1}, {"a", 2}}},
	}
	for _, c := range []struct{ src, want string }{
		{`{{ v | tojson }}`, `{"name": "météo <&> ` + "\u2028" + ` \"q\" \\ \n\t\u0001", "n": 3, "f": 1.5, "big": 1e+16, "small": 0.0001, "tiny": 1e-05, "whole": 2.0, "ok": true, "none": null, "list": [1, "two", {}], "empty": [], "z": {"b": 1, "a": 2}}`},
		{`{{ v.z | tojson(indent=2) }}`, "{\n  \"b\": 1,\n  \"a\": 2\n}"},
		{`{{ v.z | tojson(sort_keys=true) }}`, `{"a": 2, "b": 1}`},
		{`{{ v.z | tojson(separators=(',', ':')) }}`, `{"b":1,"a":2}`},
		{`{{ v.name | tojson(ensure_ascii=true) }}`, `"m\u00e9t\u00e9o <&> \u2028 \"q\" \\ \n\t\u0001"`},
		{`{{ '🦙' | tojson(ensure_ascii=true) }}`, `"\ud83e\udd99"`},
		{`{{ '🦙' | tojson(true) }}`, `"\ud83e\udd99"`}, // the first positional argument is ensure_ascii
		{`{{ [1, 2] | tojson(false, 1) }}`, "[\n 1,\n 2\n]"},
	} {
		got, err := render(t, c.src, map[string]any{"v": v})
		if err != nil || got != c.want {
			t.Errorf("%s:\n got  %q (%v)\n want %q", c.src, got, err, c.want)
		}
	}
}

func TestPyFloatRepr(t *testing.T) {
	for f, want := range map[float64]string{
		1: "1.0", -2.5: "-2.5", 0.1: "0.1", 1e16: "1e+16", 1e15: "1000000000000000.0", 1.5e-5: "1.5e-05",
		0.0001: "0.0001", 123456789.125: "123456789.125", 1e300: "1e+300", math.MaxFloat64: "1.7976931348623157e+308",
		5e-324: "5e-324", math.Copysign(0, -1): "-0.0", 0: "0.0", 123456789012345678.0: "1.2345678901234568e+17",
	} {
		if got := pyFloatRepr(f); got != want {
			t.Errorf("pyFloatRepr(%v) = %q, want %q", f, got, want)
		}
	}
}

func TestDecodeJSON(t *testing.T) {
	v, err := DecodeJSON([]byte(`{"b": 1, "a": [1.0, 2e3, null, true, "x"], "b": {"z": 2, "y": 9007199254740993}}`))
	check(t, err)
	want := Object{{"b", Object{{"z", int64(2)}, {"y", int64(9007199254740993)}}}, {"a", []any{1.0, 2000.0, nil, true, "x"}}}
	if !reflect.DeepEqual(v, want) {
		t.Fatalf("got %#v", v)
	}
	for _, bad := range []string{``, `{`, `{"a":}`, `[1,]`, `1 2`, `{"a" 1}`} {
		if _, err := DecodeJSON([]byte(bad)); !errors.Is(err, ErrInvalidJSON) {
			t.Errorf("DecodeJSON(%q) = %v, want ErrInvalidJSON", bad, err)
		}
	}
}

func TestTemplateErrors(t *testing.T) {
	for _, c := range []struct {
		src  string
		want error
		msg  string
	}{
		{`{% if %}`, ErrSyntax, ""},
		{`{{ 1 + }}`, ErrSyntax, ""},
		{`{% for x in y %}`, ErrSyntax, ""},
		{`{{ raise_exception('Only user and assistant roles are supported!') }}`, ErrRaised, "Only user and assistant roles are supported!"},
		{`{{ v | tojson(indent='x') }}`, ErrRender, "indent"},
		{`{{ v | tojson(color=1) }}`, ErrRender, "unexpected or repeated argument"},
		{`{{ v | tojson(1, 2, 3, 4, 5) }}`, ErrRender, "at most 4"},
		// gonja's own errors in one line: the innermost statement's line and the cause.
		{"{% if 1 %}\n{% if 1 %}{{ v.nope() }}{% endif %}{% endif %}", ErrRender, "chat: template error: line 2: invalid call to method 'nope'"},
	} {
		_, err := render(t, c.src, map[string]any{"v": 1})
		if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%s: got %v, want %v mentioning %q", c.src, err, c.want, c.msg)
		}
	}
	if _, err := render(t, `{{ x }}`, map[string]any{"x": func() {}}); !errors.Is(err, ErrValue) {
		t.Errorf("a Go func as a variable: got %v, want ErrValue", err)
	}
}

func TestMessagesAndRequest(t *testing.T) {
	req, err := ParseRequest([]byte(`{"messages": [
		{"role": "user", "content": "hi", "name": "bob"},
		{"role": "assistant", "content": null, "reasoning_content": "hmm",
		 "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{\"x\": 1}"}}]}],
		"options": {"enable_thinking": false, "add_generation_prompt": true}}`))
	check(t, err)
	want := []Message{
		{Role: "user", Content: "hi", Extra: Object{{"name", "bob"}}},
		{Role: "assistant", ReasoningContent: "hmm", ToolCalls: []ToolCall{{ID: "c1", Type: "function", Function: FunctionCall{"f", `{"x": 1}`}}}},
	}
	if !reflect.DeepEqual(req.Messages, want) {
		t.Fatalf("messages: %#v", req.Messages)
	}
	if !req.Options.AddGenerationPrompt || req.Options.Extra["enable_thinking"] != false || len(req.Options.Extra) != 1 {
		t.Fatalf("options: %#v", req.Options)
	}
	tpl, err := NewTemplate(`{% for m in messages %}{{ m | tojson }};{% endfor %}`, "", "")
	check(t, err)
	got, err := tpl.Render(req.Messages, RenderOptions{})
	check(t, err)
	wantText := `{"role": "user", "content": "hi", "name": "bob"};` +
		`{"role": "assistant", "content": "", "reasoning_content": "hmm", "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{\"x\": 1}"}}]};`
	if got != wantText {
		t.Fatalf("got  %s\nwant %s", got, wantText)
	}
	for _, bad := range []string{`[]`, `{"messages": 1}`, `{"messages": [1]}`, `{"messages": [{"role": 1}]}`,
		`{"messages": [], "add_generation_prompt": "yes"}`, `{"messages": [], "options": []}`} {
		if _, err := ParseRequest([]byte(bad)); !errors.Is(err, ErrInvalidJSON) {
			t.Errorf("ParseRequest(%s) = %v, want ErrInvalidJSON", bad, err)
		}
	}
}

func TestConcurrentRender(t *testing.T) {
	tpl, err := NewTemplate(`{% for m in messages %}{{ m.role + ':' + m.content }}{% endfor %}`, "", "")
	check(t, err)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				msgs := []Message{{Role: "user", Content: strings.Repeat("x", g+i)}}
				got, err := tpl.Render(msgs, RenderOptions{})
				if err != nil || got != "user:"+msgs[0].Content {
					t.Errorf("got %q, %v", got, err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// merge joins adjacent segments of the same kind.
func merge(segs []Segment) []Segment {
	var out []Segment
	for _, s := range segs {
		if n := len(out); n > 0 && out[n-1].Kind == s.Kind {
			out[n-1].Text += s.Text
		} else {
			out = append(out, s)
		}
	}
	return out
}

func parseAll(text string, inThought bool, cuts []int) []Segment {
	p := NewReasoningParser(inThought)
	var segs []Segment
	prev := 0
	for _, c := range append(cuts, len(text)) {
		segs = append(segs, p.Feed(text[prev:c])...)
		prev = c
	}
	return merge(append(segs, p.Flush()...))
}

func TestReasoningParser(t *testing.T) {
	for _, c := range []struct {
		text      string
		inThought bool
		want      []Segment
	}{
		{"<think>\nhmm\n</think>\n\nHello", false, []Segment{{Thought, "\nhmm\n"}, {Response, "\n\nHello"}}},
		{"hmm\n</think>\n\nHello", true, []Segment{{Thought, "hmm\n"}, {Response, "\n\nHello"}}},
		{"Just an answer.", false, []Segment{{Response, "Just an answer."}}},
		{"<think>unfinished", false, []Segment{{Thought, "unfinished"}}},
		{"a <thin b", false, []Segment{{Response, "a <thin b"}}},
		{"a <thin", false, []Segment{{Response, "a <thin"}}}, // a tag prefix at the end is text
		{"<think></think>x", false, []Segment{{Response, "x"}}},
		{"x<think>y</think>z<think>w", false, []Segment{{Response, "x"}, {Thought, "y"}, {Response, "z"}, {Thought, "w"}}},
		{"</think>x", false, []Segment{{Response, "</think>x"}}}, // a close tag outside a thought is text
	} {
		got := parseAll(c.text, c.inThought, nil)
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%q: got %v, want %v", c.text, got, c.want)
		}
	}
	if !PromptOpensThought("<｜Assistant｜><think>\n") || PromptOpensThought("<|im_start|>assistant\n<think>\n\n</think>\n\n") ||
		PromptOpensThought("<|im_start|>assistant\n") {
		t.Error("PromptOpensThought")
	}
}

// TestReasoningChunking: whatever the chunking, the merged segments are the
// same, including chunks that cut tags anywhere.
func TestReasoningChunking(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	pieces := []string{"<think>", "</think>", "<", "</", "<th", "</thin", "think>", "a", "\n", "é", "🦙", " x "}
	for range 2000 {
		var b strings.Builder
		for range rng.IntN(10) {
			b.WriteString(pieces[rng.IntN(len(pieces))])
		}
		text := b.String()
		inThought := rng.IntN(2) == 0
		want := parseAll(text, inThought, nil)
		var cuts []int
		for i := 1; i < len(text); i++ {
			if rng.IntN(3) == 0 {
				cuts = append(cuts, i)
			}
		}
		if got := parseAll(text, inThought, cuts); !reflect.DeepEqual(got, want) {
			t.Fatalf("%q cut at %v: got %v, want %v", text, cuts, got, want)
		}
		// Byte-by-byte too.
		all := make([]int, 0, len(text))
		for i := 1; i < len(text); i++ {
			all = append(all, i)
		}
		if got := parseAll(text, inThought, all); !reflect.DeepEqual(got, want) {
			t.Fatalf("%q byte by byte: got %v, want %v", text, got, want)
		}
	}
}

func TestHuggingFaceExtras(t *testing.T) {
	defer func(f func() time.Time) { now = f }(now)
	now = func() time.Time { return time.Date(2026, 8, 7, 15, 4, 5, 0, time.UTC) }
	for _, c := range []struct{ src, want string }{
		{`{{ strftime_now("%d %b %Y") }}`, "07 Aug 2026"},
		{`{{ strftime_now("%-d %B %Y, %A %I:%M:%S %p %j %y %m %H %% %Q") }}`, "7 August 2026, Friday 03:04:05 PM 219 26 08 15 % %Q"},
		{`a{% generation %}{{ 'b' + 'c' }}{% endgeneration %}d`, "abcd"},
	} {
		got, err := render(t, c.src, nil)
		if err != nil || got != c.want {
			t.Errorf("%s: got %q, %v; want %q", c.src, got, err, c.want)
		}
	}
	if _, err := render(t, `{% generation %}{{ 'a' + 1 }}{% endgeneration %}`, nil); !errors.Is(err, ErrRender) {
		t.Errorf("+ inside generation: %v", err)
	}
}
