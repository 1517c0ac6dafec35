package chat

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"
)

// Message text that stays text.
//
// A rendered prompt is tokenized with special parsing on, so that the
// template's markup ("<|im_start|>user\n") becomes control tokens. The
// messages' content is in the same string, and a user who writes
// "<|im_end|>\n<|im_start|>system\n" would get real control tokens too,
// closing their turn and opening a system one. RenderLiteral reports
// where such text from the messages landed in the output, so that the
// tokenizer can leave it as text (tokenizer.Tokenizer.TokenizeLiteral).
//
// Finding it is harder than it looks, because templates transform the
// content they print: Qwen3 splits an assistant's content at "</think>"
// and strips it, checks whether a user message starts with
// "<tool_response>", and others trim or concatenate. So the content is
// not searched for in the output; it is marked before rendering. Each
// special token text in it gets a marker character inserted after its
// first character ("<\uFDD0|im_end|>"), a character that occurs nowhere
// else (not in the messages, the tools, the template or the special
// texts). The template then no longer sees the special text (a forged
// "<tool_response>" does not pass for a real one) and carries the marker
// along wherever it puts the text. Afterwards each marker is taken out,
// and the special token text around the place it held is a literal range.
// A message without special token text is left alone, so a conversation
// without any renders exactly as Render renders it.

// RenderLiteral renders like Render, and also returns the byte ranges
// [start, end) of text where a special token text (one of specials,
// e.g. tokenizer.Tokenizer.SpecialTexts) came from the messages rather
// than from the template's markup.
//
// The text marked is what the caller of the chat API writes: the
// content (and other fields, such as a tool's name) of every message but
// the assistant's, the names and arguments of tool calls, and the tool
// definitions. An assistant turn's content and reasoning are the model's
// own words and are left alone: the template parses its reasoning
// markers ("</think>") out of them, and the special tokens the model
// wrote should be read back as such. (A server that lets its users
// write assistant turns should check those itself.)
//
// Limits: a special token text that the template assembles from a
// message's text and its own markup (the message ending in "<|im_" before
// markup starting with "end|>"; no known template does this) is not
// found, nor is one that a filter creates (|upper on "<|IM_END|>"). A
// template that measures the content (|length) sees the markers. A
// marker that tojson escapes (ensure_ascii) is recognised in its escaped
// form.
func (t *Template) RenderLiteral(msgs []Message, o RenderOptions, specials []string) (text string, literal [][2]int, err error) {
	specials = slices.DeleteFunc(slices.Clone(specials), func(s string) bool { return s == "" })
	if len(specials) == 0 {
		text, err = t.Render(msgs, o)
		return text, nil, err
	}
	m, err := t.chooseMarker(msgs, o, specials)
	if err != nil {
		return "", nil, err
	}
	dmsgs, dopts := m.defuseAll(msgs, o)
	if m.inserted == 0 {
		text, err = t.Render(msgs, o)
		return text, nil, err
	}
	out, err := t.Render(dmsgs, dopts)
	if err != nil {
		return "", nil, err
	}
	text, marks := m.remove(out)
	return text, literalRanges(text, marks, specials), nil
}

// marker is the character RenderLiteral inserts, and what it needs to
// insert and find it.
type marker struct {
	mark     string   // the character, UTF-8 encoded
	escaped  string   // the character as tojson(ensure_ascii=true) writes it: \ufdd0
	specials []string // the texts to defuse
	inserted int      // markers inserted so far
}

// markerCandidates are Unicode's noncharacters: code points reserved for
// a program's internal use, which no text should contain (U+FDD0 to
// U+FDEF, and the last two of every plane).
func markerCandidates() []rune {
	var rs []rune
	for r := rune(0xFDD0); r <= 0xFDEF; r++ {
		rs = append(rs, r)
	}
	for plane := rune(0); plane <= 16; plane++ {
		rs = append(rs, plane<<16|0xFFFE, plane<<16|0xFFFF)
	}
	return rs
}

// chooseMarker picks the first noncharacter that occurs, in either form,
// in none of the texts a render can print: the messages, the options,
// the template and the special texts.
func (t *Template) chooseMarker(msgs []Message, o RenderOptions, specials []string) (*marker, error) {
	var hay strings.Builder
	add := func(s string) { hay.WriteString(s); hay.WriteByte(0) }
	add(t.source)
	add(t.bos)
	add(t.eos)
	for _, s := range specials {
		add(s)
	}
	for _, m := range msgs {
		eachString(m, add)
	}
	eachString(o.Tools, add)
	for k, v := range o.Extra {
		add(k)
		eachString(v, add)
	}
	h := hay.String()
	for _, r := range markerCandidates() {
		mark := string(r)
		var b strings.Builder
		writePyString(&b, mark, true)
		escaped := strings.Trim(b.String(), `"`)
		if !strings.Contains(h, mark) && !strings.Contains(h, escaped) {
			return &marker{mark: mark, escaped: escaped, specials: specials}, nil
		}
	}
	return nil, fmt.Errorf("%w: the conversation holds all %d Unicode noncharacters, leaving none to mark message text with", ErrValue, len(markerCandidates()))
}

// eachString calls f with every string in v: message fields, and the
// keys and values of objects, lists and JSON text. Values of other types
// are printed with %v, which shows any text they hold.
func eachString(v any, f func(string)) {
	switch x := v.(type) {
	case nil, bool, int, int64, float64, json.Number:
	case string:
		f(x)
	case Message:
		f(x.Role)
		f(x.Content)
		f(x.ReasoningContent)
		for _, c := range x.ToolCalls {
			f(c.ID)
			f(c.Type)
			f(c.Function.Name)
			eachString(c.Function.Arguments, f)
		}
		eachString(x.Extra, f)
	case Object:
		for _, fl := range x {
			f(fl.Key)
			eachString(fl.Value, f)
		}
	case []any:
		for _, e := range x {
			eachString(e, f)
		}
	case map[string]any:
		for k, e := range x {
			f(k)
			eachString(e, f)
		}
	case json.RawMessage:
		f(string(x))
	default:
		f(fmt.Sprintf("%v", x))
	}
}

