package cpu

import (
	"github.com/gollm/gollm/backend"
	"github.com/gollm/gollm/kernels"
	"github.com/gollm/gollm/kvcache"
	"github.com/gollm/gollm/tensor"
)

// Tasks: the loops the operations split over the worker pool.
//
// Each task is a struct holding an operation's arguments and a run method
// that does the part [lo, hi) of its loop (rows of a batch, output rows of
// a product, or (token, KV head) jobs). The structs are fields of Backend
// and their run method values (fn) are made once in New: the pool then
// gets the same function value at every call. Handing it a closure
// instead would allocate on every operation, a few hundred times per
// forward step.

// minParallel is the least work (values touched) worth splitting a
// row-wise operation for: below it, waking the helpers costs more than it
// saves.
const minParallel = 1 << 14

// forRows runs fn over n rows of cols values: on the calling goroutine
// when there is little work, else split over the pool.
func (b *Backend) forRows(n, cols int, fn func(lo, hi int)) {
	if n*cols < minParallel {
		fn(0, n)
		return
	}
	b.pool.For(n, fn)
}

func (b *Backend) initTasks() {
	b.embed.fn = b.embed.run
	b.norm.fn = b.norm.run
	b.swiglu.fn = b.swiglu.run
	b.add.fn = b.add.run
	b.quant.fn = b.quant.run
	b.linear.b = b
	b.linear.fn = b.linear.run
	b.rope.fn = b.rope.run
	b.attn.b = b
	b.attn.fn = b.attn.run
}

// embedTask dequantizes table row ids[i] into dst row i.
type embedTask struct {
	dst *mat
	w   *weight
	ids []int32
	fn  func(lo, hi int)
}

func (t *embedTask) run(lo, hi int) {
	w := t.w
	for i := lo; i < hi; i++ {
		r := int(t.ids[i])
		if err := tensor.DequantizeRow(w.t, t.dst.row(i), w.data[r*w.rowBytes:(r+1)*w.rowBytes]); err != nil {
			panic(err) // unreachable: the type was checked at load
		}
	}
}

// normTask applies RMSNorm with weights w to every len(w) values of each
// row: the whole row (RMSNorm) or each head (RMSNormHeads).
type normTask struct {
	dst, x *mat
	w      vector
	eps    float32
	fn     func(lo, hi int)
}

func (t *normTask) run(lo, hi int) {
	hd := len(t.w)
	for i := lo; i < hi; i++ {
		d, x := t.dst.row(i), t.x.row(i)
		for off := 0; off+hd <= len(x); off += hd {
			kernels.RMSNorm(d[off:off+hd], x[off:off+hd], t.w, t.eps)
		}
	}
}

// swigluTask: dst = silu(gate) * up, row by row.
type swigluTask struct {
	dst, gate, up *mat
	fn            func(lo, hi int)
}

func (t *swigluTask) run(lo, hi int) {
	for i := lo; i < hi; i++ {
		kernels.SwiGLU(t.dst.row(i), t.gate.row(i), t.up.row(i))
	}
}

// addTask: dst += x, row by row.
type addTask struct {
	dst, x *mat
	fn     func(lo, hi int)
}

func (t *addTask) run(lo, hi int) {
	for i := lo; i < hi; i++ {
		kernels.Add(t.dst.row(i), t.x.row(i))
	}
}

// quantTask quantizes rows of x into buf, format t, rb bytes per row.
type quantTask struct {
	x   *mat
	t   tensor.DType
	rb  int
	buf []byte // (token, rb)
	fn  func(lo, hi int)
}

func (t *quantTask) run(lo, hi int) {
	for i := lo; i < hi; i++ {
		kernels.QuantizeRow(t.t, t.buf[i*t.rb:(i+1)*t.rb], t.x.row(i))
	}
}

// linearTask computes output rows [lo, hi) of the projections, counting
// rows through outs in order (row g of the second projection is global
// row outs[0].W.Rows() + g), with the quantized activations in b.acts.
type linearTask struct {
	b    *Backend
	n    int
	outs []backend.Projection
	fn   func(lo, hi int)
}

func (t *linearTask) run(lo, hi int) {
	base := 0
	for _, o := range t.outs {
		w, d := o.W.(*weight), asMat(o.Dst)
		r0, r1 := max(lo-base, 0), min(hi-base, w.rows)
		if r0 < r1 {
			kernels.MatMul(d.data, d.cols, w.t, w.data, w.act, t.b.acts[w.act], t.n, w.cols, r0, r1)
		}
		base += w.rows
	}
}

// ropeTask rotates the heads of row i by position pos[i]; tab is the
// backend's angle table, (position, cos half | sin half).
type ropeTask struct {
	x    *mat
	pos  []int32
	dims int
	tab  []float32
	fn   func(lo, hi int)
}

func (t *ropeTask) run(lo, hi int) {
	half := t.dims / 2
	for i := lo; i < hi; i++ {
		a := t.tab[int(t.pos[i])*t.dims : (int(t.pos[i])+1)*t.dims]
		row := t.x.row(i)
		kernels.RoPE(row[:len(row)/t.dims*t.dims], t.dims, a[:half], a[half:])
	}
}

// attnTask runs attention jobs: job = token·KVHeads + KV head.
type attnTask struct {
	b      *Backend
	h      *kvcache.HostStorage
	q, out *mat
	layer  int
	p      *backend.AttnPlan
	fn     func(lo, hi int)
}

func (t *attnTask) run(lo, hi int) {
	p, h, layer := t.p, t.h, t.layer
	hd, group, bs, kvDim := p.HeadDim, p.Heads/p.KVHeads, p.BlockSize, h.KVDim
	sp, _ := t.b.scores.Get().(*[]float32)
	if sp == nil {
		sp = new([]float32)
	}
	for job := lo; job < hi; job++ {
		i, g := job/p.KVHeads, job%p.KVHeads
		qg := t.q.row(i)[g*group*hd : (g+1)*group*hd]    // (head in group, hd)
		out := t.out.row(i)[g*group*hd : (g+1)*group*hd] // (head in group, hd)
		npos := int(p.Pos[i]) + 1
		if cap(*sp) < group*npos {
			*sp = make([]float32, group*npos)
		}
		scores := (*sp)[:group*npos] // (head in group, position)
		table := p.Tables[i]
		for j0 := 0; j0 < npos; j0 += bs {
			rows := min(bs, npos-j0)
			off := int(table[j0/bs])*bs*kvDim + g*hd // the block's first key, this KV head
			if h.DType == tensor.F16 {
				kernels.AttnScoresF16(scores[j0:], npos, qg, group, hd, h.K16[layer][off:], kvDim, rows, p.Scale)
			} else {
				kernels.AttnScores(scores[j0:], npos, qg, group, hd, h.K32[layer][off:], kvDim, rows, p.Scale)
			}
		}
		for k := 0; k < group; k++ {
			kernels.Softmax(scores[k*npos : (k+1)*npos])
		}
		clear(out)
		for j0 := 0; j0 < npos; j0 += bs {
			rows := min(bs, npos-j0)
			off := int(table[j0/bs])*bs*kvDim + g*hd
			if h.DType == tensor.F16 {
				kernels.AttnValuesF16(out, group, hd, scores[j0:], npos, h.V16[layer][off:], kvDim, rows)
			} else {
				kernels.AttnValues(out, group, hd, scores[j0:], npos, h.V32[layer][off:], kvDim, rows)
			}
		}
	}
	t.b.scores.Put(sp)
}
