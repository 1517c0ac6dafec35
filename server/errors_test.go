package server

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
)

const okChat = `{"model":"qwen3-tiny-q6k","messages":[{"role":"user","content":"hi"}],"max_tokens":2,"temperature":0}`

// TestMalformed: each bad request gets its 4xx in OpenAI's error shape,
// naming the field at fault where there is one; the server answers a
// good request correctly afterwards.
func TestMalformed(t *testing.T) {
	ts := newTestServer(t, qwenModel, Options{Parallel: 2, ContextSize: 256, Limits: Limits{MaxBodyBytes: 64 << 10}})
	msg := func(extra string) string {
		return `{"messages":[{"role":"user","content":"hi"}]` + extra + `}`
	}
	cases := []struct {
		name, path, body string
		status           int
		param            string
	}{
		{"bad JSON", "/v1/chat/completions", `{"messages": [`, 400, ""},
		{"not JSON", "/v1/chat/completions", `hello`, 400, ""},
		{"empty body", "/v1/chat/completions", ``, 400, ""},
		{"array body", "/v1/chat/completions", `[1, 2]`, 400, ""},
		{"trailing data", "/v1/chat/completions", msg("") + ` {}`, 400, ""},
		{"messages a string", "/v1/chat/completions", `{"messages": "hi"}`, 400, "messages"},
		{"no messages", "/v1/chat/completions", `{"max_tokens": 3}`, 400, "messages"},
		{"empty messages", "/v1/chat/completions", `{"messages": []}`, 400, "messages"},
		{"message a string", "/v1/chat/completions", `{"messages": ["hi"]}`, 400, "messages[0]"},
		{"no role", "/v1/chat/completions", `{"messages": [{"content": "hi"}]}`, 400, "messages[0].role"},
		{"bad role", "/v1/chat/completions", `{"messages": [{"role": "wizard", "content": "hi"}]}`, 400, "messages[0].role"},
		{"role a number", "/v1/chat/completions", `{"messages": [{"role": 7, "content": "hi"}]}`, 400, "messages[0].role"},
		{"content a number", "/v1/chat/completions", `{"messages": [{"role": "user", "content": 5}]}`, 400, "messages[0].content"},
		{"no content", "/v1/chat/completions", `{"messages": [{"role": "user"}]}`, 400, "messages[0].content"},
		{"too many messages", "/v1/chat/completions", `{"messages": [` + strings.Repeat(`{"role": "user", "content": "a"},`, 1024) + `{"role": "user", "content": "a"}]}`, 400, "messages"},
		{"text part without text", "/v1/chat/completions", `{"messages": [{"role": "user", "content": [{"type": "text"}]}]}`, 400, "messages[0].content[0]"},
		{"tool call without a name", "/v1/chat/completions", `{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "tool_calls": [{"type": "function", "function": {"arguments": "{}"}}]}]}`, 400, "messages[1].tool_calls[0].function.name"},
		{"image part", "/v1/chat/completions", `{"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]}`, 400, "messages[0].content[0]"},
		{"unknown model", "/v1/chat/completions", `{"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}`, 404, "model"},
		{"negative max_tokens", "/v1/chat/completions", msg(`,"max_tokens": -5`), 400, "max_tokens"},
		{"zero max_tokens", "/v1/chat/completions", msg(`,"max_tokens": 0`), 400, "max_tokens"},
		{"huge max_tokens", "/v1/chat/completions", msg(`,"max_tokens": 1000000000000`), 400, "max_tokens"},
		{"max_tokens past int64", "/v1/chat/completions", msg(`,"max_tokens": 1e30`), 400, "max_tokens"},
		{"max_tokens a string", "/v1/chat/completions", msg(`,"max_tokens": "10"`), 400, "max_tokens"},
		{"max_tokens a fraction", "/v1/chat/completions", msg(`,"max_tokens": 1.5`), 400, "max_tokens"},
		{"huge max_completion_tokens", "/v1/chat/completions", msg(`,"max_completion_tokens": 300`), 400, "max_completion_tokens"},
		{"temperature 3", "/v1/chat/completions", msg(`,"temperature": 3`), 400, "temperature"},
		{"temperature a string", "/v1/chat/completions", msg(`,"temperature": "hot"`), 400, "temperature"},
		{"top_p 0", "/v1/chat/completions", msg(`,"top_p": 0`), 400, "top_p"},
		{"presence_penalty 5", "/v1/chat/completions", msg(`,"presence_penalty": 5`), 400, "presence_penalty"},
		{"negative top_k", "/v1/chat/completions", msg(`,"top_k": -1`), 400, "top_k"},
		{"min_p 2", "/v1/chat/completions", msg(`,"min_p": 2`), 400, "min_p"},
		{"repeat_penalty 0", "/v1/chat/completions", msg(`,"repeat_penalty": 0`), 400, "repeat_penalty"},
		{"n 0", "/v1/chat/completions", msg(`,"n": 0`), 400, "n"},
		{"n too big", "/v1/chat/completions", msg(`,"n": 100`), 400, "n"},
		{"stop a number", "/v1/chat/completions", msg(`,"stop": 5`), 400, "stop"},
		{"stop array of numbers", "/v1/chat/completions", msg(`,"stop": [1, 2]`), 400, "stop"},
		{"too many stops", "/v1/chat/completions", msg(`,"stop": [` + strings.Repeat(`"a",`, 20) + `"b"]`), 400, "stop"},
		{"stop too long", "/v1/chat/completions", msg(`,"stop": "` + strings.Repeat("x", 1000) + `"`), 400, "stop"},
		{"top_logprobs without logprobs", "/v1/chat/completions", msg(`,"top_logprobs": 2`), 400, "top_logprobs"},
		{"top_logprobs 50", "/v1/chat/completions", msg(`,"logprobs": true, "top_logprobs": 50`), 400, "top_logprobs"},
		{"logit_bias key", "/v1/chat/completions", msg(`,"logit_bias": {"hello": 1}`), 400, "logit_bias"},
		{"logit_bias id past the vocabulary", "/v1/chat/completions", msg(`,"logit_bias": {"99999999": 1}`), 400, "logit_bias"},
		{"logit_bias 500", "/v1/chat/completions", msg(`,"logit_bias": {"12": 500}`), 400, "logit_bias"},
		{"stream_options without stream", "/v1/chat/completions", msg(`,"stream_options": {"include_usage": true}`), 400, "stream_options"},
		{"tools an object", "/v1/chat/completions", msg(`,"tools": {"type": "function"}`), 400, "tools"},
		{"chat_template_kwargs a list", "/v1/chat/completions", msg(`,"chat_template_kwargs": [1]`), 400, "chat_template_kwargs"},
		{"reasoning_format", "/v1/chat/completions", msg(`,"reasoning_format": "html"`), 400, "reasoning_format"},
		{"prompt past the context", "/v1/chat/completions", `{"messages": [{"role": "user", "content": "` + strings.Repeat("word ", 400) + `"}]}`, 400, "messages"},
		{"tool_calls on a user", "/v1/chat/completions", `{"messages": [{"role": "user", "content": "hi", "tool_calls": [{"type": "function", "function": {"name": "f", "arguments": "{}"}}]}]}`, 400, "messages[0].tool_calls"},
		{"oversize body", "/v1/chat/completions", msg(`,"user": "` + strings.Repeat("x", 70<<10) + `"`), 413, ""},
		{"completions: no prompt", "/v1/completions", `{"max_tokens": 3}`, 400, "prompt"},
		{"completions: token past the vocabulary", "/v1/completions", `{"prompt": [1, 2, 99999]}`, 400, "prompt"},
		{"completions: negative token", "/v1/completions", `{"prompt": [-1]}`, 400, "prompt"},
		{"completions: two prompts", "/v1/completions", `{"prompt": ["a", "b"]}`, 400, "prompt"},
		{"completions: prompt an object", "/v1/completions", `{"prompt": {"text": "a"}}`, 400, "prompt"},
		{"completions: logprobs 9", "/v1/completions", `{"prompt": "a", "logprobs": 9}`, 400, "logprobs"},
		{"completions: echo", "/v1/completions", `{"prompt": "a", "echo": true}`, 400, "echo"},
		{"tokenize: no content", "/tokenize", `{}`, 400, "content"},
		{"detokenize: bad id", "/detokenize", `{"tokens": [5, 1000000]}`, 400, "tokens"},
		{"detokenize: ids as strings", "/detokenize", `{"tokens": ["a"]}`, 400, "tokens"},
		{"unknown path", "/v1/embeddings", `{}`, 404, ""},
	}
	for _, c := range cases {
		status, body := ts.post(t, c.path, c.body)
		if status != c.status {
			t.Errorf("%s: status %d, want %d: %s", c.name, status, c.status, body)
			continue
		}
		e := checkErrorShape(t, body)
		if p, _ := e["param"].(string); p != c.param {
			t.Errorf("%s: param %q, want %q (%s)", c.name, p, c.param, e["message"])
		}
		if status < 400 || status >= 500 {
			t.Errorf("%s: status %d is not a 4xx", c.name, status)
		}
	}
	t.Logf("%d malformed requests", len(cases))
	// Wrong method.
	if status, body := ts.get(t, "/v1/chat/completions"); status != 405 {
		t.Errorf("GET /v1/chat/completions: %d %s", status, body)
	} else {
		checkErrorShape(t, body)
	}
	// The server still answers.
	status, body := ts.post(t, "/v1/chat/completions", okChat)
	if status != 200 {
		t.Fatalf("a good request after the bad ones: %d %s", status, body)
	}
	var resp struct {
		Choices []struct {
			Message struct{ Content string } `json:"message"`
		} `json:"choices"`
	}
	if err := json.Unmarshal(body, &resp); err != nil || len(resp.Choices) != 1 {
		t.Errorf("a good request after the bad ones: %s", body)
	}
	if w, r := ts.Load(); w != 0 || r != 0 {
		t.Errorf("%d waiting, %d running after all requests", w, r)
	}
}

