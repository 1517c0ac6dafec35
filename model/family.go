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
// FFN of qwen3moe will be the first ffnKind besides ffnDense: its router
// and expert tensors join layerTensors under need(ffn == ffnMoE), and
// Forward's feed-forward block calls one function or the other.
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
)

// families lists the architectures gollm runs, by name.
var families = []family{
	{arch: "llama", rope: backend.RopeNorm, ropeFreqs: true, ffn: ffnDense},
	{arch: "qwen2", rope: backend.RopeNeoX, qkvBias: true, ffn: ffnDense},
	{arch: "qwen3", rope: backend.RopeNeoX, qkNorm: true, ffn: ffnDense},
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
	numLayerTensors
)

// layerTensor declares one tensor of a layer: its name after
// "blk.<i>.", its shape from the configuration ((rows, cols); rows 0 for
// a vector), and which families have it (nil: all).
type layerTensor struct {
	name  string
	shape func(c *Config) (rows, cols int)
	need  func(f *family) bool
}

func qkNorm(f *family) bool  { return f.qkNorm }
func qkvBias(f *family) bool { return f.qkvBias }

// layerTensors is every tensor a layer of some family has, in load order.
var layerTensors = [numLayerTensors]layerTensor{
	tAttnNorm: {"attn_norm.weight", func(c *Config) (int, int) { return 0, c.Embd }, nil},
	tWQ:       {"attn_q.weight", func(c *Config) (int, int) { return c.QDim, c.Embd }, nil},
	tWK:       {"attn_k.weight", func(c *Config) (int, int) { return c.KVDim, c.Embd }, nil},
	tWV:       {"attn_v.weight", func(c *Config) (int, int) { return c.KVDim, c.Embd }, nil},
	tBQ:       {"attn_q.bias", func(c *Config) (int, int) { return 0, c.QDim }, qkvBias},
	tBK:       {"attn_k.bias", func(c *Config) (int, int) { return 0, c.KVDim }, qkvBias},
	tBV:       {"attn_v.bias", func(c *Config) (int, int) { return 0, c.KVDim }, qkvBias},
	tQNorm:    {"attn_q_norm.weight", func(c *Config) (int, int) { return 0, c.HeadDim }, qkNorm},
	tKNorm:    {"attn_k_norm.weight", func(c *Config) (int, int) { return 0, c.HeadDim }, qkNorm},
	tWO:       {"attn_output.weight", func(c *Config) (int, int) { return c.Embd, c.QDim }, nil},
	tFFNNorm:  {"ffn_norm.weight", func(c *Config) (int, int) { return 0, c.Embd }, nil},
	tGate:     {"ffn_gate.weight", func(c *Config) (int, int) { return c.FF, c.Embd }, nil},
	tUp:       {"ffn_up.weight", func(c *Config) (int, int) { return c.FF, c.Embd }, nil},
	tDown:     {"ffn_down.weight", func(c *Config) (int, int) { return c.Embd, c.FF }, nil},
}

// has reports whether the family's layers have tensor i of layerTensors.
func (f *family) has(i int) bool { return layerTensors[i].need == nil || layerTensors[i].need(f) }

// tensorsPerLayer is the number of tensors one layer of the family needs:
// 9 for llama, 12 for qwen2, 11 for qwen3.
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
	}
	return parts
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
	}
	return strings.Join(parts, ", "), true
}
