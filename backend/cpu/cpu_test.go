package cpu_test

import (
	"math"
	"sync"
	"testing"

	"github.com/gollm/gollm/backend"
	"github.com/gollm/gollm/backend/cpu"
	"github.com/gollm/gollm/gguf"
	"github.com/gollm/gollm/internal/testdata"
	"github.com/gollm/gollm/model"
	"github.com/gollm/gollm/tensor"
)

// opsFixture is a CPU backend with the first layer's weights of the tiny
// Q6_K fixture and buffers for n tokens.
type opsFixture struct {
	be                   *cpu.Backend
	wq, wk, wv, wo, emb  backend.Weight
	norm, headNorm       backend.Vector
	x, xn, q, k, v, att  backend.Buffer
	kv                   backend.KV
	plan                 backend.AttnPlan
	rope                 backend.Rope
	ids                  []int32
	qkv, o               []backend.Projection
	heads, kvHeads, hd   int
	embd, qDim, kvDim, n int
}

func newOpsFixture(t *testing.T, n int) *opsFixture {
	t.Helper()
	f, err := gguf.Open(testdata.Path("models", "qwen3-tiny-q6k.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	cfg, err := model.ReadConfig(f)
	if err != nil {
		t.Fatal(err)
	}
	be := cpu.New(cpu.Options{Threads: 2})
	t.Cleanup(func() { be.Close() })
	fx := &opsFixture{be: be, heads: cfg.Heads, kvHeads: cfg.KVHeads, hd: cfg.HeadDim, embd: cfg.Embd, qDim: cfg.QDim, kvDim: cfg.KVDim, n: n}
	weight := func(name string) backend.Weight {
		tn, err := f.Tensor(name)
		if err != nil {
			t.Fatal(err)
		}
		w, err := be.LoadWeight(name, tn.Type, int(tn.Shape[1]), int(tn.Shape[0]), tn.Data)
		if err != nil {
			t.Fatal(err)
		}
		return w
	}
	vector := func(name string) backend.Vector {
		tn, err := f.Tensor(name)
		if err != nil {
			t.Fatal(err)
		}
		v := make([]float32, tn.Shape[0])
		if err := tensor.DequantizeRow(tn.Type, v, tn.Data); err != nil {
			t.Fatal(err)
		}
		vec, _ := be.LoadVector(name, v)
		return vec
	}
	fx.wq, fx.wk, fx.wv, fx.wo = weight("blk.0.attn_q.weight"), weight("blk.0.attn_k.weight"), weight("blk.0.attn_v.weight"), weight("blk.0.attn_output.weight")
	fx.emb = weight("token_embd.weight")
	fx.norm, fx.headNorm = vector("blk.0.attn_norm.weight"), vector("blk.0.attn_q_norm.weight")
	fx.x, fx.xn = be.NewBuffer(n, fx.embd), be.NewBuffer(n, fx.embd)
	fx.q, fx.att = be.NewBuffer(n, fx.qDim), be.NewBuffer(n, fx.qDim)
	fx.k, fx.v = be.NewBuffer(n, fx.kvDim), be.NewBuffer(n, fx.kvDim)
	const bs = 16
	blocks := (n + 40 + bs - 1) / bs
	if fx.kv, err = be.NewKV(tensor.F16, 1, fx.kvDim, bs, blocks); err != nil {
		t.Fatal(err)
	}
	table := make([]int32, blocks)
	for i := range table {
		table[i] = int32(i)
	}
	fx.plan = backend.AttnPlan{N: n, BlockSize: bs, Heads: fx.heads, KVHeads: fx.kvHeads, HeadDim: fx.hd, Scale: float32(1 / math.Sqrt(float64(fx.hd)))}
	for i := 0; i < n; i++ {
		fx.ids = append(fx.ids, int32(7*i+1))
		fx.plan.Pos = append(fx.plan.Pos, int32(40+i))
		fx.plan.Slots = append(fx.plan.Slots, int32(40+i))
		fx.plan.Tables = append(fx.plan.Tables, table)
	}
	fx.rope = backend.Rope{Dims: fx.hd, Base: 1e6, Scale: 1, AttnMul: 1}
	fx.qkv = []backend.Projection{{Dst: fx.q, W: fx.wq}, {Dst: fx.k, W: fx.wk}, {Dst: fx.v, W: fx.wv}}
	fx.o = []backend.Projection{{Dst: fx.xn, W: fx.wo}}
	return fx
}

// step runs the attention half of a layer.
func (fx *opsFixture) step() {
	be, n := fx.be, fx.n
	be.Embed(fx.x, fx.emb, fx.ids)
	be.RMSNorm(fx.xn, fx.x, fx.norm, 1e-6, n)
	be.Linear(fx.xn, n, fx.qkv...)
	be.RMSNormHeads(fx.q, fx.headNorm, 1e-6, n)
	be.RoPE(fx.q, n, fx.plan.Pos, &fx.rope)
	be.RoPE(fx.k, n, fx.plan.Pos, &fx.rope)
	be.StoreKV(fx.kv, 0, fx.k, fx.v, &fx.plan)
	be.Attention(fx.att, fx.q, fx.kv, 0, &fx.plan)
	be.Linear(fx.att, n, fx.o...)
	be.SwiGLU(fx.att, fx.att, fx.q, n)
	be.Add(fx.x, fx.xn, n)
}

// TestOpsDoNotAllocate: once warm, the backend's operations allocate
// nothing (the worker pool gets prebuilt method values, scratch buffers
// are kept), one token or many.
func TestOpsDoNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless with the race detector")
	}
	for _, n := range []int{1, 40} {
		fx := newOpsFixture(t, n)
		fx.step()
		if allocs := testing.AllocsPerRun(20, fx.step); allocs > 0 {
			t.Errorf("n=%d: %v allocations per step", n, allocs)
		}
	}
}

