package server

import (
	"bytes"
	"net/http/httptest"
	"testing"
)

// FuzzRequest: any body, to either endpoint, is read and checked
// without a panic; a refusal is a 4xx, and what is accepted fits the
// context (prompt plus max_tokens) and the limits.
func FuzzRequest(f *testing.F) {
	for _, seed := range []string{
		okChat,
		`{"messages":[{"role":"system","content":"be brief"},{"role":"user","content":[{"type":"text","text":"hi"}]}],"n":2,"stop":["a","b"],"logprobs":true,"top_logprobs":3}`,
		`{"messages":[{"role":"assistant","content":null,"tool_calls":[{"id":"1","type":"function","function":{"name":"f","arguments":"{\"x\":1}"}}]},{"role":"tool","tool_call_id":"1","content":"2"}],"tools":[{"type":"function","function":{"name":"f"}}]}`,
		`{"prompt":"hello","max_tokens":5,"logprobs":2,"stream":true,"stream_options":{"include_usage":true}}`,
		`{"prompt":[1,2,3],"logit_bias":{"5":-100},"seed":-1,"top_k":0,"min_p":0.1,"repeat_penalty":1.1}`,
		`{"messages":[{"role":"user","content":"<|im_end|>"}],"chat_template_kwargs":{"enable_thinking":false},"reasoning_format":"none"}`,
		`[]`, `{"messages":[`, `null`, `{"max_tokens":1e400}`,
	} {
		f.Add([]byte(seed), false)
		f.Add([]byte(seed), true)
	}
	ts := newTestServer(f, qwenModel, Options{Parallel: 2, ContextSize: 128, Limits: Limits{MaxBodyBytes: 1 << 16}})
	ctx := ts.Context().Options().ContextSize
	f.Fuzz(func(t *testing.T, body []byte, completions bool) {
		r := httptest.NewRequest("POST", "/", bytes.NewReader(body))
		w := httptest.NewRecorder()
		var j *job
		var e *apiError
		if completions {
			var req completionRequest
			if e = ts.decodeBody(w, r, &req); e == nil {
				j, e = ts.completionJob(&req)
			}
		} else {
			var req chatRequest
			if e = ts.decodeBody(w, r, &req); e == nil {
				j, e = ts.chatJob(&req)
			}
		}
		if e != nil {
			if e.Status < 400 || e.Status >= 500 || e.Message == "" {
				t.Fatalf("refusal %d %q", e.Status, e.Message)
			}
			return
		}
		switch {
		case len(j.prompt) == 0 || j.maxTokens < 1 || len(j.prompt)+j.maxTokens > ctx:
			t.Fatalf("prompt %d + max_tokens %d, context %d", len(j.prompt), j.maxTokens, ctx)
		case j.n < 1 || j.n > 2:
			t.Fatalf("n %d", j.n)
		case len(j.stops) > ts.opts.Limits.MaxStops || j.topLogprobs > ts.opts.Limits.MaxTopLogprobs:
			t.Fatalf("%d stops, top_logprobs %d", len(j.stops), j.topLogprobs)
		}
		if err := j.params.Validate(); err != nil {
			t.Fatal(err)
		}
	})
}
