package cuda

import (
	"errors"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/gollm/gollm/backend/cpu"
	"github.com/gollm/gollm/flat"
	"github.com/gollm/gollm/gguf"
	"github.com/gollm/gollm/model"
	"github.com/gollm/gollm/tensor"
)

// TestDryRunForward loads both fixture models on a backend without a
// device and runs forward steps through model.Forward: every operation is
// recorded with its real arguments and launch shapes, and the flush
// checks every pointer against the (fake) allocations and every staged
// offset against the staging area. It exercises all of the recording code
// on machines without a GPU.
func TestDryRunForward(t *testing.T) {
	for _, name := range []string{"qwen3-tiny-q6k", "qwen3-tiny-mixed"} {
		t.Run(name, func(t *testing.T) {
			f, err := gguf.Open(fixturePath("models", name+".gguf"))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			b := newBackend(Options{}, nil)
			defer b.Close()
			m, err := model.Load(f, b, model.Options{})
			if err != nil {
				t.Fatal(err)
			}
			cfg := m.Config
			s, err := m.NewState(model.StateOptions{Capacity: 256, BlockSize: 16, KVType: tensor.F16, MaxBatch: 96})
			if err != nil {
				t.Fatal(err)
			}
			// Step 1: a 70-token prompt and a 5-token prompt (n = 75: the
			// tiled products).
			var batch flat.Batch
			for seq, n := range []int{70, 5} {
				id := flat.SeqID(seq)
				s.KV.AddSeq(id)
				start, err := s.KV.Append(id, n)
				if err != nil {
					t.Fatal(err)
				}
				for p := start; p < start+n; p++ {
					batch.Add(int32(p*7%cfg.Vocab), p, id, p == start+n-1)
				}
			}
			logits := make([]float32, 2*cfg.Vocab)
			if err := m.Forward(s, &batch, logits); err != nil {
				t.Fatal(err)
			}
			if err := b.Err(); err != nil {
				t.Fatal(err)
			}
			counts := map[string]int{}
			for _, c := range b.dryLog {
				if c.k != nil {
					counts[c.k.name]++
				}
			}
			L := cfg.Layers
			if counts["attention"] != L || counts["store_kv"] != L || counts["rope"] != 2*L ||
				counts["rmsnorm"] != 2*L+1 || counts["rmsnorm_heads"] != 2*L || counts["swiglu"] != L ||
				counts["add"] != 2*L || counts["embed"] != 1 || counts["gather"] != 1 {
				t.Errorf("launches %v", counts)
			}
			products := 0
			for k, c := range counts {
				if k[:3] == "mmq" || k[:3] == "mmv" {
					products += c
				}
			}
			if products != 7*L+1 {
				t.Errorf("%d products, want %d: %v", products, 7*L+1, counts)
			}
			if name == "qwen3-tiny-q6k" && (counts["mmq_q6_k"] != 7*L || counts["mmv_q6_k"] != 1) {
				// 75 tokens go through the tiled kernel; the LM head has 2 rows of output.
				t.Errorf("q6_K model: %v", counts)
			}
			t.Logf("step 1: %d commands: %v", len(b.dryLog), counts)

			// Step 2: fork sequence 0 mid-block and append to the fork:
			// copy on write records copy_kv_block. Then one decode token each.
			b.dryLog = nil
			if err := s.KV.Fork(2, 0, -1); err != nil {
				t.Fatal(err)
			}
			batch.Reset()
			for _, id := range []flat.SeqID{0, 1, 2} {
				pos, err := s.KV.Append(id, 1)
				if err != nil {
					t.Fatal(err)
				}
				batch.Add(1, pos, id, true)
			}
			logits = make([]float32, 3*cfg.Vocab)
			if err := m.Forward(s, &batch, logits); err != nil {
				t.Fatal(err)
			}
			if err := b.Err(); err != nil {
				t.Fatal(err)
			}
			copies, mmq := 0, 0
			for _, c := range b.dryLog {
				if c.k == kCopyKVBlock {
					copies++
				}
				if c.k != nil && c.k.name[:3] == "mmq" {
					mmq++
				}
			}
			if copies != 1 || mmq != 0 {
				t.Errorf("decode step: %d block copies (want 1), %d tiled products (want 0)", copies, mmq)
			}
			// A dry run reads back NaN.
			if logits[0] == logits[0] {
				t.Error("dry-run logits are not NaN")
			}
		})
	}
}