// TestGrowingContextDoesNotAllocate: generation moves a sequence one
// position further at every step; the attention scratch must not be
// reallocated each time.
func TestGrowingContextDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless with the race detector")
	}
	fx := newOpsFixture(t, 1)
	pos := int32(20)
	fx.plan.Pos[0], fx.plan.Slots[0] = pos, pos
	fx.step()
	next := func() {
		pos++ // up to 41: the fixture's cache holds 48 positions
		fx.plan.Pos[0], fx.plan.Slots[0] = pos, pos
		fx.step()
	}
	if allocs := testing.AllocsPerRun(20, next); allocs > 0 {
		t.Errorf("%v allocations per step", allocs)
	}
}

// TestOpsConcurrent: operations called from several goroutines on one
// backend (they take turns) give the same results as one after the other.
func TestOpsConcurrent(t *testing.T) {
	fx := newOpsFixture(t, 5)
	fx.step()
	want := make([]float32, fx.n*fx.embd)
	fx.be.Read(want, fx.x, fx.n)
	// Goroutines each with their own buffers and cache.
	var wg sync.WaitGroup
	results := make([][]float32, 4)
	for g := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mine := *fx
			be := fx.be
			mine.x, mine.xn = be.NewBuffer(fx.n, fx.embd), be.NewBuffer(fx.n, fx.embd)
			mine.q, mine.att = be.NewBuffer(fx.n, fx.qDim), be.NewBuffer(fx.n, fx.qDim)
			mine.k, mine.v = be.NewBuffer(fx.n, fx.kvDim), be.NewBuffer(fx.n, fx.kvDim)
			kv, err := be.NewKV(tensor.F16, 1, fx.kvDim, 16, 8)
			if err != nil {
				t.Error(err)
				return
			}
			mine.kv = kv
			mine.qkv = []backend.Projection{{Dst: mine.q, W: fx.wq}, {Dst: mine.k, W: fx.wk}, {Dst: mine.v, W: fx.wv}}
			mine.o = []backend.Projection{{Dst: mine.xn, W: fx.wo}}
			for range 10 {
				mine.step()
			}
			results[g] = make([]float32, fx.n*fx.embd)
			be.Read(results[g], mine.x, fx.n)
		}()
	}
	wg.Wait()
	// Each goroutine's cache holds only its own keys; positions 0..39 are
	// zero in all of them, as in the fixture's, so the results match.
	for g, got := range results {
		for i := range want {
			if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
				t.Fatalf("goroutine %d: x[%d] = %v, alone %v", g, i, got[i], want[i])
			}
		}
	}
}
