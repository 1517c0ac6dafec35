package model

import (
	"fmt"
	"math"

	"github.com/gollm/gollm/backend"
	"github.com/gollm/gollm/flat"
	"github.com/gollm/gollm/kvcache"
	"github.com/gollm/gollm/tensor"
)

// StateOptions sizes a State.
type StateOptions struct {
	Capacity  int          // tokens in the shared KV pool (the context size)
	BlockSize int          // tokens per KV block (0: kvcache.DefaultBlockSize)
	KVType    tensor.DType // tensor.F16 or tensor.F32 (note: F32 is ggml type 0, the zero value)
	MaxBatch  int          // most tokens one Forward may carry
	// MaxOutputs is the most tokens of one Forward that may ask for
	// logits (0: MaxBatch). A logits row is vocab floats (600 KB for
	// Qwen3), so a context that only ever needs the last token of each
	// sequence keeps this at its number of sequences.
	MaxOutputs int
	// PrefixCache lets sequences share full KV blocks by content (see
	// package kvcache).
	PrefixCache bool
}

// State is what a set of sequences needs besides the weights: the paged
// KV cache they share and scratch buffers for one forward step.
type State struct {
	KV     *kvcache.Cache
	max    int // tokens per Forward
	maxOut int // logits rows per Forward

	stages []stageState // one per model stage (one unless the model is split)
	host   []float32    // (token, embd) staging for copying x between stages

	plan    backend.AttnPlan
	outRows []int32 // (output) batch index of each output token

	// The products of each layer, built once: passing these slices to
	// Linear allocates nothing, where a literal list would every step.
	proj []layerProj          // (layer)
	head []backend.Projection // logits = Wout · x̂

	route *routing // a mixture of experts' routing on the host (nil: dense)
}

// layerProj lists one layer's products with their destination buffers.
type layerProj struct {
	qkv    []backend.Projection // q, k, v = Wq·x̂, Wk·x̂, Wv·x̂
	out    []backend.Projection // Wo · attention
	gateUp []backend.Projection // Wgate·x̂, Wup·x̂
	down   []backend.Projection // Wdown · swiglu

	// A mixture of experts instead of gateUp and down:
	router    []backend.Projection   // router logits = Wrouter · x̂
	expGateUp [][]backend.Projection // (expert) Wgate,e·x̂, Wup,e·x̂ of the gathered rows
	expDown   [][]backend.Projection // (expert) Wdown,e · swiglu
}

// stageState holds one stage's KV storage and scratch activations, one
// row per batch token, on that stage's backend.
type stageState struct {
	store  backend.KV     // K and V of the stage's layers
	x      backend.Buffer // (token, embd) the residual stream
	xn     backend.Buffer // (token, embd) normalised input of a sub-layer, then its output
	q      backend.Buffer // (token, qDim)
	k      backend.Buffer // (token, kvDim)
	v      backend.Buffer // (token, kvDim)
	att    backend.Buffer // (token, qDim) attention output before the projection
	gate   backend.Buffer // (token, ff), or (token, expertFF) for a mixture of experts
	up     backend.Buffer // (token, ff), or (token, expertFF)
	xo     backend.Buffer // (output, embd) rows that produce logits (last stage)
	logits backend.Buffer // (output, vocab) (last stage)
	moe    *moeScratch    // a mixture of experts' buffers (nil: dense)
}

// stores fans copy-on-write block copies out to every stage's storage.
type stores []backend.KV

func (s stores) CopyBlock(dst, src int) {
	for _, st := range s {
		st.CopyBlock(dst, src)
	}
}

