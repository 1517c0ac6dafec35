package model

import (
	"context"
	"fmt"
	"slices"

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
	// OnProgress, when set, is told how far the check of the weights has
	// come (see finite.go): done of total bytes, total being the size of
	// every weight the model uses. It is called once with done = 0 before
	// the first byte is read, then after each piece of about 1 MiB, with
	// done never going down and, when the check passes, ending at total.
	// That check reads every page of the weights, so on a fresh mapping
	// of a file not in the page cache it is most of the time a load
	// takes: the bytes checked are the bytes paged in. Calls come from the
	// checking goroutines, one at a time; keep it short (a progress bar's
	// redraw).
	OnProgress func(done, total int64)
}

// stage is a run of consecutive layers on one backend. A model on one
// device has one stage; a model split across devices has two, and the
// residual stream is copied from one to the next between them.
type stage struct {
	be       backend.Backend
	from, to int // layers [from, to)
}

// layer holds one transformer block's weights. The pieces a family does
// not have (see family.go) are nil.
type layer struct {
	attnNorm backend.Vector // (embd)
	wq       backend.Weight // (qDim, embd)
	wk       backend.Weight // (kvDim, embd)
	wv       backend.Weight // (kvDim, embd)
	bq       backend.Vector // (qDim) Qwen2's query bias
	bk       backend.Vector // (kvDim)
	bv       backend.Vector // (kvDim)
	qNorm    backend.Vector // (headDim), applied to every query head (Qwen3)
	kNorm    backend.Vector // (headDim), applied to every key head (Qwen3)
	wo       backend.Weight // (embd, qDim)
	ffnNorm  backend.Vector // (embd)
	wGate    backend.Weight // (ff, embd)
	wUp      backend.Weight // (ff, embd)
	wDown    backend.Weight // (embd, ff)
	// A mixture of experts (qwen3moe) instead of wGate, wUp, wDown:
	router   backend.Weight   // (expert, embd) ffn_gate_inp, F32
	gateExps []backend.Weight // (expert) of (expertFF, embd): views into ffn_gate_exps
	upExps   []backend.Weight // (expert) of (expertFF, embd): views into ffn_up_exps
	downExps []backend.Weight // (expert) of (embd, expertFF): views into ffn_down_exps
}

// Model is a loaded model of one of the families (family.go):
// hyperparameters and weights prepared on a backend. It holds no per-sequence state, so one Model serves any number
// of States (contexts).
type Model struct {
	Config Config

	stages   []stage
	tokEmbd  backend.Weight // (vocab, embd), row t is token t's embedding (on the first stage)
	outNorm  backend.Vector // (embd)
	output   backend.Weight // (vocab, embd), the LM head (token_embd when tied; on the last stage)
	layers   []layer
	rope     backend.Rope
	ropeFreq []float32 // (headDim/2) rope_freqs (Llama 3.1), the target of rope.Factors; nil without
	weightsB int64     // bytes of matrices read per forward step
}

// Load reads a model from an open GGUF file onto a backend. The
// weights are views into the file's mapping (on the CPU) or uploaded once
// (on a GPU); the file must stay open while the model is used.
//
// Load checks everything before it gives a backend anything: the
// configuration (ReadConfig), then the name, shape and type of every
// tensor the model needs, stopping at the first that is missing or wrong,
// then that every weight is finite (see finite.go). Only then are the
// tensors loaded, so a broken file costs neither device memory nor the
// time to build the layers before it.
func Load(f *gguf.File, be backend.Backend, opts Options) (*Model, error) {
	return LoadContext(context.Background(), f, be, opts)
}

