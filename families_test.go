package gollm

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/gollm/gollm/chat"
	"github.com/gollm/gollm/gguf"
	"github.com/gollm/gollm/internal/testdata"
	"github.com/gollm/gollm/synth"
)

// synthFamily writes a small random model of a preset's architecture
// (its layout and keys, with small dimensions) with the tokenizer of a
// vocab file, and loads it.
func synthFamily(t *testing.T, preset, vocab string) *Model {
	t.Helper()
	cfg, err := synth.Preset(preset)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Embd, cfg.Layers, cfg.Heads, cfg.KVHeads, cfg.HeadDim, cfg.FF = 256, 2, 4, 2, 64, 512
	if cfg.Experts > 0 {
		cfg.Experts, cfg.ExpertsUsed, cfg.ExpertFF = 8, 2, 256
	}
	vf, err := gguf.Open(testdata.Path("vocab", vocab))
	if err != nil {
		t.Fatal(err)
	}
	defer vf.Close()
	path := filepath.Join(t.TempDir(), preset+".gguf")
	if err := synth.Write(path, cfg, vf); err != nil {
		t.Fatal(err)
	}
	m, err := LoadModel(path, ModelOptions{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// TestLlama3ChatPrompt: a Llama 3 chat prompt starts with one BOS, not
// two. The template writes <|begin_of_text|> and the vocabulary asks for
// BOS (add_bos_token true); like llama.cpp, the session drops the
// template's BOS text and adds the token, so the ids are llama.cpp's
// tokenization (add_special, parse_special) of the golden render without
// its leading BOS text. The second turn reuses every token of the first.
func TestLlama3ChatPrompt(t *testing.T) {
	m := synthFamily(t, "llama3.2-1b", "llama3.gguf")
	if m.Config().Arch != "llama" {
		t.Fatalf("architecture %q", m.Config().Arch)
	}
	var g struct {
		BOS   string            `json:"bos_token"`
		Cases []json.RawMessage `json:"cases"`
	}
	data, err := os.ReadFile(testdata.Path("chat", "llama3.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &g); err != nil {
		t.Fatal(err)
	}
	var first struct {
		Expected string `json:"expected"`
	}
	if err := json.Unmarshal(g.Cases[0], &first); err != nil { // "one user turn"
		t.Fatal(err)
	}
	req, err := chat.ParseRequest(g.Cases[0])
	if err != nil {
		t.Fatal(err)
	}
	tok := m.Tokenizer()
	want := tok.Tokenize(first.Expected[len(g.BOS):], true, true)
	if want[0] != tok.BOS() || want[1] == tok.BOS() {
		t.Fatalf("reference ids %v", want[:2])
	}

	c := newContext(t, m, ContextOptions{Sequences: 1, ContextSize: 1024})
	seq, err := c.Sequence()
	if err != nil {
		t.Fatal(err)
	}
	cs := NewChatSession(seq, ChatOptions{})
	r1, err := cs.PromptWithMeta(context.Background(), req.Messages[0].Content, PromptOptions{MaxTokens: 4, Sampling: &greedy})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(r1.PromptIDs, want) {
		t.Fatalf("prompt ids\n got  %v\n want %v", r1.PromptIDs, want)
	}
	held := seq.Tokens()
	r2, err := cs.PromptWithMeta(context.Background(), "And you?", PromptOptions{MaxTokens: 4, Sampling: &greedy})
	if err != nil {
		t.Fatal(err)
	}
	if r2.ReusedTokens != len(held) || slices.Index(r2.PromptIDs, tok.BOS()) != 0 || slices.Contains(r2.PromptIDs[1:], tok.BOS()) {
		t.Fatalf("turn 2: reused %d of %d held tokens; ids %v", r2.ReusedTokens, len(held), r2.PromptIDs)
	}
}

// TestFamiliesGenerate: a model of each family answers, and its answer in
// a batch of sequences equals its answer alone.
func TestFamiliesGenerate(t *testing.T) {
	for _, c := range []struct{ preset, vocab string }{
		{"llama3.2-1b", "llama3.gguf"},
		{"mistral-7b", "qwen3.gguf"},
		{"qwen2.5-0.5b", "qwen3.gguf"},
		{"qwen3-30b-a3b", "qwen3.gguf"},
	} {
		t.Run(c.preset, func(t *testing.T) {
			m := synthFamily(t, c.preset, c.vocab)
			ctx := newContext(t, m, ContextOptions{Sequences: 3, ContextSize: 1024})
			var seqs []*ChatSession
			for range 3 {
				seq, err := ctx.Sequence()
				if err != nil {
					t.Fatal(err)
				}
				seqs = append(seqs, NewChatSession(seq, ChatOptions{}))
			}
			got := make([]Response, 3)
			done := make(chan error, 3)
			for i, cs := range seqs {
				go func() {
					r, err := cs.PromptWithMeta(context.Background(), questions[i], PromptOptions{MaxTokens: 8, Sampling: &greedy})
					got[i] = r
					done <- err
				}()
			}
			for range seqs {
				if err := <-done; err != nil {
					t.Fatal(err)
				}
			}
			for i := range seqs {
				alone := solo(t, m, questions[i], 8)
				if len(got[i].GeneratedIDs) == 0 || !slices.Equal(got[i].GeneratedIDs, alone.GeneratedIDs) {
					t.Errorf("question %d: batched %v, alone %v", i, got[i].GeneratedIDs, alone.GeneratedIDs)
				}
			}
		})
	}
}