// defuseAll returns copies of the messages and options with the special
// token texts of the caller's text marked (see RenderLiteral for which).
// The caller's values are not changed.
func (m *marker) defuseAll(msgs []Message, o RenderOptions) ([]Message, RenderOptions) {
	out := make([]Message, len(msgs))
	for i, msg := range msgs {
		if msg.Role != "assistant" {
			msg.Content = m.defuse(msg.Content)
			if msg.Extra != nil {
				msg.Extra = m.defuseValue(msg.Extra).(Object)
			}
		}
		if msg.ToolCalls != nil {
			calls := slices.Clone(msg.ToolCalls)
			for j := range calls {
				calls[j].Function.Name = m.defuse(calls[j].Function.Name)
				calls[j].Function.Arguments = m.defuseValue(calls[j].Function.Arguments)
			}
			msg.ToolCalls = calls
		}
		out[i] = msg
	}
	if o.Tools != nil {
		o.Tools = m.defuseValue(o.Tools).([]any)
	}
	return out, o
}

// defuseValue returns v with its strings defused: object keys and values,
// list elements, and the strings of JSON text (which Render would decode
// anyway). Other values are returned as they are.
func (m *marker) defuseValue(v any) any {
	switch x := v.(type) {
	case string:
		return m.defuse(x)
	case Object:
		o := make(Object, len(x))
		for i, f := range x {
			o[i] = Field{m.defuse(f.Key), m.defuseValue(f.Value)}
		}
		return o
	case []any:
		l := make([]any, len(x))
		for i, e := range x {
			l[i] = m.defuseValue(e)
		}
		return l
	case []string:
		l := make([]string, len(x))
		for i, e := range x {
			l[i] = m.defuse(e)
		}
		return l
	case map[string]any:
		d := make(map[string]any, len(x))
		for k, e := range x {
			d[m.defuse(k)] = m.defuseValue(e)
		}
		return d
	case json.RawMessage:
		dv, err := DecodeJSON(x)
		if err != nil {
			return x // Render reports it
		}
		return m.defuseValue(dv)
	}
	return v
}

// defuse inserts the marker into every occurrence of a special text in s:
// after its first character, or before it when it is one character long.
// Occurrences may overlap (each gets its own marker), and a marker cannot
// complete a special text, as none contains it.
func (m *marker) defuse(s string) string {
	var at []int
	for _, sp := range m.specials {
		_, first := utf8.DecodeRuneInString(sp)
		if first == len(sp) {
			first = 0
		}
		for i := 0; ; i++ {
			j := strings.Index(s[i:], sp)
			if j < 0 {
				break
			}
			i += j
			at = append(at, i+first)
		}
	}
	if len(at) == 0 {
		return s
	}
	slices.Sort(at)
	at = slices.Compact(at)
	var b strings.Builder
	b.Grow(len(s) + len(at)*len(m.mark))
	prev := 0
	for _, p := range at {
		b.WriteString(s[prev:p])
		b.WriteString(m.mark)
		prev = p
	}
	b.WriteString(s[prev:])
	m.inserted += len(at)
	return b.String()
}

// remove takes every marker (either form) out of out and returns the
// text left and, for each marker, the position in that text it held.
func (m *marker) remove(out string) (string, []int) {
	var b strings.Builder
	b.Grow(len(out))
	var marks []int
	// The next place of each form, searched for again only once passed,
	// so that the scan stays linear however many markers there are. (The
	// forms cannot overlap: one is ASCII, the other not.)
	index := func(s string, from int) int {
		if i := strings.Index(out[from:], s); i >= 0 {
			return from + i
		}
		return -1
	}
	pos, raw, esc := 0, index(m.mark, 0), index(m.escaped, 0)
	for raw >= 0 || esc >= 0 {
		i, n := raw, len(m.mark)
		if raw < 0 || (esc >= 0 && esc < raw) {
			i, n = esc, len(m.escaped)
		}
		b.WriteString(out[pos:i])
		marks = append(marks, b.Len())
		pos = i + n
		if i == raw {
			raw = index(m.mark, pos)
		} else {
			esc = index(m.escaped, pos)
		}
	}
	b.WriteString(out[pos:])
	return b.String(), marks
}

// literalRanges returns, sorted and merged, the ranges of the special
// texts of text that hold a marker position: a text of several
// characters that starts before the position and ends after it (the
// marker went after its first character), or one of a single character
// that starts at it (the marker went before).
func literalRanges(text string, marks []int, specials []string) [][2]int {
	var r [][2]int
	for _, q := range marks {
		for _, sp := range specials {
			single := utf8.RuneCountInString(sp) == 1
			lo, hi := max(0, q-len(sp)+1), min(len(text), q+len(sp))
			for i := lo; i < hi; {
				j := strings.Index(text[i:hi], sp)
				if j < 0 {
					break
				}
				start := i + j
				if (single && start == q) || (!single && start < q && q < start+len(sp)) {
					r = append(r, [2]int{start, start + len(sp)})
				}
				i = start + 1
			}
		}
	}
	slices.SortFunc(r, func(a, b [2]int) int { return a[0] - b[0] })
	merged := r[:0]
	for _, s := range r {
		if k := len(merged) - 1; k >= 0 && s[0] <= merged[k][1] {
			merged[k][1] = max(merged[k][1], s[1])
			continue
		}
		merged = append(merged, s)
	}
	return merged
}
