// Package synth writes GGUF files with random weights for the families
// gollm runs (qwen3, llama, qwen2, qwen3moe): the same metadata keys, tensor names,
// shapes and types that llama.cpp's converter and llama-quantize produce
// for a real checkpoint of that architecture, filled with random numbers. Such a file loads and runs like a real model (it just
// talks nonsense), which is all that tests and benchmarks need; no real
// weights can be downloaded here.
//
// Sizes come from presets shaped like the real models (qwen3-0.6b …
// qwen3-8b, llama3.2-1b … llama3.1-8b, mistral-7b, qwen2.5-0.5b …
// qwen2.5-7b, qwen3-30b-a3b) or from any Config. The output is a pure function of the
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
// Matrix types: Config.Type for every matrix (a "pure" file, with
// llama-quantize's fallback where a row is not a whole number of blocks),
// or, with Config.Mix, llama-quantize's Q4_K_M or Q5_K_M recipe: Q6_K for
// the output head and for attn_v and ffn_down in about half of the
// layers, the base type elsewhere, exactly as llama.cpp picks them for
// each tensor (see mix.go for the rules and a worked example).
//
// Norm weights (attn_norm, ffn_norm, output_norm, attn_q_norm,
// attn_k_norm) are always F32, 1 + 0.05·N(0,1), as llama.cpp keeps them;
// Qwen2's q/k/v biases are F32 N(0, 0.05²); a qwen3moe router
// (ffn_gate_inp) is F32 N(0, WeightStd²), as llama-quantize leaves it
// unquantized. A Llama 3.1/3.2 preset also
// gets rope_freqs.weight, the F32 factors llama.cpp's converter computes
// from the "llama3" rope scaling (see llama3RopeFreqs).
package synth

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"

	"github.com/gollm/gollm/tensor"
)

// ErrConfig is wrapped by every error about an invalid Config.
var ErrConfig = errors.New("synth: invalid config")

// Config describes the model to write. Zero fields take the defaults
// listed with each (see Normalize).
type Config struct {
	Arch    string // general.architecture: "qwen3" (default), "llama", "qwen2" or "qwen3moe"
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
	// Mix, when not Pure, chooses each matrix's type as llama-quantize
	// does for that file type (Q4_K_M, Q5_K_M: see mix.go); Normalize
	// then sets Type to the mix's base type (Q4_K, Q5_K).
	Mix Mix

	Seed          uint64
	ContextLength int     // <arch>.context_length; default 40960 (Qwen3's)
	RopeBase      float64 // <arch>.rope.freq_base; default 1e6
	RMSEps        float64 // <arch>.attention.layer_norm_rms_epsilon; default 1e-6
	WeightStd     float64 // standard deviation of the matrix weights; default 0.02
	// Llama3RopeFactor, when not 0 (llama only), writes rope_freqs.weight
	// for Llama 3.1's "llama3" rope scaling with this factor (8 for 3.1,
	// 32 for 3.2), low/high frequency factors 1 and 4 over an original
	// context of 8192, as the real files have.
	Llama3RopeFactor float64

	// A mixture of experts (qwen3moe only): Experts SwiGLU experts of
	// width ExpertFF per layer, ExpertsUsed of them per token, in place of
	// the dense feed-forward matrices (FF is still written as
	// feed_forward_length, as the converter does).
	Experts     int
	ExpertsUsed int
	ExpertFF    int
}

// Architectures lists the values Config.Arch may take.
var Architectures = []string{"llama", "qwen2", "qwen3", "qwen3moe"}