// TestAuth: with API keys, only "Authorization: Bearer KEY" with one of
// them passes; /health stays open.
func TestAuth(t *testing.T) {
	ts := newTestServer(t, qwenModel, Options{Parallel: 1, APIKeys: []string{"k-one", "k-two"}})
	cases := []struct {
		name   string
		header []string
		status int
	}{
		{"no key", nil, 401},
		{"wrong key", []string{"Authorization", "Bearer k-three"}, 401},
		{"key prefix", []string{"Authorization", "Bearer k-on"}, 401},
		{"key and more", []string{"Authorization", "Bearer k-one1"}, 401},
		{"empty bearer", []string{"Authorization", "Bearer "}, 401},
		{"no scheme", []string{"Authorization", "k-one"}, 401},
		{"basic scheme", []string{"Authorization", "Basic k-one"}, 401},
		{"key in api-key", []string{"api-key", "k-one"}, 401},
		{"key in x-api-key", []string{"X-Api-Key", "k-one"}, 401},
		{"right key", []string{"Authorization", "Bearer k-one"}, 200},
		{"second key", []string{"Authorization", "Bearer k-two"}, 200},
		{"lower-case scheme", []string{"Authorization", "bearer k-two"}, 200},
	}
	for _, c := range cases {
		status, body := ts.post(t, "/v1/chat/completions", okChat, c.header...)
		if status != c.status {
			t.Errorf("%s: %d, want %d: %s", c.name, status, c.status, body)
			continue
		}
		if status == 401 {
			if e := checkErrorShape(t, body); e["code"] != "invalid_api_key" {
				t.Errorf("%s: %s", c.name, body)
			}
		}
	}
	if status, _ := ts.post(t, "/v1/chat/completions?api_key=k-one", okChat); status != 401 {
		t.Errorf("key in the query: %d", status)
	}
	if status, _ := ts.get(t, "/v1/models"); status != 401 {
		t.Errorf("models without a key: %d", status)
	}
	if status, _ := ts.get(t, "/health"); status != 200 {
		t.Errorf("health without a key: %d", status)
	}
	// The SDK sends its key as a Bearer token.
	if _, err := ts.client.Models.List(context.Background()); err != nil {
		t.Errorf("SDK with the right key: %v", err)
	}
	bad := openai.NewClient(option.WithBaseURL(ts.http.URL+"/v1/"), option.WithAPIKey("nope"), option.WithMaxRetries(0))
	_, err := bad.Chat.Completions.New(context.Background(), greedyChat("hi", 2))
	if ae, ok := err.(*openai.Error); !ok || ae.StatusCode != 401 {
		t.Errorf("SDK with a wrong key: %v", err)
	}
}

