package cpu_test

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/gollm/gollm/backend"
	"github.com/gollm/gollm/backend/cpu"
	"github.com/gollm/gollm/flat"
	"github.com/gollm/gollm/gguf"
	"github.com/gollm/gollm/kernels"
	"github.com/gollm/gollm/model"
	"github.com/gollm/gollm/synth"
	"github.com/gollm/gollm/tensor"
)

// End-to-end benchmarks of the CPU forward pass on a random-weight model
// shaped like Qwen3-0.6B with Q6_K matrices (what `gollm synth --preset
// qwen3-0.6b --type q6_k` writes, about 500 MB). The file is written once
// per test process into a temporary directory.
//
//	go test -run XXX -bench Forward ./backend/cpu                 # 2 threads
//	go test -run XXX -bench Forward ./backend/cpu -args -threads 1
//
// Every benchmark reports tok/s (tokens computed per second), and the
// decode benchmarks GB/s: the bytes of weight matrices one step reads
// (model.WeightBytesPerToken) divided by the step time, and that as a
// percentage of the stream-read bandwidth measured in the same process with
// the same number of threads (%bw). One-sequence generation cannot go
// faster than bandwidth / weight bytes, so %bw is how close it comes.

var (
	benchThreads = flag.Int("threads", 2, "worker threads for the forward benchmarks")
	benchCtx     = flag.Int("ctx", 512, "tokens already in each sequence's KV cache for the decode benchmarks")
)

// benchDir holds the synthetic model; TestMain removes it.
var benchDir string

func TestMain(m *testing.M) {
	flag.Parse()
	code := m.Run()
	if benchDir != "" {
		os.RemoveAll(benchDir)
	}
	os.Exit(code)
}

// benchModel writes the model once and returns its path.
var benchModel = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "gollm-bench-")
	if err != nil {
		return "", err
	}
	benchDir = dir
	cfg, err := synth.Preset("qwen3-0.6b")
	if err != nil {
		return "", err
	}
	cfg.Type = tensor.Q6_K
	path := filepath.Join(dir, "qwen3-0.6b-q6_k.gguf")
	return path, synth.Write(path, cfg, nil)
})

// streamBandwidth measures bytes/s of kernels.StreamRead over a 1 GiB
// buffer (bigger than the caches) split over threads workers: the best of
// three passes, after one warm-up pass that also faults the pages in.
var streamBandwidth = sync.OnceValue(func() float64 {
	buf := make([]byte, 1<<30)
	for i := range buf {
		buf[i] = byte(i)
	}
	p := kernels.NewPool(*benchThreads)
	defer p.Close()
	const chunk = 1 << 20
	var sums [64]uint64
	fn := func(lo, hi int) { sums[lo%64] += kernels.StreamRead(buf[lo*chunk : hi*chunk]) }
	best := 0.0
	for pass := 0; pass < 4; pass++ {
		t0 := time.Now()
		p.For(len(buf)/chunk, fn)
		if bw := float64(len(buf)) / time.Since(t0).Seconds(); pass > 0 && bw > best {
			best = bw
		}
	}
	return best
})

// benchEnv is a loaded model with a state for up to 8 sequences.
type benchEnv struct {
	file *gguf.File
	be   *kvBackend
	m    *model.Model
	s    *model.State
}

// kvBackend is the CPU backend that remembers the KV storage it made, so
// that the benchmarks can fill it.
type kvBackend struct {
	*cpu.Backend
	kv *cpu.HostStorage
}

func (b *kvBackend) NewKV(dt tensor.DType, layers, kvDim, blockSize, numBlocks int) (backend.KV, error) {
	kv, err := b.Backend.NewKV(dt, layers, kvDim, blockSize, numBlocks)
	b.kv, _ = kv.(*cpu.HostStorage)
	return kv, err
}

func newBenchEnv(b *testing.B, maxBatch, capacity int) *benchEnv {
	b.Helper()
	path, err := benchModel()
	if err != nil {
		b.Fatal(err)
	}
	f, err := gguf.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	be := &kvBackend{Backend: cpu.New(cpu.Options{Threads: *benchThreads})}
	m, err := model.Load(f, be, model.Options{})
	if err != nil {
		b.Fatal(err)
	}
	s, err := m.NewState(model.StateOptions{Capacity: capacity, KVType: tensor.F16, MaxBatch: maxBatch})
	if err != nil {
		b.Fatal(err)
	}
	fillKV(be.kv)
	b.Cleanup(func() { be.Close(); f.Close() })
	return &benchEnv{file: f, be: be, m: m, s: s}
}

// BenchmarkForward runs whole forward steps.
//
//   - decode/nK: K sequences, each holding -ctx tokens, compute one new
//     token each in one step (K = 1 is one-sequence generation). The
//     sequences' cached keys and values are random rather than computed
//     (attention costs the same whatever the values, but not a cache that
//     was never written: its pages would all be the kernel's shared zero
//     page, always in cache, and attention would look nearly free); each
//     iteration cuts the sequences back to -ctx tokens and appends the
//     new one.
//   - prompt512: one sequence's 512-token prompt in one step (logits for
//     the last token only), like llama-bench's pp512.
func BenchmarkForward(b *testing.B) {
	for _, n := range []int{1, 2, 4, 8} {
		b.Run(fmt.Sprintf("decode/n%d", n), func(b *testing.B) { benchDecode(b, n) })
	}
	b.Run("prompt512", benchPrompt)
}