// Defaults for zero Config fields.
const (
	DefaultName          = "qwen3-synth"
	DefaultContextLength = 40960
	DefaultRopeBase      = 1e6
	DefaultRMSEps        = 1e-6
	DefaultWeightStd     = 0.02
	// QwenVocab is the size of the real Qwen3 vocabulary (token_embd rows
	// of every Qwen3 model, including padding ids), also Qwen2.5's up to
	// 3B; Qwen2.5-7B pads to 152064.
	QwenVocab = 151936
	// LlamaVocab is Llama 3's (128000 tokens and 256 special ones);
	// MistralVocab is Mistral 7B v0.3's.
	LlamaVocab   = 128256
	MistralVocab = 32768
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

	// Llama 3.x (config.json of meta-llama/Llama-3.2-1B, -3B, Llama-3.1-8B:
	// rope_theta 500000, rms_norm_eps 1e-5, rope_scaling "llama3") and
	// Mistral 7B v0.3 (rope_theta 1e6, no scaling), all under llama.cpp's
	// llama architecture.
	"llama3.2-1b": {Arch: "llama", Embd: 2048, Layers: 16, Heads: 32, KVHeads: 8, HeadDim: 64, FF: 8192, Vocab: LlamaVocab, Tied: true,
		ContextLength: 131072, RopeBase: 500000, RMSEps: 1e-5, Llama3RopeFactor: 32},
	"llama3.2-3b": {Arch: "llama", Embd: 3072, Layers: 28, Heads: 24, KVHeads: 8, HeadDim: 128, FF: 8192, Vocab: LlamaVocab, Tied: true,
		ContextLength: 131072, RopeBase: 500000, RMSEps: 1e-5, Llama3RopeFactor: 32},
	"llama3.1-8b": {Arch: "llama", Embd: 4096, Layers: 32, Heads: 32, KVHeads: 8, HeadDim: 128, FF: 14336, Vocab: LlamaVocab,
		ContextLength: 131072, RopeBase: 500000, RMSEps: 1e-5, Llama3RopeFactor: 8},
	"mistral-7b": {Arch: "llama", Embd: 4096, Layers: 32, Heads: 32, KVHeads: 8, HeadDim: 128, FF: 14336, Vocab: MistralVocab,
		ContextLength: 32768, RopeBase: 1e6, RMSEps: 1e-5},

	// Qwen2.5 (config.json of Qwen/Qwen2.5-0.5B … 7B: rope_theta 1e6,
	// rms_norm_eps 1e-6, q/k/v biases).
	"qwen2.5-0.5b": {Arch: "qwen2", Embd: 896, Layers: 24, Heads: 14, KVHeads: 2, HeadDim: 64, FF: 4864, Vocab: QwenVocab, Tied: true, ContextLength: 32768},
	"qwen2.5-1.5b": {Arch: "qwen2", Embd: 1536, Layers: 28, Heads: 12, KVHeads: 2, HeadDim: 128, FF: 8960, Vocab: QwenVocab, Tied: true, ContextLength: 32768},
	"qwen2.5-3b":   {Arch: "qwen2", Embd: 2048, Layers: 36, Heads: 16, KVHeads: 2, HeadDim: 128, FF: 11008, Vocab: QwenVocab, Tied: true, ContextLength: 32768},
	"qwen2.5-7b":   {Arch: "qwen2", Embd: 3584, Layers: 28, Heads: 28, KVHeads: 4, HeadDim: 128, FF: 18944, Vocab: 152064, ContextLength: 32768},

	// Qwen3-30B-A3B (config.json of Qwen/Qwen3-30B-A3B: num_experts 128,
	// num_experts_per_tok 8, moe_intermediate_size 768, intermediate_size
	// 6144, untied, rope_theta 1e6, rms_norm_eps 1e-6): 30.5 G parameters,
	// 3.3 G active per token.
	"qwen3-30b-a3b": {Arch: "qwen3moe", Embd: 2048, Layers: 48, Heads: 32, KVHeads: 4, HeadDim: 128, FF: 6144, Vocab: QwenVocab,
		Experts: 128, ExpertsUsed: 8, ExpertFF: 768},
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
	if c.Arch == "" {
		c.Arch = "qwen3"
	}
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
	if c.Mix != Pure {
		c.Type = c.Mix.base()
	}
	return c
}

// Limits that keep a typo from asking for an absurd file.
const (
	maxDim    = 1 << 17 // embd, ff, heads*head_dim
	maxLayers = 1024
	maxVocab  = 1 << 22
	maxHeads  = 1024
	// maxExperts is llama.cpp's LLAMA_MAX_EXPERTS.
	maxExperts = 512
)

// validate checks a (normalized) Config. vocab is the vocabulary size that
// will be used (Config.Vocab, or the token count of a vocabulary file).
func (c Config) validate(vocab int) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrConfig}, args...)...)
	}
	switch {
	case !slices.Contains(Architectures, c.Arch):
		return bad("architecture %q (want one of %v)", c.Arch, Architectures)
	case c.Arch == "qwen2" && c.Heads*c.HeadDim != c.Embd:
		return bad("qwen2: heads*head_dim = %d*%d must equal embd %d (llama.cpp's qwen2 needs it)", c.Heads, c.HeadDim, c.Embd)
	case (c.Arch == "qwen3moe") != (c.Experts != 0) || c.Experts < 0 || c.Experts > maxExperts:
		return bad("experts %d: qwen3moe needs 1 to %d, the other architectures none", c.Experts, maxExperts)
	case c.Arch == "qwen3moe" && (c.ExpertsUsed < 1 || c.ExpertsUsed > c.Experts || c.ExpertFF < 1 || c.ExpertFF > maxDim):
		return bad("qwen3moe: experts used %d must be 1 to experts %d, expert ff %d 1 to %d", c.ExpertsUsed, c.Experts, c.ExpertFF, maxDim)
	case c.Llama3RopeFactor != 0 && (c.Arch != "llama" || !(c.Llama3RopeFactor >= 1 && c.Llama3RopeFactor <= 1024)):
		return bad("llama3 rope factor %g needs architecture llama and a factor from 1 to 1024", c.Llama3RopeFactor)
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
	if c.Mix > Q5_K_M {
		return bad("unknown mix %v (want one of %v)", c.Mix, Mixes)
	}
	if !generatable(c.Type) {
		return bad("weight type %s is not supported (want one of %v)", c.Type, SupportedTypes())
	}
	// A quantized row must be a whole number of blocks, of the type or of
	// its fallback (see matrixType and mixType). Every matrix's row (ne0)
	// is embd, heads*head_dim, ff or (qwen3moe) expert ff.
	for _, s := range c.Tensors(vocab) {
		if n := int(s.Shape[0]); n%s.Type.BlockSize() != 0 {
			return bad("%s: row width %d is not a multiple of the %s block size %d", s.Name, n, s.Type, s.Type.BlockSize())
		}
	}
	return nil
}

