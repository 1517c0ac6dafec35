package model

import (
	"fmt"
	"math"

	"github.com/gollm/gollm/backend"
	"github.com/gollm/gollm/gguf"
	"github.com/gollm/gollm/tensor"
)

// Options change how a model is loaded.
type Options struct {
	// RopeScaling, when set, replaces the file's rope scaling, like
	// llama.cpp's --rope-scaling yarn --rope-scale F --yarn-orig-ctx N.
	RopeScaling *RopeScaling
	// Offload, when set with OffloadLayers > 0, runs the last
	// OffloadLayers layers, the output norm and the LM head on Offload
	// (a GPU, say) and the rest on the main backend, like llama.cpp's
	// --n-gpu-layers. With OffloadLayers ≥ the layer count, everything
	// runs on Offload.
	Offload       backend.Backend
	OffloadLayers int
}

// stage is a run of consecutive layers on one backend. A model on one
// device has one stage; a model split across devices has two, and the
// residual stream is copied from one to the next between them.
type stage struct {
	be       backend.Backend
	from, to int // layers [from, to)
}

// layer holds one transformer block's weights.
type layer struct {
	attnNorm backend.Vector // (embd)
	wq       backend.Weight // (qDim, embd)
	wk       backend.Weight // (kvDim, embd)
	wv       backend.Weight // (kvDim, embd)
	qNorm    backend.Vector // (headDim), applied to every query head
	kNorm    backend.Vector // (headDim), applied to every key head
	wo       backend.Weight // (embd, qDim)
	ffnNorm  backend.Vector // (embd)
	wGate    backend.Weight // (ff, embd)
	wUp      backend.Weight // (ff, embd)
	wDown    backend.Weight // (embd, ff)
}

// Model is a loaded Qwen3 model: hyperparameters and weights prepared on a
// backend. It holds no per-sequence state, so one Model serves any number
// of States (contexts).
type Model struct {
	Config Config

	stages   []stage
	tokEmbd  backend.Weight // (vocab, embd), row t is token t's embedding (on the first stage)
	outNorm  backend.Vector // (embd)
	output   backend.Weight // (vocab, embd), the LM head (token_embd when tied; on the last stage)
	layers   []layer
	rope     backend.Rope
	weightsB int64 // bytes of matrices read per forward step
}

// Load reads a Qwen3 model from an open GGUF file onto a backend. The
// weights are views into the file's mapping (on the CPU) or uploaded once
// (on a GPU); the file must stay open while the model is used.
func Load(f *gguf.File, be backend.Backend, opts Options) (*Model, error) {
	cfg, err := ReadConfig(f)
	if err != nil {
		return nil, err
	}
	if opts.RopeScaling != nil {
		s := *opts.RopeScaling
		if s.AttnFactor == 0 {
			s.AttnFactor = 1
		}
		if s.BetaFast == 0 {
			s.BetaFast = 32
		}
		if s.BetaSlow == 0 {
			s.BetaSlow = 1
		}
		if s.OrigContext == 0 {
			s.OrigContext = cfg.Context
		}
		if err := s.check(); err != nil {
			return nil, err
		}
		cfg.Scaling = s
	}
	m := &Model{Config: cfg}
	m.stages = []stage{{be: be, from: 0, to: cfg.Layers}}
	if opts.Offload != nil && opts.OffloadLayers > 0 {
		n := min(opts.OffloadLayers, cfg.Layers)
		if n == cfg.Layers {
			m.stages = []stage{{be: opts.Offload, from: 0, to: cfg.Layers}}
		} else {
			m.stages = []stage{{be: be, from: 0, to: cfg.Layers - n}, {be: opts.Offload, from: cfg.Layers - n, to: cfg.Layers}}
		}
	}
	first, last := m.stages[0].be, m.stages[len(m.stages)-1].be

	emb, err := f.Tensor("token_embd.weight")
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrTensor, err)
	}
	if len(emb.Shape) != 2 || emb.Shape[0] != int64(cfg.Embd) || emb.Shape[1] < 1 {
		return nil, fmt.Errorf("%w: token_embd.weight has shape %v, want [%d, vocab]", ErrTensor, emb.Shape, cfg.Embd)
	}
	cfg.Vocab = int(emb.Shape[1])
	m.Config.Vocab = cfg.Vocab

	l := loader{f: f, be: first, m: m}
	m.tokEmbd = l.matrix("token_embd.weight", cfg.Vocab, cfg.Embd)
	embBytes := l.bytes["token_embd.weight"]
	l.be = last
	m.outNorm = l.vector("output_norm.weight", cfg.Embd)
	if _, err := f.Tensor("output.weight"); err == nil {
		m.output = l.matrix("output.weight", cfg.Vocab, cfg.Embd)
	} else {
		m.Config.Tied = true
		if last == first {
			m.output = m.tokEmbd
			m.weightsB += embBytes // read whole as the LM head
		} else {
			// A split model keeps a second copy on the last device
			// (matrix counts its bytes).
			m.output = l.matrix("token_embd.weight", cfg.Vocab, cfg.Embd)
		}
	}
	for _, st := range m.stages {
		l.be = st.be
		for i := st.from; i < st.to; i++ {
			p := fmt.Sprintf("blk.%d.", i)
			m.layers = append(m.layers, layer{
				attnNorm: l.vector(p+"attn_norm.weight", cfg.Embd),
				wq:       l.matrix(p+"attn_q.weight", cfg.QDim, cfg.Embd),
				wk:       l.matrix(p+"attn_k.weight", cfg.KVDim, cfg.Embd),
				wv:       l.matrix(p+"attn_v.weight", cfg.KVDim, cfg.Embd),
				qNorm:    l.vector(p+"attn_q_norm.weight", cfg.HeadDim),
				kNorm:    l.vector(p+"attn_k_norm.weight", cfg.HeadDim),
				wo:       l.matrix(p+"attn_output.weight", cfg.Embd, cfg.QDim),
				ffnNorm:  l.vector(p+"ffn_norm.weight", cfg.Embd),
				wGate:    l.matrix(p+"ffn_gate.weight", cfg.FF, cfg.Embd),
				wUp:      l.matrix(p+"ffn_up.weight", cfg.FF, cfg.Embd),
				wDown:    l.matrix(p+"ffn_down.weight", cfg.Embd, cfg.FF),
			})
		}
	}
	if l.err != nil {
		return nil, l.err
	}
	// The embedding table is only read a row at a time; it counts towards
	// the bytes of a step only when it doubles as the LM head (added above).
	m.weightsB -= embBytes
	m.rope = ropeParams(m.Config)
	return m, nil
}

