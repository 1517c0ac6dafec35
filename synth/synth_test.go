package synth

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gollm/gollm/gguf"
	"github.com/gollm/gollm/internal/testdata"
	"github.com/gollm/gollm/tensor"
)

// small is a model small enough to write many times in a test.
func small(t tensor.DType) Config {
	return Config{Embd: 256, Layers: 2, Heads: 4, KVHeads: 2, HeadDim: 64, FF: 512, Vocab: 300, Type: t, Seed: 7}
}

func openFixture(t *testing.T, name string) *gguf.File {
	t.Helper()
	f, err := gguf.Open(testdata.Path(name))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// TestPresets: every preset is valid, has the tensor count of its
// architecture (11 a layer for qwen3, 9 for llama, 12 for qwen2, plus
// rope_freqs for Llama 3.1/3.2), and the 8B-class presets in Q6_K have the
// sizes of the real Q6_K files (Qwen3-8B 6.73 GB, Llama-3.1-8B 6.60 GB,
// Mistral-7B-v0.3 5.95 GB, Qwen2.5-7B 6.25 GB; every matrix there is Q6_K
// too).
func TestPresets(t *testing.T) {
	for _, name := range PresetNames() {
		c, err := Preset(name)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.validate(c.Vocab); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		specs := c.Tensors(c.Vocab)
		want := 2 + map[string]int{"qwen3": 11, "llama": 9, "qwen2": 12, "qwen3moe": 12}[c.Arch]*c.Layers
		if !c.Tied {
			want++
		}
		if c.Llama3RopeFactor != 0 {
			want++
		}
		if len(specs) != want {
			t.Errorf("%s: %d tensors, want %d", name, len(specs), want)
		}
		var bytes int64
		for _, s := range specs {
			job, err := newTensorJob(s, c)
			if err != nil {
				t.Fatal(err)
			}
			bytes += job.size()
		}
		t.Logf("%-10s %3d tensors, %6.3f GB of tensor data", name, len(specs), float64(bytes)/1e9)
		real := map[string]float64{"qwen3-8b": 6.73e9, "llama3.1-8b": 6.60e9, "mistral-7b": 5.95e9, "qwen2.5-7b": 6.25e9}
		if want, ok := real[name]; ok && (float64(bytes) < want-0.05e9 || float64(bytes) > want+0.05e9) {
			t.Errorf("%s Q6_K: %d bytes, want about %.3g", name, bytes, want)
		}
	}
	if _, err := Preset("qwen3-70b"); !errors.Is(err, ErrConfig) {
		t.Errorf("unknown preset: %v", err)
	}
}

// TestTinyLayoutMatchesFixture: the qwen3-tiny preset, and Configs shaped
// like the llama, qwen2 and qwen3moe fixtures, give exactly the tensor names, types,
// shapes and order of the fixture models (written by llama.cpp's converter
// and llama-quantize), and the same <arch>.* values.
func TestTinyLayoutMatchesFixture(t *testing.T) {
	tiny, err := Preset("qwen3-tiny")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		file string
		cfg  Config
	}{
		{"qwen3-tiny-q6k", tiny},
		{"llama-tiny-q6k", Config{Arch: "llama", Embd: 256, Layers: 4, Heads: 8, KVHeads: 2, HeadDim: 32, FF: 768, Tied: true,
			ContextLength: 8192, RopeBase: 500000, Type: tensor.Q6_K}},
		{"qwen2-tiny-q6k", Config{Arch: "qwen2", Embd: 256, Layers: 4, Heads: 4, KVHeads: 2, HeadDim: 64, FF: 768, Tied: true,
			ContextLength: 4096, Type: tensor.Q6_K}},
		{"qwen3moe-tiny-q6k", Config{Arch: "qwen3moe", Embd: 256, Layers: 2, Heads: 8, KVHeads: 4, HeadDim: 64, FF: 768, Tied: true,
			ContextLength: 4096, Type: tensor.Q6_K, Experts: 8, ExpertsUsed: 2, ExpertFF: 256}},
	} {
		t.Run(c.file, func(t *testing.T) { testLayoutMatchesFixture(t, c.file, c.cfg) })
	}
}

