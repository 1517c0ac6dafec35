package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/gollm/gollm"
	"github.com/gollm/gollm/chat"
)

// POST /v1/chat/completions.
//
// The messages are rendered with the model's own chat template and
// tokenized by gollm.Model.ChatPrompt, exactly as gollm.ChatSession does
// a conversation: special-token text in the messages ("<|im_end|>" typed
// by a user) stays plain text, so that no one can forge a turn boundary
// or a system turn, while the template's own markup becomes control
// tokens; a template that writes BOS itself gets no second one.

// chatRequest is the body of a chat completion request.
type chatRequest struct {
	Model               *string           `json:"model"`
	Messages            []json.RawMessage `json:"messages"`
	Stream              bool              `json:"stream"`
	StreamOptions       *streamOptions    `json:"stream_options"`
	MaxTokens           *int64            `json:"max_tokens"`
	MaxCompletionTokens *int64            `json:"max_completion_tokens"`
	N                   *int64            `json:"n"`
	Stop                json.RawMessage   `json:"stop"`
	Logprobs            bool              `json:"logprobs"`
	TopLogprobs         *int64            `json:"top_logprobs"`
	Tools               json.RawMessage   `json:"tools"`
	ToolChoice          json.RawMessage   `json:"tool_choice"`
	ChatTemplateKwargs  json.RawMessage   `json:"chat_template_kwargs"`
	ReasoningFormat     *string           `json:"reasoning_format"`
	samplingFields
	constraintFields
}

type streamOptions struct {
	IncludeUsage bool `json:"include_usage"`
}

// wireMessage is one message as OpenAI's API sends it.
type wireMessage struct {
	Role             *string          `json:"role"`
	Content          json.RawMessage  `json:"content"`
	Name             *string          `json:"name"`
	ToolCalls        []wireToolCall   `json:"tool_calls"`
	ToolCallID       *string          `json:"tool_call_id"`
	ReasoningContent *string          `json:"reasoning_content"`
	FunctionCall     *json.RawMessage `json:"function_call"`
}

type wireToolCall struct {
	ID       string `json:"id"`
	Type     string `json:"type"`
	Function struct {
		Name      string          `json:"name"`
		Arguments json.RawMessage `json:"arguments"`
	} `json:"function"`
}

// contentPart is one element of an array "content".
type contentPart struct {
	Type string  `json:"type"`
	Text *string `json:"text"`
}

func (s *Server) chatCompletions(w http.ResponseWriter, r *http.Request) {
	var req chatRequest
	if e := s.decodeBody(w, r, &req); e != nil {
		writeError(w, e)
		return
	}
	j, e := s.chatJob(&req)
	if e != nil {
		writeError(w, e)
		return
	}
	s.answer(w, r, j, answerOptions{endpoint: "chat", stream: req.Stream,
		usage: req.StreamOptions != nil && req.StreamOptions.IncludeUsage})
}