// block makes the next request's first token wait until release is
// called: the request then holds its sequence as long as the test
// needs. started is closed when the token came.
type block struct {
	started, gate chan struct{}
	armed         bool
}

func newBlock(s *Server) *block {
	b := &block{started: make(chan struct{}), gate: make(chan struct{}), armed: true}
	s.hooks.onToken = func() {
		if b.armed {
			b.armed = false
			close(b.started)
			<-b.gate
		}
	}
	return b
}

func (b *block) release() { close(b.gate) }

// TestQueueFull: with one sequence busy, a request waits in the queue;
// past the queue's size, requests get 429 with Retry-After, and once the
// sequence is free the queued one is answered.
func TestQueueFull(t *testing.T) {
	ts := newTestServer(t, qwenModel, Options{Parallel: 1, Queue: 1})
	b := newBlock(ts.Server)
	queued := make(chan struct{}, 1)
	ts.hooks.onQueued = func() { queued <- struct{}{} }
	first, second := make(chan int), make(chan int)
	go func() { s, _ := ts.post(t, "/v1/chat/completions", okChat); first <- s }()
	<-b.started // the first holds the only sequence
	go func() { s, _ := ts.post(t, "/v1/chat/completions", okChat); second <- s }()
	<-queued // the second waits in the queue, which is now full
	req, _ := http.NewRequest("POST", ts.http.URL+"/v1/chat/completions", strings.NewReader(okChat))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var body strings.Builder
	bufio.NewReader(resp.Body).WriteTo(&body)
	resp.Body.Close()
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") == "" {
		t.Errorf("third request: %d, Retry-After %q: %s", resp.StatusCode, resp.Header.Get("Retry-After"), body.String())
	}
	if e := checkErrorShape(t, []byte(body.String())); e["type"] != "rate_limit_error" {
		t.Errorf("429 body: %s", body.String())
	}
	// The SDK sees a 429 too (retries off).
	_, err = ts.client.Chat.Completions.New(context.Background(), greedyChat("hi", 2))
	if ae, ok := err.(*openai.Error); !ok || ae.StatusCode != 429 {
		t.Errorf("SDK: %v", err)
	}
	b.release()
	if s1, s2 := <-first, <-second; s1 != 200 || s2 != 200 {
		t.Errorf("the running and the queued request: %d, %d", s1, s2)
	}

	// No queue at all: a busy server answers 429 at once.
	ts = newTestServer(t, qwenModel, Options{Parallel: 1, Queue: -1})
	b = newBlock(ts.Server)
	go func() { s, _ := ts.post(t, "/v1/chat/completions", okChat); first <- s }()
	<-b.started
	if status, body := ts.post(t, "/v1/chat/completions", okChat); status != 429 {
		t.Errorf("no queue: %d %s", status, body)
	}
	b.release()
	<-first
}

