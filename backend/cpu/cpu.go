// Package cpu is the CPU implementation of backend.Backend. Weights stay
// in the file's mapping in their quantized formats; products quantize the
// activations once per row and run the kernels package's integer dot
// products, split across a pool of worker goroutines by output rows.
package cpu

import (
	"fmt"
	"sync"

	"github.com/gollm/gollm/backend"
	"github.com/gollm/gollm/kernels"
	"github.com/gollm/gollm/tensor"
)

// Options configure the CPU backend.
type Options struct {
	// Threads is the number of workers (0: kernels.DefaultThreads(),
	// runtime.GOMAXPROCS(0): one per CPU the process may use).
	Threads int
	// Exact keeps activations in float32 for every product (each weight
	// row is dequantized and dotted in float32) instead of rounding them
	// to 8 bits as llama.cpp does. Slower; for studying numerics.
	Exact bool
}

// Backend is the CPU backend.
//
// Operations that split their loop over the worker pool pass their
// arguments to the workers in task structs (tasks.go) that live here, so
// that a forward step allocates nothing. mu makes the operations take
// turns, as they share those structs and the scratch buffers.
type Backend struct {
	pool  *kernels.Pool
	exact bool

	mu   sync.Mutex
	acts map[tensor.DType][]byte // (token, rowBytes) quantized activations, by format

	ropeFor backend.Rope // parameters ropeTab was built for
	ropeTab []float32    // (position, cos half | sin half): see ropeTable

	embed  embedTask
	norm   normTask
	swiglu swigluTask
	add    addTask
	bias   biasTask
	wsum   wsumTask
	quant  quantTask
	linear linearTask
	rope   ropeTask
	attn   attnTask
}

var _ backend.Backend = (*Backend)(nil)

// New makes a CPU backend with its worker pool.
func New(o Options) *Backend {
	b := &Backend{pool: kernels.NewPool(o.Threads), exact: o.Exact, acts: map[tensor.DType][]byte{}}
	b.initTasks()
	return b
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
	return NewHostStorage(dt, layers, kvDim, blockSize, numBlocks)
}

// Embed dequantizes one table row per token.
func (b *Backend) Embed(dst backend.Buffer, table backend.Weight, ids []int32) {
	b.mu.Lock()
	defer b.mu.Unlock()
	t := &b.embed
	t.dst, t.w, t.ids = asMat(dst), table.(*weight), ids
	b.forRows(len(ids), t.dst.cols, t.fn)
}

// RMSNorm normalises each row and multiplies by w.
func (b *Backend) RMSNorm(dst, x backend.Buffer, w backend.Vector, eps float32, n int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	t := &b.norm
	t.dst, t.x, t.w, t.eps = asMat(dst), asMat(x), w.(vector), eps
	b.forRows(n, t.x.cols, t.fn)
}

// RMSNormHeads normalises every head of every row in place.
func (b *Backend) RMSNormHeads(x backend.Buffer, w backend.Vector, eps float32, n int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	t := &b.norm
	t.dst, t.x, t.w, t.eps = asMat(x), asMat(x), w.(vector), eps
	b.forRows(n, t.x.cols, t.fn)
}

// Linear computes every projection of x. Each input row is quantized once
// per activation format; then all output rows of all projections are
// split across the workers.
func (b *Backend) Linear(x backend.Buffer, n int, outs ...backend.Projection) {
	b.mu.Lock()
	defer b.mu.Unlock()
	xm := asMat(x)
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
		q := &b.quant
		q.x, q.t, q.rb, q.buf = xm, w.act, int(rb), buf[:int(rb)*n]
		b.forRows(n, xm.cols, q.fn)
	}
	// Split output rows: global row g runs over the projections in order.
	t := &b.linear
	t.n, t.outs = n, outs
	b.pool.For(total, t.fn)
	t.outs = nil
}

