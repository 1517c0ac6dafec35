// Package cpu is the CPU implementation of backend.Backend. Weights stay
// in the file's mapping in their quantized formats; products quantize the
// activations once per row and run the kernels package's integer dot
// products, split across a pool of worker goroutines by output rows.
package cpu

import (
	"fmt"
	"math"
	"sync"

	"github.com/gollm/gollm/backend"
	"github.com/gollm/gollm/kernels"
	"github.com/gollm/gollm/kvcache"
	"github.com/gollm/gollm/tensor"
)

// Options configure the CPU backend.
type Options struct {
	// Threads is the number of workers (0: one per CPU core).
	Threads int
	// Exact keeps activations in float32 for every product (each weight
	// row is dequantized and dotted in float32) instead of rounding them
	// to 8 bits as llama.cpp does. Slower; for studying numerics.
	Exact bool
}

// Backend is the CPU backend.
type Backend struct {
	pool  *kernels.Pool
	exact bool

	actMu  sync.Mutex
	acts   map[tensor.DType][]byte // (token, rowBytes) quantized activations, by format
	scores sync.Pool               // *[]float32 attention score scratch

	ropeMu  sync.Mutex
	ropeFor backend.Rope // parameters ropeTab was built for
	ropeTab []float32    // (position, dims): cos/sin pairs, see RopeAngles
}

var _ backend.Backend = (*Backend)(nil)

// New makes a CPU backend with its worker pool.
func New(o Options) *Backend {
	return &Backend{pool: kernels.NewPool(o.Threads), exact: o.Exact, acts: map[tensor.DType][]byte{}}
}

// Name describes the backend.
func (b *Backend) Name() string {
	mode := "int8 activations"
	if b.exact {
		mode = "exact float32"
	}
	return fmt.Sprintf("cpu (%d threads, %s)", b.pool.Threads(), mode)
}

// Threads is the number of workers.
func (b *Backend) Threads() int { return b.pool.Threads() }

// Close stops the workers.
func (b *Backend) Close() error { b.pool.Close(); return nil }

// mat is an activation buffer: (rows, cols) float32, row-major.
type mat struct {
	data       []float32
	rows, cols int
}

func (m *mat) Rows() int            { return m.rows }
func (m *mat) Cols() int            { return m.cols }
func (m *mat) row(i int) []float32  { return m.data[i*m.cols : (i+1)*m.cols : (i+1)*m.cols] }
func (m *mat) span(n int) []float32 { return m.data[:n*m.cols] }
func asMat(x backend.Buffer) *mat   { return x.(*mat) }
func (b *Backend) NewBuffer(rows, cols int) backend.Buffer {
	return &mat{data: make([]float32, rows*cols), rows: rows, cols: cols}
}

// weight is a matrix in its file format, a view into the mapping.
type weight struct {
	t          tensor.DType
	rows, cols int
	rowBytes   int
	data       []byte // (rows, rowBytes)
	act        tensor.DType
}

func (w *weight) Rows() int          { return w.rows }
func (w *weight) Cols() int          { return w.cols }
func (w *weight) Type() tensor.DType { return w.t }

// LoadWeight wraps the file bytes without copying.
func (b *Backend) LoadWeight(name string, t tensor.DType, rows, cols int, data []byte) (backend.Weight, error) {
	rb, err := tensor.RowBytes(t, int64(cols))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) != rb*int64(rows) {
		return nil, fmt.Errorf("cpu: %s: %d bytes for %d rows of %d bytes", name, len(data), rows, rb)
	}
	act := tensor.F32
	if !b.exact {
		if act, err = kernels.ActType(t); err != nil {
			return nil, fmt.Errorf("cpu: %s: %w", name, err)
		}
	} else if err := tensor.DequantizeRow(t, make([]float32, cols), data[:rb]); err != nil {
		return nil, fmt.Errorf("cpu: %s: %w", name, err)
	}
	return &weight{t: t, rows: rows, cols: cols, rowBytes: int(rb), data: data, act: act}, nil
}

type vector []float32

func (v vector) Len() int { return len(v) }

// LoadVector keeps a copy of v.
func (b *Backend) LoadVector(name string, v []float32) (backend.Vector, error) {
	return vector(append([]float32(nil), v...)), nil
}

// NewKV allocates the cache pool in Go memory.
func (b *Backend) NewKV(dt tensor.DType, layers, kvDim, blockSize, numBlocks int) (backend.KV, error) {
	return kvcache.NewHostStorage(dt, layers, kvDim, blockSize, numBlocks)
}

// Embed dequantizes one table row per token.
func (b *Backend) Embed(dst backend.Buffer, table backend.Weight, ids []int32) {
	d, w := asMat(dst), table.(*weight)
	b.pool.For(len(ids), func(lo, hi int) {
		for i := lo; i < hi; i++ {
			r := int(ids[i])
			if err := tensor.DequantizeRow(w.t, d.row(i), w.data[r*w.rowBytes:(r+1)*w.rowBytes]); err != nil {
				panic(err) // unreachable: the type was checked at load
			}
		}
	})
}