// LoadContext is Load, stopping with ctx.Err() when ctx is done: it looks
// at ctx before each piece of about 1 MiB of the weight check (the long
// part of a load, see Options.OnProgress) and before each tensor is
// loaded onto the backend (an upload, on a GPU). So a cancelled load stops
// within one piece per checking goroutine, whatever the model's size.
func LoadContext(ctx context.Context, f *gguf.File, be backend.Backend, opts Options) (*Model, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
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
		if err := s.check(optionScalingNames); err != nil {
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

	p, err := plan(f, m)
	if err != nil {
		return nil, err
	}
	if err := checkFinite(ctx, p.unique(), opts.OnProgress); err != nil {
		return nil, err
	}
	if p.ropeFreqs != nil {
		if m.ropeFreq, err = readRopeFreqs(p.ropeFreqs); err != nil {
			return nil, err
		}
	}
	for _, pt := range p.all() {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if err := pt.load(); err != nil {
			return nil, err
		}
	}
	m.tokEmbd, m.outNorm, m.output = p.tokEmbd.w, p.outNorm.v, p.output.w
	m.layers = make([]layer, cfg.Layers)
	for i := range m.layers {
		m.layers[i] = newLayer(p.layers[i])
	}
	// A step reads every layer matrix and the LM head once; the embedding
	// table only a row per token, so it counts only as the LM head. A
	// token reads expert_used_count of each layer's expert_count experts.
	for _, pt := range p.all() {
		switch {
		case pt.experts > 0:
			m.weightsB += pt.t.Size / int64(pt.experts) * int64(cfg.ExpertsUsed)
		case pt.rows > 0 && pt != p.tokEmbd && pt != p.output:
			m.weightsB += pt.t.Size
		}
	}
	m.weightsB += p.output.t.Size
	m.rope = ropeParams(m.Config)
	if m.ropeFreq != nil {
		m.rope.Factors = &m.ropeFreq
	}
	return m, nil
}

// readRopeFreqs reads rope_freqs.weight: head_dim/2 factors that divide
// the rotation angles, so each must be positive (finiteness was checked
// with the other tensors). Llama 3.1's are 1 for the fast pairs and up to
// 8 (its scaling factor) for the slow ones.
func readRopeFreqs(pt *part) ([]float32, error) {
	v := make([]float32, pt.cols)
	if err := tensor.DequantizeRow(pt.t.Type, v, pt.t.Data); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrTensor, pt.name, err)
	}
	for i, x := range v {
		if !(x > 0) {
			return nil, fmt.Errorf("%w: %s at %s is %g, want a positive factor", ErrTensor, pt, pt.at(i, 1), x)
		}
	}
	return v, nil
}

