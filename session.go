package gollm

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/gollm/gollm/chat"
	"github.com/gollm/gollm/grammar"
	"github.com/gollm/gollm/sample"
)

// ChatOptions configure a ChatSession.
type ChatOptions struct {
	// SystemPrompt, when set, is the first message of the conversation.
	SystemPrompt string
	// TemplateOptions are extra chat-template variables, such as
	// {"enable_thinking": false} for Qwen3.
	TemplateOptions map[string]any
	// ContextShift: when the conversation would outgrow the context,
	// drop the oldest turns after the system prompt and evaluate the
	// shortened conversation again (node-llama-cpp's default behaviour).
	// Without it, such a prompt fails with ErrContextOverflow.
	ContextShift bool
	// Raw skips the chat template: each prompt's text is tokenized as it
	// is and appended to the conversation's tokens.
	Raw bool
	// ParseSpecial matches special-token text written in messages (such
	// as "<|im_end|>") as the control token it names. Off by default:
	// what a user types stays text, so no one can forge a turn boundary;
	// the template's own markup is always special. In Raw mode it
	// decides whether the prompt text's special-token text is matched
	// (llama.cpp matches it; the CLI's --raw does too).
	ParseSpecial bool
}

// Chunk is a piece of streamed output: thinking or answer text.
type Chunk struct {
	Kind chat.SegmentKind // chat.Thought or chat.Response
	Text string
}

// PromptOptions control one prompt.
type PromptOptions struct {
	// MaxTokens limits the tokens generated (0: until the model ends its
	// turn or the context is full).
	MaxTokens int
	// Sampling chooses tokens (nil: sample.DefaultParams()).
	Sampling *sample.Params
	// StopStrings end the answer where any of them appears (the stop
	// string itself is not included).
	StopStrings []string
	// OnChunk receives the text as it is generated, split into thought
	// and response.
	OnChunk func(Chunk)
	// OnToken receives each generated token id.
	OnToken func(id int32)
	// OnLogits receives the logits row before each token is sampled
	// (for study; the slice must not be kept).
	OnLogits func(logits []float32)
	// Grammar constrains the answer (see GenerateOptions.Grammar). It
	// applies to everything generated, so there is no thinking: "<think>"
	// is a special token, which the grammar refuses, and where the
	// template opens a thought itself (DeepSeek-R1) the constrained text
	// is still the answer, not a thought.
	Grammar *grammar.Grammar
}

// Response is the full outcome of a prompt.
type Response struct {
	Text         string  // the answer, without the thinking
	Thoughts     string  // the thinking (<think>…</think>), if any
	Raw          string  // everything generated, as text
	PromptIDs    []int32 // the tokens of the whole conversation given to the model
	GeneratedIDs []int32 // the tokens generated
	Generation           // counts, timings and the finish reason
}

// ChatSession is a conversation on a Sequence. It keeps the history, and
// because the sequence keeps its KV cache, a new turn evaluates only what
// was added since the last one. Prompt is safe to call from several
// goroutines (calls on one session run one after another); History may
// be called at any time, from callbacks too.
type ChatSession struct {
	seq  *Sequence
	opts ChatOptions
	turn chan struct{} // capacity 1: held from Start to the end of Wait

	mu      sync.Mutex
	history []chat.Message // user and assistant turns, without the system prompt
}

// NewChatSession starts a conversation on a sequence.
func NewChatSession(seq *Sequence, o ChatOptions) *ChatSession {
	return &ChatSession{seq: seq, opts: o, turn: make(chan struct{}, 1)}
}

// Sequence is the session's sequence.
func (cs *ChatSession) Sequence() *Sequence { return cs.seq }

// History returns a copy of the conversation (system prompt first, if
// any). During a prompt it is the conversation before that prompt.
func (cs *ChatSession) History() []chat.Message {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return cs.messages(cs.history)
}

func (cs *ChatSession) messages(turns []chat.Message) []chat.Message {
	var out []chat.Message
	if cs.opts.SystemPrompt != "" {
		out = append(out, chat.Message{Role: "system", Content: cs.opts.SystemPrompt})
	}
	return append(out, turns...)
}

// Prompt asks the model and returns its answer (without the thinking).
func (cs *ChatSession) Prompt(ctx context.Context, text string, o PromptOptions) (string, error) {
	r, err := cs.PromptWithMeta(ctx, text, o)
	return r.Text, err
}

// PromptWithMeta asks the model and returns the answer with its thoughts,
// token ids, counts and timings. On an error the history is unchanged
// (the user's message is not kept), so the session stays usable. The
// callbacks run on the calling goroutine.
func (cs *ChatSession) PromptWithMeta(ctx context.Context, text string, o PromptOptions) (Response, error) {
	r, err := cs.Start(ctx, text, o)
	if err != nil {
		return Response{}, err
	}
	return r.Wait()
}

// Reply is a prompt submitted with Start.
type Reply struct {
	cs       *ChatSession
	o        PromptOptions
	turns    []chat.Message
	rendered string
	prompt   []int32
	gen      *Pending
	done     bool
	res      Response
	err      error
}