// RMSNorm normalises each row and multiplies by w.
func (b *Backend) RMSNorm(dst, x backend.Buffer, w backend.Vector, eps float32, n int) {
	d, s, wv := asMat(dst), asMat(x), w.(vector)
	for i := 0; i < n; i++ {
		kernels.RMSNorm(d.row(i), s.row(i), wv, eps)
	}
}

// RMSNormHeads normalises every head of every row in place.
func (b *Backend) RMSNormHeads(x backend.Buffer, w backend.Vector, eps float32, n int) {
	m, wv := asMat(x), w.(vector)
	hd := len(wv)
	data := m.span(n)
	for off := 0; off < len(data); off += hd {
		h := data[off : off+hd]
		kernels.RMSNorm(h, h, wv, eps)
	}
}

// Linear computes every projection of x. Each input row is quantized once
// per activation format; then all output rows of all projections are
// split across the workers.
func (b *Backend) Linear(x backend.Buffer, n int, outs ...backend.Projection) {
	xm := asMat(x)
	b.actMu.Lock()
	defer b.actMu.Unlock()
	// Quantize x's rows into each activation format the weights need.
	var done [8]tensor.DType
	nd := 0
	total := 0
	for _, o := range outs {
		w := o.W.(*weight)
		total += w.rows
		seen := false
		for _, t := range done[:nd] {
			seen = seen || t == w.act
		}
		if seen {
			continue
		}
		done[nd] = w.act
		nd++
		rb, _ := tensor.RowBytes(w.act, int64(xm.cols))
		buf := b.acts[w.act]
		if need := int(rb) * n; cap(buf) < need {
			buf = make([]byte, need)
			b.acts[w.act] = buf
		}
		buf = buf[:int(rb)*n]
		b.pool.For(n, func(lo, hi int) {
			for i := lo; i < hi; i++ {
				kernels.QuantizeRow(w.act, buf[i*int(rb):(i+1)*int(rb)], xm.row(i))
			}
		})
	}
	// Split output rows: global row g runs over the projections in order.
	b.pool.For(total, func(lo, hi int) {
		base := 0
		for _, o := range outs {
			w, d := o.W.(*weight), asMat(o.Dst)
			r0, r1 := max(lo-base, 0), min(hi-base, w.rows)
			if r0 < r1 {
				act := b.acts[w.act]
				kernels.MatMul(d.data, d.cols, w.t, w.data, w.act, act, n, w.cols, r0, r1)
			}
			base += w.rows
		}
	})
}

// RoPE rotates each head of each row by its token's position (NeoX style:
// dimension i pairs with i + dims/2). The angles follow ggml's rope
// exactly: θ_i = pos · base^(-2i/dims) built by repeated multiplication,
// with YaRN's blend of interpolated and extrapolated angles.
func (b *Backend) RoPE(x backend.Buffer, n int, pos []int32, r *backend.Rope) {
	m := asMat(x)
	half := r.Dims / 2
	tab := b.ropeTable(pos[:n], r)
	b.pool.For(n, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			cs := tab[int(pos[i])*r.Dims : (int(pos[i])+1)*r.Dims]
			row := m.row(i)
			for h := 0; h+r.Dims <= len(row); h += r.Dims {
				head := row[h : h+r.Dims]
				for k := 0; k < half; k++ {
					c, s := cs[2*k], cs[2*k+1]
					x0, x1 := head[k], head[k+half]
					head[k] = x0*c - x1*s
					head[k+half] = x0*s + x1*c
				}
			}
		}
	})
}

// ropeTable returns the cos/sin table, (position, dims), extended to cover
// every position in pos. Angles depend only on the position, so they are
// computed once per position and reused by every layer and step.
func (b *Backend) ropeTable(pos []int32, r *backend.Rope) []float32 {
	b.ropeMu.Lock()
	defer b.ropeMu.Unlock()
	if b.ropeFor != *r {
		b.ropeFor, b.ropeTab = *r, nil
	}
	maxPos := 0
	for _, p := range pos {
		maxPos = max(maxPos, int(p))
	}
	have := len(b.ropeTab) / r.Dims
	if maxPos >= have {
		grow := max(maxPos+1, 2*have)
		tab := make([]float32, grow*r.Dims)
		copy(tab, b.ropeTab)
		for p := have; p < grow; p++ {
			RopeAngles(tab[p*r.Dims:(p+1)*r.Dims], p, r)
		}
		b.ropeTab = tab
	}
	return b.ropeTab
}

