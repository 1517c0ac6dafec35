package chat

import "strings"

// Reasoning models write their thinking first, between <think> and
// </think>, then the answer:
//
//	<think>
//	The user asks for 6+6. That is 12.
//	</think>
//
//	6 + 6 = 12.
//
// ReasoningParser splits that text, as it streams out of the model, into
// thought and response segments. Text arrives in arbitrary chunks (a chunk
// per token, or several tokens), so a tag can be cut anywhere: "</th" in one
// chunk, "ink>" in the next. The parser holds back the end of a chunk when it
// could be the beginning of the tag it is waiting for, and decides once the
// next chunk shows whether it is.
//
// Some templates open the thought in the prompt itself (DeepSeek-R1's ends
// the prompt with "<think>\n"); the model's output then only contains
// </think>. Start such a parser in thought mode (see PromptOpensThought).
//
// The segments carry the text exactly: the tags are removed, nothing else
// (the newlines around them are kept; trim them for display if you like).
// Every <think> outside a thought opens one and every </think> inside one
// closes it.

// Tags that delimit a thought.
const (
	ThinkOpen  = "<think>"
	ThinkClose = "</think>"
)

// SegmentKind says whether a segment is thinking or answer.
type SegmentKind int

const (
	Response SegmentKind = iota // the answer shown to the user
	Thought                     // the model's reasoning
)

func (k SegmentKind) String() string {
	if k == Thought {
		return "thought"
	}
	return "response"
}

// Segment is a piece of generated text of one kind.
type Segment struct {
	Kind SegmentKind
	Text string
}

// ReasoningParser splits streamed text into segments. It is used by one
// generation at a time (not safe for concurrent use).
type ReasoningParser struct {
	inThought bool
	pending   string // held back: may be the start of the next tag
}

// NewReasoningParser returns a parser; inThought says whether the prompt
// already opened a thought.
func NewReasoningParser(inThought bool) *ReasoningParser {
	return &ReasoningParser{inThought: inThought}
}

// InThought reports whether the text seen so far ends inside a thought.
func (p *ReasoningParser) InThought() bool { return p.inThought }

// Feed adds a chunk of generated text and returns the segments it completes
// (possibly none, when the chunk may be part of a tag).
func (p *ReasoningParser) Feed(chunk string) []Segment {
	text := p.pending + chunk
	p.pending = ""
	var out []Segment
	for {
		tag := ThinkOpen
		if p.inThought {
			tag = ThinkClose
		}
		i := strings.Index(text, tag)
		if i < 0 {
			break
		}
		out = p.emit(out, text[:i])
		text = text[i+len(tag):]
		p.inThought = !p.inThought
	}
	// Hold back the longest end of text that could start the awaited tag.
	tag := ThinkOpen
	if p.inThought {
		tag = ThinkClose
	}
	keep := partialSuffix(text, tag)
	p.pending = text[len(text)-keep:]
	return p.emit(out, text[:len(text)-keep])
}

// Flush returns what is held back, as text of the current kind, and resets
// the held-back text. Call it when generation ends.
func (p *ReasoningParser) Flush() []Segment {
	text := p.pending
	p.pending = ""
	return p.emit(nil, text)
}

func (p *ReasoningParser) emit(out []Segment, text string) []Segment {
	if text == "" {
		return out
	}
	kind := Response
	if p.inThought {
		kind = Thought
	}
	return append(out, Segment{kind, text})
}

// partialSuffix returns the length of the longest proper prefix of tag that
// text ends with.
func partialSuffix(text, tag string) int {
	for n := min(len(tag)-1, len(text)); n > 0; n-- {
		if strings.HasSuffix(text, tag[:n]) {
			return n
		}
	}
	return 0
}

// PromptOpensThought reports whether a rendered prompt leaves a thought open
// for the model to continue: its last <think> comes after its last </think>.
// Qwen3 with enable_thinking=false renders an empty, closed thought
// ("<think>\n\n</think>\n\n"), so this is false there; a template that ends
// the prompt with "<think>\n" makes it true.
func PromptOpensThought(prompt string) bool {
	i := strings.LastIndex(prompt, ThinkOpen)
	return i >= 0 && i > strings.LastIndex(prompt, ThinkClose)
}
