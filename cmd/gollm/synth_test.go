package main

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gollm/gollm/gguf"
	"github.com/gollm/gollm/internal/testdata"
	"github.com/gollm/gollm/synth"
	"github.com/gollm/gollm/tensor"
)

// synthCLI runs `gollm synth args...` in-process.
func synthCLI(args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	code = runMain(append([]string{"synth"}, args...), &out, &errb)
	return code, out.String(), errb.String()
}

// TestSynthCommand writes a tiny model, opens it, and checks its tensors
// against synth's own list and its hyperparameters against the flags.
func TestSynthCommand(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "m.gguf")
	code, out, errOut := synthCLI("--out", path, "--preset", "qwen3-tiny", "--layers", "2", "--vocab", "512",
		"--ff", "512", "--type", "q4_k", "--seed", "3", "--tied=false", "--ctx", "2048")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if !strings.Contains(out, "wrote "+path) || !strings.Contains(out, "25 tensors") || !strings.Contains(out, "q4_K") {
		t.Errorf("output: %q", out)
	}
	f, err := gguf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	want := synth.Config{Embd: 256, Layers: 2, Heads: 8, KVHeads: 4, HeadDim: 64, FF: 512, Type: tensor.Q4_K}.Tensors(512)
	got := f.Tensors()
	if len(got) != len(want) {
		t.Fatalf("%d tensors, want %d", len(got), len(want))
	}
	for i, w := range want {
		if got[i].Name != w.Name || got[i].Type != w.Type || !slices.Equal(got[i].Shape, w.Shape) {
			t.Errorf("tensor %d: %s %s %v, want %s %s %v", i, got[i].Name, got[i].Type, got[i].Shape, w.Name, w.Type, w.Shape)
		}
	}
	if _, err := f.Tensor("output.weight"); err != nil {
		t.Errorf("--tied=false: %v", err)
	}
	for key, v := range map[string]int64{"qwen3.block_count": 2, "qwen3.feed_forward_length": 512, "qwen3.context_length": 2048, "qwen3.embedding_length": 256} {
		if got, err := f.Int(key); err != nil || got != v {
			t.Errorf("%s = %d (%v), want %d", key, got, err, v)
		}
	}
	if arch, _ := f.Architecture(); arch != "qwen3" {
		t.Errorf("architecture %q", arch)
	}
}

// TestSynthSeeds: the same flags give byte-identical files; another seed
// gives another file.
func TestSynthSeeds(t *testing.T) {
	dir := t.TempDir()
	write := func(name, seed string) []byte {
		p := filepath.Join(dir, name)
		if code, _, errOut := synthCLI("--out", p, "--layers", "1", "--vocab", "300", "--seed", seed); code != 0 {
			t.Fatalf("exit %d: %s", code, errOut)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	a, b, c := write("a.gguf", "42"), write("b.gguf", "42"), write("c.gguf", "43")
	if !bytes.Equal(a, b) {
		t.Error("same seed, different files")
	}
	if bytes.Equal(a, c) {
		t.Error("different seeds, same file")
	}
}

// TestSynthVocabFrom: --vocab-from takes the tokenizer and its size.
func TestSynthVocabFrom(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.gguf")
	vocab := testdata.Path("models", "qwen3-tiny-mixed.gguf")
	if code, _, errOut := synthCLI("--out", path, "--layers", "1", "--type", "q8_0", "--vocab-from", vocab); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	f, err := gguf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tmpl, err := f.String("tokenizer.chat_template")
	if err != nil || !strings.Contains(tmpl, "Assistant") {
		t.Errorf("chat template not copied: %v", err)
	}
	emb, err := f.Tensor("token_embd.weight")
	if err != nil || emb.Shape[1] != 4096 {
		t.Errorf("token_embd %v %v, want 4096 rows", emb.Shape, err)
	}
}

// TestSynthUsageErrors: bad arguments exit 2 with a message and write nothing.
func TestSynthUsageErrors(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "x.gguf")
	for _, args := range [][]string{
		{},                                  // no --out
		{"--out", out, "--preset", "llama"}, // unknown preset
		{"--out", out, "--type", "q9_9"},    // unknown type
		{"--out", out, "--type", "iq2_xxs"}, // not generatable
		{"--out", out, "--embd", "100"},     // not a whole number of blocks
		{"--out", out, "--kv-heads", "3"},   // does not divide heads
		{"--out", out, "--vocab", "10"},     // too small for the built-in tokenizer
		{"--out", out, "--vocab", "300", "--vocab-from", testdata.Path("models", "qwen3-tiny-q6k.gguf")},
		{"--out", out, "stray"},
	} {
		code, _, errOut := synthCLI(args...)
		if code != 2 || errOut == "" {
			t.Errorf("%v: exit %d, stderr %q; want 2 and a message", args, code, errOut)
		}
		if _, err := os.Stat(out); err == nil {
			t.Fatalf("%v: wrote a file", args)
		}
	}
	if code, _, _ := synthCLI("--out", out, "--vocab-from", filepath.Join(dir, "missing.gguf")); code != 1 {
		t.Errorf("missing vocab file: exit %d, want 1", code)
	}
}

// TestSynthFamiliesRun: `gollm synth` writes a model of each new preset's
// architecture (small dimensions), `gollm info` names its family, and
// `gollm run` answers with it, batched as alone.
func TestSynthFamiliesRun(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct{ preset, arch, vocab string }{
		{"llama3.1-8b", "llama", "llama3.gguf"},
		{"mistral-7b", "llama", ""},
		{"qwen2.5-7b", "qwen2", "qwen3.gguf"},
		{"qwen3-30b-a3b", "qwen3moe", "qwen3.gguf"},
	} {
		path := filepath.Join(dir, c.preset+".gguf")
		args := []string{"--out", path, "--preset", c.preset, "--layers", "2", "--embd", "256", "--heads", "4",
			"--kv-heads", "2", "--head-dim", "64", "--ff", "512"}
		if c.arch == "qwen3moe" {
			args = append(args, "--experts", "8", "--experts-used", "2", "--expert-ff", "256")
		}
		if c.vocab != "" {
			args = append(args, "--vocab-from", testdata.Path("vocab", c.vocab))
		} else {
			args = append(args, "--vocab", "512")
		}
		if code, out, errOut := synthCLI(args...); code != 0 || !strings.Contains(out, "  "+c.arch+", embd 256") {
			t.Fatalf("%s: exit %d: %s%s", c.preset, code, out, errOut)
		}
		if code, out, _ := run("info", "--model", path); code != 0 || !strings.Contains(out, "family:      "+c.arch+": ") {
			t.Errorf("%s: info: exit %d:\n%.300s", c.preset, code, out)
		}
		runArgs := []string{"run", "--model", path, "--temp", "0", "--json", "--max-tokens", "6", "--ctx", "1024"}
		rep := runJSON(t, append(runArgs, "--seq", "2", "--prompt", "Hi there, how are you?", "--prompt", "How much is 6+6?")...)
		alone := runJSON(t, append(runArgs, "--seq", "1", "--prompt", "How much is 6+6?")...)
		if len(rep.Sequences) != 2 || len(rep.Sequences[1].GeneratedIDs) != 6 ||
			!slices.Equal(rep.Sequences[1].GeneratedIDs, alone.Sequences[0].GeneratedIDs) {
			t.Errorf("%s: batched %+v, alone %+v", c.preset, rep.Sequences, alone.Sequences)
		}
	}
}
