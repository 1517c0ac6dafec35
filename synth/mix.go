package synth

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/gollm/gollm/tensor"
)

// Mix is a llama.cpp file type whose weight matrices do not all share one
// type: llama-quantize's "_M" recipes, which spend more bits on the
// tensors that suffer most from quantization. The zero Mix, Pure, gives
// every matrix Config.Type.
type Mix uint8

const (
	// Pure: every matrix has Config.Type (or its fallback where a row is
	// not a whole number of blocks, see Config.matrixType).
	Pure Mix = iota
	// Q4_K_M is LLAMA_FTYPE_MOSTLY_Q4_K_M (general.file_type 15): Q4_K
	// with Q6_K for the output head and for attn_v and ffn_down in about
	// half of the layers. The default of ollama and the most downloaded
	// GGUF quantization.
	Q4_K_M
	// Q5_K_M is LLAMA_FTYPE_MOSTLY_Q5_K_M (general.file_type 17): the
	// same recipe on Q5_K.
	Q5_K_M
)

// Mixes lists the mixes ParseMix knows, Pure excluded.
var Mixes = []Mix{Q4_K_M, Q5_K_M}

// String is the mix's name as llama-quantize spells it, lower case
// ("q4_k_m"), or "pure".
func (m Mix) String() string {
	switch m {
	case Pure:
		return "pure"
	case Q4_K_M:
		return "q4_k_m"
	case Q5_K_M:
		return "q5_k_m"
	}
	return "Mix(" + strconv.Itoa(int(m)) + ")"
}

// ParseMix returns the mix named s, in any case ("q4_k_m", "Q4_K_M").
func ParseMix(s string) (Mix, error) {
	for _, m := range Mixes {
		if strings.EqualFold(s, m.String()) {
			return m, nil
		}
	}
	return Pure, fmt.Errorf("synth: unknown mix %q (known: %v)", s, Mixes)
}

// base is llama.cpp's llama_ftype_get_default_type: the type of every
// tensor no rule singles out.
func (m Mix) base() tensor.DType {
	switch m {
	case Q4_K_M:
		return tensor.Q4_K
	case Q5_K_M:
		return tensor.Q5_K
	}
	return 0
}

// fileType is the mix's llama_ftype (general.file_type).
func (m Mix) fileType() uint32 {
	switch m {
	case Q4_K_M:
		return 15 // LLAMA_FTYPE_MOSTLY_Q4_K_M
	case Q5_K_M:
		return 17 // LLAMA_FTYPE_MOSTLY_Q5_K_M
	}
	return 0
}

// The rules below are llama.cpp's, as facts read from src/llama-quant.cpp
// (unslothai/llama.cpp snapshot d32676d, August 2026):
// llama_tensor_get_type (the outer wrapper), llama_tensor_get_type_impl
// (the recipes), its use_more_bits helper, tensor_get_category,
// init_quantize_state_counters, tensor_type_fallback and
// llama_ftype_get_default_type. For Q4_K_M and Q5_K_M, with no importance
// matrix and no overrides, and for the architectures synth writes, they
// come down to this (B is the base type: Q4_K for Q4_K_M, Q5_K for
// Q5_K_M):
//
//   - 1-D tensors (norms, biases, rope_freqs) and the qwen3moe router
//     ffn_gate_inp are not quantized: they stay F32.
//   - output.weight, and token_embd.weight when the embeddings are tied
//     (the file has no output.weight): Q6_K, or Q8_0 when the row width
//     n_embd is not a multiple of B's 256-value block.
//   - token_embd.weight of an untied model: B (no rule for these mixes).
//   - attn_v (and attn_qkv, a fused q/k/v llama.cpp counts with attn_v;
//     synth writes none): Q6_K in the layers where use_more_bits(i, n) is
//     true, B elsewhere. i counts the attn_v tensors in file-loading order
//     (the loader sorts by layer number, so i is the layer index) and n is
//     their number (the layer count). Then, in a model llama.cpp calls
//     70B (llama with 80 layers and grouped-query attention, qwen2 with 80
//     layers), a Q4_K attn_v becomes Q5_K; and in a model with exactly 8
//     experts attn_v is Q8_0 whatever came before.
//   - attn_k: Q8_0 with exactly 8 experts, else B.
//   - attn_q: B.
//   - attn_output: Q5_K for Q4_K_M with exactly 8 experts, else B.
//   - ffn_down, and every tensor whose name contains "ffn_down"
//     (qwen3moe's ffn_down_exps, a shared expert's ffn_down_shexp): Q6_K
//     where use_more_bits(layer, n_layer), else B. For a dense model the
//     layer is again a counter in loading order, for a mixture of
//     experts it is parsed from the name (blk.N.); both are the layer
//     index here.
//   - ffn_gate, ffn_up and the expert ffn_gate_exps, ffn_up_exps: B.
//   - No rule of these two mixes looks at n_gqa (the ratio of query to
//     key/value heads): those belong to Q2_K, Q3_K, IQ3 and IQ4 recipes.
//   - Last, every quantized tensor whose row width ne0 is not a multiple
//     of its type's block size falls back (tensor_type_fallback): Q4_K →
//     Q5_0, Q5_K → Q5_1, Q6_K → Q8_0 (block size 32), and to F16 when ne0
//     is not a multiple of 32 either. A Q8_0 tensor (the output head of
//     a width that is not a whole number of blocks) has no fallback:
//     llama-quantize stops with an error when ne0 is not a multiple of 32,
//     and so does synth (ErrConfig).
//
// use_more_bits(i, n) is i < n/8 || i >= 7n/8 || (i - n/8) % 3 == 2,
// with C's integer division: the first and last eighth of the layers,
// and every third layer between. Worked example, Qwen3-1.7B (28 layers):
// n/8 = 3 and 7n/8 = 196/8 = 24, so layers 0-2 and 24-27 qualify, and
// between them (i - 3) % 3 == 2 picks 5, 8, 11, 14, 17, 20 and 23: 14 of
// the 28 layers, {0, 1, 2, 5, 8, 11, 14, 17, 20, 23, 24, 25, 26, 27}, get
// a Q6_K attn_v and ffn_down; the other 14 keep Q4_K (Q5_K in Q5_K_M).
// Its tied token_embd (width 2048 = 8 blocks) is Q6_K, and the rest is
// Q4_K. Qwen2.5-0.5B (24 layers, width 896 = 3.5 blocks, ff 4864 = 19
// blocks) is the fallback case: token_embd Q8_0; attn_q, attn_k,
// attn_output, ffn_gate and ffn_up Q5_0 (Q5_1 in Q5_K_M); attn_v Q8_0 in
// the use_more_bits layers {0-2, 5, 8, 11, 14, 17, 20, 21-23} and Q5_0
// (Q5_1) elsewhere; ffn_down, whose rows are 4864 wide, Q6_K or B.