func benchDecode(b *testing.B, n int) {
	ctx := *benchCtx
	env := newBenchEnv(b, n, n*(ctx+32))
	kv, V := env.s.KV, env.m.Config.Vocab
	var batch flat.Batch
	for k := 0; k < n; k++ {
		seq := flat.SeqID(k)
		if err := kv.AddSeq(seq); err != nil {
			b.Fatal(err)
		}
		if _, err := kv.Append(seq, ctx); err != nil {
			b.Fatal(err)
		}
		batch.Add(int32(1000+k), ctx, seq, true)
	}
	logits := make([]float32, n*V)
	step := func() {
		for k := 0; k < n; k++ {
			seq := flat.SeqID(k)
			if err := kv.Truncate(seq, ctx); err != nil {
				b.Fatal(err)
			}
			if _, err := kv.Append(seq, 1); err != nil {
				b.Fatal(err)
			}
		}
		if err := env.m.Forward(env.s, &batch, logits); err != nil {
			b.Fatal(err)
		}
	}
	step() // warm-up: page the weights in, grow scratch buffers
	bw := streamBandwidth()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		step()
	}
	sec := b.Elapsed().Seconds()
	gbs := float64(env.m.WeightBytesPerToken()) * float64(b.N) / sec
	b.ReportMetric(float64(n*b.N)/sec, "tok/s")
	b.ReportMetric(gbs/1e9, "GB/s")
	b.ReportMetric(100*gbs/bw, "%bw")
	b.ReportMetric(bw/1e9, "streamGB/s")
}

func benchPrompt(b *testing.B) {
	const n = 512
	env := newBenchEnv(b, n, n+32)
	kv := env.s.KV
	var batch flat.Batch
	for p := 0; p < n; p++ {
		batch.Add(int32(p*37%env.m.Config.Vocab), p, 0, p == n-1)
	}
	if err := kv.AddSeq(0); err != nil {
		b.Fatal(err)
	}
	logits := make([]float32, env.m.Config.Vocab)
	step := func() {
		if err := kv.Truncate(0, 0); err != nil {
			b.Fatal(err)
		}
		if _, err := kv.Append(0, n); err != nil {
			b.Fatal(err)
		}
		if err := env.m.Forward(env.s, &batch, logits); err != nil {
			b.Fatal(err)
		}
	}
	step()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		step()
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "tok/s")
}

// BenchmarkAttention runs only the attention of a decode step, all 28
// layers of the qwen3-0.6b shape, for n sequences of -ctx cached tokens
// each (F16 cache), and reports the cache bytes read per second.
//
// The cache holds random values: a cache that was never written would be
// read from the kernel's shared zero page (always in cache) and look much
// faster than one filled by real steps. The sequences' blocks alternate
// in the pool, as when sequences grow together.
func BenchmarkAttention(b *testing.B) {
	const layers, heads, kvHeads, hd, bs = 28, 16, 8, 128, 16
	ctx := *benchCtx
	for _, n := range []int{1, 2, 8} {
		b.Run(fmt.Sprintf("n%d", n), func(b *testing.B) {
			be := cpu.New(cpu.Options{Threads: *benchThreads})
			defer be.Close()
			perSeq := (ctx + bs) / bs
			kv, err := be.NewKV(tensor.F16, layers, kvHeads*hd, bs, n*perSeq)
			if err != nil {
				b.Fatal(err)
			}
			fillKV(kv.(*cpu.HostStorage))
			q, out := be.NewBuffer(n, heads*hd), be.NewBuffer(n, heads*hd)
			qs := make([]float32, n*heads*hd)
			for i := range qs {
				qs[i] = float32(i%61)/30 - 1
			}
			be.Write(q, qs, n)
			plan := backend.AttnPlan{N: n, BlockSize: bs, Heads: heads, KVHeads: kvHeads, HeadDim: hd, Scale: 0.088}
			for i := 0; i < n; i++ {
				table := make([]int32, perSeq)
				for k := range table {
					table[k] = int32(k*n + i)
				}
				plan.Pos = append(plan.Pos, int32(ctx))
				plan.Slots = append(plan.Slots, table[ctx/bs]*bs+int32(ctx%bs))
				plan.Tables = append(plan.Tables, table)
			}
			step := func() {
				for l := 0; l < layers; l++ {
					be.Attention(out, q, kv, l, &plan)
				}
			}
			step()
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				step()
			}
			bytes := float64(n) * float64(ctx+1) * layers * 2 * kvHeads * hd * 2
			b.ReportMetric(bytes*float64(b.N)/b.Elapsed().Seconds()/1e9, "GB/s")
		})
	}
}

// fillKV writes random halves into every slot of a cache: ±[1, 4), a
// third of them ±[1/16, 1/4).
func fillKV(h *cpu.HostStorage) {
	rng := rand.New(rand.NewPCG(1, 2))
	for l := range h.K16 {
		for _, x := range [][]uint16{h.K16[l], h.V16[l]} {
			for i := range x {
				x[i] = 0x3c00 + uint16(rng.IntN(0x800)) | uint16(rng.IntN(2))<<15
				if i%3 == 0 {
					x[i] -= 0x1000 // exponent - 4
				}
			}
		}
	}
}
