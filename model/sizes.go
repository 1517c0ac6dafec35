package model

import (
	"fmt"

	"github.com/gollm/gollm/gguf"
	"github.com/gollm/gollm/tensor"
)

// Sizes is the memory a model's weights take on a backend, in the parts
// that a layer-by-layer placement moves between devices (see
// Options.Offload and Sizes.Offload).
type Sizes struct {
	Layers []int64 // (layer) the blk.<i>.* tensors: 7 matrices, and 2 to 5 vectors by family (a mixture of experts: 4 matrices, a router and 3 expert tensors)
	// ExpertBytes is, per layer, the part of Layers that the 3-D expert
	// tensors take (0 for a dense family): all of them are resident, but
	// a token reads ExpertsUsed of Experts of them (see Active).
	ExpertBytes []int64 // (layer)
	Experts     int     // expert_count (0: dense)
	ExpertsUsed int     // expert_used_count
	Embedding   int64   // token_embd.weight, (vocab, embd)
	Output      int64   // output.weight, (vocab, embd); 0 when Tied
	OutputNorm  int64   // output_norm.weight, (embd)
	Tied        bool    // no output.weight: the LM head is the embedding table
	RopeFreqs   int64   // rope_freqs.weight (Llama 3.1), kept on the host
}

// MatrixBytes is the memory a backend gives one (rows, cols) weight
// matrix of type dt, which may differ from the file's bytes when the
// backend repacks blocks (the CUDA backend pads Q6_K and Q8_0 blocks).
type MatrixBytes func(dt tensor.DType, rows, cols int) int64

// WeightBytes reports the weight memory of the model in f, part by part,
// without loading it: it reads only the configuration and the tensor
// infos, and checks that every tensor Load needs is there with the shape
// the configuration gives it.
//
// A matrix takes matrix(type, rows, cols) bytes, or its bytes in the file
// when matrix is nil: rows × cols/blockSize × blockBytes (a Q6_K row of
// 4096 values is 16 blocks of 210 bytes, 3360 bytes). A norm vector of n
// values takes 4n bytes whatever its type in the file, as Load converts
// it to float32. So layer i takes, with Embd, QDim = Heads·HeadDim,
// KVDim = KVHeads·HeadDim and FF from the configuration,
//
//	matrix(attn_q: QDim × Embd) + matrix(attn_k, attn_v: KVDim × Embd each)
//	+ matrix(attn_output: Embd × QDim)
//	+ matrix(ffn_gate, ffn_up: FF × Embd each) + matrix(ffn_down: Embd × FF)
//	+ 4·2·Embd                 (attn_norm, ffn_norm)
//	+ 4·2·HeadDim              (attn_q_norm, attn_k_norm: qwen3)
//	+ 4·(QDim + 2·KVDim)       (attn_q.bias, attn_k.bias, attn_v.bias: qwen2)
//
// where a mixture of experts (qwen3moe) has instead of the three FFN
// matrices a router, matrix(ffn_gate_inp: Experts × Embd), and
// Experts · (matrix(ExpertFF × Embd) · 2 + matrix(Embd × ExpertFF)) of
// expert tensors (each expert is a matrix of its own on a backend):
// Qwen3-30B-A3B's 128 experts of width 768 at Q4_K are 128 · 3 · 768 ·
// 2048/256 · 144 B = 340 MB a layer, 16.3 GB of its 17.2 GB.
//
// (the tensors of layerTensors that the family has), and the rest is the
// embedding and output matrices (Vocab × Embd each), 4·Embd bytes of
// output norm and, for a Llama 3.1 file, 4·HeadDim/2 bytes of rope_freqs.
func WeightBytes(f *gguf.File, matrix MatrixBytes) (Sizes, error) {
	cfg, err := ReadConfig(f)
	if err != nil {
		return Sizes{}, err
	}
	emb, err := f.Tensor("token_embd.weight")
	if err != nil {
		return Sizes{}, fmt.Errorf("%w: %w", ErrTensor, err)
	}
	if len(emb.Shape) != 2 || emb.Shape[0] != int64(cfg.Embd) || emb.Shape[1] < 1 {
		return Sizes{}, fmt.Errorf("%w: token_embd.weight has shape %v, want [%d, vocab]", ErrTensor, emb.Shape, cfg.Embd)
	}
	vocab := int(emb.Shape[1])

	m := sizer{f: f, matrixBytes: matrix}
	s := Sizes{Layers: make([]int64, cfg.Layers), ExpertBytes: make([]int64, cfg.Layers),
		Experts: cfg.Experts, ExpertsUsed: cfg.ExpertsUsed}
	s.Embedding = m.matrix("token_embd.weight", vocab, cfg.Embd)
	s.OutputNorm = m.vector("output_norm.weight", cfg.Embd)
	if _, err := f.Tensor("output.weight"); err == nil {
		s.Output = m.matrix("output.weight", vocab, cfg.Embd)
	} else {
		s.Tied = true
	}
	for i := range s.Layers {
		for _, pt := range layerParts(&cfg, i) {
			switch {
			case pt == nil: // a piece the family does not have
			case pt.experts > 0:
				b := m.experts(pt.name, pt.rows, pt.cols, pt.experts)
				s.Layers[i] += b
				s.ExpertBytes[i] += b
			case pt.rows == 0:
				s.Layers[i] += m.vector(pt.name, pt.cols)
			default:
				s.Layers[i] += m.matrix(pt.name, pt.rows, pt.cols)
			}
		}
	}
	if hasTensor(f, "rope_freqs.weight") && cfg.fam.ropeFreqs {
		s.RopeFreqs = m.vector("rope_freqs.weight", cfg.HeadDim/2)
	}
	if m.err != nil {
		return Sizes{}, m.err
	}
	return s, nil
}