// NewState allocates a KV pool and scratch buffers on the model's backends.
func (m *Model) NewState(o StateOptions) (*State, error) {
	c := m.Config
	if o.MaxBatch < 1 {
		return nil, fmt.Errorf("%w: MaxBatch %d", ErrConfig, o.MaxBatch)
	}
	kvCfg := kvcache.Config{BlockSize: o.BlockSize, Capacity: o.Capacity, PrefixCache: o.PrefixCache}
	if kvCfg.BlockSize == 0 {
		kvCfg.BlockSize = kvcache.DefaultBlockSize
	}
	if o.Capacity < 1 {
		return nil, fmt.Errorf("%w: context capacity %d tokens", ErrConfig, o.Capacity)
	}
	n := o.MaxBatch
	if o.MaxOutputs <= 0 || o.MaxOutputs > n {
		o.MaxOutputs = n
	}
	s := &State{max: n, maxOut: o.MaxOutputs}
	var all stores
	for i, st := range m.stages {
		be := st.be
		store, err := be.NewKV(o.KVType, st.to-st.from, c.KVDim, kvCfg.BlockSize, kvcache.NumBlocks(kvCfg))
		if err != nil {
			return nil, err
		}
		all = append(all, store)
		ff := c.FF
		if c.fam.ffn == ffnMoE {
			ff = c.ExpertFF // the gathered rows of one expert at a time
		}
		ss := stageState{store: store,
			x: be.NewBuffer(n, c.Embd), xn: be.NewBuffer(n, c.Embd),
			q: be.NewBuffer(n, c.QDim), k: be.NewBuffer(n, c.KVDim), v: be.NewBuffer(n, c.KVDim),
			att:  be.NewBuffer(n, c.QDim),
			gate: be.NewBuffer(n, ff), up: be.NewBuffer(n, ff),
		}
		if c.fam.ffn == ffnMoE {
			// An expert gets each token at most once, so n rows suffice.
			ss.moe = &moeScratch{router: be.NewBuffer(n, c.Experts),
				x: be.NewBuffer(n, c.Embd), y: be.NewBuffer(n, c.Embd), out: be.NewBuffer(n*c.ExpertsUsed, c.Embd)}
		}
		if i == len(m.stages)-1 {
			ss.xo, ss.logits = be.NewBuffer(o.MaxOutputs, c.Embd), be.NewBuffer(o.MaxOutputs, c.Vocab)
		}
		s.stages = append(s.stages, ss)
	}
	if len(m.stages) > 1 {
		s.host = make([]float32, n*c.Embd)
	}
	if c.fam.ffn == ffnMoE {
		s.route = newRouting(n, c.Experts, c.ExpertsUsed)
	}
	for si, st := range m.stages {
		ss := &s.stages[si]
		for l := st.from; l < st.to; l++ {
			L := &m.layers[l]
			P := layerProj{
				qkv: []backend.Projection{{Dst: ss.q, W: L.wq}, {Dst: ss.k, W: L.wk}, {Dst: ss.v, W: L.wv}},
				out: []backend.Projection{{Dst: ss.xn, W: L.wo}},
			}
			if c.fam.ffn == ffnMoE {
				P.router = []backend.Projection{{Dst: ss.moe.router, W: L.router}}
				for e := range L.gateExps {
					P.expGateUp = append(P.expGateUp, []backend.Projection{{Dst: ss.gate, W: L.gateExps[e]}, {Dst: ss.up, W: L.upExps[e]}})
					P.expDown = append(P.expDown, []backend.Projection{{Dst: ss.moe.y, W: L.downExps[e]}})
				}
			} else {
				P.gateUp = []backend.Projection{{Dst: ss.gate, W: L.wGate}, {Dst: ss.up, W: L.wUp}}
				P.down = []backend.Projection{{Dst: ss.xn, W: L.wDown}}
			}
			s.proj = append(s.proj, P)
		}
	}
	last := &s.stages[len(s.stages)-1]
	s.head = []backend.Projection{{Dst: last.logits, W: m.output}}
	var storage kvcache.Storage = all[0]
	if len(all) > 1 {
		storage = all
	}
	cache, err := kvcache.New(kvCfg, storage)
	if err != nil {
		return nil, err
	}
	s.KV = cache
	s.plan = backend.AttnPlan{BlockSize: kvCfg.BlockSize, Heads: c.Heads, KVHeads: c.KVHeads,
		HeadDim: c.HeadDim, Scale: float32(1 / math.Sqrt(float64(c.HeadDim)))}
	return s, nil
}

