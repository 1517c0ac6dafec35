package server

import (
	"bytes"
	"encoding/json"
	"strings"
)

// Tool calls in the answer. When a request offers tools, Qwen3 (like
// Qwen2.5 and the other "Hermes"-style models) calls one by writing
//
//	<tool_call>
//	{"name": "get_weather", "arguments": {"city": "Paris"}}
//	</tool_call>
//
// in its answer. The server turns each such block into an OpenAI tool
// call, {"id": "call_…", "type": "function", "function": {"name":
// "get_weather", "arguments": "{\"city\":\"Paris\"}"}} (the arguments as
// JSON text, as OpenAI sends them), and the finish reason into
// "tool_calls". Text around the blocks stays content. A block whose
// inside is not such JSON stays content too, tags and all: nothing the
// model wrote is lost.
//
// While streaming, text that may begin "<tool_call>" is held back until
// the next piece shows whether it does (as with stop strings), and a
// block is held until its "</tool_call>": a tool call is sent whole, in
// one delta.
//
// Other formats (DeepSeek-R1's <｜tool▁calls▁begin｜>…) are not parsed:
// they arrive as content.

const (
	toolCallOpen  = "<tool_call>"
	toolCallClose = "</tool_call>"
)

// toolCall is one parsed call.
type toolCall struct {
	id, name, arguments string
}

// toolPiece is what the parser lets through: text, or a call.
type toolPiece struct {
	text string
	call *toolCall
}

// toolParser finds tool-call blocks in streamed answer text.
type toolParser struct {
	buf    string // held back: a possible "<tool_call>" start, or an open block
	inCall bool
}

// feed adds answer text and returns what is complete.
func (p *toolParser) feed(s string) []toolPiece {
	p.buf += s
	var out []toolPiece
	for {
		if !p.inCall {
			i := strings.Index(p.buf, toolCallOpen)
			if i < 0 {
				keep := partialSuffix(p.buf, toolCallOpen)
				out = appendText(out, p.buf[:len(p.buf)-keep])
				p.buf = p.buf[len(p.buf)-keep:]
				return out
			}
			out = appendText(out, p.buf[:i])
			p.buf, p.inCall = p.buf[i+len(toolCallOpen):], true
			continue
		}
		j := strings.Index(p.buf, toolCallClose)
		if j < 0 {
			return out
		}
		body := p.buf[:j]
		p.buf, p.inCall = p.buf[j+len(toolCallClose):], false
		if call, ok := parseToolCall(body); ok {
			out = append(out, toolPiece{call: call})
		} else {
			out = appendText(out, toolCallOpen+body+toolCallClose)
		}
	}
}

// flush returns what is held back, as text (an unfinished block too).
func (p *toolParser) flush() []toolPiece {
	text := p.buf
	if p.inCall {
		text = toolCallOpen + text
	}
	p.buf, p.inCall = "", false
	return appendText(nil, text)
}

func appendText(out []toolPiece, s string) []toolPiece {
	if s == "" {
		return out
	}
	return append(out, toolPiece{text: s})
}

// partialSuffix is the length of the longest proper prefix of tag that
// text ends with.
func partialSuffix(text, tag string) int {
	for n := min(len(tag)-1, len(text)); n > 0; n-- {
		if strings.HasSuffix(text, tag[:n]) {
			return n
		}
	}
	return 0
}

// parseToolCall reads {"name": …, "arguments": …} (arguments an object,
// or already JSON text).
func parseToolCall(body string) (*toolCall, bool) {
	var v struct {
		Name      string          `json:"name"`
		Arguments json.RawMessage `json:"arguments"`
	}
	dec := json.NewDecoder(strings.NewReader(body))
	if err := dec.Decode(&v); err != nil || v.Name == "" || dec.More() {
		return nil, false
	}
	args := "{}"
	switch a := bytes.TrimSpace(v.Arguments); {
	case len(a) == 0 || string(a) == "null":
	case a[0] == '"':
		if json.Unmarshal(a, &args) != nil {
			return nil, false
		}
	default:
		var compact bytes.Buffer
		if json.Compact(&compact, a) != nil {
			return nil, false
		}
		args = compact.String()
	}
	return &toolCall{id: newID("call_"), name: v.Name, arguments: args}, true
}