// matrixType is the type of a matrix whose rows have ne0 values: Type,
// or, when ne0 is not a whole number of Type's 256-value blocks, the
// fallback llama-quantize picks (tensor_type_fallback, see fallback in
// mix.go): Q4_K → Q5_0, Q5_K → Q5_1, Q6_K → Q8_0. Qwen2.5-0.5B's width
// 896 = 3.5 · 256 is the case in point: its Q6_K file has Q8_0 attention
// and up/gate matrices.
func (c Config) matrixType(ne0 int) tensor.DType {
	t := fallback(c.Type, ne0)
	if t == tensor.F16 && c.Type.BlockSize() > 1 {
		// Not even the fallback's 32-value blocks fit: llama-quantize
		// would write F16; a pure synth file stays wrong and validate
		// says so.
		return c.Type
	}
	return t
}

// weightType is the type of the weight matrix name (of block layer, -1
// for none) whose rows have ne0 values: matrixType in a pure file, with
// attn_k and attn_v Q8_0 in an 8-expert model quantized to a lower type
// (llama-quantize's rule), or the mix's choice (mixType).
func (c Config) weightType(name string, layer, ne0 int) tensor.DType {
	if c.Mix != Pure {
		return c.mixType(name, layer, ne0)
	}
	if c.Experts == 8 && c.Type.BlockSize() > 1 && ne0%32 == 0 &&
		(strings.HasSuffix(name, ".attn_k.weight") || strings.HasSuffix(name, ".attn_v.weight")) {
		return tensor.Q8_0
	}
	return c.matrixType(ne0)
}

// TensorSpec is one tensor Write will write.
type TensorSpec struct {
	Name  string
	Type  tensor.DType
	Shape []int64 // ne0 first, as in GGUF

	kind specKind // how its values are made
}

// specKind says how a tensor's values are made.
type specKind uint8

const (
	kindMatrix    specKind = iota // random weights, std WeightStd
	kindNorm                      // F32 1 + 0.05·N(0,1)
	kindBias                      // F32 0.05·N(0,1)
	kindRopeFreqs                 // F32 llama3RopeFreqs
	kindRouter                    // F32 random weights, std WeightStd (a qwen3moe router)
)

