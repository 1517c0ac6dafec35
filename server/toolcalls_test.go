package server

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/openai/openai-go/v3"
)

// TestToolParser: tool-call blocks are found however the text is cut;
// text around them stays text; a block that is not a call stays text,
// and so does an unfinished one.
func TestToolParser(t *testing.T) {
	text := "Let me add.\n<tool_call>\n{\"name\": \"add\", \"arguments\": {\"a\": 1, \"b\": [2, 3]}}\n</tool_call>" +
		"<tool_call>{\"name\": \"now\"}</tool_call> and <tool_call>not json</tool_call> end <tool_ca"
	for cut := 1; cut <= len(text); cut++ {
		var p toolParser
		var got []toolPiece
		for i := 0; i < len(text); i += cut {
			got = append(got, p.feed(text[i:min(i+cut, len(text))])...)
		}
		got = append(got, p.flush()...)
		var texts strings.Builder
		var calls []*toolCall
		for _, piece := range got {
			if piece.call != nil {
				calls = append(calls, piece.call)
			}
			texts.WriteString(piece.text)
		}
		want := "Let me add.\n and <tool_call>not json</tool_call> end <tool_ca"
		if texts.String() != want || len(calls) != 2 ||
			calls[0].name != "add" || calls[0].arguments != `{"a":1,"b":[2,3]}` || calls[1].name != "now" || calls[1].arguments != "{}" {
			t.Fatalf("cut %d: text %q, calls %+v %+v", cut, texts.String(), calls[0], calls[1])
		}
	}
	var p toolParser
	if got := append(p.feed("<tool_call>{\"name\": \"f\""), p.flush()...); len(got) != 1 || got[0].text != "<tool_call>{\"name\": \"f\"" {
		t.Errorf("an unfinished block: %+v", got)
	}
}

// TestToolCallShape: a choice that called tools reads, through the
// OpenAI SDK's types, as tool calls with JSON-text arguments, content
// null and finish_reason "tool_calls"; streamed, as tool_calls deltas.
func TestToolCallShape(t *testing.T) {
	f := newFormat("chat", "m")
	texts := make([]choiceText, 1)
	texts[0].calls = []*toolCall{{id: "call_1", name: "add", arguments: `{"a":1}`}}
	texts[0].finish = "tool_calls"
	data, _ := json.Marshal(f.whole(texts, usage{}, false))
	var cc openai.ChatCompletion
	if err := json.Unmarshal(data, &cc); err != nil {
		t.Fatal(err)
	}
	m := cc.Choices[0].Message
	if len(m.ToolCalls) != 1 || m.ToolCalls[0].ID != "call_1" || m.ToolCalls[0].Function.Name != "add" ||
		m.ToolCalls[0].Function.Arguments != `{"a":1}` || cc.Choices[0].FinishReason != "tool_calls" || !strings.Contains(string(data), `"content":null`) {
		t.Errorf("%s", data)
	}
	data, _ = json.Marshal(f.chunk(delta{call: texts[0].calls[0], callNum: 0}, false))
	var ch openai.ChatCompletionChunk
	if err := json.Unmarshal(data, &ch); err != nil {
		t.Fatal(err)
	}
	tc := ch.Choices[0].Delta.ToolCalls
	if len(tc) != 1 || tc[0].Index != 0 || tc[0].Function.Name != "add" || tc[0].Function.Arguments != `{"a":1}` {
		t.Errorf("%s", data)
	}
}

// FuzzToolParser: any text, cut anywhere, comes out whole: the pieces'
// text and calls account for every byte (a call's block is gone, the
// rest is there in order).
func FuzzToolParser(f *testing.F) {
	f.Add("a<tool_call>{\"name\":\"f\",\"arguments\":{}}</tool_call>b", 3)
	f.Add("<tool_call><tool_call></tool_call></tool_call>", 1)
	f.Add("<tool_ca", 2)
	f.Fuzz(func(t *testing.T, text string, cut int) {
		cut = max(1, cut%64)
		var p toolParser
		var got []toolPiece
		for i := 0; i < len(text); i += cut {
			got = append(got, p.feed(text[i:min(i+cut, len(text))])...)
		}
		got = append(got, p.flush()...)
		var texts strings.Builder
		calls := 0
		for _, piece := range got {
			texts.WriteString(piece.text)
			if piece.call != nil {
				calls++
				if piece.call.name == "" || !json.Valid([]byte(piece.call.arguments)) {
					t.Fatalf("call %+v", piece.call)
				}
			}
		}
		if calls == 0 && texts.String() != text {
			t.Fatalf("no call, and the text changed: %q → %q", text, texts.String())
		}
		if len(texts.String()) > len(text) {
			t.Fatalf("text grew: %q → %q", text, texts.String())
		}
	})
}