// TestDryRunMemoryLimit: loading past Options.MemoryLimit fails with
// ErrOutOfMemory and numbers.
func TestDryRunMemoryLimit(t *testing.T) {
	f, err := gguf.Open(fixturePath("models", "qwen3-tiny-q6k.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := newBackend(Options{MemoryLimit: 1 << 20}, nil)
	defer b.Close()
	_, err = model.Load(f, b, model.Options{})
	if err == nil {
		t.Fatal("a 4 MiB model loaded under a 1 MiB limit")
	}
	t.Log(err)
	if !errors.Is(err, ErrOutOfMemory) {
		t.Errorf("err = %v, want ErrOutOfMemory", err)
	}
}

// TestDryRunSplit splits the model: the first two layers on the CPU, the
// last two and the head on the (dry-run) GPU, as --gpu-layers does. The
// residual stream reaches the GPU through Write, recorded as a copy from
// the upload arena.
func TestDryRunSplit(t *testing.T) {
	f, err := gguf.Open(fixturePath("models", "qwen3-tiny-mixed.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	c := cpu.New(cpu.Options{Threads: 1})
	defer c.Close()
	g := newBackend(Options{}, nil)
	defer g.Close()
	m, err := model.Load(f, c, model.Options{Offload: g, OffloadLayers: 2})
	if err != nil {
		t.Fatal(err)
	}
	s, err := m.NewState(model.StateOptions{Capacity: 64, BlockSize: 16, KVType: tensor.F16, MaxBatch: 8})
	if err != nil {
		t.Fatal(err)
	}
	s.KV.AddSeq(0)
	s.KV.Append(0, 3)
	var batch flat.Batch
	for p := 0; p < 3; p++ {
		batch.Add(int32(10+p), p, 0, p == 2)
	}
	if err := m.Forward(s, &batch, make([]float32, m.Config.Vocab)); err != nil {
		t.Fatal(err)
	}
	if err := g.Err(); err != nil {
		t.Fatal(err)
	}
	copies, attention := 0, 0
	for _, cmd := range g.dryLog {
		if cmd.k == nil && cmd.args[1].arena && cmd.bytes == int64(3*m.Config.Embd*4) {
			copies++
		}
		if cmd.k == kAttention {
			attention++
		}
	}
	if copies != 1 || attention != 2 {
		t.Errorf("GPU stage: %d residual copies (want 1), %d attention launches (want 2)", copies, attention)
	}
}

// BenchmarkDryRunDecode is the host-side cost of one decode step of the
// 4-layer fixture model on a backend without a device: recording about a
// hundred launches (with their arguments) and handing them to the flush.
// On a GPU the launches cost more than this (cuLaunchKernel itself).
func BenchmarkDryRunDecode(b *testing.B) {
	f, err := gguf.Open(fixturePath("models", "qwen3-tiny-q6k.gguf"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	g := newBackend(Options{}, nil)
	g.dryNoCheck = true
	defer g.Close()
	m, err := model.Load(f, g, model.Options{})
	if err != nil {
		b.Fatal(err)
	}
	s, err := m.NewState(model.StateOptions{Capacity: 4096, BlockSize: 16, KVType: tensor.F16, MaxBatch: 1})
	if err != nil {
		b.Fatal(err)
	}
	s.KV.AddSeq(0)
	logits := make([]float32, m.Config.Vocab)
	var batch flat.Batch
	for b.Loop() {
		if s.KV.Len(0) >= 4000 {
			s.KV.Truncate(0, 0)
		}
		pos, _ := s.KV.Append(0, 1)
		batch.Reset()
		batch.Add(1, pos, 0, true)
		if err := m.Forward(s, &batch, logits); err != nil {
			b.Fatal(err)
		}
		g.dryLog = g.dryLog[:0]
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N), "µs/step")
}

// TestDryRunCleanup: buffers the program drops are freed on the device
// after the next flush (through Go cleanups), not while recorded commands
// may still use them.
func TestDryRunCleanup(t *testing.T) {
	b := newBackend(Options{}, nil)
	defer b.Close()
	keep := b.NewBuffer(4, 256)
	func() {
		for i := 0; i < 10; i++ {
			b.NewBuffer(4, 256)
		}
	}()
	before, _ := b.Allocated()
	for i := 0; i < 200; i++ {
		runtime.GC()
		b.freeMu.Lock()
		n := len(b.pendingFree)
		b.freeMu.Unlock()
		if n == 10 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if after, _ := b.Allocated(); after != before {
		t.Fatalf("freed before a flush: %d → %d bytes", before, after)
	}
	if err := b.Flush(); err != nil {
		t.Fatal(err)
	}
	after, _ := b.Allocated()
	if want := before - 10*4*256*4; after != want {
		t.Errorf("after the flush %d bytes allocated, want %d", after, want)
	}
	runtime.KeepAlive(keep)
}

// TestDryRunFamilies: the other families through the recorder. Qwen2's
// biases are one add launch per bias and token (3 per layer and token,
// checked against the allocations like every launch); the llama family's
// NORM rope is refused with an error naming it, since kernels_sm80.ptx
// rotates NEOX pairs only; so is qwen3moe's mixture of experts, which has
// no GPU kernels yet (Scatter, WeightedSum).
func TestDryRunFamilies(t *testing.T) {
	for _, c := range []struct {
		file    string
		wantErr string
	}{{"qwen2-tiny-q6k", ""}, {"llama-tiny-q6k", "RoPE style norm is not implemented on the GPU"},
		{"qwen3moe-tiny-q6k", "the mixture-of-experts FFN (qwen3moe) is not implemented on the GPU yet"}} {
		t.Run(c.file, func(t *testing.T) {
			f, err := gguf.Open(fixturePath("models", c.file+".gguf"))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			b := newBackend(Options{}, nil)
			defer b.Close()
			m, err := model.Load(f, b, model.Options{})
			if err != nil {
				t.Fatal(err)
			}
			s, err := m.NewState(model.StateOptions{Capacity: 64, BlockSize: 16, KVType: tensor.F16, MaxBatch: 8})
			if err != nil {
				t.Fatal(err)
			}
			const n = 5
			var batch flat.Batch
			s.KV.AddSeq(0)
			if _, err := s.KV.Append(0, n); err != nil {
				t.Fatal(err)
			}
			for p := range n {
				batch.Add(int32(p+1), p, 0, p == n-1)
			}
			err = m.Forward(s, &batch, make([]float32, m.Config.Vocab))
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("error %v, want one mentioning %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			adds := 0
			for _, cmd := range b.dryLog {
				if cmd.k == kAdd {
					adds++
				}
			}
			L := m.Config.Layers
			if want := 2*L + 3*n*L; adds != want { // residual adds, then the biases
				t.Errorf("%d add launches, want %d", adds, want)
			}
		})
	}
}