// useMoreBits is llama.cpp's use_more_bits: whether layer i of n gets
// more bits in the attn_v and ffn_down rules (see above). Go's / and %
// truncate toward zero as C's do, which matters for i < n/8 only where
// the first clause already holds.
func useMoreBits(i, n int) bool {
	return i < n/8 || i >= 7*n/8 || (i-n/8)%3 == 2
}

// is70B is whether llama.cpp gives the model type LLM_TYPE_70B, the only
// model type its quantization rules look at: a llama with 80 layers and
// fewer key/value heads than query heads (with as many, it is the 65B),
// or a qwen2 with 80 layers.
func (c Config) is70B() bool {
	return c.Layers == 80 && (c.Arch == "llama" && c.KVHeads != c.Heads || c.Arch == "qwen2")
}

// mixType is the type llama-quantize gives the weight matrix name (layer
// layer, -1 for none; rows of ne0 values) in a c.Mix file. See the rules
// above.
func (c Config) mixType(name string, layer, ne0 int) tensor.DType {
	b := c.Mix.base()
	experts8 := c.Experts == 8
	t := b
	switch {
	case name == "output.weight" || name == "token_embd.weight" && c.Tied:
		t = tensor.Q6_K
		if ne0%b.BlockSize() != 0 {
			t = tensor.Q8_0
		}
	case name == "token_embd.weight":
		// B
	case strings.Contains(name, "attn_qkv.weight") || strings.Contains(name, "attn_v.weight"):
		if useMoreBits(layer, c.Layers) {
			t = tensor.Q6_K
		}
		if c.is70B() && t == tensor.Q4_K {
			t = tensor.Q5_K
		}
		if experts8 {
			t = tensor.Q8_0
		}
	case strings.Contains(name, "attn_k.weight"):
		if experts8 {
			t = tensor.Q8_0
		}
	case strings.Contains(name, "attn_q.weight"):
		// B
	case strings.Contains(name, "attn_output.weight"):
		if experts8 && c.Mix == Q4_K_M {
			t = tensor.Q5_K
		}
	case strings.Contains(name, "ffn_up"), strings.Contains(name, "ffn_gate"):
		// B (llama.cpp tests ffn_up before ffn_gate, before ffn_down)
	case strings.Contains(name, "ffn_down"):
		if useMoreBits(layer, c.Layers) {
			t = tensor.Q6_K
		}
	}
	return fallback(t, ne0)
}

// fallback is llama.cpp's tensor_type_fallback: the type a tensor with
// rows of ne0 values gets when ne0 is not a whole number of t's blocks.
func fallback(t tensor.DType, ne0 int) tensor.DType {
	if ne0%t.BlockSize() == 0 {
		return t
	}
	switch t {
	case tensor.Q4_K:
		t = tensor.Q5_0
	case tensor.Q5_K:
		t = tensor.Q5_1
	case tensor.Q6_K:
		t = tensor.Q8_0
	default:
		// llama.cpp has no fallback for other types and gives up
		// ("no tensor type fallback is defined"); so does validate.
		return t
	}
	if ne0%t.BlockSize() != 0 {
		return tensor.F16
	}
	return t
}
