package cuda

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"unsafe"

	"github.com/gollm/gollm/backend"
	"github.com/gollm/gollm/backend/cpu"
	"github.com/gollm/gollm/flat"
	"github.com/gollm/gollm/gguf"
	"github.com/gollm/gollm/internal/testdata"
	"github.com/gollm/gollm/kernels"
	"github.com/gollm/gollm/kvcache"
	"github.com/gollm/gollm/model"
	"github.com/gollm/gollm/tensor"
)

// Tests that need an NVIDIA GPU. Without one (no libcuda.so.1, or no
// device) each of them skips, saying why. scripts/cuda-check.sh runs them
// on a GPU machine.

var gpu struct {
	once sync.Once
	b    *Backend
	err  error
}

// gpuBackend returns the package's shared GPU backend (opened once: the
// driver compiles the PTX when it is loaded), or skips the test.
func gpuBackend(t testing.TB) *Backend {
	t.Helper()
	gpu.once.Do(func() { gpu.b, gpu.err = New(Options{SyncEachLaunch: true}) })
	if gpu.err != nil {
		t.Skip(gpu.err.Error())
	}
	if err := gpu.b.Err(); err != nil {
		t.Fatalf("the GPU backend failed in an earlier test: %v", err)
	}
	return gpu.b
}

// newGPU opens a backend of its own (for tests that change its settings
// or time it), or skips.
func newGPU(t testing.TB, o Options) *Backend {
	t.Helper()
	b, err := New(o)
	if err != nil {
		t.Skip(err.Error())
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return b
}

func TestMain(m *testing.M) {
	code := m.Run()
	if gpu.b != nil {
		if err := gpu.b.Close(); err != nil {
			fmt.Fprintln(os.Stderr, "closing the GPU backend:", err)
			code = 1
		}
	}
	os.Exit(code)
}

func TestGPUInfo(t *testing.T) {
	info, err := Probe()
	if err != nil {
		t.Skip(err.Error())
	}
	t.Logf("driver CUDA %s, %d device(s)", info.Driver(), len(info.Devices))
	for _, d := range info.Devices {
		t.Logf("  %d: %s", d.Index, d)
	}
	b := gpuBackend(t)
	free, total, err := b.MemInfo()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s; %s free of %s; kernels: %s", b.Name(), gib(free), gib(total), ptxTarget())
}

// upload makes a GPU buffer holding rows of x.
func upload(b *Backend, x []float32, rows, cols int) backend.Buffer {
	buf := b.NewBuffer(rows, cols)
	b.Write(buf, x, rows)
	return buf
}

// download reads the first n rows of a buffer.
func download(t testing.TB, b *Backend, x backend.Buffer, n int) []float32 {
	t.Helper()
	out := make([]float32, n*x.Cols())
	b.Read(out, x, n)
	if err := b.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// bitsEqual reports the first index where a and b differ in bits, or -1.
func firstDiff(a, b []float32) int {
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			return i
		}
	}
	return -1
}

// maxGap is the largest |a-b| (NaN if either has a NaN where the other not).
func maxGap(a, b []float32) float64 {
	worst := 0.0
	for i := range a {
		if math.IsNaN(float64(a[i])) != math.IsNaN(float64(b[i])) {
			return math.NaN()
		}
		worst = math.Max(worst, math.Abs(float64(a[i])-float64(b[i])))
	}
	return worst
}

