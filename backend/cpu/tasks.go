package cpu

import (
	"sort"

	"github.com/gollm/gollm/backend"
	"github.com/gollm/gollm/kernels"
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
	b.bias.fn = b.bias.run
	b.wsum.fn = b.wsum.run
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

// biasTask: x[i] += b for every row i.
type biasTask struct {
	x  *mat
	b  []float32
	fn func(lo, hi int)
}

func (t *biasTask) run(lo, hi int) {
	for i := lo; i < hi; i++ {
		kernels.Add(t.x.row(i), t.b)
	}
}

// wsumTask: dst[i] = Σ_r w[i·k+r]·x[i·k+r], rank r = 0..k-1 in order.
// For k = 2 and one value: x[2i] = (3, …), x[2i+1] = (5, …), w = (0.75,
// 0.25): x[2i] becomes 2.25, x[2i+1] 1.25, dst[i] = 2.25 + 1.25 = 3.5.
// The same two roundings per term happen whichever other rows the batch
// holds and however the rows are split over the workers.
type wsumTask struct {
	dst, x *mat
	w      []float32
	k      int
	fn     func(lo, hi int)
}

func (t *wsumTask) run(lo, hi int) {
	for i := lo; i < hi; i++ {
		d := t.dst.row(i)
		for r := 0; r < t.k; r++ {
			xr := t.x.row(i*t.k + r)
			kernels.Scale(xr, t.w[i*t.k+r])
			if r == 0 {
				copy(d, xr)
			} else {
				kernels.Add(d, xr)
			}
		}
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
	rot  func(x []float32, dims int, cos, sin []float32) // kernels.RoPE or RoPENorm
	fn   func(lo, hi int)
}

func (t *ropeTask) run(lo, hi int) {
	half := t.dims / 2
	for i := lo; i < hi; i++ {
		a := t.tab[int(t.pos[i])*t.dims : (int(t.pos[i])+1)*t.dims]
		row := t.x.row(i)
		t.rot(row[:len(row)/t.dims*t.dims], t.dims, a[:half], a[half:])
	}
}

// attnTask runs attention jobs. A job is one token and a range of its KV
// heads (with their query groups): the token's KV heads are split into
// ranges (as many as there are workers, at most one per head) so that one
// token alone still keeps every worker busy, and each job walks the
// token's cached positions once, one KV block at a time, reading the
// range's part of each cached row (contiguous bytes) for all its heads.
// The jobs are dealt to the workers in contiguous runs of about equal
// cost (positions × heads): in a prompt, later tokens attend to more
// positions than earlier ones.
type attnTask struct {
	b      *Backend
	h      *HostStorage
	q, out *mat
	layer  int
	p      *backend.AttnPlan
	ranges int         // KV head ranges per token
	cost   []int       // (job) cumulative cost of jobs 0..job
	chunks int         // worker chunks the jobs are dealt into
	scores [][]float32 // (chunk) score scratch, grown as needed
	fn     func(lo, hi int)
}

// plan splits the batch into jobs and returns the number of worker
// chunks to run (fn's loop runs over chunk numbers).
func (t *attnTask) plan(threads int) int {
	p := t.p
	t.ranges = max(1, min(threads, p.KVHeads))
	jobs := p.N * t.ranges
	if cap(t.cost) < jobs {
		t.cost = make([]int, jobs)
	}
	t.cost = t.cost[:jobs]
	sum := 0
	for j := range t.cost {
		i, r := j/t.ranges, j%t.ranges
		heads := (r+1)*p.KVHeads/t.ranges - r*p.KVHeads/t.ranges
		sum += (int(p.Pos[i]) + 1) * heads
		t.cost[j] = sum
	}
	t.chunks = min(threads, jobs)
	for len(t.scores) < t.chunks {
		t.scores = append(t.scores, nil)
	}
	return t.chunks
}

// jobs returns the jobs of chunk k of n: those whose middle (half way
// through the job's cost, counted from the start of the batch) lies in
// [k/n, (k+1)/n) of the total.
//
// Splitting on the middle rather than the end of each job matters when
// the jobs are few: two sequences decoding, at positions 128 and 127, make
// four jobs of costs 516, 516, 512, 512 (two head ranges each); cut where
// a job ends past half the total (1028), the first worker would get one
// job and the second three.
func (t *attnTask) jobs(k, n int) (lo, hi int) {
	total := t.cost[len(t.cost)-1]
	bound := func(k int) int {
		if k == n {
			return len(t.cost)
		}
		// The first job whose middle, (cost[j-1] + cost[j]) / 2, is at
		// least total·k/n (in integers: both sides times 2n).
		return sort.Search(len(t.cost), func(j int) bool {
			prev := 0
			if j > 0 {
				prev = t.cost[j-1]
			}
			return (prev+t.cost[j])*n >= 2*total*k
		})
	}
	return bound(k), bound(k + 1)
}

func (t *attnTask) run(k0, k1 int) {
	for k := k0; k < k1; k++ {
		lo, hi := t.jobs(k, t.chunks)
		for job := lo; job < hi; job++ {
			t.job(job, &t.scores[k])
		}
	}
}

// job computes attention for one token and one range of KV heads.
func (t *attnTask) job(job int, sp *[]float32) {
	p, h, layer := t.p, t.h, t.layer
	hd, group, bs, kvDim := p.HeadDim, p.Heads/p.KVHeads, p.BlockSize, h.KVDim
	i, r := job/t.ranges, job%t.ranges
	g0, g1 := r*p.KVHeads/t.ranges, (r+1)*p.KVHeads/t.ranges // KV heads [g0, g1)
	npos := int(p.Pos[i]) + 1
	heads := (g1 - g0) * group
	if cap(*sp) < heads*npos {
		// Room for 256 more positions, so that a sequence that grows
		// by a token per step does not reallocate at every step.
		*sp = make([]float32, heads*(npos+256))
	}
	scores := (*sp)[:heads*npos] // (query head in range, position)
	table := p.Tables[i]
	q := t.q.row(i)[g0*group*hd : g1*group*hd]     // (query head in range, hd)
	out := t.out.row(i)[g0*group*hd : g1*group*hd] // (query head in range, hd)
	for j0 := 0; j0 < npos; j0 += bs {
		rows := min(bs, npos-j0)
		slot := int(table[j0/bs]) * bs // the block's first slot
		nslot, nrows := t.nextBlock(table, j0, npos)
		for g := g0; g < g1; g++ {
			off := slot*kvDim + g*hd // its key for KV head g
			s := scores[(g-g0)*group*npos+j0:]
			qg := q[(g-g0)*group*hd : (g-g0+1)*group*hd]
			t.prefetch(h.K16, h.K32, nslot*kvDim+g*hd, kvDim, nrows, hd)
			if h.DType == tensor.F16 {
				kernels.AttnScoresF16(s, npos, qg, group, hd, h.K16[layer][off:], kvDim, rows, p.Scale)
			} else {
				kernels.AttnScores(s, npos, qg, group, hd, h.K32[layer][off:], kvDim, rows, p.Scale)
			}
		}
	}
	// The first block of values loads while the softmax runs.
	t.prefetch(h.V16, h.V32, int(table[0])*bs*kvDim+g0*hd, kvDim, min(bs, npos), (g1-g0)*hd)
	for k := 0; k < heads; k++ {
		kernels.Softmax(scores[k*npos : (k+1)*npos])
	}
	clear(out)
	for j0 := 0; j0 < npos; j0 += bs {
		rows := min(bs, npos-j0)
		slot := int(table[j0/bs]) * bs
		nslot, nrows := t.nextBlock(table, j0, npos)
		for g := g0; g < g1; g++ {
			off := slot*kvDim + g*hd
			t.prefetch(h.V16, h.V32, nslot*kvDim+g*hd, kvDim, nrows, hd)
			s := scores[(g-g0)*group*npos+j0:]
			og := out[(g-g0)*group*hd : (g-g0+1)*group*hd]
			if h.DType == tensor.F16 {
				kernels.AttnValuesF16(og, group, hd, s, npos, h.V16[layer][off:], kvDim, rows)
			} else {
				kernels.AttnValues(og, group, hd, s, npos, h.V32[layer][off:], kvDim, rows)
			}
		}
	}
}

// nextBlock returns the first slot of the KV block after the one holding
// positions j0.., and how many of its rows the token attends to (0 at the
// last block).
func (t *attnTask) nextBlock(table []int32, j0, npos int) (slot, rows int) {
	bs := t.p.BlockSize
	if j0+bs >= npos {
		return 0, 0
	}
	return int(table[j0/bs+1]) * bs, min(bs, npos-j0-bs)
}

// prefetch asks for rows cached rows of n values at off, kvDim apart, of
// one layer's F16 or F32 cache (whichever this cache holds): attention
// loads the next block's part of each row while it computes the current
// block. The blocks of a sequence lie anywhere in the cache (paged), and
// each job reads only its heads' part of every row, so the hardware
// prefetchers do not see these addresses coming: without this, attention
// read the cache at about 40% of the memory bandwidth.
func (t *attnTask) prefetch(h16 [][]uint16, h32 [][]float32, off, kvDim, rows, n int) {
	if rows == 0 {
		return
	}
	if h16 != nil {
		kernels.Prefetch(h16[t.layer][off:], kvDim, rows, n)
	} else {
		kernels.Prefetch(h32[t.layer][off:], kvDim, rows, n)
	}
}