// Start renders and submits a prompt and returns at once; Wait streams
// the answer to the callbacks and returns it. With Context.Together,
// several sessions' prompts start in the same forward step.
func (cs *ChatSession) Start(ctx context.Context, text string, o PromptOptions) (*Reply, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	select {
	case cs.turn <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	cs.mu.Lock()
	turns := append(append([]chat.Message(nil), cs.history...), chat.Message{Role: "user", Content: text})
	cs.mu.Unlock()
	prompt, rendered, turns, err := cs.prepare(turns, o.MaxTokens)
	if err != nil {
		<-cs.turn
		return nil, err
	}
	r := &Reply{cs: cs, o: o, turns: turns, rendered: rendered, prompt: prompt}
	r.gen, err = cs.seq.Start(ctx, prompt, GenerateOptions{MaxTokens: o.MaxTokens, Sampling: o.Sampling, OnLogits: o.OnLogits, Grammar: o.Grammar})
	if err != nil {
		<-cs.turn
		return nil, err
	}
	return r, nil
}

// Wait streams the answer to the prompt's callbacks, on the calling
// goroutine, and returns it. Calling it again returns the same.
func (r *Reply) Wait() (Response, error) {
	if r.done {
		return r.res, r.err
	}
	cs, o := r.cs, r.o
	defer func() { r.done = true; <-cs.turn }()
	m := cs.seq.ctx.model
	res := Response{PromptIDs: r.prompt}

	// Stream: tokens → text (never a partial UTF-8 character) → stop
	// strings → thought/response segments.
	dec := m.tok.NewStreamDecoder()
	// A constrained answer is all answer, even where the prompt opened a
	// thought: the grammar decides its text.
	reason := chat.NewReasoningParser(!cs.opts.Raw && o.Grammar == nil && chat.PromptOpensThought(r.rendered))
	var raw, thoughts, answer strings.Builder
	held := "" // text held back because it may start a stop string
	stopped := false
	emit := func(s string) {
		raw.WriteString(s)
		for _, seg := range reason.Feed(s) {
			cs.deliver(seg, &thoughts, &answer, o.OnChunk)
		}
	}
	r.gen.o.OnLogits = o.OnLogits
	r.gen.o.OnToken = func(id int32) bool {
		if o.OnToken != nil {
			o.OnToken(id)
		}
		held += dec.Add(id)
		if cut, hold := scanStops(held, o.StopStrings); cut >= 0 {
			emit(held[:cut])
			held, stopped = "", true
			return true
		} else {
			emit(held[:len(held)-hold])
			held = held[len(held)-hold:]
		}
		return false
	}
	g, err := r.gen.Wait()
	if !stopped {
		rest := held + dec.Flush()
		if cut, _ := scanStops(rest, o.StopStrings); cut >= 0 {
			rest = rest[:cut]
		}
		emit(rest)
	}
	for _, seg := range reason.Flush() {
		cs.deliver(seg, &thoughts, &answer, o.OnChunk)
	}
	res.Generation = g
	res.GeneratedIDs = g.Tokens
	res.Raw, res.Thoughts, res.Text = raw.String(), strings.TrimSpace(thoughts.String()), answer.String()
	if thoughts.Len() > 0 {
		res.Text = strings.TrimLeft(res.Text, " \n") // the blank line after </think>
	}
	r.res, r.err = res, err
	if err != nil {
		return res, err
	}
	cs.mu.Lock()
	if cs.opts.Raw {
		cs.history = append(r.turns, chat.Message{Role: "assistant", Content: res.Raw})
	} else {
		cs.history = append(r.turns, chat.Message{Role: "assistant", Content: res.Text, ReasoningContent: res.Thoughts})
	}
	cs.mu.Unlock()
	return res, nil
}

func (cs *ChatSession) deliver(seg chat.Segment, thoughts, answer *strings.Builder, cb func(Chunk)) {
	if seg.Text == "" {
		return
	}
	if seg.Kind == chat.Thought {
		thoughts.WriteString(seg.Text)
	} else {
		answer.WriteString(seg.Text)
	}
	if cb != nil {
		cb(Chunk{Kind: seg.Kind, Text: seg.Text})
	}
}

// scanStops looks for the earliest stop string in s. It returns the cut
// position (-1 if none) and, when there is none, how many trailing bytes
// of s could still be the beginning of one.
func scanStops(s string, stops []string) (cut, hold int) {
	cut = -1
	for _, st := range stops {
		if st == "" {
			continue
		}
		if i := strings.Index(s, st); i >= 0 && (cut < 0 || i < cut) {
			cut = i
		}
		for k := min(len(st)-1, len(s)); k > hold; k-- {
			if strings.HasSuffix(s, st[:k]) {
				hold = k
				break
			}
		}
	}
	return cut, hold
}

// prepare renders the conversation and tokenizes it. When it does not fit
// in the context with room to answer, it drops the oldest turns
// (ContextShift) or fails. It returns the tokens, the rendered text and
// the turns that remain.
func (cs *ChatSession) prepare(turns []chat.Message, maxTokens int) ([]int32, string, []chat.Message, error) {
	limit := cs.seq.ctx.opts.ContextSize
	// Room to answer: what the caller asked for, else a quarter of the
	// context (the answer may still stop earlier, or hit the limit).
	reserve := maxTokens
	if reserve <= 0 {
		reserve = limit / 4
	}
	for {
		prompt, rendered, err := cs.render(turns)
		if err != nil {
			return nil, "", nil, err
		}
		if len(prompt) <= limit-min(reserve, limit-1) || (!cs.opts.ContextShift && len(prompt) <= limit) {
			return prompt, rendered, turns, nil
		}
		if !cs.opts.ContextShift {
			return nil, "", nil, fmt.Errorf("%w: the conversation is %d tokens, the context size is %d (set ChatOptions.ContextShift to drop old turns)",
				ErrContextOverflow, len(prompt), limit)
		}
		// Drop the oldest turn, and with it the answer that followed it.
		if len(turns) <= 1 {
			return nil, "", nil, fmt.Errorf("%w: the last message alone is %d tokens, the context size is %d (leaving %d to answer)",
				ErrContextOverflow, len(prompt), limit, reserve)
		}
		drop := 1
		for drop < len(turns)-1 && turns[drop].Role != "user" {
			drop++
		}
		turns = turns[drop:]
	}
}

// render turns the conversation into text and tokens. In Raw mode the
// conversation is the concatenated prompt and answer texts.
func (cs *ChatSession) render(turns []chat.Message) ([]int32, string, error) {
	m := cs.seq.ctx.model
	if cs.opts.Raw {
		var b strings.Builder
		if cs.opts.SystemPrompt != "" {
			b.WriteString(cs.opts.SystemPrompt)
		}
		for _, t := range turns {
			b.WriteString(t.Content)
		}
		text := b.String()
		if cs.opts.ParseSpecial {
			return cs.tokenize(text, nil), text, nil
		}
		return cs.tokenize(text, [][2]int{{0, len(text)}}), text, nil
	}
	ro := chat.RenderOptions{AddGenerationPrompt: true, Extra: cs.opts.TemplateOptions}
	rendered, literal, err := m.renderChat(cs.messages(turns), ro, cs.opts.ParseSpecial)
	if err != nil {
		return nil, "", err
	}
	return cs.tokenize(rendered, literal), rendered, nil
}

// tokenize turns a rendered conversation into tokens. When the text
// starts with exactly what the sequence already holds (the previous
// turns and the generated answer), those tokens are kept as they are and
// only the new text is tokenized: re-tokenizing generated text can give
// other (equivalent) tokens, which would needlessly invalidate the cache.
//
// Special-token text (<|im_start|>) is matched as control tokens except
// inside the literal byte ranges of text.
func (cs *ChatSession) tokenize(text string, literal [][2]int) []int32 {
	m := cs.seq.ctx.model
	held := cs.seq.Tokens()
	if len(held) > 0 {
		if prefix := m.tok.Decode(held); strings.HasPrefix(text, prefix) && len(prefix) > 0 {
			shifted := make([][2]int, len(literal))
			for i, r := range literal {
				shifted[i] = [2]int{r[0] - len(prefix), r[1] - len(prefix)} // TokenizeLiteral clips what falls before 0
			}
			return append(held, m.tok.TokenizeLiteral(text[len(prefix):], false, shifted)...)
		}
	}
	return m.tokenizePrompt(text, literal)
}

// Reset forgets the conversation (the system prompt stays).
func (cs *ChatSession) Reset() {
	cs.turn <- struct{}{}
	defer func() { <-cs.turn }()
	cs.mu.Lock()
	defer cs.mu.Unlock()
	cs.history = nil
}

// SetSystemPrompt replaces the system prompt ("" for none); the
// conversation stays. It waits for a prompt under way to finish.
func (cs *ChatSession) SetSystemPrompt(s string) {
	cs.turn <- struct{}{}
	defer func() { <-cs.turn }()
	cs.mu.Lock()
	defer cs.mu.Unlock()
	cs.opts.SystemPrompt = s
}

// SetHistory replaces the conversation with msgs, as History returns it:
// a first "system" message becomes the system prompt (without one, the
// system prompt is cleared), and the rest must be "user" and "assistant"
// turns. The next prompt reuses whatever beginning of the new
// conversation the sequence's KV cache already holds.
func (cs *ChatSession) SetHistory(msgs []chat.Message) error {
	system := ""
	if len(msgs) > 0 && msgs[0].Role == "system" {
		system, msgs = msgs[0].Content, msgs[1:]
	}
	for i, m := range msgs {
		if m.Role != "user" && m.Role != "assistant" {
			return fmt.Errorf("gollm: SetHistory: message %d has role %q; after an optional first system message, turns are user or assistant", i+1, m.Role)
		}
	}
	cs.turn <- struct{}{}
	defer func() { <-cs.turn }()
	cs.mu.Lock()
	defer cs.mu.Unlock()
	cs.opts.SystemPrompt = system
	cs.history = append([]chat.Message(nil), msgs...)
	return nil
}