// TestGPUMatMul multiplies random weights of every supported type with
// random activations for several batch sizes, through Linear, and
// requires the CPU backend's results bit for bit, for both product
// kernels (warp per row and tiled) and the automatic choice.
func TestGPUMatMul(t *testing.T) {
	b := gpuBackend(t)
	r := rand.New(rand.NewPCG(7, 8))
	shapes := [][2]int{{1, 256}, {37, 512}, {300, 768}, {65, 4096}}
	for _, wt := range supportedTypes {
		for _, sh := range append(shapes, [2]int{9, 96}) {
			rows, cols := sh[0], sh[1]
			if cols%wt.BlockSize() != 0 {
				continue
			}
			file := randomWeights(r, wt, rows, cols)
			w, err := b.LoadWeight("test", wt, rows, cols, file)
			if err != nil {
				t.Fatal(err)
			}
			at, _ := kernels.ActType(wt)
			arb, _ := tensor.RowBytes(at, int64(cols))
			for _, n := range []int{1, 3, 8, 9, 64, 70, 130} {
				x := randomActs(r, n, cols)
				act := make([]byte, int(arb)*n)
				for i := 0; i < n; i++ {
					kernels.QuantizeRow(at, act[i*int(arb):(i+1)*int(arb)], x[i*cols:(i+1)*cols])
				}
				want := make([]float32, n*rows)
				kernels.MatMul(want, rows, wt, file, at, act, n, cols, 0, rows)
				xb := upload(b, x, n, cols)
				for _, tiled := range []int{defaultTiledMinTokens, 1, math.MaxInt32} {
					b.mu.Lock()
					b.tiledMin = tiled
					b.mu.Unlock()
					dst := b.NewBuffer(n, rows)
					b.Linear(xb, n, backend.Projection{Dst: dst, W: w})
					got := download(t, b, dst, n)
					if i := firstDiff(got, want); i >= 0 {
						t.Errorf("%s (%d, %d) × %d tokens (tiled from %d tokens): element (token %d, row %d) = %g, CPU %g (max gap %.3g)",
							wt, rows, cols, n, tiled, i/rows, i%rows, got[i], want[i], maxGap(got, want))
					}
				}
			}
		}
	}
	b.mu.Lock()
	b.tiledMin = defaultTiledMinTokens
	b.mu.Unlock()
}

// TestGPUQuantize reads back the quantized activations a product leaves
// in the scratch buffers and compares them with kernels.QuantizeRow's
// bytes (in the split layout).
func TestGPUQuantize(t *testing.T) {
	b := gpuBackend(t)
	r := rand.New(rand.NewPCG(9, 10))
	n, cols := 5, 1024
	x := randomActs(r, n, cols)
	x[3] = 0 // a block with a zero, and a block of all zeros:
	for i := 256; i < 512; i++ {
		x[i] = 0
	}
	x[700], x[701] = -1000, 1000 // a tie of the largest |x|: the first one sets the sign of the scale
	xb := upload(b, x, n, cols)
	for _, wt := range []tensor.DType{tensor.Q6_K, tensor.Q8_0} {
		w, err := b.LoadWeight("q", wt, 1, cols, randomWeights(r, wt, 1, cols))
		if err != nil {
			t.Fatal(err)
		}
		dst := b.NewBuffer(n, 1)
		b.Linear(xb, n, backend.Projection{Dst: dst, W: w})
		download(t, b, dst, n) // runs the step
		at, _ := kernels.ActType(wt)
		want, _ := quantizeActs(at, x, n, cols)
		f := actQ8K
		if wt == tensor.Q8_0 {
			f = actQ80
		}
		s := b.act[f]
		qs := make([]byte, n*cols)
		d := make([]float32, len(want.d))
		bsum := make([]int32, len(want.bsum))
		err = b.dev.do(func() error {
			return firstErr(b.dev.dtoh(qs, s.qs),
				b.dev.dtoh(unsafe.Slice((*byte)(unsafe.Pointer(&d[0])), 4*len(d)), s.d),
				func() error {
					if len(bsum) == 0 {
						return nil
					}
					return b.dev.dtoh(unsafe.Slice((*byte)(unsafe.Pointer(&bsum[0])), 4*len(bsum)), s.bsum)
				}())
		})
		if err != nil {
			t.Fatal(err)
		}
		for i := range qs {
			if qs[i] != want.qs[i] {
				t.Fatalf("%s: value %d quantized to %d, CPU %d", at, i, int8(qs[i]), int8(want.qs[i]))
			}
		}
		if i := firstDiff(d, want.d); i >= 0 {
			t.Fatalf("%s: scale %d = %g, CPU %g", at, i, d[i], want.d[i])
		}
		for i := range bsum {
			if bsum[i] != want.bsum[i] {
				t.Fatalf("%s: sum %d = %d, CPU %d", at, i, bsum[i], want.bsum[i])
			}
		}
	}
}

// pair runs the same operations on the CPU backend and the GPU.
type pair struct {
	c *cpu.Backend
	g *Backend
}