// chatJob checks a chat request and renders its prompt.
func (s *Server) chatJob(req *chatRequest) (*job, *apiError) {
	if e := s.checkModel(req.Model); e != nil {
		return nil, e
	}
	if req.StreamOptions != nil && !req.Stream {
		return nil, badRequest("stream_options", "stream_options is only allowed with stream: true")
	}
	msgs, e := s.messages(req.Messages)
	if e != nil {
		return nil, e
	}
	ro := chat.RenderOptions{AddGenerationPrompt: true}
	if e := templateOptions(req, &ro); e != nil {
		return nil, e
	}
	j := &job{split: s.opts.ReasoningFormat != "none"}
	if f := req.ReasoningFormat; f != nil {
		switch *f {
		case "none":
			j.split = false
		case "deepseek", "auto":
			j.split = true
		default:
			return nil, badRequest("reasoning_format", "reasoning_format is none, deepseek or auto, not %q", shorten(*f, 40))
		}
	}
	if j.grammar, e = req.constraintFields.grammar(); e != nil {
		return nil, e
	}
	if _, err := s.model.Template(); err != nil {
		return nil, errorf(http.StatusBadRequest, "", "no_chat_template", "%v: use /v1/completions with a prompt", err)
	}
	// The same tokens a gollm.ChatSession would give the model: special
	// text typed in messages stays text, one BOS.
	prompt, rendered, err := s.model.ChatPrompt(msgs, ro, false)
	if err != nil {
		// The template refused the conversation (Qwen3 raises on a
		// conversation without a user message, say) or broke a limit.
		return nil, badRequest("messages", "the model's chat template cannot render these messages: %s", shorten(err.Error(), 300))
	}
	j.prompt = prompt
	j.tools = len(ro.Tools) > 0
	j.opensThought = chat.PromptOpensThought(rendered)
	if j.grammar != nil {
		j.split, j.opensThought = false, false // all answer (format.go)
	}
	if j.tools && j.grammar == nil && strings.Contains(rendered, toolCallOpen) {
		tok := s.model.Tokenizer()
		open, ok1 := tok.TokenID(toolCallOpen)
		closeID, ok2 := tok.TokenID(toolCallClose)
		if g := toolCallGrammar(req.Tools); ok1 && ok2 && g != nil {
			j.grammar, j.trigger = g, &gollm.GrammarTrigger{Open: open, Close: closeID}
		}
	}
	if e := s.fillJob(j, &req.samplingFields, req.MaxTokens, req.MaxCompletionTokens, req.N, req.Stop); e != nil {
		return nil, e
	}
	if req.TopLogprobs != nil {
		if !req.Logprobs {
			return nil, badRequest("top_logprobs", "top_logprobs needs logprobs: true")
		}
		if max := s.opts.Limits.MaxTopLogprobs; *req.TopLogprobs < 0 || *req.TopLogprobs > int64(max) {
			return nil, badRequest("top_logprobs", "top_logprobs must be between 0 and %d, not %d", max, *req.TopLogprobs)
		}
		j.topLogprobs = int(*req.TopLogprobs)
	}
	j.logprobs = req.Logprobs
	return j, nil
}

// fillJob checks what chat and completion requests share: sampling,
// max_tokens, n and stop.
func (s *Server) fillJob(j *job, sf *samplingFields, maxTokens, maxCompletion, n *int64, stop json.RawMessage) *apiError {
	var e *apiError
	vocab := s.model.Config().Vocab
	if j.params, e = sf.params(vocab, s.ctx.Options().ContextSize); e != nil {
		return e
	}
	if j.n, e = s.checkN(n); e != nil {
		return e
	}
	if j.stops, e = s.parseStop(stop); e != nil {
		return e
	}
	if j.maxTokens, e = s.maxTokens(maxTokens, maxCompletion, len(j.prompt)); e != nil {
		return e
	}
	return nil
}

// messages checks the messages and turns them into the template's.
func (s *Server) messages(raw []json.RawMessage) ([]chat.Message, *apiError) {
	switch max := s.opts.Limits.MaxMessages; {
	case raw == nil:
		return nil, badRequest("messages", "messages is required: an array of messages")
	case len(raw) == 0:
		return nil, badRequest("messages", "messages is empty: send at least one message")
	case len(raw) > max:
		return nil, badRequest("messages", "there are %d messages, at most %d are allowed", len(raw), max)
	}
	out := make([]chat.Message, 0, len(raw))
	for i, data := range raw {
		param := fmt.Sprintf("messages[%d]", i)
		var wm wireMessage
		if err := json.Unmarshal(data, &wm); err != nil {
			var typeErr *json.UnmarshalTypeError
			if errors.As(err, &typeErr) && typeErr.Field != "" {
				return nil, badRequest(param+"."+typeErr.Field, "%s.%s must be %s, not %s", param, typeErr.Field, typeName(typeErr.Type.String()), typeErr.Value)
			}
			return nil, badRequest(param, "%s must be an object with a role and content", param)
		}
		m, e := wm.message(param)
		if e != nil {
			return nil, e
		}
		out = append(out, m)
	}
	return out, nil
}