// ropeParams turns the configuration into the backend's rope description,
// following llama.cpp: YaRN uses frequency scale 1/factor, extrapolation
// mix 1 and multiplies cos/sin by attn_factor·(1 + 0.1·ln(factor)).
func ropeParams(c Config) backend.Rope {
	r := backend.Rope{Style: c.fam.rope, Dims: c.HeadDim, Base: float32(c.RopeBase), Scale: 1, AttnMul: 1,
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

// WeightBytesPerToken is the number of weight bytes one forward step of
// one token reads (every matrix once; the embedding table only a row per
// token; of a mixture of experts, the router and the expert_used_count
// experts the token is routed to: the active parameters). It sets the
// memory-bandwidth ceiling for generating one token.
func (m *Model) WeightBytesPerToken() int64 { return m.weightsB }

// part is one tensor the model needs: its name, its shape in the model's
// terms, and the backend it goes to; t, and then w or v, are filled in as
// Load checks and loads it.
type part struct {
	name       string
	rows, cols int // a (rows, cols) matrix; a vector has rows 0 and cols values
	experts    int // > 0: a 3-D tensor of that many (rows, cols) matrices, one per expert
	be         backend.Backend
	t          gguf.Tensor
	w          backend.Weight   // a loaded matrix
	ws         []backend.Weight // (expert) a loaded 3-D tensor: one view per expert
	v          backend.Vector   // a loaded vector
}

func matrix(name string, rows, cols int) *part { return &part{name: name, rows: rows, cols: cols} }
func vector(name string, n int) *part          { return &part{name: name, cols: n} }

// String names the part for errors: "blk.0.ffn_up.weight (f16, 768×256)",
// "blk.0.ffn_up_exps.weight (q6_k, 8×256×256)" (experts × rows × cols).
func (p *part) String() string {
	if p.experts > 0 {
		return fmt.Sprintf("%s (%s, %d×%d×%d)", p.name, p.t.Type, p.experts, p.rows, p.cols)
	}
	if p.rows == 0 {
		return fmt.Sprintf("%s (%s, %d)", p.name, p.t.Type, p.cols)
	}
	return fmt.Sprintf("%s (%s, %d×%d)", p.name, p.t.Type, p.rows, p.cols)
}

// at names the place of n values starting at value i, which lie in one
// row: "row 5, column 17", "row 1, columns 0-255", "element 3".
func (p *part) at(i, n int) string {
	if p.rows == 0 {
		if n == 1 {
			return fmt.Sprintf("element %d", i)
		}
		return fmt.Sprintf("elements %d-%d", i, i+n-1)
	}
	r, c := i/p.cols, i%p.cols
	where := fmt.Sprintf("row %d", r)
	if p.experts > 0 {
		where = fmt.Sprintf("expert %d, row %d", r/p.rows, r%p.rows)
	}
	if n == 1 {
		return fmt.Sprintf("%s, column %d", where, c)
	}
	return fmt.Sprintf("%s, columns %d-%d", where, c, c+n-1)
}

// find looks the part up in the file and checks its shape and type,
// without touching its data. In the file a matrix's shape is [cols, rows]
// (ne0 first), a 3-D expert tensor's [cols, rows, experts].
func (p *part) find(f *gguf.File) error {
	t, err := f.Tensor(p.name)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrTensor, err)
	}
	want := []int64{int64(p.cols)}
	if p.rows > 0 {
		want = append(want, int64(p.rows))
	}
	if p.experts > 0 {
		want = append(want, int64(p.experts))
	}
	if !slices.Equal(t.Shape, want) {
		return fmt.Errorf("%w: %s has shape %v, the configuration needs %v", ErrTensor, p.name, t.Shape, want)
	}
	if !checkable(t.Type) {
		return fmt.Errorf("%w: %s has type %s, which gollm cannot read", ErrTensor, p.name, t.Type)
	}
	p.t = t
	return nil
}

// load prepares the part on its backend. A 3-D expert tensor becomes one
// weight per expert, each a view of its own rows·rowBytes bytes of the
// mapping (expert e's matrix is the e-th slab of the tensor, ggml's
// layout), so the experts stay in their file format and nothing is
// copied on the CPU.
func (p *part) load() error {
	var err error
	if p.experts > 0 {
		slab := len(p.t.Data) / p.experts // find checked the shape; gguf the size
		p.ws = make([]backend.Weight, p.experts)
		for e := range p.ws {
			name := fmt.Sprintf("%s[%d]", p.name, e)
			if p.ws[e], err = p.be.LoadWeight(name, p.t.Type, p.rows, p.cols, p.t.Data[e*slab:(e+1)*slab]); err != nil {
				return fmt.Errorf("%w: %s: %w", ErrTensor, p.name, err)
			}
		}
		return nil
	}
	if p.rows > 0 {
		p.w, err = p.be.LoadWeight(p.name, p.t.Type, p.rows, p.cols, p.t.Data)
	} else {
		v := make([]float32, p.cols)
		if err = tensor.DequantizeRow(p.t.Type, v, p.t.Data); err == nil {
			p.v, err = p.be.LoadVector(p.name, v)
		}
	}
	if err != nil {
		return fmt.Errorf("%w: %s: %w", ErrTensor, p.name, err)
	}
	return nil
}

// maxVocab bounds the rows of token_embd: a logits row is vocab float32s
// per output token. The largest real vocabularies have 262144 tokens.
const maxVocab = 1 << 22

// loadPlan is every tensor a model needs, found and checked in the file.
type loadPlan struct {
	tokEmbd, outNorm, output *part
	ropeFreqs                *part // rope_freqs.weight, read on the host (nil: none)
	layers                   [][numLayerTensors]*part
}

