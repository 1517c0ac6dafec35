package main

import (
	"bytes"
	"fmt"
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

// TestSynthMix: `gollm synth --type q4_k_m` (and q5_k_m) writes llama-quantize's
// mix: `gollm info` shows general.file_type 15 (17), a Q6_K tied
// token_embd, and attn_v and ffn_down Q6_K exactly in the use_more_bits
// layers (of 8: n/8 = 1, 7n/8 = 7, so 0, 3, 6 and 7), the base type
// elsewhere; the file runs.
func TestSynthMix(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		typ, fileType, base string
	}{{"q4_k_m", "15", "q4_K"}, {"Q5_K_M", "17", "q5_K"}} {
		path := filepath.Join(dir, c.typ+".gguf")
		code, out, errOut := synthCLI("--out", path, "--layers", "8", "--vocab", "512", "--type", c.typ)
		if code != 0 || !strings.Contains(out, strings.ToLower(c.typ)+" mix") {
			t.Fatalf("%s: exit %d: %s%s", c.typ, code, out, errOut)
		}
		code, info, _ := run("info", "--model", path)
		if code != 0 {
			t.Fatalf("%s: info: exit %d", c.typ, code)
		}
		typeOf := map[string]string{}
		for _, line := range strings.Split(info, "\n") {
			if f := strings.Fields(line); len(f) >= 5 && strings.HasSuffix(f[0], ".weight") {
				typeOf[f[0]] = f[1]
			}
			if f := strings.Fields(line); len(f) == 3 && f[0] == "general.file_type" && f[2] != c.fileType {
				t.Errorf("%s: %s", c.typ, line)
			}
		}
		want := map[string]string{"token_embd.weight": "q6_K", "output_norm.weight": "f32"}
		for l, more := range "H..H..HH" {
			hi := c.base
			if more == 'H' {
				hi = "q6_K"
			}
			p := fmt.Sprintf("blk.%d.", l)
			for name, typ := range map[string]string{"attn_v": hi, "ffn_down": hi, "attn_q": c.base, "attn_k": c.base,
				"attn_output": c.base, "ffn_gate": c.base, "ffn_up": c.base, "attn_norm": "f32", "attn_q_norm": "f32"} {
				want[p+name+".weight"] = typ
			}
		}
		for name, typ := range want {
			if typeOf[name] != typ {
				t.Errorf("%s: info says %s is %q, want %s", c.typ, name, typeOf[name], typ)
			}
		}
		rep := runJSON(t, "run", "--model", path, "--temp", "0", "--json", "--max-tokens", "3", "--ctx", "256", "--seq", "1", "--prompt", "Hi")
		if len(rep.Sequences) != 1 || len(rep.Sequences[0].GeneratedIDs) != 3 {
			t.Errorf("%s: run: %+v", c.typ, rep.Sequences)
		}
	}
	if code, _, errOut := synthCLI("--out", filepath.Join(dir, "x.gguf"), "--type", "q3_k_m"); code != 2 || !strings.Contains(errOut, "q4_k_m") {
		t.Errorf("--type q3_k_m: exit %d, %q", code, errOut)
	}
	if code, _, errOut := synthCLI("-h"); !strings.Contains(errOut, "q4_k_m or q5_k_m") {
		t.Errorf("help: exit %d, %q", code, errOut)
	}
}