// RoPE rotates each head of each row by its token's position (NeoX style:
// dimension i pairs with i + dims/2). The angles follow ggml's rope
// exactly: θ_i = pos · base^(-2i/dims) built by repeated multiplication,
// with YaRN's blend of interpolated and extrapolated angles.
func (b *Backend) RoPE(x backend.Buffer, n int, pos []int32, r *backend.Rope) {
	b.mu.Lock()
	defer b.mu.Unlock()
	t := &b.rope
	t.x, t.pos, t.dims, t.tab = asMat(x), pos[:n], r.Dims, b.ropeTable(pos[:n], r)
	t.rot = kernels.RoPE
	if r.Style == backend.RopeNorm {
		t.rot = kernels.RoPENorm
	}
	b.forRows(n, t.x.cols, t.fn)
}

// ropeTable returns the angle table, (position, dims): for each position
// the dims/2 cosines then the dims/2 sines of backend.Rope.Angles,
// extended to cover every position in pos. Angles depend only on the
// position, so they are computed once per position and reused by every
// layer and step.
func (b *Backend) ropeTable(pos []int32, r *backend.Rope) []float32 {
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
		cs := make([]float32, r.Dims)
		half := r.Dims / 2
		for p := have; p < grow; p++ {
			r.Angles(cs, p)
			row := tab[p*r.Dims : (p+1)*r.Dims]
			for k := 0; k < half; k++ {
				row[k], row[half+k] = cs[2*k], cs[2*k+1]
			}
		}
		b.ropeTab = tab
	}
	return b.ropeTab
}

// StoreKV writes each token's key and value rows into its cache slot.
func (b *Backend) StoreKV(kv backend.KV, layer int, k, v backend.Buffer, p *backend.AttnPlan) {
	h, km, vm := kv.(*HostStorage), asMat(k), asMat(v)
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
// attention), so each cached row is read once for the whole group, one KV
// block (a run of consecutive slots) per kernel call; see attnTask for how
// the work is split. Each (token, head) result is computed the same way
// whatever else is in the batch and however the work is split.
func (b *Backend) Attention(dst, q backend.Buffer, kv backend.KV, layer int, p *backend.AttnPlan) {
	b.mu.Lock()
	defer b.mu.Unlock()
	t := &b.attn
	t.h, t.q, t.out, t.layer, t.p = kv.(*HostStorage), asMat(q), asMat(dst), layer, p
	b.pool.For(t.plan(b.pool.Threads()), t.fn)
	t.p = nil
}

// SwiGLU: dst = silu(gate) * up, row by row.
func (b *Backend) SwiGLU(dst, gate, up backend.Buffer, n int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	t := &b.swiglu
	t.dst, t.gate, t.up = asMat(dst), asMat(gate), asMat(up)
	b.forRows(n, t.dst.cols, t.fn)
}

// Add: dst += x.
func (b *Backend) Add(dst, x backend.Buffer, n int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	t := &b.add
	t.dst, t.x = asMat(dst), asMat(x)
	b.forRows(n, t.dst.cols, t.fn)
}

// AddBias adds b to each of the first n rows of x.
func (b *Backend) AddBias(x backend.Buffer, v backend.Vector, n int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	t := &b.bias
	t.x, t.b = asMat(x), v.(vector)
	b.forRows(n, t.x.cols, t.fn)
}

// Gather copies rows of x into dst.
func (b *Backend) Gather(dst, x backend.Buffer, rows []int32) {
	d, s := asMat(dst), asMat(x)
	for i, r := range rows {
		copy(d.row(i), s.row(int(r)))
	}
}

// Scatter copies row i of x into dst row rows[i].
func (b *Backend) Scatter(dst, x backend.Buffer, rows []int32) {
	d, s := asMat(dst), asMat(x)
	for i, r := range rows {
		copy(d.row(int(r)), s.row(i))
	}
}

// WeightedSum: dst[i] = Σ_r w[i·k+r]·x[i·k+r], r = 0..k-1 in order, with
// kernels.Scale for the products (in place in x) and kernels.Add for the
// sum: both are element-wise and bit-identical in every implementation.
func (b *Backend) WeightedSum(dst, x backend.Buffer, w []float32, k, n int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	t := &b.wsum
	t.dst, t.x, t.w, t.k = asMat(dst), asMat(x), w, k
	b.forRows(n, k*t.dst.cols, t.fn)
}

// Read copies the first n rows out.
func (b *Backend) Read(dst []float32, x backend.Buffer, n int) {
	copy(dst, asMat(x).span(n))
}
