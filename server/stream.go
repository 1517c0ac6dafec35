package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strings"
	"time"
)

// Answering: the deltas of the choices (generate.go) either streamed as
// server-sent events or gathered into one response.
//
// A chat stream, for n = 1, as OpenAI sends it:
//
//	data: {"id":"chatcmpl-…","object":"chat.completion.chunk",…,"choices":[{"index":0,"delta":{"role":"assistant","content":""},…}]}
//	data: {…,"choices":[{"index":0,"delta":{"reasoning_content":"The user"},…}]}   (a thinking model)
//	data: {…,"choices":[{"index":0,"delta":{"content":"Hello"},…}]}
//	data: {…,"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}
//	data: {…,"choices":[],"usage":{…}}                                          (stream_options.include_usage)
//	data: [DONE]
//
// An error after the stream has started (the timeout, the server
// closing) is sent as an event of its own, data: {"error": {…}}, and the
// stream ends without [DONE], as llama-server does; the OpenAI SDKs raise
// it.

type answerOptions struct {
	endpoint string // "chat" or "completions"
	stream   bool
	usage    bool // stream_options.include_usage
}

// choiceText is one choice's answer, gathered.
type choiceText struct {
	content, thought strings.Builder
	calls            []*toolCall
	logprobs         []tokenLogprob
	finish           string
}