// Active is the weight bytes one token's forward step reads: every
// layer's tensors, but of the expert tensors only ExpertsUsed/Experts
// (the router picks that many experts a token), and the LM head
// (output.weight, or the embedding table when tied; the embedding itself
// is read a row per token, which is not counted). For a dense family it
// is every matrix once. Qwen3-30B-A3B at Q4_K: 8 of 128 experts, about
// 1.75 GB of its 17.2 GB.
func (s Sizes) Active() int64 {
	w := s.OutputNorm + s.Output
	if s.Tied {
		w += s.Embedding
	}
	for i, b := range s.Layers {
		w += b
		if s.Experts > 0 {
			w -= s.ExpertBytes[i] - s.ExpertBytes[i]/int64(s.Experts)*int64(s.ExpertsUsed)
		}
	}
	return w
}

// Offload is the weight memory that Load with Options.OffloadLayers = n
// puts on the offload backend: the last n layers, the output norm and the
// LM head (output.weight, or a copy of the embedding table when Tied),
// plus the embedding table itself when every layer goes there (a model
// entirely on the offload backend looks its tokens up there too, and a
// tied one uses that one table for both ends). n ≤ 0 offloads nothing.
func (s Sizes) Offload(n int) int64 {
	if n <= 0 {
		return 0
	}
	n = min(n, len(s.Layers))
	w := s.OutputNorm
	for _, b := range s.Layers[len(s.Layers)-n:] {
		w += b
	}
	switch {
	case s.Tied:
		w += s.Embedding
	case n == len(s.Layers):
		w += s.Output + s.Embedding
	default:
		w += s.Output
	}
	return w
}

// sizer adds up tensor sizes, checking names and shapes as Load's loader
// does; the first error sticks, so WeightBytes reads as a list.
type sizer struct {
	f           *gguf.File
	matrixBytes MatrixBytes
	err         error
}

// info finds a tensor and checks its shape (in the file's order: the
// columns first).
func (z *sizer) info(name string, shape ...int) (gguf.Tensor, bool) {
	if z.err != nil {
		return gguf.Tensor{}, false
	}
	t, err := z.f.Tensor(name)
	if err != nil {
		z.err = fmt.Errorf("%w: %w", ErrTensor, err)
		return t, false
	}
	ok := len(t.Shape) == len(shape)
	for i := 0; ok && i < len(shape); i++ {
		ok = t.Shape[i] == int64(shape[i])
	}
	if !ok {
		z.err = fmt.Errorf("%w: %s has shape %v, the configuration needs %v", ErrTensor, name, t.Shape, shape)
		return t, false
	}
	return t, true
}

// matrix is the size of a (rows, cols) weight; in the file its shape is
// [cols, rows].
func (z *sizer) matrix(name string, rows, cols int) int64 {
	t, ok := z.info(name, cols, rows)
	switch {
	case !ok:
		return 0
	case z.matrixBytes == nil:
		return t.Size
	}
	return z.matrixBytes(t.Type, rows, cols)
}

// experts is the size of a 3-D tensor of n (rows, cols) matrices; in the
// file its shape is [cols, rows, n].
func (z *sizer) experts(name string, rows, cols, n int) int64 {
	t, ok := z.info(name, cols, rows, n)
	switch {
	case !ok:
		return 0
	case z.matrixBytes == nil:
		return t.Size
	}
	return int64(n) * z.matrixBytes(t.Type, rows, cols)
}

// vector is the size of a norm weight of n values held as float32.
func (z *sizer) vector(name string, n int) int64 {
	if _, ok := z.info(name, n); !ok {
		return 0
	}
	return 4 * int64(n)
}

// Parameters counts the parameters of the model in f: total, every
// element of every tensor in the file, and active, what one token's
// forward step uses: the same less, in each layer's expert tensors, the
// experts the router does not pick (expert_count − expert_used_count of
// expert_count). So active is attention, router, norms, embedding and LM
// head, and k of n experts per layer; for a dense family it is the total.
// Qwen3-30B-A3B: 30.5 G in all, 3.3 G active (8 of 128 experts).
func Parameters(f *gguf.File) (total, active int64, err error) {
	cfg, err := ReadConfig(f)
	if err != nil {
		return 0, 0, err
	}
	for _, t := range f.Tensors() {
		total += t.Elements()
	}
	active = total
	if cfg.Experts == 0 {
		return total, active, nil
	}
	for i := 0; i < cfg.Layers; i++ {
		for _, pt := range layerParts(&cfg, i) {
			if pt == nil || pt.experts == 0 {
				continue
			}
			t, err := f.Tensor(pt.name)
			if err != nil {
				return 0, 0, fmt.Errorf("%w: %w", ErrTensor, err)
			}
			if t.Elements()%int64(cfg.Experts) != 0 {
				return 0, 0, fmt.Errorf("%w: %s has shape %v, not %d experts", ErrTensor, pt.name, t.Shape, cfg.Experts)
			}
			perExpert := t.Elements() / int64(cfg.Experts)
			active -= perExpert * int64(cfg.Experts-cfg.ExpertsUsed)
		}
	}
	return total, active, nil
}