// ropeParams turns the configuration into the backend's rope description,
// following llama.cpp: YaRN uses frequency scale 1/factor, extrapolation
// mix 1 and multiplies cos/sin by attn_factor·(1 + 0.1·ln(factor)).
func ropeParams(c Config) backend.Rope {
	r := backend.Rope{Dims: c.HeadDim, Base: float32(c.RopeBase), Scale: 1, AttnMul: 1,
		BetaFast: float32(c.Scaling.BetaFast), BetaSlow: float32(c.Scaling.BetaSlow), OrigCtx: c.Scaling.OrigContext}
	switch c.Scaling.Type {
	case "linear":
		r.Scale = float32(1 / c.Scaling.Factor)
	case "yarn":
		r.Scale = float32(1 / c.Scaling.Factor)
		r.ExtMix = 1
		r.AttnMul = float32(c.Scaling.AttnFactor)
	}
	return r
}

// Backend is the backend of the model's last stage (the one that computes
// the logits): the only backend unless the model is split.
func (m *Model) Backend() backend.Backend { return m.stages[len(m.stages)-1].be }

// Backends lists the backends the model runs on, first layers first, with
// how many layers each runs.
func (m *Model) Backends() ([]backend.Backend, []int) {
	var bes []backend.Backend
	var layers []int
	for _, st := range m.stages {
		bes = append(bes, st.be)
		layers = append(layers, st.to-st.from)
	}
	return bes, layers
}

// WeightBytesPerToken is the number of weight bytes one forward step reads
// (every matrix once; the embedding table only a row per token). It sets
// the memory-bandwidth ceiling for generating one token.
func (m *Model) WeightBytesPerToken() int64 { return m.weightsB }

// loader prepares tensors on the backend, checking names and shapes; the
// first error sticks so Load reads as a list.
type loader struct {
	f     *gguf.File
	be    backend.Backend
	m     *Model
	err   error
	bytes map[string]int64
}

func (l *loader) tensor(name string, shape ...int) (gguf.Tensor, bool) {
	if l.err != nil {
		return gguf.Tensor{}, false
	}
	t, err := l.f.Tensor(name)
	if err != nil {
		l.err = fmt.Errorf("%w: %w", ErrTensor, err)
		return t, false
	}
	ok := len(t.Shape) == len(shape)
	for i := 0; ok && i < len(shape); i++ {
		ok = t.Shape[i] == int64(shape[i])
	}
	if !ok {
		l.err = fmt.Errorf("%w: %s has shape %v, the configuration needs %v", ErrTensor, name, t.Shape, shape)
		return t, false
	}
	return t, true
}

// matrix loads a (rows, cols) weight; in the file its shape is [cols, rows].
func (l *loader) matrix(name string, rows, cols int) backend.Weight {
	t, ok := l.tensor(name, cols, rows)
	if !ok {
		return nil
	}
	w, err := l.be.LoadWeight(name, t.Type, rows, cols, t.Data)
	if err != nil {
		l.err = fmt.Errorf("%w: %s: %w", ErrTensor, name, err)
		return nil
	}
	if l.bytes == nil {
		l.bytes = map[string]int64{}
	}
	l.bytes[name] = t.Size
	l.m.weightsB += t.Size
	return w
}

// vector loads a 1-D float tensor (norm weights), converting to float32.
func (l *loader) vector(name string, n int) backend.Vector {
	t, ok := l.tensor(name, n)
	if !ok {
		return nil
	}
	v := make([]float32, n)
	if err := tensor.DequantizeRow(t.Type, v, t.Data); err != nil {
		l.err = fmt.Errorf("%w: %s: %w", ErrTensor, name, err)
		return nil
	}
	for i, x := range v {
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			l.err = fmt.Errorf("%w: %s[%d] is %g", ErrTensor, name, i, x)
			return nil
		}
	}
	vec, err := l.be.LoadVector(name, v)
	if err != nil {
		l.err = fmt.Errorf("%w: %s: %w", ErrTensor, name, err)
		return nil
	}
	return vec
}
