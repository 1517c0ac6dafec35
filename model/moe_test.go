package model

import (
	"fmt"
	"math"
	"slices"
	"testing"

	"github.com/gollm/gollm/backend"
	"github.com/gollm/gollm/backend/cpu"
	"github.com/gollm/gollm/flat"
	"github.com/gollm/gollm/gguf"
	"github.com/gollm/gollm/internal/testdata"
	"github.com/gollm/gollm/tensor"
)

// routeRef is the routing of one token computed independently of
// routing.route: softmax in float64, a full sort by (probability
// descending, id ascending), renormalisation in float64.
func routeRef(logits []float32, k int) (sel []int32, w []float64) {
	mx := math.Inf(-1)
	for _, v := range logits {
		mx = math.Max(mx, float64(v))
	}
	p := make([]float64, len(logits))
	sum := 0.0
	for i, v := range logits {
		p[i] = math.Exp(float64(v) - mx)
		sum += p[i]
	}
	ids := make([]int32, len(logits))
	for i := range ids {
		ids[i] = int32(i)
		p[i] /= sum
	}
	slices.SortStableFunc(ids, func(a, b int32) int {
		switch {
		case p[a] > p[b]:
			return -1
		case p[a] < p[b]:
			return 1
		}
		return int(a - b)
	})
	sel = ids[:k]
	tot := 0.0
	for _, e := range sel {
		tot += p[e]
	}
	for _, e := range sel {
		w = append(w, p[e]/tot)
	}
	return sel, w
}

// TestRoute: softmax, top-k and renormalisation against routeRef on
// random logits (experts chosen alike, weights within float32 rounding
// and summing to 1), plus the edge cases: ties go to the lower id, k = E
// takes every expert, and a row with NaNs (which the softmax spreads over
// the whole row) still yields k distinct valid experts, the lowest ids.
func TestRoute(t *testing.T) {
	const E, k, n = 8, 2, 200
	rt := newRouting(n, E, k)
	seed := uint32(1)
	for i := range rt.logits {
		seed = seed*1664525 + 1013904223
		rt.logits[i] = float32(int32(seed)>>8) / (1 << 22) // about ±2
	}
	logits := slices.Clone(rt.logits)
	rt.route(n, E, k)
	for t0 := 0; t0 < n; t0++ {
		sel, w := routeRef(logits[t0*E:(t0+1)*E], k)
		if !slices.Equal(rt.sel[t0*k:(t0+1)*k], sel) {
			t.Fatalf("token %d: experts %v, want %v (logits %v)", t0, rt.sel[t0*k:(t0+1)*k], sel, logits[t0*E:(t0+1)*E])
		}
		sum := float32(0)
		for r := range k {
			got := rt.w[t0*k+r]
			if d := math.Abs(float64(got) - w[r]); d > 1e-6 {
				t.Fatalf("token %d rank %d: weight %g, want %g", t0, r, got, w[r])
			}
			sum += got
		}
		if math.Abs(float64(sum)-1) > 1e-6 {
			t.Fatalf("token %d: weights sum to %g", t0, sum)
		}
	}

	check := func(name string, logits []float32, k int, want []int32) {
		t.Helper()
		rt := newRouting(1, len(logits), k)
		copy(rt.logits, logits)
		rt.route(1, len(logits), k)
		if !slices.Equal(rt.sel, want) {
			t.Errorf("%s: experts %v, want %v", name, rt.sel, want)
		}
		if slices.ContainsFunc(logits, func(v float32) bool { return v != v }) {
			return // the softmax spreads a NaN over the row: NaN weights
		}
		for _, w := range rt.w {
			if !(w >= 0 && w <= 1) {
				t.Errorf("%s: weight %g", name, w)
			}
		}
	}
	check("ties by lower id", []float32{1, 3, 2, 3, 3}, 2, []int32{1, 3})
	check("all equal", []float32{0, 0, 0, 0}, 3, []int32{0, 1, 2})
	check("k = E", []float32{-1, 4, 2}, 3, []int32{1, 2, 0})
	nan := float32(math.NaN())
	check("NaN row", []float32{nan, nan, nan, nan}, 2, []int32{0, 1})
	check("one NaN", []float32{1, nan, 5, 2}, 2, []int32{0, 1}) // all NaN after the softmax
}

// TestGroup: the worked example of moe.go. 3 tokens choose (2, 0),
// (2, 3), (0, 2); grouped by expert, batch order within each.
func TestGroup(t *testing.T) {
	rt := newRouting(3, 4, 2)
	copy(rt.sel, []int32{2, 0, 2, 3, 0, 2})
	rt.group(3, 4, 2)
	if want := []int32{0, 2, 2, 5, 6}; !slices.Equal(rt.start, want) {
		t.Fatalf("start %v, want %v", rt.start, want)
	}
	if want := []int32{0, 2, 0, 1, 2, 1}; !slices.Equal(rt.toks, want) {
		t.Errorf("toks %v, want %v", rt.toks, want)
	}
	if want := []int32{1, 4, 0, 2, 5, 3}; !slices.Equal(rt.slots, want) {
		t.Errorf("slots %v, want %v", rt.slots, want)
	}
}

