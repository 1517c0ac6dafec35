package server

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/gollm/gollm"
	"github.com/gollm/gollm/gguf"
	"github.com/gollm/gollm/internal/testdata"
	"github.com/gollm/gollm/synth"
	"github.com/gollm/gollm/tensor"
	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
)

// Test models: qwen3-tiny-q6k, a fixture, has a 4096-token cut of the
// Qwen3 vocabulary (no special tokens) and the Qwen3 template.
// deepseekModel is synthesized once per test binary: a one-layer random
// Qwen3 with DeepSeek-R1-0528-Qwen3's real tokenizer (special tokens,
// "</think>" among them) and chat template, whose generation prompt
// opens a thought ("<think>\n"): for the reasoning and special-text
// tests.
//
// llama3Model, also synthesized, is a one-layer random llama-family model
// with Llama 3's real tokenizer and template: the vocabulary adds BOS and
// the template writes it too.
const (
	qwenModel     = "qwen3-tiny-q6k"
	deepseekModel = "deepseek-synth"
	llama3Model   = "llama3-synth"
	qwen3Synth    = "qwen3-synth" // Qwen3's real vocabulary and template, one random layer (tool calls)
)

var synthDir string // removed by TestMain

// synthWithVocab writes a one-layer random model of the architecture
// arch with the tokenizer and chat template of the vocab-only file vocab.
func synthWithVocab(t testing.TB, name, arch, vocab string, seed uint64) string {
	vf, err := gguf.Open(testdata.Path("vocab", vocab))
	if err != nil {
		t.Fatal(err)
	}
	defer vf.Close()
	path := filepath.Join(synthDir, name+".gguf")
	cfg := synth.Config{Arch: arch, Name: name, Embd: 64, Layers: 1, Heads: 2, KVHeads: 1, HeadDim: 32, FF: 128,
		Tied: true, Type: tensor.Q8_0, Seed: seed, ContextLength: 4096}
	if err := synth.Write(path, cfg, vf); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "gollm-server-test")
	if err != nil {
		panic(err)
	}
	synthDir = dir
	code := m.Run()
	for _, m := range models {
		m.Close()
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

var (
	modelsMu sync.Mutex
	models   = map[string]*gollm.Model{}
)

// loadModel loads a fixture once for the whole test binary.
func loadModel(t testing.TB, name string) *gollm.Model {
	t.Helper()
	modelsMu.Lock()
	defer modelsMu.Unlock()
	if m := models[name]; m != nil {
		return m
	}
	path := testdata.Path("models", name+".gguf")
	switch name {
	case deepseekModel:
		path = synthWithVocab(t, name, "qwen3", "deepseek-r1-qwen3.gguf", 12)
	case llama3Model:
		path = synthWithVocab(t, name, "llama", "llama3.gguf", 13)
	case qwen3Synth:
		path = synthWithVocab(t, name, "qwen3", "qwen3.gguf", 14)
	}
	m, err := gollm.LoadModel(path, gollm.ModelOptions{Threads: 2, GPU: gollm.GPUNone})
	if err != nil {
		t.Fatal(err)
	}
	models[name] = m
	return m
}

// testServer is a Server behind an httptest server, with an OpenAI
// client pointed at it.
type testServer struct {
	*Server
	http   *httptest.Server
	client openai.Client
	logs   *bytes.Buffer
	logMu  *sync.Mutex
}

// newTestServer starts a server on a fixture. Options' Model and Logger
// are filled in.
func newTestServer(t testing.TB, name string, o Options) *testServer {
	t.Helper()
	o.Model = loadModel(t, name)
	if o.ContextSize == 0 {
		o.ContextSize = 1024
	}
	var mu sync.Mutex
	logs := &bytes.Buffer{}
	o.Logger = slog.New(slog.NewTextHandler(lockedWriter{&mu, logs}, nil))
	s, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(s.Handler())
	t.Cleanup(func() {
		hs.CloseClientConnections()
		hs.Close()
		s.Close()
	})
	key := "unused"
	if len(o.APIKeys) > 0 {
		key = o.APIKeys[0]
	}
	c := openai.NewClient(option.WithBaseURL(hs.URL+"/v1/"), option.WithAPIKey(key), option.WithMaxRetries(0))
	return &testServer{Server: s, http: hs, client: c, logs: logs, logMu: &mu}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// post sends a raw JSON body (or any bytes) and returns the status and
// the body.
func (ts *testServer) post(t testing.TB, path, body string, header ...string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest("POST", ts.http.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, data
}

// get sends a GET.
func (ts *testServer) get(t testing.TB, path string, header ...string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest("GET", ts.http.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, data
}

// checkErrorShape checks an OpenAI error body: {"error": {"message",
// "type", "param", "code"}}, every key present, message and type strings.
func checkErrorShape(t testing.TB, body []byte) map[string]any {
	t.Helper()
	var v map[string]map[string]any
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("error body is not JSON: %v: %s", err, body)
	}
	e, ok := v["error"]
	if !ok || len(v) != 1 {
		t.Fatalf("error body is not {\"error\": …}: %s", body)
	}
	for _, k := range []string{"message", "type", "param", "code"} {
		if _, ok := e[k]; !ok {
			t.Errorf("error body lacks %q: %s", k, body)
		}
	}
	if m, _ := e["message"].(string); m == "" {
		t.Errorf("error message is empty: %s", body)
	}
	if ty, _ := e["type"].(string); ty == "" {
		t.Errorf("error type is empty: %s", body)
	}
	return e
}

// asJSON is s as it comes back through JSON: each invalid UTF-8 byte
// becomes U+FFFD (the tiny models' random text has many).
func asJSON(s string) string {
	data, _ := json.Marshal(s)
	var out string
	json.Unmarshal(data, &out)
	return out
}

func greedyChat(prompt string, maxTokens int64) openai.ChatCompletionNewParams {
	return openai.ChatCompletionNewParams{
		Model:       qwenModel,
		Messages:    []openai.ChatCompletionMessageParamUnion{openai.UserMessage(prompt)},
		Temperature: openai.Float(0),
		MaxTokens:   openai.Int(maxTokens),
	}
}

// countingSteps counts what OnStep reports.
type countingSteps struct {
	mu            sync.Mutex
	steps         int
	promptTokens  int
	tokens        int
	multi         int // steps with more than one sequence
	maxSeqs       int
	seqsHistogram map[int]int // sequences per step → steps
}

func (c *countingSteps) add(tr gollm.StepTrace) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.steps++
	c.tokens += tr.Tokens
	for _, it := range tr.Items {
		if it.Prompt {
			c.promptTokens += it.Tokens
		}
	}
	if len(tr.Items) > 1 {
		c.multi++
	}
	c.maxSeqs = max(c.maxSeqs, len(tr.Items))
	if c.seqsHistogram == nil {
		c.seqsHistogram = map[int]int{}
	}
	c.seqsHistogram[len(tr.Items)]++
}

func (c *countingSteps) prompt() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.promptTokens
}

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