func testLayoutMatchesFixture(t *testing.T, file string, c Config) {
	fix := openFixture(t, "models/"+file+".gguf")
	c = c.Normalize()
	c.ContextLength = int(must(fix.Int(c.Arch + ".context_length")))
	var buf bytes.Buffer
	if _, err := WriteTo(&buf, c, fix); err != nil {
		t.Fatal(err)
	}
	got, err := gguf.Parse(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	want := fix.Tensors()
	if len(got.Tensors()) != len(want) {
		t.Fatalf("%d tensors, fixture has %d", len(got.Tensors()), len(want))
	}
	for i, w := range want {
		g := got.Tensors()[i]
		if g.Name != w.Name || g.Type != w.Type || !slices.Equal(g.Shape, w.Shape) {
			t.Errorf("tensor %d: %s %s %v, fixture %s %s %v", i, g.Name, g.Type, g.Shape, w.Name, w.Type, w.Shape)
		}
	}
	for _, kv := range fix.KVs() {
		if !strings.HasPrefix(kv.Key, c.Arch+".") && !strings.HasPrefix(kv.Key, "tokenizer.") &&
			kv.Key != "general.architecture" && kv.Key != "general.file_type" && kv.Key != "general.type" {
			continue
		}
		v, ok := got.Lookup(kv.Key)
		if !ok {
			t.Errorf("missing key %s", kv.Key)
			continue
		}
		if v.Type != kv.Value.Type || fmt.Sprint(v.Any()) != fmt.Sprint(kv.Value.Any()) {
			t.Errorf("%s = %v (%s), fixture %v (%s)", kv.Key, short(v.Any()), v.Type, short(kv.Value.Any()), kv.Value.Type)
		}
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func short(v any) string {
	s := fmt.Sprint(v)
	if len(s) > 80 {
		s = s[:80] + "…"
	}
	return s
}

// TestByteTokensMatchQwen3: the built-in byte tokens are Qwen3's ids 0..255.
func TestByteTokensMatchQwen3(t *testing.T) {
	fix := openFixture(t, "vocab/qwen3.gguf")
	toks, err := fix.Strings("tokenizer.ggml.tokens")
	if err != nil {
		t.Fatal(err)
	}
	mine, idOf := ByteTokens()
	for i := range mine {
		if mine[i] != toks[i] {
			t.Fatalf("token %d = %q, Qwen3 has %q", i, mine[i], toks[i])
		}
	}
	if idOf[0] != 188 || idOf['\n'] != 198 || idOf[' '] != 220 || idOf['!'] != 0 {
		t.Errorf("byte ids: 0→%d \\n→%d space→%d !→%d", idOf[0], idOf['\n'], idOf[' '], idOf['!'])
	}
}

// stats dequantizes a whole tensor and returns the mean and standard
// deviation of its values, failing on a non-finite value.
func stats(t *testing.T, f *gguf.File, name string) (mean, std float64) {
	t.Helper()
	tt, err := f.Tensor(name)
	if err != nil {
		t.Fatal(err)
	}
	vals := make([]float32, tt.Elements())
	if err := tensor.DequantizeRow(tt.Type, vals, tt.Data); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	var s, s2 float64
	for i, v := range vals {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			t.Fatalf("%s: value %d is %g", name, i, v)
		}
		s += float64(v)
		s2 += float64(v) * float64(v)
	}
	n := float64(len(vals))
	mean = s / n
	return mean, math.Sqrt(s2/n - mean*mean)
}

// TestWeightsValid writes a small model of every supported type, by both
// paths, opens it, and dequantizes every tensor: all values finite, matrix
// weights with mean ≈ 0 and std ≈ 0.02, norms ≈ 1.
func TestWeightsValid(t *testing.T) {
	dir := t.TempDir()
	for _, typ := range SupportedTypes() {
		for _, quantize := range []bool{false, true} {
			if quantize && typ.BlockSize() == 1 {
				continue
			}
			c := small(typ)
			c.Quantize = quantize
			path := filepath.Join(dir, fmt.Sprintf("%s-%v.gguf", typ, quantize))
			if err := Write(path, c, nil); err != nil {
				t.Fatalf("%s: %v", typ, err)
			}
			f, err := gguf.Open(path)
			if err != nil {
				t.Fatalf("%s: %v", typ, err)
			}
			specs := c.Tensors(c.Vocab)
			if len(f.Tensors()) != len(specs) {
				t.Fatalf("%s: %d tensors, want %d", typ, len(f.Tensors()), len(specs))
			}
			var worst float64
			for i, s := range specs {
				ti := f.Tensors()[i]
				if ti.Name != s.Name || ti.Type != s.Type || !slices.Equal(ti.Shape, s.Shape) {
					t.Fatalf("%s: tensor %d is %s %s %v, want %s %s %v", typ, i, ti.Name, ti.Type, ti.Shape, s.Name, s.Type, s.Shape)
				}
				mean, std := stats(t, f, s.Name)
				if s.isNorm() {
					if math.Abs(mean-1) > 0.02 || std < 0.03 || std > 0.07 {
						t.Errorf("%s %s: mean %.4f std %.4f, want ≈ 1, 0.05", typ, s.Name, mean, std)
					}
					continue
				}
				// Tolerance: sampling noise of the std over ≥ 32k values is
				// under 1%; the block-scale and half roundings add a little.
				rel := math.Abs(std/0.02 - 1)
				worst = max(worst, rel)
				if rel > 0.06 || math.Abs(mean) > 0.002 {
					t.Errorf("%s (quantize %v) %s: mean %.5f std %.5f, want ≈ 0, 0.02", typ, quantize, s.Name, mean, std)
				}
			}
			t.Logf("%-5s quantize=%-5v worst std deviation from 0.02: %.1f%%", typ, quantize, 100*worst)
			f.Close()
		}
	}
}

// TestDeterministic: the bytes depend on the seed and nothing else; in
// particular not on how many goroutines generate the chunks.
func TestDeterministic(t *testing.T) {
	write := func(c Config) []byte {
		var buf bytes.Buffer
		if _, err := WriteTo(&buf, c, nil); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	for _, typ := range []tensor.DType{tensor.Q6_K, tensor.Q4_K, tensor.F16} {
		c := small(typ)
		a, b := write(c), write(c)
		if !bytes.Equal(a, b) {
			t.Errorf("%s: two writes with seed %d differ", typ, c.Seed)
		}
		c.Seed++
		if bytes.Equal(a, write(c)) {
			t.Errorf("%s: seeds %d and %d give the same file", typ, c.Seed-1, c.Seed)
		}
	}
	// One tensor big enough for many chunks, made with 1 and 5 workers.
	c := small(tensor.Q6_K).Normalize()
	spec := TensorSpec{Name: "token_embd.weight", Type: tensor.Q6_K, Shape: []int64{4096, 1000}}
	job, err := newTensorJob(spec, c)
	if err != nil {
		t.Fatal(err)
	}
	if job.chunks() < 3 {
		t.Fatalf("only %d chunks", job.chunks())
	}
	var one, five bytes.Buffer
	if err := job.writeTo(&one, 1); err != nil {
		t.Fatal(err)
	}
	if err := job.writeTo(&five, 5); err != nil {
		t.Fatal(err)
	}
	if int64(one.Len()) != job.size() || !bytes.Equal(one.Bytes(), five.Bytes()) {
		t.Errorf("1 worker and 5 workers differ (%d, %d bytes, want %d)", one.Len(), five.Len(), job.size())
	}
}

// failWriter fails after n bytes.
type failWriter struct{ n int }

var errDiskFull = errors.New("disk full")

func (w *failWriter) Write(p []byte) (int, error) {
	if len(p) > w.n {
		return 0, errDiskFull
	}
	w.n -= len(p)
	return len(p), nil
}

// TestWriteError: a failing writer stops generation and the error comes back.
func TestWriteError(t *testing.T) {
	c := small(tensor.Q8_0).Normalize()
	job, err := newTensorJob(TensorSpec{Name: "x", Type: tensor.Q8_0, Shape: []int64{4096, 2000}}, c)
	if err != nil {
		t.Fatal(err)
	}
	if err := job.writeTo(&failWriter{n: 3 << 20}, 2); !errors.Is(err, errDiskFull) {
		t.Errorf("got %v, want the writer's error", err)
	}
	if _, err := WriteTo(&failWriter{n: 100000}, small(tensor.Q6_K), nil); !errors.Is(err, errDiskFull) {
		t.Errorf("WriteTo: got %v, want the writer's error", err)
	}
}

// TestBuiltinTokenizer: the metadata of a file without a vocabulary file.
func TestBuiltinTokenizer(t *testing.T) {
	var buf bytes.Buffer
	if _, err := WriteTo(&buf, small(tensor.Q8_0), nil); err != nil {
		t.Fatal(err)
	}
	f, err := gguf.Parse(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	toks, _ := f.Strings("tokenizer.ggml.tokens")
	types, _ := f.Ints("tokenizer.ggml.token_type")
	if len(toks) != 300 || len(types) != 300 {
		t.Fatalf("%d tokens, %d types, want 300", len(toks), len(types))
	}
	for id, want := range map[int]string{0: "!", 188: "Ā", 256: "<|endoftext|>", 257: "<|im_start|>", 258: "<|im_end|>", 259: "<think>", 299: "[PAD299]"} {
		if toks[id] != want {
			t.Errorf("token %d = %q, want %q", id, toks[id], want)
		}
	}
	if types[0] != 1 || types[257] != 3 || types[260] != 4 || types[261] != 5 {
		t.Errorf("token types %d %d %d %d, want 1 3 4 5", types[0], types[257], types[260], types[261])
	}
	for key, want := range map[string]int64{"tokenizer.ggml.bos_token_id": 256, "tokenizer.ggml.eos_token_id": 258, "qwen3.block_count": 2, "qwen3.attention.key_length": 64, "general.file_type": 7} {
		if got, err := f.Int(key); err != nil || got != want {
			t.Errorf("%s = %d (%v), want %d", key, got, err, want)
		}
	}
	if m, err := f.Strings("tokenizer.ggml.merges"); err != nil || len(m) != 0 {
		t.Errorf("merges: %v %v", m, err)
	}
	if tmpl, _ := f.String("tokenizer.chat_template"); !strings.Contains(tmpl, "<|im_start|>") {
		t.Errorf("chat template %q", tmpl)
	}
}

// TestVocabFrom: with a vocabulary file, every tokenizer.* key is copied
// unchanged and the embedding has one row per token.
func TestVocabFrom(t *testing.T) {
	for _, name := range []string{"models/qwen3-tiny-mixed.gguf", "vocab/deepseek-r1-qwen3.gguf"} {
		vf := openFixture(t, name)
		c := small(tensor.Q4_0)
		c.Vocab = 0 // taken from the file
		var buf bytes.Buffer
		if _, err := WriteTo(&buf, c, vf); err != nil {
			t.Fatal(err)
		}
		f, err := gguf.Parse(buf.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		toks, _ := vf.Strings("tokenizer.ggml.tokens")
		emb, err := f.Tensor("token_embd.weight")
		if err != nil || emb.Shape[1] != int64(len(toks)) {
			t.Fatalf("%s: token_embd %v (%v), want %d rows", name, emb.Shape, err, len(toks))
		}
		n := 0
		for _, kv := range vf.KVs() {
			if !strings.HasPrefix(kv.Key, "tokenizer.") {
				continue
			}
			n++
			v, ok := f.Lookup(kv.Key)
			if !ok || v.Type != kv.Value.Type || !equalValues(v, kv.Value) {
				t.Errorf("%s: %s not copied unchanged", name, kv.Key)
			}
		}
		t.Logf("%s: %d tokenizer keys copied, vocab %d", name, n, len(toks))
	}
}

// equalValues compares two metadata values through their GGUF encoding.
func equalValues(a, b gguf.Value) bool {
	enc := func(v gguf.Value) []byte {
		w := gguf.NewWriter()
		if err := w.Set("k", v); err != nil {
			return nil
		}
		var buf bytes.Buffer
		w.WriteTo(&buf)
		return buf.Bytes()
	}
	ea, eb := enc(a), enc(b)
	return ea != nil && bytes.Equal(ea, eb)
}

// TestConfigErrors: bad configs are ErrConfig errors, found before any
// tensor is generated.
func TestConfigErrors(t *testing.T) {
	bad := map[string]func(*Config){
		"zero embd":            func(c *Config) { c.Embd = 0 },
		"kv not dividing":      func(c *Config) { c.KVHeads = 3 },
		"kv above heads":       func(c *Config) { c.KVHeads = 8 },
		"odd head dim":         func(c *Config) { c.HeadDim = 63 },
		"overflowing head dim": func(c *Config) { c.HeadDim = 1 << 62 },
		"embd not in blocks":   func(c *Config) { c.Embd = 250 },
		"ff not in blocks":     func(c *Config) { c.FF = 500 },
		"q width not blocks":   func(c *Config) { c.HeadDim = 34 },
		"unsupported type":     func(c *Config) { c.Type = tensor.IQ2_XXS },
		"unknown type":         func(c *Config) { c.Type = tensor.DType(77) },
		"vocab below builtin":  func(c *Config) { c.Vocab = 100 },
		"huge vocab":           func(c *Config) { c.Vocab = 1 << 30 },
		"negative layers":      func(c *Config) { c.Layers = -1 },
		"negative std":         func(c *Config) { c.WeightStd = -1 },
		"NaN rope":             func(c *Config) { c.RopeBase = math.NaN() },
	}
	for name, mutate := range bad {
		c := small(tensor.Q6_K)
		mutate(&c)
		if _, err := WriteTo(io.Discard, c, nil); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: got %v, want ErrConfig", name, err)
		}
	}
	// A "vocabulary file" without tokens.
	var buf bytes.Buffer
	w := gguf.NewWriter()
	w.Set("general.architecture", gguf.String("qwen3"))
	w.WriteTo(&buf)
	noTok, err := gguf.Parse(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := WriteTo(io.Discard, small(tensor.Q6_K), noTok); !errors.Is(err, ErrConfig) {
		t.Errorf("vocab file without tokens: %v", err)
	}
}

// TestLlama3RopeFreqs: the factors of Llama 3.1 8B (base 500000, 64
// pairs, factor 8) start at 1 for the fast pairs, end at 8 for the slow
// ones, rise monotonically between, and the blended pairs are exactly
// those whose wavelength lies between 8192/4 and 8192 positions.
func TestLlama3RopeFreqs(t *testing.T) {
	f := llama3RopeFreqs(500000, 128, 8)
	if len(f) != 64 || f[0] != 1 || f[63] != 8 {
		t.Fatalf("%d factors, first %g, last %g", len(f), f[0], f[len(f)-1])
	}
	blended := 0
	for i := 1; i < len(f); i++ {
		if f[i] < f[i-1] {
			t.Fatalf("factor %d = %g below factor %d = %g", i, f[i], i-1, f[i-1])
		}
		if f[i] != 1 && f[i] != 8 {
			blended++
		}
	}
	// 2π·500000^(2i/128) lies in (2048, 8192) for i = 29 … 34.
	if blended != 6 {
		t.Errorf("%d blended factors, want 6: %v", blended, f)
	}
}

// TestPresetQwen3MoE: the qwen3-30b-a3b preset has Qwen3-30B-A3B's
// tensors: 48 layers of qwen3 attention (32 query heads of 128, 4 KV
// heads), an F32 router of 128 experts and 3-D expert tensors of width
// 768, an untied LM head; 30.5 G parameters of which 3.3 G are active (8
// of 128 experts), and at Q4_K about 17.2 GB (the file itself is not
// written here).
func TestPresetQwen3MoE(t *testing.T) {
	c, err := Preset("qwen3-30b-a3b")
	if err != nil {
		t.Fatal(err)
	}
	c.Type = tensor.Q4_K
	if err := c.validate(c.Vocab); err != nil {
		t.Fatal(err)
	}
	specs := c.Tensors(c.Vocab)
	if len(specs) != 3+12*48 {
		t.Fatalf("%d tensors, want %d", len(specs), 3+12*48)
	}
	byName := map[string]TensorSpec{}
	for _, s := range specs {
		byName[s.Name] = s
	}
	for name, want := range map[string]struct {
		t     tensor.DType
		shape []int64
	}{
		"blk.47.ffn_gate_inp.weight":  {tensor.F32, []int64{2048, 128}},
		"blk.47.ffn_gate_exps.weight": {tensor.Q4_K, []int64{2048, 768, 128}},
		"blk.47.ffn_up_exps.weight":   {tensor.Q4_K, []int64{2048, 768, 128}},
		"blk.47.ffn_down_exps.weight": {tensor.Q4_K, []int64{768, 2048, 128}},
		"blk.0.attn_q.weight":         {tensor.Q4_K, []int64{2048, 4096}},
		"blk.0.attn_k.weight":         {tensor.Q4_K, []int64{2048, 512}},
		"blk.0.attn_output.weight":    {tensor.Q4_K, []int64{4096, 2048}},
		"blk.0.attn_q_norm.weight":    {tensor.F32, []int64{128}},
		"output.weight":               {tensor.Q4_K, []int64{2048, 151936}},
	} {
		s, ok := byName[name]
		if !ok || s.Type != want.t || !slices.Equal(s.Shape, want.shape) {
			t.Errorf("%s: %s %v, want %s %v", name, s.Type, s.Shape, want.t, want.shape)
		}
	}
	if _, ok := byName["blk.0.ffn_up.weight"]; ok {
		t.Error("a dense ffn_up in a mixture of experts")
	}
	var params, active, bytes int64
	for _, s := range specs {
		n := int64(1)
		for _, d := range s.Shape {
			n *= d
		}
		params += n
		if len(s.Shape) == 3 {
			n = n / 128 * 8
		}
		active += n
		job, err := newTensorJob(s, c)
		if err != nil {
			t.Fatal(err)
		}
		bytes += job.size()
	}
	t.Logf("qwen3-30b-a3b: %.4g parameters, %.4g active, %.4g GB at Q4_K", float64(params), float64(active), float64(bytes)/1e9)
	if params < 30.4e9 || params > 30.6e9 || active < 3.3e9 || active > 3.4e9 || bytes < 17.1e9 || bytes > 17.3e9 {
		t.Errorf("%d parameters, %d active, %d bytes; want 30.5 G, 3.3 G, about 17.2 GB", params, active, bytes)
	}
	bad := c
	bad.ExpertsUsed = 129
	if err := bad.validate(c.Vocab); !errors.Is(err, ErrConfig) {
		t.Errorf("129 of 128 experts used: %v", err)
	}
	bad = c
	bad.Arch = "qwen3"
	if err := bad.validate(c.Vocab); !errors.Is(err, ErrConfig) {
		t.Errorf("experts on a dense architecture: %v", err)
	}
}