// MaxBatch is the most tokens one Forward can carry.
func (s *State) MaxBatch() int { return s.max }

// Forward computes one step for every token of the batch and writes the
// logits of the tokens flagged Output into logits, row after row in batch
// order: (output, vocab). Before calling it, room for each token must have
// been made in its sequence with s.KV.Append: token positions must lie
// inside the sequence's allocated length. Forward writes each token's key
// and value into the cache.
func (m *Model) Forward(s *State, b *flat.Batch, logits []float32) error {
	if err := m.prepare(s, b, logits); err != nil {
		return err
	}
	c, n, p := m.Config, b.Len(), &s.plan
	eps := float32(c.RMSEps)

	for si, st := range m.stages {
		be, ss := st.be, &s.stages[si]
		if si == 0 {
			be.Embed(ss.x, m.tokEmbd, b.Tokens)
		} else {
			// The residual stream moves to the next device.
			prev := &s.stages[si-1]
			m.stages[si-1].be.Read(s.host, prev.x, n)
			be.Write(ss.x, s.host, n)
		}
		for l := st.from; l < st.to; l++ {
			L, P := &m.layers[l], &s.proj[l]
			kvl := l - st.from // the layer's index in this stage's KV storage
			// Attention block: x += Wo · attention(rope(q), rope(k), v) with
			// q, k, v = Wq·x̂, Wk·x̂, Wv·x̂, x̂ = rmsnorm(x)
			be.RMSNorm(ss.xn, ss.x, L.attnNorm, eps, n)
			be.Linear(ss.xn, n, P.qkv...)    // q (token, qDim), k, v (token, kvDim)
			addBiases(be, n, ss, L)          // q += bq, k += bk, v += bv (Qwen2)
			normHeads(be, eps, n, ss, L)     // q, k: rmsnorm of every head (Qwen3)
			be.RoPE(ss.q, n, b.Pos, &m.rope) // rotate each head by its token's position
			be.RoPE(ss.k, n, b.Pos, &m.rope) // (pairs as m.rope.Style says: NORM for llama, NEOX for the Qwens)
			be.StoreKV(ss.store, kvl, ss.k, ss.v, p)
			be.Attention(ss.att, ss.q, ss.store, kvl, p) // att (token, qDim)
			be.Linear(ss.att, n, P.out...)               // xn = Wo · att (token, embd)
			be.Add(ss.x, ss.xn, n)

			// Feed-forward block: x += ffn(rmsnorm(x))
			be.RMSNorm(ss.xn, ss.x, L.ffnNorm, eps, n)
			m.feedForward(be, n, ss, P, s) // xn = ffn(xn) (token, embd)
			be.Add(ss.x, ss.xn, n)
		}
	}
	// Only the tokens that want logits go through the LM head.
	nOut := len(s.outRows)
	if nOut == 0 {
		return m.err()
	}
	be, ss := m.Backend(), &s.stages[len(s.stages)-1]
	be.Gather(ss.xo, ss.x, s.outRows)
	be.RMSNorm(ss.xo, ss.xo, m.outNorm, eps, nOut)
	be.Linear(ss.xo, nOut, s.head...) // logits = Wout · xo
	be.Read(logits, ss.logits, nOut)
	return m.err()
}

// addBiases adds the q, k and v biases of a family that has them
// (Qwen2): q[i] += bq, k[i] += bk, v[i] += bv for every token i.
func addBiases(be backend.Backend, n int, ss *stageState, L *layer) {
	if L.bq == nil {
		return
	}
	be.AddBias(ss.q, L.bq, n)
	be.AddBias(ss.k, L.bk, n)
	be.AddBias(ss.v, L.bv, n)
}

