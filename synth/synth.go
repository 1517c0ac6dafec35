// Package synth writes Qwen3 GGUF files with random weights: the same
// metadata keys, tensor names, shapes and types that llama.cpp's converter
// and llama-quantize produce for a real Qwen3 checkpoint, filled with
// random numbers. Such a file loads and runs like a real model (it just
// talks nonsense), which is all that tests and benchmarks need; no real
// weights can be downloaded here.
//
// Sizes come from presets shaped like the real Qwen3 family (qwen3-0.6b …
// qwen3-8b) or from any Config. The output is a pure function of the
// Config (seed included) and of the vocabulary file, if one is given:
// every tensor, and every chunk of rows within a tensor, draws from its own
// random stream derived from the seed, the tensor name and the chunk
// number, so chunks can be generated in parallel and the bytes do not
// depend on the number of goroutines.
//
// How the weights are made depends on the type (see gen.go):
//
//   - F32, F16, BF16: Gaussian values (mean 0, std Config.WeightStd).
//   - quantized types, by default: blocks drawn directly from random bits.
//     The quants are uniform random, the block scales are random within a
//     sane range, and the super-scale d is set so that the dequantized
//     weights have standard deviation ≈ WeightStd. Generation is cheap
//     (the 6.7 GB of a qwen3-8b Q6_K file take about 6 CPU seconds;
//     writing them to disk usually takes longer), and the blocks
//     are valid: every field is in the range ggml's own quantizer produces.
//   - quantized types with Config.Quantize: Gaussian floats quantized by
//     tensor.QuantizeRow (ggml's reference quantizer, as llama-quantize
//     without an importance matrix). Realistic but slow: the K-quant
//     searches take in about 40-90 MB/s of floats per core on the
//     development machine (tensor's BenchmarkQuantizeRow), so an 8B model
//     would take 6 (Q6_K) to 12 (Q4_K) minutes. Meant for small models.
//
// Norm weights (attn_norm, ffn_norm, output_norm, attn_q_norm,
// attn_k_norm) are always F32, 1 + 0.05·N(0,1), as llama.cpp keeps them.
package synth

import (
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/gollm/gollm/tensor"
)

// ErrConfig is wrapped by every error about an invalid Config.
var ErrConfig = errors.New("synth: invalid config")

// Config describes the model to write. Zero fields take the defaults
// listed with each (see Normalize).
type Config struct {
	Name    string // general.name; default "qwen3-synth"
	Embd    int    // n_embd: width of the residual stream
	Layers  int    // n_layer: number of transformer blocks
	Heads   int    // n_head: query heads
	KVHeads int    // n_head_kv: key/value heads (grouped-query attention); Heads % KVHeads == 0
	HeadDim int    // width of one head (key_length = value_length)
	FF      int    // n_ff: hidden width of the SwiGLU feed-forward network
	Vocab   int    // rows of token_embd; ignored when a vocabulary file is given (its token count is used)
	Tied    bool   // no output.weight: logits use token_embd.weight

	Type     tensor.DType // type of every weight matrix (norms are F32); default (0) is F32
	Quantize bool         // make quantized types with the reference quantizer instead of random bits (slow)

	Seed          uint64
	ContextLength int     // qwen3.context_length; default 40960 (Qwen3's)
	RopeBase      float64 // qwen3.rope.freq_base; default 1e6
	RMSEps        float64 // qwen3.attention.layer_norm_rms_epsilon; default 1e-6
	WeightStd     float64 // standard deviation of the matrix weights; default 0.02
}

// Defaults for zero Config fields.
const (
	DefaultName          = "qwen3-synth"
	DefaultContextLength = 40960
	DefaultRopeBase      = 1e6
	DefaultRMSEps        = 1e-6
	DefaultWeightStd     = 0.02
	// QwenVocab is the size of the real Qwen3 vocabulary (token_embd rows
	// of every Qwen3 model, including padding ids).
	QwenVocab = 151936
)

