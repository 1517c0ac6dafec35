package cpu_test

import (
	"math"
	"testing"

	"github.com/gollm/gollm/backend/cpu"
	"github.com/gollm/gollm/flat"
	"github.com/gollm/gollm/gguf"
	"github.com/gollm/gollm/internal/testdata"
	"github.com/gollm/gollm/kernels"
	"github.com/gollm/gollm/model"
	"github.com/gollm/gollm/tensor"
)

// TestScatterWeightedSum: Scatter puts rows where Gather would take them
// from, and WeightedSum gives, for every kernel implementation and with
// enough rows to split over the workers, exactly the plain-Go sum
// dst[i] = Σ_r float32(w[i·k+r]·x[i·k+r]) in rank order; a row's result
// is the same when it is mixed alone.
func TestScatterWeightedSum(t *testing.T) {
	const n, k, cols = 96, 3, 256 // n·k·cols above the parallel threshold
	vals := make([]float32, n*k*cols)
	w := make([]float32, n*k)
	seed := uint32(7)
	next := func() float32 {
		seed = seed*1664525 + 1013904223
		return float32(int32(seed)>>8) / (1 << 20)
	}
	for i := range vals {
		vals[i] = next()
	}
	for i := range w {
		w[i] = next() / 8
	}
	want := make([]float32, n*cols)
	for i := 0; i < n; i++ {
		for c := 0; c < cols; c++ {
			var acc float32
			for r := 0; r < k; r++ {
				p := float32(w[i*k+r] * vals[(i*k+r)*cols+c])
				if r == 0 {
					acc = p
				} else {
					acc += p
				}
			}
			want[i*cols+c] = acc
		}
	}
	defer kernels.SetActive(kernels.Active().Name)
	for _, im := range kernels.Implementations() {
		if err := kernels.SetActive(im.Name); err != nil {
			t.Fatal(err)
		}
		be := cpu.New(cpu.Options{Threads: 2})
		// Fill x through Scatter, rows in reverse order.
		src, x, dst := be.NewBuffer(n*k, cols), be.NewBuffer(n*k, cols), be.NewBuffer(n, cols)
		rows := make([]int32, n*k)
		rev := make([]float32, len(vals))
		for i := range rows {
			rows[i] = int32(n*k - 1 - i)
			copy(rev[i*cols:(i+1)*cols], vals[int(rows[i])*cols:(int(rows[i])+1)*cols])
		}
		be.Write(src, rev, n*k)
		be.Scatter(x, src, rows)
		be.WeightedSum(dst, x, w, k, n)
		got := make([]float32, n*cols)
		be.Read(got, dst, n)
		for i := range got {
			if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
				t.Fatalf("%s: value %d is %g, want %g", im.Name, i, got[i], want[i])
			}
		}
		// Row 37 alone.
		one, alone := be.NewBuffer(k, cols), be.NewBuffer(1, cols)
		be.Write(one, vals[37*k*cols:38*k*cols], k)
		be.WeightedSum(alone, one, w[37*k:38*k], k, 1)
		row := make([]float32, cols)
		be.Read(row, alone, 1)
		for c := range row {
			if math.Float32bits(row[c]) != math.Float32bits(want[37*cols+c]) {
				t.Fatalf("%s: row 37 alone differs at %d", im.Name, c)
			}
		}
		be.Close()
	}
}

// TestMoEForwardDoesNotAllocate: a decode step of 8 sequences on the
// qwen3moe fixture (routing, grouping, per-expert products) allocates
// nothing once the state exists.
func TestMoEForwardDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless with the race detector")
	}
	f, err := gguf.Open(testdata.Path("models", "qwen3moe-tiny-q6k.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	be := cpu.New(cpu.Options{Threads: 2})
	defer be.Close()
	m, err := model.Load(f, be, model.Options{})
	if err != nil {
		t.Fatal(err)
	}
	const n, ctx = 8, 5
	s, err := m.NewState(model.StateOptions{Capacity: 256, BlockSize: 16, KVType: tensor.F16, MaxBatch: n})
	if err != nil {
		t.Fatal(err)
	}
	var batch flat.Batch
	for k := range n {
		seq := flat.SeqID(k)
		s.KV.AddSeq(seq)
		if _, err := s.KV.Append(seq, ctx); err != nil {
			t.Fatal(err)
		}
		batch.Add(int32(100+37*k), ctx, seq, true)
	}
	logits := make([]float32, n*m.Config.Vocab)
	step := func() {
		for k := range n {
			s.KV.Truncate(flat.SeqID(k), ctx)
			s.KV.Append(flat.SeqID(k), 1)
		}
		if err := m.Forward(s, &batch, logits); err != nil {
			t.Fatal(err)
		}
	}
	step()
	if allocs := testing.AllocsPerRun(10, step); allocs > 0 {
		t.Errorf("%v allocations per step", allocs)
	}
}
