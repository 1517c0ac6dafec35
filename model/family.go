package model

import (
	"fmt"
	"strings"

	"github.com/gollm/gollm/backend"
)

// Families: an architecture is a declaration.
//
// The transformers gollm runs share one skeleton (forward.go): embed, then
// per layer an attention block and a feed-forward block, each behind an
// RMSNorm and added to the residual stream, then a final norm and the LM
// head. What tells llama.cpp's architectures apart is a handful of pieces,
// and a family is the list of the ones it has:
//
//	            rope   q/k norm  q/k/v bias  rope_freqs  FFN
//	llama       NORM      -          -        optional   dense  (Llama 3.x, Mistral)
//	qwen2       NEOX      -          ✓           -       dense  (Qwen2.5)
//	qwen3       NEOX      ✓          -           -       dense
//	qwen3moe    NEOX      ✓          -           -       MoE    (Qwen3-30B-A3B)
//
// Every family reads its hyperparameters under its own key prefix
// ("llama.block_count", "qwen2.block_count", …: the value of
// general.architecture), with the same names and checks (config.go), and
// names its tensors as llama.cpp does (layerTensors below); the LM head
// is output.weight when the file has one and token_embd otherwise, for
// every family.
//
// Adding an architecture whose pieces all exist is one entry in families.
// A new piece is a field here, its tensors in layerTensors (with a `need`
// that says which families have them), a named step in Forward, and a
// backend operation if no existing one computes it. The mixture-of-experts
// FFN of qwen3moe is the first ffnKind besides ffnDense: its router and
// expert tensors are in layerTensors under need(moe), the dense ones under
// need(dense), and Forward's feed-forward block calls one function or the
// other (feedForward).
type family struct {
	arch string // general.architecture, and the prefix of its metadata keys
	// rope is how the dimensions of a head pair up when rotated:
	// adjacent (NORM) for llama, halves (NEOX) for the Qwens.
	rope backend.RopeStyle
	// qkNorm: each query and key head goes through an RMSNorm of its own
	// (attn_q_norm, attn_k_norm) before the rotation.
	qkNorm bool
	// qkvBias: q, k and v get a bias (attn_q.bias, …) added after their
	// products, before the rotation.
	qkvBias bool
	// ropeFreqs: the file may hold rope_freqs.weight, head_dim/2 factors
	// that divide the rotation angles (Llama 3.1's "llama3" scaling,
	// precomputed by the converter).
	ropeFreqs bool
	// ffn is the feed-forward block.
	ffn ffnKind
}

// ffnKind is the kind of feed-forward block of a family.
type ffnKind uint8

const (
	// ffnDense: x += W_down · (silu(W_gate·x̂) ⊙ W_up·x̂).
	ffnDense ffnKind = iota
	// ffnMoE: a mixture of experts (moe.go). A router picks
	// expert_used_count of expert_count SwiGLU blocks per token, and
	// x += Σ_k w_k · W_down,e_k · (silu(W_gate,e_k·x̂) ⊙ W_up,e_k·x̂).
	ffnMoE
)

// families lists the architectures gollm runs, by name.
var families = []family{
	{arch: "llama", rope: backend.RopeNorm, ropeFreqs: true, ffn: ffnDense},
	{arch: "qwen2", rope: backend.RopeNeoX, qkvBias: true, ffn: ffnDense},
	{arch: "qwen3", rope: backend.RopeNeoX, qkNorm: true, ffn: ffnDense},
	{arch: "qwen3moe", rope: backend.RopeNeoX, qkNorm: true, ffn: ffnMoE},
}

// familyOf returns the family of an architecture name, or nil.
func familyOf(arch string) *family {
	for i := range families {
		if families[i].arch == arch {
			return &families[i]
		}
	}
	return nil
}

// A layer tensor's place in the layer struct (and in the array of parts
// that layerParts returns), so that a family's layer is built by index.
const (
	tAttnNorm = iota
	tWQ
	tWK
	tWV
	tBQ
	tBK
	tBV
	tQNorm
	tKNorm
	tWO
	tFFNNorm
	tGate
	tUp
	tDown
	tRouter
	tGateExps
	tUpExps
	tDownExps
	numLayerTensors
)

// layerTensor declares one tensor of a layer: its name after
// "blk.<i>.", its shape from the configuration ((rows, cols); rows 0 for
// a vector), which families have it (nil: all), and whether it holds one
// such matrix per expert (a 3-D tensor of expert_count matrices).
type layerTensor struct {
	name      string
	shape     func(c *Config) (rows, cols int)
	need      func(f *family) bool
	perExpert bool
}

func qkNorm(f *family) bool  { return f.qkNorm }
func qkvBias(f *family) bool { return f.qkvBias }
func dense(f *family) bool   { return f.ffn == ffnDense }
func moe(f *family) bool     { return f.ffn == ffnMoE }