// plan finds every tensor m's configuration needs, in the order Load
// loads them, and stops at the first that is missing, misshaped or of a
// type gollm cannot read. It reads only the file's tensor table, and
// allocates per-layer state only for layers whose tensors were all found,
// so a configuration claiming thousands of layers the file does not hold
// fails at the first missing one, in microseconds.
func plan(f *gguf.File, m *Model) (*loadPlan, error) {
	cfg := &m.Config
	first, last := m.stages[0].be, m.stages[len(m.stages)-1].be
	p := &loadPlan{}

	emb, err := f.Tensor("token_embd.weight")
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrTensor, err)
	}
	if len(emb.Shape) != 2 || emb.Shape[0] != int64(cfg.Embd) || emb.Shape[1] < 1 || emb.Shape[1] > maxVocab {
		return nil, fmt.Errorf("%w: token_embd.weight has shape %v, want [%d, vocab] with vocab 1 to %d", ErrTensor, emb.Shape, cfg.Embd, maxVocab)
	}
	cfg.Vocab = int(emb.Shape[1])
	if cfg.declaredVocab != 0 && cfg.declaredVocab != cfg.Vocab {
		return nil, fmt.Errorf("%w: %s.vocab_size = %d, but token_embd.weight has %d rows", ErrConfig, cfg.Arch, cfg.declaredVocab, cfg.Vocab)
	}

	p.tokEmbd = matrix("token_embd.weight", cfg.Vocab, cfg.Embd)
	p.tokEmbd.be = first
	p.outNorm = vector("output_norm.weight", cfg.Embd)
	p.outNorm.be = last
	switch {
	case hasTensor(f, "output.weight"):
		p.output = matrix("output.weight", cfg.Vocab, cfg.Embd)
		p.output.be = last
	case last == first:
		cfg.Tied = true
		p.output = p.tokEmbd // the same weight, loaded once
	default:
		// A split model keeps a second copy on the last device.
		cfg.Tied = true
		p.output = matrix("token_embd.weight", cfg.Vocab, cfg.Embd)
		p.output.be = last
	}
	for _, pt := range []*part{p.tokEmbd, p.outNorm, p.output} {
		if err := pt.find(f); err != nil {
			return nil, err
		}
	}
	if cfg.fam.ropeFreqs && hasTensor(f, "rope_freqs.weight") {
		p.ropeFreqs = vector("rope_freqs.weight", cfg.HeadDim/2)
		if err := p.ropeFreqs.find(f); err != nil {
			return nil, err
		}
	}
	for _, st := range m.stages {
		for i := st.from; i < st.to; i++ {
			parts := layerParts(cfg, i)
			for _, pt := range parts {
				if pt == nil {
					continue // a piece the family does not have
				}
				pt.be = st.be
				if err := pt.find(f); err != nil {
					return nil, err
				}
			}
			p.layers = append(p.layers, parts)
		}
	}
	return p, nil
}

// hasTensor reports whether the file has a tensor of that name.
func hasTensor(f *gguf.File, name string) bool { _, err := f.Tensor(name); return err == nil }

// all lists every part in load order; the LM head appears once when it is
// token_embd itself.
func (p *loadPlan) all() []*part {
	out := []*part{p.tokEmbd, p.outNorm}
	if p.output != p.tokEmbd {
		out = append(out, p.output)
	}
	for i := range p.layers {
		for _, pt := range p.layers[i] {
			if pt != nil {
				out = append(out, pt)
			}
		}
	}
	return out
}

// unique is all without second copies of the same tensor (a split tied
// model loads token_embd twice), plus rope_freqs (read on the host, not
// loaded on a backend): the data to check for finiteness.
func (p *loadPlan) unique() []*part {
	out := p.all()
	if p.output != p.tokEmbd && p.output.name == p.tokEmbd.name {
		out = slices.DeleteFunc(out, func(pt *part) bool { return pt == p.output })
	}
	if p.ropeFreqs != nil {
		out = append(out, p.ropeFreqs)
	}
	return out
}