// presets are shaped like the real Qwen3 dense models (their config.json:
// hidden_size, num_hidden_layers, num_attention_heads, num_key_value_heads,
// head_dim, intermediate_size, tie_word_embeddings, vocab_size), plus
// qwen3-tiny, shaped like the test fixtures in testdata/models.
var presets = map[string]Config{
	"qwen3-0.6b": {Embd: 1024, Layers: 28, Heads: 16, KVHeads: 8, HeadDim: 128, FF: 3072, Vocab: QwenVocab, Tied: true},
	"qwen3-1.7b": {Embd: 2048, Layers: 28, Heads: 16, KVHeads: 8, HeadDim: 128, FF: 6144, Vocab: QwenVocab, Tied: true},
	"qwen3-4b":   {Embd: 2560, Layers: 36, Heads: 32, KVHeads: 8, HeadDim: 128, FF: 9728, Vocab: QwenVocab, Tied: true},
	"qwen3-8b":   {Embd: 4096, Layers: 36, Heads: 32, KVHeads: 8, HeadDim: 128, FF: 12288, Vocab: QwenVocab, Tied: false},
	"qwen3-tiny": {Embd: 256, Layers: 4, Heads: 8, KVHeads: 4, HeadDim: 64, FF: 768, Vocab: 4096, Tied: true, ContextLength: 4096},
}

// Preset returns the named preset with Type Q6_K, Name "<name>-synth" and
// the other defaults filled in. Known names: see PresetNames.
func Preset(name string) (Config, error) {
	c, ok := presets[name]
	if !ok {
		return Config{}, fmt.Errorf("%w: unknown preset %q (known: %v)", ErrConfig, name, PresetNames())
	}
	c.Name = name + "-synth"
	c.Type = tensor.Q6_K
	return c.Normalize(), nil
}

// PresetNames lists the preset names, sorted.
func PresetNames() []string { return slices.Sorted(maps.Keys(presets)) }

// Normalize returns c with zero optional fields set to their defaults.
func (c Config) Normalize() Config {
	if c.Name == "" {
		c.Name = DefaultName
	}
	if c.ContextLength == 0 {
		c.ContextLength = DefaultContextLength
	}
	if c.RopeBase == 0 {
		c.RopeBase = DefaultRopeBase
	}
	if c.RMSEps == 0 {
		c.RMSEps = DefaultRMSEps
	}
	if c.WeightStd == 0 {
		c.WeightStd = DefaultWeightStd
	}
	return c
}

// Limits that keep a typo from asking for an absurd file.
const (
	maxDim    = 1 << 17 // embd, ff, heads*head_dim
	maxLayers = 1024
	maxVocab  = 1 << 22
	maxHeads  = 1024
)

// validate checks a (normalized) Config. vocab is the vocabulary size that
// will be used (Config.Vocab, or the token count of a vocabulary file).
func (c Config) validate(vocab int) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrConfig}, args...)...)
	}
	switch {
	case c.Embd <= 0 || c.Embd > maxDim:
		return bad("embd %d out of range 1..%d", c.Embd, maxDim)
	case c.Layers <= 0 || c.Layers > maxLayers:
		return bad("layers %d out of range 1..%d", c.Layers, maxLayers)
	case c.Heads <= 0 || c.Heads > maxHeads:
		return bad("heads %d out of range 1..%d", c.Heads, maxHeads)
	case c.KVHeads <= 0 || c.KVHeads > c.Heads || c.Heads%c.KVHeads != 0:
		return bad("kv heads %d must divide heads %d", c.KVHeads, c.Heads)
	case c.HeadDim <= 0 || c.HeadDim > maxDim || c.HeadDim%2 != 0 || c.Heads*c.HeadDim > maxDim:
		return bad("head dim %d must be even and heads*head_dim at most %d", c.HeadDim, maxDim)
	case c.FF <= 0 || c.FF > maxDim:
		return bad("ff %d out of range 1..%d", c.FF, maxDim)
	case vocab <= 0 || vocab > maxVocab:
		return bad("vocab %d out of range 1..%d", vocab, maxVocab)
	case c.ContextLength <= 0 || c.ContextLength > 1<<24:
		return bad("context length %d out of range", c.ContextLength)
	case !(c.RopeBase > 0) || !(c.RMSEps > 0) || !(c.WeightStd > 0) || c.WeightStd > 1:
		return bad("rope base, rms eps and weight std must be positive (weight std at most 1)")
	}
	if !generatable(c.Type) {
		return bad("weight type %s is not supported (want one of %v)", c.Type, SupportedTypes())
	}
	// A quantized row must be a whole number of blocks. Every matrix's
	// row (ne0) is embd, heads*head_dim or ff.
	bs := c.Type.BlockSize()
	for _, d := range []struct {
		name string
		n    int
	}{{"embd", c.Embd}, {"heads*head_dim", c.Heads * c.HeadDim}, {"ff", c.FF}} {
		if d.n%bs != 0 {
			return bad("%s = %d is not a multiple of the %s block size %d", d.name, d.n, c.Type, bs)
		}
	}
	return nil
}