func newPair(t *testing.T) pair {
	g := gpuBackend(t)
	c := cpu.New(cpu.Options{})
	t.Cleanup(func() { c.Close() })
	return pair{c, g}
}

// bufs makes the same (rows, cols) buffer on both, holding x.
func (p pair) bufs(x []float32, rows, cols int) (backend.Buffer, backend.Buffer) {
	cb := p.c.NewBuffer(rows, cols)
	p.c.Write(cb, x, rows)
	return cb, upload(p.g, x, rows, cols)
}

// compare reads n rows of both and checks they agree within tol (0: bit
// for bit); it logs the largest gap.
func (p pair) compare(t *testing.T, what string, cb, gb backend.Buffer, n int, tol float64) {
	t.Helper()
	want := make([]float32, n*cb.Cols())
	p.c.Read(want, cb, n)
	got := download(t, p.g, gb, n)
	gap := maxGap(got, want)
	same := 0
	for i := range got {
		if math.Float32bits(got[i]) == math.Float32bits(want[i]) {
			same++
		}
	}
	if tol == 0 {
		if i := firstDiff(got, want); i >= 0 {
			t.Errorf("%s: element %d = %g, CPU %g (%d of %d bit-identical, max gap %.3g)", what, i, got[i], want[i], same, len(got), gap)
		}
		return
	}
	if !(gap <= tol) {
		t.Errorf("%s: max gap %.3g > %.3g (%d of %d bit-identical)", what, gap, tol, same, len(got))
	}
	t.Logf("%s: max gap %.3g, %d of %d bit-identical", what, gap, same, len(got))
}

func (p pair) vectors(t *testing.T, v []float32) (backend.Vector, backend.Vector) {
	cv, err := p.c.LoadVector("v", v)
	if err != nil {
		t.Fatal(err)
	}
	gv, err := p.g.LoadVector("v", v)
	if err != nil {
		t.Fatal(err)
	}
	return cv, gv
}

// TestGPUOps compares the element-wise and row operations with the CPU
// backend. They are the same float operations in the same order (RMSNorm's
// float64 sum in the CPU's 16 lanes, SiLU with the CPU's Exp) and must
// agree bit for bit.
func TestGPUOps(t *testing.T) {
	p := newPair(t)
	r := rand.New(rand.NewPCG(11, 12))
	n := 7
	for _, cols := range []int{4096, 100} {
		x := randomActs(r, n, cols)
		w := randomActs(r, 1, cols)
		cx, gx := p.bufs(x, n, cols)
		cv, gv := p.vectors(t, w)
		cd, gd := p.c.NewBuffer(n, cols), p.g.NewBuffer(n, cols)
		p.c.RMSNorm(cd, cx, cv, 1e-6, n)
		p.g.RMSNorm(gd, gx, gv, 1e-6, n)
		p.compare(t, fmt.Sprintf("RMSNorm %d", cols), cd, gd, n, 0)
		// In place, as the model does for the output norm.
		p.c.RMSNorm(cx, cx, cv, 1e-6, n)
		p.g.RMSNorm(gx, gx, gv, 1e-6, n)
		p.compare(t, fmt.Sprintf("RMSNorm in place %d", cols), cx, gx, n, 0)
	}
	for _, hd := range []int{128, 64} {
		cols := 32 * hd
		x := randomActs(r, n, cols)
		cx, gx := p.bufs(x, n, cols)
		cv, gv := p.vectors(t, randomActs(r, 1, hd))
		p.c.RMSNormHeads(cx, cv, 1e-6, n)
		p.g.RMSNormHeads(gx, gv, 1e-6, n)
		p.compare(t, fmt.Sprintf("RMSNormHeads %d", hd), cx, gx, n, 0)
	}
	{
		cols := 3000
		g, u := randomActs(r, n, cols), randomActs(r, n, cols)
		cg, gg := p.bufs(g, n, cols)
		cu, gu := p.bufs(u, n, cols)
		p.c.SwiGLU(cg, cg, cu, n)
		p.g.SwiGLU(gg, gg, gu, n)
		p.compare(t, "SwiGLU", cg, gg, n, 0)
		p.c.Add(cg, cu, n)
		p.g.Add(gg, gu, n)
		p.compare(t, "Add", cg, gg, n, 0)
		rows := []int32{6, 0, 3, 3}
		cd, gd := p.c.NewBuffer(4, cols), p.g.NewBuffer(4, cols)
		p.c.Gather(cd, cg, rows)
		p.g.Gather(gd, gg, rows)
		p.compare(t, "Gather", cd, gd, 4, 0)
	}
	ropes := []backend.Rope{
		{Dims: 128, Base: 1e6, Scale: 1, AttnMul: 1, BetaFast: 32, BetaSlow: 1, OrigCtx: 40960},
		{Dims: 64, Base: 1e6, Scale: 0.25, ExtMix: 1, AttnMul: 1, BetaFast: 32, BetaSlow: 1, OrigCtx: 1024}, // YaRN ×4
	}
	for _, rp := range ropes {
		cols := 8 * rp.Dims
		pos := []int32{0, 1, 17, 4095, 4096, 9000, 3}
		x := randomActs(r, n, cols)
		cx, gx := p.bufs(x, n, cols)
		p.c.RoPE(cx, n, pos, &rp)
		p.g.RoPE(gx, n, pos, &rp)
		p.compare(t, fmt.Sprintf("RoPE dims %d ext %g", rp.Dims, rp.ExtMix), cx, gx, n, 0)
	}
	for _, wt := range supportedTypes {
		rows, cols := 50, 512
		file := randomWeights(r, wt, rows, cols)
		cw, err := p.c.LoadWeight("e", wt, rows, cols, file)
		if err != nil {
			t.Fatal(err)
		}
		gw, err := p.g.LoadWeight("e", wt, rows, cols, file)
		if err != nil {
			t.Fatal(err)
		}
		ids := []int32{3, 49, 0, 3, 17}
		cd, gd := p.c.NewBuffer(len(ids), cols), p.g.NewBuffer(len(ids), cols)
		p.c.Embed(cd, cw, ids)
		p.g.Embed(gd, gw, ids)
		p.compare(t, "Embed "+wt.String(), cd, gd, len(ids), 0)
	}
}

