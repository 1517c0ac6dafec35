package chat

import (
	"os"
	"testing"

	"github.com/gollm/gollm/internal/testdata"
)

// BenchmarkRender renders a Qwen3 tool-calling conversation (tools defined,
// a call, its result) with the real template.
func BenchmarkRender(b *testing.B) {
	source, err := os.ReadFile(testdata.Path("templates", "qwen3.jinja"))
	check(b, err)
	tpl, err := NewTemplate(string(source), "", "<|im_end|>")
	check(b, err)
	req, err := ParseRequest([]byte(`{"messages": [
		{"role": "system", "content": "You are helpful."},
		{"role": "user", "content": "Weather in Paris?"},
		{"role": "assistant", "content": "", "tool_calls": [{"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}]},
		{"role": "tool", "content": "{\"temp_c\": 18}"},
		{"role": "assistant", "content": "<think>\nIt is 18.\n</think>\n\nIt is 18 °C."},
		{"role": "user", "content": "And tomorrow?"}],
		"add_generation_prompt": true,
		"options": {"tools": [{"type": "function", "function": {"name": "get_weather", "description": "Weather for a city",
			"parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]}}`))
	check(b, err)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tpl.Render(req.Messages, req.Options); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseTemplate(b *testing.B) {
	source, err := os.ReadFile(testdata.Path("templates", "qwen3.jinja"))
	check(b, err)
	for b.Loop() {
		if _, err := NewTemplate(string(source), "", "<|im_end|>"); err != nil {
			b.Fatal(err)
		}
	}
}