// layerTensors is every tensor a layer of some family has, in load order.
var layerTensors = [numLayerTensors]layerTensor{
	tAttnNorm: {"attn_norm.weight", func(c *Config) (int, int) { return 0, c.Embd }, nil, false},
	tWQ:       {"attn_q.weight", func(c *Config) (int, int) { return c.QDim, c.Embd }, nil, false},
	tWK:       {"attn_k.weight", func(c *Config) (int, int) { return c.KVDim, c.Embd }, nil, false},
	tWV:       {"attn_v.weight", func(c *Config) (int, int) { return c.KVDim, c.Embd }, nil, false},
	tBQ:       {"attn_q.bias", func(c *Config) (int, int) { return 0, c.QDim }, qkvBias, false},
	tBK:       {"attn_k.bias", func(c *Config) (int, int) { return 0, c.KVDim }, qkvBias, false},
	tBV:       {"attn_v.bias", func(c *Config) (int, int) { return 0, c.KVDim }, qkvBias, false},
	tQNorm:    {"attn_q_norm.weight", func(c *Config) (int, int) { return 0, c.HeadDim }, qkNorm, false},
	tKNorm:    {"attn_k_norm.weight", func(c *Config) (int, int) { return 0, c.HeadDim }, qkNorm, false},
	tWO:       {"attn_output.weight", func(c *Config) (int, int) { return c.Embd, c.QDim }, nil, false},
	tFFNNorm:  {"ffn_norm.weight", func(c *Config) (int, int) { return 0, c.Embd }, nil, false},
	tGate:     {"ffn_gate.weight", func(c *Config) (int, int) { return c.FF, c.Embd }, dense, false},
	tUp:       {"ffn_up.weight", func(c *Config) (int, int) { return c.FF, c.Embd }, dense, false},
	tDown:     {"ffn_down.weight", func(c *Config) (int, int) { return c.Embd, c.FF }, dense, false},
	// The mixture of experts: the router (expert, embd), and each
	// expert's SwiGLU matrices as one 3-D tensor per kind, ne
	// [cols, rows, expert] in the file (Qwen3-30B-A3B: gate and up
	// [2048, 768, 128], down [768, 2048, 128]).
	tRouter:   {"ffn_gate_inp.weight", func(c *Config) (int, int) { return c.Experts, c.Embd }, moe, false},
	tGateExps: {"ffn_gate_exps.weight", func(c *Config) (int, int) { return c.ExpertFF, c.Embd }, moe, true},
	tUpExps:   {"ffn_up_exps.weight", func(c *Config) (int, int) { return c.ExpertFF, c.Embd }, moe, true},
	tDownExps: {"ffn_down_exps.weight", func(c *Config) (int, int) { return c.Embd, c.ExpertFF }, moe, true},
}

// has reports whether the family's layers have tensor i of layerTensors.
func (f *family) has(i int) bool { return layerTensors[i].need == nil || layerTensors[i].need(f) }

// tensorsPerLayer is the number of tensors one layer of the family needs:
// 9 for llama, 12 for qwen2, 11 for qwen3, 12 for qwen3moe.
func (f *family) tensorsPerLayer() int {
	n := 0
	for i := range layerTensors {
		if f.has(i) {
			n++
		}
	}
	return n
}

// layerParts lists layer i's tensors for c's family, indexed like
// layerTensors; the ones the family does not have are nil.
func layerParts(c *Config, i int) [numLayerTensors]*part {
	var parts [numLayerTensors]*part
	for j, lt := range layerTensors {
		if !c.fam.has(j) {
			continue
		}
		rows, cols := lt.shape(c)
		parts[j] = &part{name: fmt.Sprintf("blk.%d.%s", i, lt.name), rows: rows, cols: cols}
		if lt.perExpert {
			parts[j].experts = c.Experts
		}
	}
	return parts
}

// experts returns the per-expert views of a loaded 3-D part (nil for a
// piece the family does not have).
func experts(p *part) []backend.Weight {
	if p == nil {
		return nil
	}
	return p.ws
}

// newLayer builds a layer from its loaded parts (see layerParts); the
// pieces its family lacks stay nil.
func newLayer(p [numLayerTensors]*part) layer {
	w := func(i int) backend.Weight {
		if p[i] == nil {
			return nil
		}
		return p[i].w
	}
	v := func(i int) backend.Vector {
		if p[i] == nil {
			return nil
		}
		return p[i].v
	}
	return layer{
		attnNorm: v(tAttnNorm), wq: w(tWQ), wk: w(tWK), wv: w(tWV),
		bq: v(tBQ), bk: v(tBK), bv: v(tBV), qNorm: v(tQNorm), kNorm: v(tKNorm),
		wo: w(tWO), ffnNorm: v(tFFNNorm), wGate: w(tGate), wUp: w(tUp), wDown: w(tDown),
		router: w(tRouter), gateExps: experts(p[tGateExps]), upExps: experts(p[tUpExps]), downExps: experts(p[tDownExps]),
	}
}

// DescribeFamily says how gollm runs a file whose general.architecture is
// arch: "rope NORM (adjacent pairs), no q/k norm, no q/k/v bias,
// rope_freqs when present, dense FFN" for llama. ok is false for an
// architecture gollm does not run.
func DescribeFamily(arch string) (pieces string, ok bool) {
	f := familyOf(arch)
	if f == nil {
		return "", false
	}
	rope := "rope NEOX (halves)"
	if f.rope == backend.RopeNorm {
		rope = "rope NORM (adjacent pairs)"
	}
	parts := []string{rope, "no q/k norm", "no q/k/v bias"}
	if f.qkNorm {
		parts[1] = "q/k norm"
	}
	if f.qkvBias {
		parts[2] = "q/k/v bias"
	}
	if f.ropeFreqs {
		parts = append(parts, "rope_freqs when present")
	}
	switch f.ffn {
	case ffnDense:
		parts = append(parts, "dense FFN")
	case ffnMoE:
		parts = append(parts, "mixture-of-experts FFN (softmax router, top-k renormalised)")
	}
	return strings.Join(parts, ", "), true
}