// TestGPUAttention fills paged KV caches on both backends through StoreKV
// (three sequences, chunks and single tokens, blocks out of order) and
// compares every Attention output, for F16 and F32 elements, bit for bit
// (the kernel follows the CPU's order of operations throughout).
func TestGPUAttention(t *testing.T) {
	p := newPair(t)
	r := rand.New(rand.NewPCG(13, 14))
	for _, kvt := range []tensor.DType{tensor.F16, tensor.F32} {
		for _, shape := range [][3]int{{8, 4, 64}, {32, 8, 128}} {
			heads, kvHeads, hd := shape[0], shape[1], shape[2]
			kvDim, qDim, bs := kvHeads*hd, heads*hd, 16
			ckv, err := p.c.NewKV(kvt, 2, kvDim, bs, 64)
			if err != nil {
				t.Fatal(err)
			}
			gkv, err := p.g.NewKV(kvt, 2, kvDim, bs, 64)
			if err != nil {
				t.Fatal(err)
			}
			cache, err := kvcache.New(kvcache.Config{BlockSize: bs, Capacity: 64 * bs}, kvcache.Storage(fanout{ckv, gkv}))
			if err != nil {
				t.Fatal(err)
			}
			for s := 0; s < 3; s++ {
				cache.AddSeq(flat.SeqID(s))
			}
			// Steps: (sequence, tokens) pairs.
			steps := [][][2]int{{{0, 40}, {1, 3}}, {{1, 30}, {2, 1}}, {{0, 1}, {1, 1}, {2, 100}}, {{0, 1}, {2, 1}}}
			for si, st := range steps {
				var plan backend.AttnPlan
				plan.BlockSize, plan.Heads, plan.KVHeads, plan.HeadDim = bs, heads, kvHeads, hd
				plan.Scale = float32(1 / math.Sqrt(float64(hd)))
				for _, it := range st {
					id := flat.SeqID(it[0])
					start, err := cache.Append(id, it[1])
					if err != nil {
						t.Fatal(err)
					}
					for q := start; q < start+it[1]; q++ {
						plan.Pos = append(plan.Pos, int32(q))
						plan.Slots = append(plan.Slots, int32(cache.Slot(id, q)))
						plan.Tables = append(plan.Tables, cache.Table(id))
					}
				}
				plan.N = len(plan.Pos)
				n := plan.N
				ck, gk := p.bufs(randomActs(r, n, kvDim), n, kvDim)
				cvv, gvv := p.bufs(randomActs(r, n, kvDim), n, kvDim)
				cq, gq := p.bufs(randomActs(r, n, qDim), n, qDim)
				for l := 0; l < 2; l++ {
					p.c.StoreKV(ckv, l, ck, cvv, &plan)
					p.g.StoreKV(gkv, l, gk, gvv, &plan)
				}
				layer := si % 2
				co, gout := p.c.NewBuffer(n, qDim), p.g.NewBuffer(n, qDim)
				p.c.Attention(co, cq, ckv, layer, &plan)
				p.g.Attention(gout, gq, gkv, layer, &plan)
				p.compare(t, fmt.Sprintf("attention %s %v step %d", kvt, shape, si), co, gout, n, 0)
			}
		}
	}
}