// RopeAngles writes cos and sin of every rotation pair for one position:
// cs[2k] = cos θ_k · mscale, cs[2k+1] = sin θ_k · mscale (ggml's
// rope_cache_init and rope_yarn).
func RopeAngles(cs []float32, pos int, r *backend.Rope) {
	dims := r.Dims
	thetaScale := float32(math.Pow(float64(r.Base), -2.0/float64(dims)))
	lowDim, highDim := yarnCorrDims(dims, r.OrigCtx, r.Base, r.BetaFast, r.BetaSlow)
	theta := float32(pos)
	for i0 := 0; i0 < dims; i0 += 2 {
		thetaInterp := r.Scale * theta
		t := thetaInterp
		mscale := r.AttnMul
		if r.ExtMix != 0 {
			mix := yarnRamp(lowDim, highDim, i0) * r.ExtMix
			t = thetaInterp*(1-mix) + theta*mix
			mscale *= 1 + 0.1*float32(math.Log(float64(1/r.Scale)))
		}
		cs[i0] = float32(math.Cos(float64(t))) * mscale
		cs[i0+1] = float32(math.Sin(float64(t))) * mscale
		theta *= thetaScale
	}
}

// yarnCorrDims finds the dimension range over which YaRN blends from
// extrapolation to interpolation (ggml_rope_yarn_corr_dims).
func yarnCorrDims(dims, origCtx int, base, betaFast, betaSlow float32) (float32, float32) {
	corr := func(nRot float32) float32 {
		return float32(dims) * float32(math.Log(float64(float32(origCtx)/(nRot*2*math.Pi)))) / (2 * float32(math.Log(float64(base))))
	}
	start := float32(math.Floor(float64(corr(betaFast))))
	end := float32(math.Ceil(float64(corr(betaSlow))))
	return max(0, start), min(float32(dims-1), end)
}

func yarnRamp(low, high float32, i0 int) float32 {
	y := (float32(i0/2) - low) / max(0.001, high-low)
	return 1 - min(1, max(0, y))
}

// StoreKV writes each token's key and value rows into its cache slot.
func (b *Backend) StoreKV(kv backend.KV, layer int, k, v backend.Buffer, p *backend.AttnPlan) {
	h, km, vm := kv.(*kvcache.HostStorage), asMat(k), asMat(v)
	d := h.KVDim
	for i := 0; i < p.N; i++ {
		s := int(p.Slots[i]) * d
		if h.DType == tensor.F16 {
			kernels.F32ToF16(h.K16[layer][s:s+d], km.row(i))
			kernels.F32ToF16(h.V16[layer][s:s+d], vm.row(i))
		} else {
			copy(h.K32[layer][s:s+d], km.row(i))
			copy(h.V32[layer][s:s+d], vm.row(i))
		}
	}
}

// Attention: for every (token, head), scores against the keys of positions
// 0..pos of the token's sequence, softmax, and the weighted sum of values.
// Query heads g·group .. g·group+group-1 share KV head g (grouped-query
// attention), so the work is split over (token, KV head) jobs and each
// job reads its KV head's cached rows once for the whole group, one KV
// block (a run of consecutive slots) per kernel call. Each (token, head)
// result is computed the same way whatever else is in the batch.
func (b *Backend) Attention(dst, q backend.Buffer, kv backend.KV, layer int, p *backend.AttnPlan) {
	h, qm, om := kv.(*kvcache.HostStorage), asMat(q), asMat(dst)
	hd, group, bs, kvDim := p.HeadDim, p.Heads/p.KVHeads, p.BlockSize, h.KVDim
	b.pool.For(p.N*p.KVHeads, func(lo, hi int) {
		sp, _ := b.scores.Get().(*[]float32)
		if sp == nil {
			sp = new([]float32)
		}
		for job := lo; job < hi; job++ {
			i, g := job/p.KVHeads, job%p.KVHeads
			qg := qm.row(i)[g*group*hd : (g+1)*group*hd]  // (head in group, hd)
			out := om.row(i)[g*group*hd : (g+1)*group*hd] // (head in group, hd)
			npos := int(p.Pos[i]) + 1
			if cap(*sp) < group*npos {
				*sp = make([]float32, group*npos)
			}
			scores := (*sp)[:group*npos] // (head in group, position)
			table := p.Tables[i]
			for j0 := 0; j0 < npos; j0 += bs {
				rows := min(bs, npos-j0)
				off := int(table[j0/bs])*bs*kvDim + g*hd // first key of the block
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
		b.scores.Put(sp)
	})
}

// SwiGLU: dst = silu(gate) * up, row by row.
func (b *Backend) SwiGLU(dst, gate, up backend.Buffer, n int) {
	d, g, u := asMat(dst), asMat(gate), asMat(up)
	kernels.SwiGLU(d.span(n), g.span(n), u.span(n))
}

// Add: dst += x.
func (b *Backend) Add(dst, x backend.Buffer, n int) {
	kernels.Add(asMat(dst).span(n), asMat(x).span(n))
}

// Gather copies rows of x into dst.
func (b *Backend) Gather(dst, x backend.Buffer, rows []int32) {
	d, s := asMat(dst), asMat(x)
	for i, r := range rows {
		copy(d.row(i), s.row(int(r)))
	}
}

// Read copies the first n rows out.
func (b *Backend) Read(dst []float32, x backend.Buffer, n int) {
	copy(dst, asMat(x).span(n))
}