// TestDisconnect: a client drops its stream; within one engine step the
// request ends, its sequence and KV blocks go back and the running count
// goes down; the access log says 499.
func TestDisconnect(t *testing.T) {
	ts := newTestServer(t, qwenModel, Options{Parallel: 2})
	var cancelStep, releaseStep int
	released := make(chan struct{})
	running := -1
	cancelled := make(chan struct{})
	var once0, once1, once2 sync.Once
	ts.hooks.onCancel = func() { once0.Do(func() { cancelStep = ts.Context().Steps(); close(cancelled) }) }
	ts.hooks.onRelease = func() {
		once1.Do(func() {
			releaseStep = ts.Context().Steps()
			_, running = ts.Load()
			close(released)
		})
	}
	logged := make(chan struct{})
	ts.hooks.onLogged = func() { once2.Do(func() { close(logged) }) }
	ctx, cancel := context.WithCancel(context.Background())
	body := `{"messages":[{"role":"user","content":"Tell me a long story."}],"max_tokens":900,"temperature":0,"stream":true}`
	req, _ := http.NewRequestWithContext(ctx, "POST", ts.http.URL+"/v1/chat/completions", strings.NewReader(body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	rd := bufio.NewReader(resp.Body)
	for chunks := 0; chunks < 3; {
		line, err := rd.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(line, "data: {") {
			chunks++
		}
	}
	if _, r := ts.Load(); r != 1 {
		t.Errorf("%d running while streaming", r)
	}
	cancel() // the client goes away mid-stream
	resp.Body.Close()
	<-released
	<-cancelled
	if releaseStep-cancelStep > 1 {
		t.Errorf("the sequence came back %d steps after the cancel (step %d → %d), want at most 1", releaseStep-cancelStep, cancelStep, releaseStep)
	}
	if running != 0 {
		t.Errorf("running %d after the release", running)
	}
	st := ts.Context().KVStats()
	held := 0
	for _, n := range st.PerSeq {
		held += n
	}
	if held != 0 || st.FreeBlocks != st.Blocks {
		t.Errorf("after the disconnect: sequences hold %d blocks, %d of %d free", held, st.FreeBlocks, st.Blocks)
	}
	<-logged
	ts.logMu.Lock()
	logs := ts.logs.String()
	ts.logMu.Unlock()
	if !strings.Contains(logs, "status=499") || strings.Contains(logs, "long story") {
		t.Errorf("access log: %s", logs)
	}
	t.Logf("cancel at step %d, sequence back at step %d; %s", cancelStep, releaseStep, strings.TrimSpace(logs))
	// And the server answers the next one.
	if status, b := ts.post(t, "/v1/chat/completions", okChat); status != 200 {
		t.Errorf("after a disconnect: %d %s", status, b)
	}
}

// TestDrainInProcess: Drain refuses new requests (503) and turns health
// 503 while a request under way finishes normally; Drain returns when it
// has.
func TestDrainInProcess(t *testing.T) {
	ts := newTestServer(t, qwenModel, Options{Parallel: 2})
	b := newBlock(ts.Server)
	first := make(chan int)
	go func() { s, _ := ts.post(t, "/v1/chat/completions", okChat); first <- s }()
	<-b.started
	ts.StartDrain()
	if status, body := ts.post(t, "/v1/chat/completions", okChat); status != 503 {
		t.Errorf("a new request while draining: %d %s", status, body)
	} else if e := checkErrorShape(t, body); e["type"] != "unavailable_error" {
		t.Errorf("503 body: %s", body)
	}
	if status, _ := ts.get(t, "/health"); status != 503 {
		t.Errorf("health while draining: %d", status)
	}
	drained := make(chan error)
	go func() { drained <- ts.Drain(context.Background()) }()
	b.release()
	if s := <-first; s != 200 {
		t.Errorf("the request under way: %d", s)
	}
	if err := <-drained; err != nil {
		t.Errorf("Drain: %v", err)
	}
}

// TestDrainTimeout: requests still running when Drain's context ends are
// cancelled (the client sees 503) and Drain returns the context's error.
func TestDrainTimeout(t *testing.T) {
	ts := newTestServer(t, qwenModel, Options{Parallel: 1})
	b := newBlock(ts.Server)
	cancelled := make(chan struct{})
	ts.hooks.onCancel = func() { close(cancelled) }
	first := make(chan int)
	go func() { s, _ := ts.post(t, "/v1/chat/completions", okChat); first <- s }()
	<-b.started
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	drained := make(chan error)
	go func() { drained <- ts.Drain(ctx) }()
	// Drain cancels the request, then waits for it; the blocked token
	// callback is let go once the cancel is seen.
	<-cancelled
	b.release()
	if err := <-drained; err != context.Canceled {
		t.Errorf("Drain: %v", err)
	}
	if s := <-first; s != 503 {
		t.Errorf("the cancelled request: %d", s)
	}
}

// TestTimeout: a request past Options.Timeout gets 504 in OpenAI's shape.
func TestTimeout(t *testing.T) {
	ts := newTestServer(t, qwenModel, Options{Parallel: 1, Timeout: time.Nanosecond})
	status, body := ts.post(t, "/v1/chat/completions", okChat)
	if status != 504 {
		t.Fatalf("%d %s", status, body)
	}
	if e := checkErrorShape(t, body); e["type"] != "timeout_error" {
		t.Errorf("%s", body)
	}
}

// TestMetricsEndpoint: /metrics answers in Prometheus' text format
// without a key, and the server keeps its gauges balanced: after the
// requests, none waits and none runs.
func TestMetricsEndpoint(t *testing.T) {
	ts := newTestServer(t, qwenModel, Options{Parallel: 1, APIKeys: []string{"k"}})
	ts.post(t, "/v1/chat/completions", okChat, "Authorization", "Bearer k")
	req, _ := http.NewRequest("GET", ts.http.URL+"/metrics", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var body strings.Builder
	bufio.NewReader(resp.Body).WriteTo(&body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") || !strings.Contains(body.String(), "# TYPE") {
		t.Errorf("/metrics: %d %s\n%s", resp.StatusCode, resp.Header.Get("Content-Type"), body.String())
	}
	if w, r := ts.Load(); w != 0 || r != 0 {
		t.Errorf("%d waiting, %d running", w, r)
	}
}

// TestToolsAndRoles: a conversation with a system prompt, a tool
// definition, an assistant tool call and the tool's answer renders and
// is answered.
func TestToolsAndRoles(t *testing.T) {
	ts := newTestServer(t, qwenModel, Options{Parallel: 1})
	body := `{"model":"qwen3-tiny-q6k","max_tokens":3,"temperature":0,
	  "tools":[{"type":"function","function":{"name":"add","description":"adds","parameters":{"type":"object","properties":{"a":{"type":"number"}}}}}],
	  "messages":[{"role":"developer","content":"You add numbers."},
	    {"role":"user","content":[{"type":"text","text":"6+6?"}]},
	    {"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"add","arguments":"{\"a\":6}"}}]},
	    {"role":"tool","tool_call_id":"c1","content":"12"}]}`
	status, resp := ts.post(t, "/v1/chat/completions", body)
	if status != 200 {
		t.Fatalf("%d %s", status, resp)
	}
	// The tool definition reached the template: the prompt is longer
	// than without it.
	var with, without struct {
		Usage struct {
			PromptTokens int `json:"prompt_tokens"`
		} `json:"usage"`
	}
	json.Unmarshal(resp, &with)
	_, resp = ts.post(t, "/v1/chat/completions", strings.Replace(body, `"tools":[`, `"tool_choice":"none","tools":[`, 1))
	json.Unmarshal(resp, &without)
	if with.Usage.PromptTokens <= without.Usage.PromptTokens {
		t.Errorf("prompt tokens with the tools %d, without (tool_choice none) %d", with.Usage.PromptTokens, without.Usage.PromptTokens)
	}
}

// TestPanicRecovered: a handler that panics answers 500 in OpenAI's
// shape, and both the panic and the access line are logged.
func TestPanicRecovered(t *testing.T) {
	ts := newTestServer(t, qwenModel, Options{Parallel: 1})
	h := ts.logged(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("a bug") }))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("POST", "/v1/chat/completions", strings.NewReader(okChat)))
	if w.Code != 500 {
		t.Fatalf("%d %s", w.Code, w.Body.String())
	}
	checkErrorShape(t, w.Body.Bytes())
	ts.logMu.Lock()
	logs := ts.logs.String()
	ts.logMu.Unlock()
	if !strings.Contains(logs, "msg=panic") || !strings.Contains(logs, "status=500") {
		t.Errorf("logs: %s", logs)
	}
}