// TensorSpec is one tensor Write will write.
type TensorSpec struct {
	Name  string
	Type  tensor.DType
	Shape []int64 // ne0 first, as in GGUF
}

// Tensors lists the tensors of a model with this Config and vocabulary
// size, in file order: names and shapes as llama.cpp's converter writes a
// Qwen3 checkpoint (matrices are (in, out): ne0 is the input width).
func (c Config) Tensors(vocab int) []TensorSpec {
	var out []TensorSpec
	add := func(name string, t tensor.DType, shape ...int) {
		s := make([]int64, len(shape))
		for i, d := range shape {
			s[i] = int64(d)
		}
		out = append(out, TensorSpec{name, t, s})
	}
	qDim := c.Heads * c.HeadDim    // width of all query heads
	kvDim := c.KVHeads * c.HeadDim // width of all key (or value) heads
	if !c.Tied {
		add("output.weight", c.Type, c.Embd, vocab)
	}
	add("output_norm.weight", tensor.F32, c.Embd)
	add("token_embd.weight", c.Type, c.Embd, vocab)
	for l := 0; l < c.Layers; l++ {
		p := fmt.Sprintf("blk.%d.", l)
		add(p+"attn_k.weight", c.Type, c.Embd, kvDim)
		add(p+"attn_k_norm.weight", tensor.F32, c.HeadDim)
		add(p+"attn_norm.weight", tensor.F32, c.Embd)
		add(p+"attn_output.weight", c.Type, qDim, c.Embd)
		add(p+"attn_q.weight", c.Type, c.Embd, qDim)
		add(p+"attn_q_norm.weight", tensor.F32, c.HeadDim)
		add(p+"attn_v.weight", c.Type, c.Embd, kvDim)
		add(p+"ffn_down.weight", c.Type, c.FF, c.Embd)
		add(p+"ffn_gate.weight", c.Type, c.Embd, c.FF)
		add(p+"ffn_norm.weight", tensor.F32, c.Embd)
		add(p+"ffn_up.weight", c.Type, c.Embd, c.FF)
	}
	return out
}

// isNorm reports whether a tensor is a norm weight (1-D, values near 1).
func (s TensorSpec) isNorm() bool { return len(s.Shape) == 1 }

// fileType is llama.cpp's llama_ftype for a model whose matrices all have
// type t (general.file_type). Pure K-quant files are the "_S" variants.
func fileType(t tensor.DType) uint32 {
	switch t {
	case tensor.F32:
		return 0 // LLAMA_FTYPE_ALL_F32
	case tensor.F16:
		return 1 // MOSTLY_F16
	case tensor.Q4_0:
		return 2
	case tensor.Q4_1:
		return 3
	case tensor.Q8_0:
		return 7
	case tensor.Q5_0:
		return 8
	case tensor.Q5_1:
		return 9
	case tensor.Q4_K:
		return 14 // MOSTLY_Q4_K_S
	case tensor.Q5_K:
		return 16 // MOSTLY_Q5_K_S
	case tensor.Q6_K:
		return 18 // MOSTLY_Q6_K
	case tensor.BF16:
		return 32 // MOSTLY_BF16
	}
	return 0
}