// Tensors lists the tensors of a model with this Config and vocabulary
// size, in file order: names and shapes as llama.cpp's converter writes a
// checkpoint of the architecture (matrices are (in, out): ne0 is the
// input width). Every family has the attention and feed-forward matrices
// and the two norms of each block; qwen3 adds attn_q_norm and attn_k_norm,
// qwen2 the q/k/v biases, and a Llama 3.1/3.2 preset rope_freqs. qwen3moe
// has qwen3's attention and, instead of the dense ffn_gate, ffn_up and
// ffn_down, the router ffn_gate_inp [embd, experts] (F32) and the 3-D
// expert tensors ffn_gate_exps, ffn_up_exps [embd, expertFF, experts] and
// ffn_down_exps [expertFF, embd, experts]; with exactly 8 experts its
// attn_k and attn_v are Q8_0, as llama-quantize makes them for 8-expert
// models. Matrix types: see weightType.
func (c Config) Tensors(vocab int) []TensorSpec {
	c = c.Normalize()
	var out []TensorSpec
	layer := -1 // the block being listed
	add := func(name string, kind specKind, shape ...int) {
		s := make([]int64, len(shape))
		for i, d := range shape {
			s[i] = int64(d)
		}
		t := tensor.F32
		if kind == kindMatrix {
			t = c.weightType(name, layer, shape[0])
		}
		out = append(out, TensorSpec{name, t, s, kind})
	}
	qDim := c.Heads * c.HeadDim    // width of all query heads
	kvDim := c.KVHeads * c.HeadDim // width of all key (or value) heads
	moe := c.Arch == "qwen3moe"
	qwen2, qwen3 := c.Arch == "qwen2", c.Arch == "qwen3" || moe
	if !c.Tied {
		add("output.weight", kindMatrix, c.Embd, vocab)
	}
	add("output_norm.weight", kindNorm, c.Embd)
	if c.Llama3RopeFactor != 0 {
		add("rope_freqs.weight", kindRopeFreqs, c.HeadDim/2)
	}
	add("token_embd.weight", kindMatrix, c.Embd, vocab)
	for l := 0; l < c.Layers; l++ {
		layer = l
		p := fmt.Sprintf("blk.%d.", l)
		if qwen2 {
			add(p+"attn_k.bias", kindBias, kvDim)
		}
		add(p+"attn_k.weight", kindMatrix, c.Embd, kvDim)
		if qwen3 {
			add(p+"attn_k_norm.weight", kindNorm, c.HeadDim)
		}
		add(p+"attn_norm.weight", kindNorm, c.Embd)
		add(p+"attn_output.weight", kindMatrix, qDim, c.Embd)
		if qwen2 {
			add(p+"attn_q.bias", kindBias, qDim)
		}
		add(p+"attn_q.weight", kindMatrix, c.Embd, qDim)
		if qwen3 {
			add(p+"attn_q_norm.weight", kindNorm, c.HeadDim)
		}
		if qwen2 {
			add(p+"attn_v.bias", kindBias, kvDim)
		}
		add(p+"attn_v.weight", kindMatrix, c.Embd, kvDim)
		if moe {
			add(p+"ffn_down_exps.weight", kindMatrix, c.ExpertFF, c.Embd, c.Experts)
			add(p+"ffn_gate_exps.weight", kindMatrix, c.Embd, c.ExpertFF, c.Experts)
			add(p+"ffn_gate_inp.weight", kindRouter, c.Embd, c.Experts)
			add(p+"ffn_norm.weight", kindNorm, c.Embd)
			add(p+"ffn_up_exps.weight", kindMatrix, c.Embd, c.ExpertFF, c.Experts)
			continue
		}
		add(p+"ffn_down.weight", kindMatrix, c.FF, c.Embd)
		add(p+"ffn_gate.weight", kindMatrix, c.Embd, c.FF)
		add(p+"ffn_norm.weight", kindNorm, c.Embd)
		add(p+"ffn_up.weight", kindMatrix, c.Embd, c.FF)
	}
	return out
}

// isNorm reports whether a tensor is a norm weight (1-D, values near 1).
func (s TensorSpec) isNorm() bool { return s.kind == kindNorm }

// llama3RopeFreqs computes rope_freqs.weight as llama.cpp's converter
// does for a Llama 3.1 checkpoint (LlamaModel.generate_extra_tensors):
// pair i turns at frequency f = base^(-2i/dim), wavelength 2π/f; pairs
// faster than 8192/4 positions per turn keep factor 1, pairs slower than
// 8192 take the full factor, and those between blend smoothly. For the
// 8B (base 500000, dim 128, factor 8) the 64 factors run 1 … 1, 1.3 …
// 7.5, 8 … 8.
func llama3RopeFreqs(base float64, dim int, factor float64) []float32 {
	const (
		lowFreqFactor, highFreqFactor = 1.0, 4.0
		oldContext                    = 8192.0
		lowFreqWavelen                = oldContext / lowFreqFactor
		highFreqWavelen               = oldContext / highFreqFactor
	)
	out := make([]float32, dim/2)
	for i := range out {
		// The converter computes the frequencies in float32 (torch).
		freq := float64(float32(1 / math.Pow(base, float64(float32(2*i)/float32(dim)))))
		wavelen := 2 * math.Pi / freq
		switch {
		case wavelen < highFreqWavelen:
			out[i] = 1
		case wavelen > lowFreqWavelen:
			out[i] = float32(factor)
		default:
			smooth := (oldContext/wavelen - lowFreqFactor) / (highFreqFactor - lowFreqFactor)
			out[i] = float32(1 / ((1-smooth)/factor + smooth))
		}
	}
	return out
}

// fileType is llama.cpp's llama_ftype (general.file_type) of a file
// made with c: the mix's, or for a pure file whose matrices all have type
// c.Type, that type's. Pure K-quant files are the "_S" variants.
func (c Config) fileType() uint32 {
	if c.Mix != Pure {
		return c.Mix.fileType()
	}
	switch c.Type {
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