// normHeads normalises every query and key head of a family that has q/k
// norms (Qwen3): each headDim-wide slice of q and k goes through an
// RMSNorm with weights qNorm, kNorm (headDim).
func normHeads(be backend.Backend, eps float32, n int, ss *stageState, L *layer) {
	if L.qNorm == nil {
		return
	}
	be.RMSNormHeads(ss.q, L.qNorm, eps, n)
	be.RMSNormHeads(ss.k, L.kNorm, eps, n)
}

// feedForward computes the family's feed-forward block on the normalised
// rows xn (token, embd), leaving its output in xn. A dense family
// (ffnDense):
//
//	xn = W_down · (silu(W_gate·xn) ⊙ W_up·xn)   gate, up (token, ff)
//
// A mixture of experts (ffnMoE, qwen3moe) routes each token to
// expert_used_count of its experts and mixes their outputs (moe.go).
func (m *Model) feedForward(be backend.Backend, n int, ss *stageState, P *layerProj, s *State) {
	if ss.moe != nil {
		m.mixtureOfExperts(be, n, ss, P, s.route)
		return
	}
	be.Linear(ss.xn, n, P.gateUp...) // gate, up
	be.SwiGLU(ss.gate, ss.gate, ss.up, n)
	be.Linear(ss.gate, n, P.down...) // xn = Wdown · gate
}

// err returns the first sticky failure of any of the model's backends.
func (m *Model) err() error {
	for _, st := range m.stages {
		if err := st.be.Err(); err != nil {
			return fmt.Errorf("model: %s: %w", st.be.Name(), err)
		}
	}
	return nil
}

// prepare checks a batch and fills the attention plan: each token's cache
// slot and its sequence's block table.
func (m *Model) prepare(s *State, b *flat.Batch, logits []float32) error {
	n := b.Len()
	if n == 0 {
		return fmt.Errorf("%w: empty batch", ErrBatch)
	}
	if n > s.max {
		return fmt.Errorf("%w: %d tokens, the state was sized for %d", ErrBatch, n, s.max)
	}
	if len(b.Pos) != n || len(b.Seq) != n || len(b.Output) != n {
		return fmt.Errorf("%w: array lengths differ (tokens %d, pos %d, seq %d, output %d)", ErrBatch, n, len(b.Pos), len(b.Seq), len(b.Output))
	}
	p := &s.plan
	p.N = n
	p.Pos = b.Pos
	p.Slots = p.Slots[:0]
	p.Tables = p.Tables[:0]
	s.outRows = s.outRows[:0]
	for i := 0; i < n; i++ {
		tok := b.Tokens[i]
		if tok < 0 || int(tok) >= m.Config.Vocab {
			return fmt.Errorf("%w: token %d at batch index %d is outside the vocabulary of %d", ErrBatch, tok, i, m.Config.Vocab)
		}
		slot := s.KV.Slot(b.Seq[i], int(b.Pos[i]))
		if slot < 0 {
			return fmt.Errorf("%w: sequence %d position %d has no KV slot (sequence holds %d tokens; call KV.Append first)", ErrBatch, b.Seq[i], b.Pos[i], s.KV.Len(b.Seq[i]))
		}
		p.Slots = append(p.Slots, int32(slot))
		p.Tables = append(p.Tables, s.KV.Table(b.Seq[i]))
		if b.Output[i] {
			s.outRows = append(s.outRows, int32(i))
		}
	}
	if len(s.outRows) > s.maxOut {
		return fmt.Errorf("%w: %d tokens ask for logits, the state was sized for %d", ErrBatch, len(s.outRows), s.maxOut)
	}
	if need := len(s.outRows) * m.Config.Vocab; len(logits) < need {
		return fmt.Errorf("%w: logits buffer holds %d floats, %d outputs need %d", ErrBatch, len(logits), len(s.outRows), need)
	}
	return nil
}