// fanout lets one kvcache.Cache drive two pools (copy on write on both).
type fanout [2]backend.KV

func (f fanout) CopyBlock(dst, src int) { f[0].CopyBlock(dst, src); f[1].CopyBlock(dst, src) }

// fixturePath locates a test fixture: under $GOLLM_TESTDATA when it is
// set, otherwise in the module's testdata folder. The GPU check runs a test
// binary built on another machine, whose compiled-in source path (which
// internal/testdata relies on) does not exist where it runs;
// scripts/cuda-check.sh sets GOLLM_TESTDATA.
func fixturePath(elem ...string) string {
	if dir := os.Getenv("GOLLM_TESTDATA"); dir != "" {
		return filepath.Join(append([]string{dir}, elem...)...)
	}
	return testdata.Path(elem...)
}

// goldenPrompts reads the prompts of a fixture model's forward.json.
type goldenPrompt struct {
	Name      string  `json:"name"`
	IDs       []int32 `json:"ids"`
	GreedyIDs []int32 `json:"greedy_ids"`
}

func readPrompts(t testing.TB, modelName string) []goldenPrompt {
	t.Helper()
	var f struct {
		Results []goldenPrompt `json:"results"`
	}
	data, err := os.ReadFile(fixturePath(modelName, "forward.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &f); err != nil {
		t.Fatal(err)
	}
	return f.Results
}

// loadModel loads a fixture model on be.
func loadModel(t testing.TB, name string, be backend.Backend, opts model.Options) *model.Model {
	t.Helper()
	f, err := gguf.Open(fixturePath("models", name+".gguf"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	m, err := model.Load(f, be, opts)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// teacherForced evaluates ids in one step with every position producing
// logits, then feeds next one token per step; one logits row per position.
func teacherForced(t testing.TB, m *model.Model, kv tensor.DType, ids, next []int32) [][]float32 {
	t.Helper()
	s, err := m.NewState(model.StateOptions{Capacity: 1024, BlockSize: 16, KVType: kv, MaxBatch: len(ids)})
	if err != nil {
		t.Fatal(err)
	}
	s.KV.AddSeq(0)
	V := m.Config.Vocab
	var b flat.Batch
	start, _ := s.KV.Append(0, len(ids))
	for i, id := range ids {
		b.Add(id, start+i, 0, true)
	}
	logits := make([]float32, len(ids)*V)
	if err := m.Forward(s, &b, logits); err != nil {
		t.Fatal(err)
	}
	var rows [][]float32
	for i := range ids {
		rows = append(rows, logits[i*V:(i+1)*V])
	}
	for _, id := range next {
		pos, _ := s.KV.Append(0, 1)
		b.Reset()
		b.Add(id, pos, 0, true)
		out := make([]float32, V)
		if err := m.Forward(s, &b, out); err != nil {
			t.Fatal(err)
		}
		rows = append(rows, out)
	}
	return rows
}

// TestGPUModelLogits runs every golden prompt of both fixture models
// (every prompt position, then the reference's greedy tokens one by one)
// on the CPU backend and the GPU and compares all logits. Every kernel
// follows the CPU's operations, so the rows should be bit-identical; the
// test logs how many are, and fails only beyond the tolerance used
// against llama.cpp (0.25), which would be a bug rather than rounding.
func TestGPUModelLogits(t *testing.T) {
	g := gpuBackend(t)
	c := cpu.New(cpu.Options{})
	defer c.Close()
	cases := []struct {
		model string
		opts  model.Options
		kv    tensor.DType
	}{
		{"qwen3-tiny-q6k", model.Options{}, tensor.F32},
		{"qwen3-tiny-mixed", model.Options{}, tensor.F32},
		{"qwen3-tiny-mixed", model.Options{}, tensor.F16},
		{"qwen3-tiny-mixed", model.Options{RopeScaling: &model.RopeScaling{Type: "yarn", Factor: 4, OrigContext: 1024}}, tensor.F32},
	}
	for _, tc := range cases {
		name := fmt.Sprintf("%s/kv-%s", tc.model, tc.kv)
		if tc.opts.RopeScaling != nil {
			name += "/yarn"
		}
		t.Run(name, func(t *testing.T) {
			cm := loadModel(t, tc.model, c, tc.opts)
			gm := loadModel(t, tc.model, g, tc.opts)
			worst, rows, identical, argmaxSame := 0.0, 0, 0, 0
			for _, pr := range readPrompts(t, tc.model) {
				next := pr.GreedyIDs[:len(pr.GreedyIDs)-1]
				want := teacherForced(t, cm, tc.kv, pr.IDs, next)
				got := teacherForced(t, gm, tc.kv, pr.IDs, next)
				if err := g.Err(); err != nil {
					t.Fatal(err)
				}
				for i := range want {
					gap := maxGap(got[i], want[i])
					if !(gap <= 0.25) {
						t.Errorf("%s row %d: max gap %.3g from the CPU", pr.Name, i, gap)
					}
					worst = math.Max(worst, gap)
					rows++
					if firstDiff(got[i], want[i]) < 0 {
						identical++
					}
					if argmax(got[i]) == argmax(want[i]) {
						argmaxSame++
					}
				}
			}
			t.Logf("GPU vs CPU logits: max gap %.3g over %d rows; %d rows bit-identical; same argmax in %d rows", worst, rows, identical, argmaxSame)
		})
	}
}

func argmax(x []float32) int {
	best := 0
	for i, v := range x {
		if v > x[best] {
			best = i
		}
	}
	return best
}

// soloRun runs one prompt alone (in chunks of chunk tokens), then decodes
// the given tokens; it returns the logits of the last prompt position and
// of each decode step (model.Replay with one script).
func soloRun(t *testing.T, m *model.Model, kv tensor.DType, prompt, decode []int32, chunk int) [][]float32 {
	t.Helper()
	rows, err := m.Replay(kv, model.Script{Prompt: prompt, Decode: decode, Chunk: chunk})
	if err != nil {
		t.Fatal(err)
	}
	return rows[0]
}

// packedRun runs the target (the first script) with companions whose
// prompts are fed in chunks of 7 while the target's go in chunks of 9, so
// prefill and decode tokens of different sequences share steps (as
// model/batch_test.go's packedRun).
func packedRun(t *testing.T, m *model.Model, kv tensor.DType, prompt, decode []int32, others []goldenPrompt, companions int) [][]float32 {
	t.Helper()
	scripts := []model.Script{{Prompt: prompt, Decode: decode, Chunk: 9}}
	for c := 0; c < companions; c++ {
		o := others[(c+1)%len(others)]
		scripts = append(scripts, model.Script{Prompt: o.IDs, Decode: o.GreedyIDs[:4], Chunk: 7})
	}
	rows, err := m.Replay(kv, scripts...)
	if err != nil {
		t.Fatal(err)
	}
	return rows[0]
}

// TestGPUBatchInvariance: on the GPU, a sequence's logits are bit-identical
// whether its prompt is fed at once or in chunks of 1, 5 and 13 tokens,
// and whether it runs alone or with 1, 2 or 7 companions, for F16 and F32
// KV caches (model/batch_test.go's TestBatchInvariance, on this backend).
func TestGPUBatchInvariance(t *testing.T) {
	g := gpuBackend(t)
	for _, name := range []string{"qwen3-tiny-mixed", "qwen3-tiny-q6k"} {
		prompts := readPrompts(t, name)
		m := loadModel(t, name, g, model.Options{})
		target := prompts[0]
		decode := target.GreedyIDs[:8]
		for _, kv := range []tensor.DType{tensor.F16, tensor.F32} {
			want := soloRun(t, m, kv, target.IDs, decode, len(target.IDs))
			for _, chunk := range []int{1, 5, 13} {
				got := soloRun(t, m, kv, target.IDs, decode, chunk)
				for j := range want {
					if i := firstDiff(got[j], want[j]); i >= 0 {
						t.Fatalf("%s %s chunk %d: step %d differs from one-shot prefill at logit %d (%g vs %g)", name, kv, chunk, j, i, got[j][i], want[j][i])
					}
				}
			}
			for _, companions := range []int{1, 2, 7} {
				got := packedRun(t, m, kv, target.IDs, decode, prompts, companions)
				if len(got) != len(want) {
					t.Fatalf("%d rows, want %d", len(got), len(want))
				}
				for j := range want {
					if i := firstDiff(got[j], want[j]); i >= 0 {
						t.Fatalf("%s %s with %d companions: step %d differs from the solo run at logit %d (%g vs %g)", name, kv, companions, j, i, got[j][i], want[j][i])
					}
				}
			}
			if err := g.Err(); err != nil {
				t.Fatal(err)
			}
			t.Logf("%s %s: chunked prefill (1, 5, 13) and 1, 2, 7 companions bit-identical to the solo run", name, kv)
		}
		// The longest prompt in one step goes through the tiled product
		// kernel (more than 64 tokens), in chunks of 13 or 64 through the
		// warp-per-row one: the logits must not change.
		long := prompts[0]
		for _, pr := range prompts {
			if len(pr.IDs) > len(long.IDs) {
				long = pr
			}
		}
		if len(long.IDs) <= mmvBlockTok {
			t.Fatalf("longest prompt has %d tokens; the tiled kernel needs more than %d", len(long.IDs), mmvBlockTok)
		}
		want := soloRun(t, m, tensor.F16, long.IDs, long.GreedyIDs[:4], len(long.IDs))
		for _, chunk := range []int{13, 64} {
			got := soloRun(t, m, tensor.F16, long.IDs, long.GreedyIDs[:4], chunk)
			for j := range want {
				if i := firstDiff(got[j], want[j]); i >= 0 {
					t.Fatalf("%s %q: chunks of %d, step %d differs from one-shot prefill at logit %d (%g vs %g)", name, long.Name, chunk, j, i, got[j][i], want[j][i])
				}
			}
		}
		t.Logf("%s: the %d-token prompt in one step (tiled kernel) and in chunks of 13 and 64 give the same logits", name, len(long.IDs))
	}
}

// TestGPUSplit runs the first two layers on the CPU and the last two and
// the head on the GPU (model.Options.Offload, as --gpu-layers does) and
// compares the logits with the model entirely on the CPU.
func TestGPUSplit(t *testing.T) {
	g := gpuBackend(t)
	c := cpu.New(cpu.Options{})
	defer c.Close()
	name := "qwen3-tiny-mixed"
	cm := loadModel(t, name, c, model.Options{})
	sm := loadModel(t, name, c, model.Options{Offload: g, OffloadLayers: 2})
	worst, identical, rows := 0.0, 0, 0
	for _, pr := range readPrompts(t, name)[:3] {
		next := pr.GreedyIDs[:8]
		want := teacherForced(t, cm, tensor.F16, pr.IDs, next)
		got := teacherForced(t, sm, tensor.F16, pr.IDs, next)
		if err := g.Err(); err != nil {
			t.Fatal(err)
		}
		for i := range want {
			gap := maxGap(got[i], want[i])
			if !(gap <= 0.25) {
				t.Errorf("%s row %d: max gap %.3g", pr.Name, i, gap)
			}
			worst = math.Max(worst, gap)
			rows++
			if firstDiff(got[i], want[i]) < 0 {
				identical++
			}
		}
	}
	t.Logf("CPU+GPU split vs CPU: max gap %.3g over %d rows, %d bit-identical", worst, rows, identical)
}