// message checks one message.
func (wm *wireMessage) message(param string) (chat.Message, *apiError) {
	var m chat.Message
	if wm.Role == nil {
		return m, badRequest(param+".role", "%s has no role", param)
	}
	switch role := *wm.Role; role {
	case "system", "user", "assistant", "tool":
		m.Role = role
	case "developer": // OpenAI's newer name for the system role
		m.Role = "system"
	default:
		return m, badRequest(param+".role", "%s.role must be system, developer, user, assistant or tool, not %q", param, shorten(role, 40))
	}
	content, e := contentText(wm.Content, param)
	if e != nil {
		return m, e
	}
	if content == nil && !(m.Role == "assistant" && (len(wm.ToolCalls) > 0 || wm.FunctionCall != nil)) {
		return m, badRequest(param+".content", "%s has no content", param)
	}
	if content != nil {
		m.Content = *content
	}
	if wm.ReasoningContent != nil && m.Role == "assistant" {
		m.ReasoningContent = *wm.ReasoningContent
	}
	if len(wm.ToolCalls) > 0 && m.Role != "assistant" {
		return m, badRequest(param+".tool_calls", "only an assistant message has tool_calls")
	}
	for k, tc := range wm.ToolCalls {
		if tc.Function.Name == "" {
			return m, badRequest(fmt.Sprintf("%s.tool_calls[%d].function.name", param, k), "a tool call needs a function name")
		}
		call := chat.ToolCall{ID: tc.ID, Type: tc.Type, Function: chat.FunctionCall{Name: tc.Function.Name}}
		if call.Type == "" {
			call.Type = "function"
		}
		// OpenAI sends the arguments as JSON text, a string; some clients
		// send the object itself. Templates accept both.
		switch args := tc.Function.Arguments; {
		case len(args) == 0 || string(args) == "null":
			call.Function.Arguments = "{}"
		case args[0] == '"':
			var text string
			if err := json.Unmarshal(args, &text); err != nil {
				return m, badRequest(fmt.Sprintf("%s.tool_calls[%d].function.arguments", param, k), "the arguments are not a JSON string")
			}
			call.Function.Arguments = text
		default:
			v, err := chat.DecodeJSON(args)
			if err != nil {
				return m, badRequest(fmt.Sprintf("%s.tool_calls[%d].function.arguments", param, k), "the arguments are not valid JSON")
			}
			call.Function.Arguments = v
		}
		m.ToolCalls = append(m.ToolCalls, call)
	}
	if wm.ToolCallID != nil {
		m.Extra = append(m.Extra, chat.Field{Key: "tool_call_id", Value: *wm.ToolCallID})
	}
	if wm.Name != nil {
		m.Extra = append(m.Extra, chat.Field{Key: "name", Value: *wm.Name})
	}
	return m, nil
}

// contentText reads "content": a string, null (nil), or an array of
// text parts, joined with newlines. Other parts (images, audio) are a
// 400: this server reads text only.
func contentText(raw json.RawMessage, param string) (*string, *apiError) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var text string
	if err := json.Unmarshal(raw, &text); err == nil {
		return &text, nil
	}
	var parts []contentPart
	if err := json.Unmarshal(raw, &parts); err != nil {
		return nil, badRequest(param+".content", "%s.content must be a string or an array of text parts", param)
	}
	texts := make([]string, 0, len(parts))
	for k, p := range parts {
		if p.Type != "text" || p.Text == nil {
			return nil, badRequest(fmt.Sprintf("%s.content[%d]", param, k),
				"content part %d is of type %q: this server reads only text parts ({\"type\": \"text\", \"text\": …})", k, shorten(p.Type, 40))
		}
		texts = append(texts, *p.Text)
	}
	joined := strings.Join(texts, "\n")
	return &joined, nil
}

// templateOptions passes the tools and chat_template_kwargs (llama-server's
// extension, e.g. {"enable_thinking": false} for Qwen3) to the template.
// tool_choice "none" withholds the tools.
func templateOptions(req *chatRequest, ro *chat.RenderOptions) *apiError {
	if len(req.Tools) > 0 && string(req.Tools) != "null" {
		v, err := chat.DecodeJSON(req.Tools)
		list, ok := v.([]any)
		if err != nil || !ok {
			return badRequest("tools", "tools must be an array of tool definitions")
		}
		for k, t := range list {
			if _, ok := t.(chat.Object); !ok {
				return badRequest(fmt.Sprintf("tools[%d]", k), "a tool must be an object")
			}
		}
		var choice string
		if json.Unmarshal(req.ToolChoice, &choice) != nil || choice != "none" {
			ro.Tools = list
		}
	}
	if len(req.ChatTemplateKwargs) > 0 && string(req.ChatTemplateKwargs) != "null" {
		v, err := chat.DecodeJSON(req.ChatTemplateKwargs)
		obj, ok := v.(chat.Object)
		if err != nil || !ok {
			return badRequest("chat_template_kwargs", "chat_template_kwargs must be an object")
		}
		ro.Extra = map[string]any{}
		for _, f := range obj {
			ro.Extra[f.Key] = f.Value
		}
	}
	return nil
}