// answer admits the request, generates, and answers.
func (s *Server) answer(w http.ResponseWriter, r *http.Request, j *job, o answerOptions) {
	ctx := r.Context()
	rec := requestRecord(ctx)
	rec.prompt = len(j.prompt)
	l, e := s.admit(ctx, j.n)
	if e != nil {
		s.fail(w, e)
		return
	}
	defer l.release()
	if s.hooks.onCancel != nil {
		defer context.AfterFunc(ctx, s.hooks.onCancel)()
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	out := make(chan delta, 64)
	var res result
	done := make(chan struct{})
	go func() { res = s.generate(ctx, l, j, out); close(done) }()

	f := newFormat(o.endpoint, s.name)
	var texts []choiceText
	var ev *events
	if o.stream {
		ev = newEvents(w)
		for i := range j.n {
			ev.send(f.chunk(delta{choice: i}, true))
		}
	} else {
		texts = make([]choiceText, j.n)
	}
	for d := range out {
		if o.stream {
			if ev.send(f.chunk(d, false)); ev.err != nil {
				cancel() // the client is gone: stop generating
			}
			continue
		}
		t := &texts[d.choice]
		t.content.WriteString(d.content)
		t.thought.WriteString(d.thought)
		if d.call != nil {
			t.calls = append(t.calls, d.call)
		}
		t.logprobs = append(t.logprobs, d.logprobs...)
		if d.finish != "" {
			t.finish = d.finish
		}
	}
	<-done
	l.release() // the sequences go back before the last bytes are written
	rec.prompt, rec.cached, rec.generated = res.prompt, res.cached, res.generated
	if !res.firstToken.IsZero() {
		rec.ttft = res.firstToken.Sub(rec.start)
	}
	if res.err == nil && r.Context().Err() != nil {
		res.err = s.ctxError(r.Context())
	}
	if res.err == nil {
		rec.finish = res.finish[0]
	}
	u := usageOf(res)
	switch {
	case !o.stream && res.err != nil:
		s.fail(w, res.err)
	case !o.stream:
		writeJSON(w, http.StatusOK, f.whole(texts, u, j.logprobs))
	case res.err != nil:
		if res.err.Status != statusClientGone {
			ev.send(res.err.body())
		}
	default:
		if o.usage {
			ev.send(f.usageChunk(u))
		}
		ev.done()
	}
}

// fail sends an error, unless the client has gone.
func (s *Server) fail(w http.ResponseWriter, e *apiError) {
	if e.Status == statusClientGone {
		return
	}
	writeError(w, e)
}

// events writes server-sent events, flushing each.
type events struct {
	w   http.ResponseWriter
	rc  *http.ResponseController
	err error
}

func newEvents(w http.ResponseWriter) *events {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	w.WriteHeader(http.StatusOK)
	return &events{w: w, rc: http.NewResponseController(w)}
}

func (e *events) send(v any) {
	if e.err != nil || v == nil {
		return
	}
	data, err := json.Marshal(v)
	if err != nil {
		e.err = err
		return
	}
	e.write("data: " + string(data) + "\n\n")
}

func (e *events) done() { e.write("data: [DONE]\n\n") }

func (e *events) write(s string) {
	if e.err != nil {
		return
	}
	if _, e.err = strings.NewReader(s).WriteTo(e.w); e.err == nil {
		e.err = e.rc.Flush()
	}
}

// newID makes a response id: prefix and 24 random hex digits.
func newID(prefix string) string {
	var b [12]byte
	rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

// Usage, as OpenAI reports it.
type usage struct {
	PromptTokens        int          `json:"prompt_tokens"`
	CompletionTokens    int          `json:"completion_tokens"`
	TotalTokens         int          `json:"total_tokens"`
	PromptTokensDetails promptDetail `json:"prompt_tokens_details"`
}

type promptDetail struct {
	CachedTokens int `json:"cached_tokens"`
}

func usageOf(r result) usage {
	return usage{PromptTokens: r.prompt, CompletionTokens: r.generated, TotalTokens: r.prompt + r.generated,
		PromptTokensDetails: promptDetail{CachedTokens: r.cached}}
}

// format writes one endpoint's response objects.
type format struct {
	endpoint string
	id       string
	model    string
	created  int64
}

func newFormat(endpoint, model string) *format {
	prefix := "chatcmpl-"
	if endpoint == "completions" {
		prefix = "cmpl-"
	}
	return &format{endpoint: endpoint, id: newID(prefix), model: model, created: time.Now().Unix()}
}

// Chat response objects.
type (
	chatCompletion struct {
		ID                string       `json:"id"`
		Object            string       `json:"object"`
		Created           int64        `json:"created"`
		Model             string       `json:"model"`
		SystemFingerprint string       `json:"system_fingerprint"`
		Choices           []chatChoice `json:"choices"`
		Usage             *usage       `json:"usage,omitempty"`
	}
	chatChoice struct {
		Index        int           `json:"index"`
		Message      chatMessage   `json:"message"`
		Logprobs     *chatLogprobs `json:"logprobs"`
		FinishReason string        `json:"finish_reason"`
	}
	chatMessage struct {
		Role             string         `json:"role"`
		Content          *string        `json:"content"` // null when the answer is only tool calls
		ReasoningContent *string        `json:"reasoning_content,omitempty"`
		ToolCalls        []wireToolCall `json:"tool_calls,omitempty"`
		Refusal          *string        `json:"refusal"`
	}
	chatChunk struct {
		ID                string        `json:"id"`
		Object            string        `json:"object"`
		Created           int64         `json:"created"`
		Model             string        `json:"model"`
		SystemFingerprint string        `json:"system_fingerprint"`
		Choices           []chunkChoice `json:"choices"`
		Usage             *usage        `json:"usage,omitempty"`
	}
	chunkChoice struct {
		Index        int           `json:"index"`
		Delta        chunkDelta    `json:"delta"`
		Logprobs     *chatLogprobs `json:"logprobs"`
		FinishReason *string       `json:"finish_reason"`
	}
	chunkDelta struct {
		Role             string          `json:"role,omitempty"`
		Content          *string         `json:"content,omitempty"`
		ReasoningContent *string         `json:"reasoning_content,omitempty"`
		ToolCalls        []chunkToolCall `json:"tool_calls,omitempty"`
	}
	chunkToolCall struct {
		Index int `json:"index"`
		wireToolCall
	}
	chatLogprobs struct {
		Content []chatTokenLogprob `json:"content"`
		Refusal *string            `json:"refusal"`
	}
	chatTokenLogprob struct {
		Token       string           `json:"token"`
		Logprob     float64          `json:"logprob"`
		Bytes       []int            `json:"bytes"`
		TopLogprobs []chatTopLogprob `json:"top_logprobs"`
	}
	chatTopLogprob struct {
		Token   string  `json:"token"`
		Logprob float64 `json:"logprob"`
		Bytes   []int   `json:"bytes"`
	}
)

// Completion response objects.
type (
	textCompletion struct {
		ID                string       `json:"id"`
		Object            string       `json:"object"`
		Created           int64        `json:"created"`
		Model             string       `json:"model"`
		SystemFingerprint string       `json:"system_fingerprint"`
		Choices           []textChoice `json:"choices"`
		Usage             *usage       `json:"usage,omitempty"`
	}
	textChoice struct {
		Text         string        `json:"text"`
		Index        int           `json:"index"`
		Logprobs     *textLogprobs `json:"logprobs"`
		FinishReason *string       `json:"finish_reason"`
	}
	textLogprobs struct {
		Tokens        []string             `json:"tokens"`
		TokenLogprobs []float64            `json:"token_logprobs"`
		TopLogprobs   []map[string]float64 `json:"top_logprobs"`
		TextOffset    []int                `json:"text_offset"`
	}
)

func ints(b []byte) []int {
	out := make([]int, len(b))
	for i, c := range b {
		out[i] = int(c)
	}
	return out
}

func chatLogprobsOf(lps []tokenLogprob) *chatLogprobs {
	out := &chatLogprobs{Content: make([]chatTokenLogprob, 0, len(lps))}
	for _, t := range lps {
		c := chatTokenLogprob{Token: t.token, Logprob: t.logprob, Bytes: ints(t.bytes), TopLogprobs: []chatTopLogprob{}}
		for _, a := range t.top {
			c.TopLogprobs = append(c.TopLogprobs, chatTopLogprob{Token: a.token, Logprob: a.logprob, Bytes: ints(a.bytes)})
		}
		out.Content = append(out.Content, c)
	}
	return out
}

// textLogprobsOf writes the completions endpoint's older shape; offset
// is where the first token's text starts in the choice's text.
func textLogprobsOf(lps []tokenLogprob, offset int) *textLogprobs {
	out := &textLogprobs{Tokens: []string{}, TokenLogprobs: []float64{}, TopLogprobs: []map[string]float64{}, TextOffset: []int{}}
	for _, t := range lps {
		out.Tokens = append(out.Tokens, t.token)
		out.TokenLogprobs = append(out.TokenLogprobs, t.logprob)
		top := map[string]float64{}
		for _, a := range t.top {
			if _, ok := top[a.token]; !ok {
				top[a.token] = a.logprob
			}
		}
		out.TopLogprobs = append(out.TopLogprobs, top)
		out.TextOffset = append(out.TextOffset, offset)
		offset += len(t.bytes)
	}
	return out
}

// chunk is one streamed delta; first is the opening chunk of a choice
// (its role).
func (f *format) chunk(d delta, first bool) any {
	var finish *string
	if d.finish != "" {
		finish = &d.finish
	}
	if f.endpoint == "completions" {
		c := textChoice{Text: d.content, Index: d.choice, FinishReason: finish}
		if d.logprobs != nil {
			c.Logprobs = textLogprobsOf(d.logprobs, 0)
		}
		if first {
			return nil // the completions stream has no opening chunk
		}
		return textCompletion{ID: f.id, Object: "text_completion", Created: f.created, Model: f.model, Choices: []textChoice{c}}
	}
	c := chunkChoice{Index: d.choice, FinishReason: finish}
	switch {
	case first:
		empty := ""
		c.Delta = chunkDelta{Role: "assistant", Content: &empty}
	case d.thought != "":
		c.Delta.ReasoningContent = &d.thought
	case d.content != "":
		c.Delta.Content = &d.content
	case d.call != nil:
		c.Delta.ToolCalls = []chunkToolCall{{Index: d.callNum, wireToolCall: wireCall(d.call)}}
	}
	if d.logprobs != nil {
		c.Logprobs = chatLogprobsOf(d.logprobs)
	}
	return chatChunk{ID: f.id, Object: "chat.completion.chunk", Created: f.created, Model: f.model, Choices: []chunkChoice{c}}
}

// usageChunk is the last chunk of a stream with include_usage.
func (f *format) usageChunk(u usage) any {
	if f.endpoint == "completions" {
		return textCompletion{ID: f.id, Object: "text_completion", Created: f.created, Model: f.model, Choices: []textChoice{}, Usage: &u}
	}
	return chatChunk{ID: f.id, Object: "chat.completion.chunk", Created: f.created, Model: f.model, Choices: []chunkChoice{}, Usage: &u}
}

// whole is the non-streamed response.
func (f *format) whole(texts []choiceText, u usage, logprobs bool) any {
	if f.endpoint == "completions" {
		tc := textCompletion{ID: f.id, Object: "text_completion", Created: f.created, Model: f.model, Usage: &u}
		for i := range texts {
			t := &texts[i]
			c := textChoice{Text: t.content.String(), Index: i, FinishReason: &t.finish}
			if logprobs {
				c.Logprobs = textLogprobsOf(t.logprobs, 0)
			}
			tc.Choices = append(tc.Choices, c)
		}
		return tc
	}
	cc := chatCompletion{ID: f.id, Object: "chat.completion", Created: f.created, Model: f.model, Usage: &u}
	for i := range texts {
		t := &texts[i]
		content := t.content.String()
		c := chatChoice{Index: i, Message: chatMessage{Role: "assistant", Content: &content}, FinishReason: t.finish}
		for _, call := range t.calls {
			c.Message.ToolCalls = append(c.Message.ToolCalls, wireCall(call))
		}
		if content == "" && len(t.calls) > 0 {
			c.Message.Content = nil
		}
		if t.thought.Len() > 0 {
			th := t.thought.String()
			c.Message.ReasoningContent = &th
		}
		if logprobs {
			c.Logprobs = chatLogprobsOf(t.logprobs)
		}
		cc.Choices = append(cc.Choices, c)
	}
	return cc
}

// wireCall is a tool call in OpenAI's shape.
func wireCall(c *toolCall) wireToolCall {
	w := wireToolCall{ID: c.id, Type: "function"}
	w.Function.Name = c.name
	w.Function.Arguments, _ = json.Marshal(c.arguments)
	return w
}