// linearCounter counts, per weight, the Linear calls that read it and
// the rows they carried.
type linearCounter struct {
	backend.Backend
	calls map[backend.Weight]int
	rows  map[backend.Weight]int
}

func (c *linearCounter) Linear(x backend.Buffer, n int, outs ...backend.Projection) {
	for _, o := range outs {
		c.calls[o.W]++
		c.rows[o.W] += n
	}
	c.Backend.Linear(x, n, outs...)
}

// TestExpertReadsOncePerStep: in a batch of 8 tokens (8 sequences
// decoding one token each, then one prompt of 8), each layer's router is
// read once, every expert that some token chose has its gate, up and down
// matrices read by exactly one Linear call carrying all of its tokens,
// and the experts nobody chose are not read. With 8 tokens, 2 experts
// each and 8 experts, at least one expert serves several tokens; run token
// by token the same step would read the experts 16 times per layer.
func TestExpertReadsOncePerStep(t *testing.T) {
	f, err := gguf.Open(testdata.Path("models", "qwen3moe-tiny-q6k.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	inner := cpu.New(cpu.Options{Threads: 2})
	defer inner.Close()
	cb := &linearCounter{Backend: inner}
	m, err := Load(f, cb, Options{})
	if err != nil {
		t.Fatal(err)
	}
	c := m.Config
	if c.Experts != 8 || c.ExpertsUsed != 2 || c.ExpertFF != 256 {
		t.Fatalf("experts %d, used %d, width %d; want 8, 2, 256", c.Experts, c.ExpertsUsed, c.ExpertFF)
	}
	var gf goldenFile
	readJSON(t, &gf, "qwen3moe-tiny", "forward.json")
	prompt := gf.Results[len(gf.Results)-1].IDs // "long"

	for _, layout := range []string{"8 sequences", "one prompt of 8"} {
		s, err := m.NewState(StateOptions{Capacity: 256, BlockSize: 16, KVType: tensor.F32, MaxBatch: 8})
		if err != nil {
			t.Fatal(err)
		}
		var b flat.Batch
		for i := range 8 {
			seq, pos := flat.SeqID(i), i
			if layout == "one prompt of 8" {
				seq = 0
			}
			if i == 0 || layout == "8 sequences" {
				s.KV.AddSeq(seq)
			}
			p, err := s.KV.Append(seq, 1)
			if err != nil {
				t.Fatal(err)
			}
			if layout == "8 sequences" {
				pos = p
			}
			b.Add(prompt[i*7], pos, seq, true)
		}
		cb.calls, cb.rows = map[backend.Weight]int{}, map[backend.Weight]int{}
		if err := m.Forward(s, &b, make([]float32, 8*c.Vocab)); err != nil {
			t.Fatal(err)
		}
		var readBytes, perTokenBytes int64
		for l, L := range m.layers {
			if cb.calls[L.router] != 1 || cb.rows[L.router] != 8 {
				t.Errorf("%s, layer %d: router read by %d calls of %d rows, want 1 of 8", layout, l, cb.calls[L.router], cb.rows[L.router])
			}
			chosen, pairs, shared := 0, 0, 0
			for e := range c.Experts {
				for _, w := range []backend.Weight{L.gateExps[e], L.upExps[e], L.downExps[e]} {
					if cb.calls[w] != cb.calls[L.gateExps[e]] || cb.rows[w] != cb.rows[L.gateExps[e]] {
						t.Errorf("%s, layer %d, expert %d: gate, up and down read unevenly", layout, l, e)
					}
				}
				switch calls, rows := cb.calls[L.gateExps[e]], cb.rows[L.gateExps[e]]; {
				case calls == 0:
				case calls == 1:
					chosen++
					pairs += rows
					if rows > 1 {
						shared++
					}
					expertBytes := expertMatrixBytes(L, e)
					readBytes += expertBytes
					perTokenBytes += int64(rows) * expertBytes
				default:
					t.Errorf("%s, layer %d, expert %d: read by %d Linear calls in one step, want 1", layout, l, e, calls)
				}
			}
			if pairs != 8*c.ExpertsUsed {
				t.Errorf("%s, layer %d: the experts carried %d (token, expert) pairs, want %d", layout, l, pairs, 8*c.ExpertsUsed)
			}
			if shared == 0 {
				t.Errorf("%s, layer %d: no expert served two tokens; the test shows nothing", layout, l)
			}
			t.Logf("%s, layer %d: %d experts chosen by 8 tokens (%d serving several), each read once: %d expert reads where token by token would make %d",
				layout, l, chosen, shared, chosen, pairs)
		}
		t.Logf("%s: expert weight bytes read in the step %d, token by token %d (%.2fx)", layout, readBytes, perTokenBytes, float64(perTokenBytes)/float64(readBytes))
	}
}

// expertMatrixBytes is the file bytes of expert e's three matrices.
func expertMatrixBytes(L layer, e int) int64 {
	var n int64
	for _, w := range []backend.Weight{L.gateExps[e], L.upExps[e], L.downExps[e]} {
		rb, _ := tensor.RowBytes(w.Type(), int64(w.Cols()))
		n += rb * int64(w.Rows())
	}
	return n
}

// loadRecorder records the bytes each LoadWeight call was given.
type loadRecorder struct {
	backend.Backend
	data map[string][]byte
}

func (r *loadRecorder) LoadWeight(name string, t tensor.DType, rows, cols int, data []byte) (backend.Weight, error) {
	r.data[name] = data
	return r.Backend.LoadWeight(name, t, rows, cols, data)
}

// TestExpertViews: each expert is loaded from its own slab of the 3-D
// tensor in the file's mapping (expert e at e times an expert's bytes),
// in the file's type, not from a copy; the CPU backend wraps those bytes
// as they are.
func TestExpertViews(t *testing.T) {
	f, err := gguf.Open(testdata.Path("models", "qwen3moe-tiny-q6k.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	be := cpu.New(cpu.Options{Threads: 1})
	defer be.Close()
	rec := &loadRecorder{Backend: be, data: map[string][]byte{}}
	m, err := Load(f, rec, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for l := range m.Config.Layers {
		for _, name := range []string{"ffn_gate_exps", "ffn_up_exps", "ffn_down_exps"} {
			full := fmt.Sprintf("blk.%d.%s.weight", l, name)
			ti, err := f.Tensor(full)
			if err != nil {
				t.Fatal(err)
			}
			slab := len(ti.Data) / m.Config.Experts
			for e := range m.Config.Experts {
				got := rec.data[fmt.Sprintf("%s[%d]", full, e)]
				if len(got) != slab || &got[0] != &ti.Data[e*slab] {
					t.Errorf("%s expert %d: not its slab of the mapping", full, e)
				}
			}
		}
	}
}

// TestExpertsUsedEdges: with expert_used_count 1 (no mixing) and 8 (every
// token through every expert, so every expert is shared by the whole
// batch) the model runs, its logits move (the router matters), and a
// sequence packed with 7 companions gets the same logits bit for bit as
// alone.
func TestExpertsUsedEdges(t *testing.T) {
	var gf goldenFile
	readJSON(t, &gf, "qwen3moe-tiny", "forward.json")
	target := gf.Results[0]
	decode := target.GreedyIDs[:4]
	var last [][]float32
	for _, k := range []uint32{1, 2, 8} {
		f := edited(t, "qwen3moe-tiny-q6k", set("qwen3moe.expert_used_count", gguf.Uint32(k)))
		be := cpu.New(cpu.Options{Threads: 2})
		m, err := Load(f, be, Options{})
		if err != nil {
			t.Fatal(err)
		}
		alone := soloLogits(t, m, tensor.F32, target.IDs, decode, 5)
		packed := packedRun(t, m, tensor.F32, target.IDs, decode, gf.Results, 7)
		for j := range alone {
			if !bitsEqual(alone[j], packed[j]) {
				t.Fatalf("%d experts used: step %d differs packed with 7 companions", k, j)
			}
		}
		for _, prev := range last {
			if bitsEqual(prev, alone[0]) {
				t.Errorf("%d experts used: the same logits as with fewer", k)
			}
		}
		last = append(last, alone[0])
		be.Close()
	}
}

// TestMoESplitAcrossBackends: qwen3moe-tiny split after its first layer
// over two CPU backends (each stage with its own expert buffers, the
// host routing shared) gives the unsplit logits bit for bit.
func TestMoESplitAcrossBackends(t *testing.T) {
	var gf goldenFile
	readJSON(t, &gf, "qwen3moe-tiny", "forward.json")
	r := gf.Results[1]
	whole := loadFixture(t, "qwen3moe-tiny", false, Options{})
	want := soloLogits(t, whole.m, tensor.F16, r.IDs, r.GreedyIDs[:4], 7)
	f, err := gguf.Open(testdata.Path("models", "qwen3moe-tiny-q6k.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	main, other := cpu.New(cpu.Options{Threads: 1}), cpu.New(cpu.Options{Threads: 2})
	defer main.Close()
	defer other.Close()
	m, err := Load(f, main, Options{Offload: other, OffloadLayers: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, layers := m.Backends(); len(layers) != 2 {
		t.Fatalf("stages %v", layers)
	}
	got := soloLogits(t, m, tensor.F16, r.IDs, r.GreedyIDs[:4], 7)
	for j := range want {
		if !bitsEqual(want[j], got[j]) {
			t.Fatalf("step %d differs from the unsplit model", j)
		}
	}
}
