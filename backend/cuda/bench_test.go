package cuda

import (
	"os"
	"testing"
	"time"

	"github.com/gollm/gollm/flat"
	"github.com/gollm/gollm/gguf"
	"github.com/gollm/gollm/model"
	"github.com/gollm/gollm/tensor"
)

// BenchmarkQwen8B measures the GPU backend end to end, through
// model.Forward, on the model file named by GOLLM_CUDA_BENCH_MODEL (made
// with `gollm synth --preset qwen3-8b --type q6_k --out FILE`):
//
//	tg128    one sequence generates 128 tokens, one per step (tok/s; GB/s of weights read)
//	pp512    one sequence evaluates a 512-token prompt in one step (tok/s)
//	batch64  64 sequences evaluate 32-token prompts together (pp tok/s),
//	         then decode 64 tokens each, 64 tokens per step (tok/s of the decode phase)
//
// Token ids are fixed pseudo-random numbers; generated tokens are not
// sampled (the next id is a function of the step), so the figures are
// the forward pass's, logits copy to the host included, sampling not.
// Each sub-benchmark runs once untimed first (warm-up). Run with
//
//	GOLLM_CUDA_BENCH_MODEL=/tmp/q8b.gguf ./cuda.test -test.run '^$' -test.bench BenchmarkQwen8B -test.benchtime 1x
func BenchmarkQwen8B(b *testing.B) {
	path := os.Getenv("GOLLM_CUDA_BENCH_MODEL")
	if path == "" {
		b.Skip("set GOLLM_CUDA_BENCH_MODEL to a qwen3-8b GGUF file (gollm synth --preset qwen3-8b --type q6_k --out FILE)")
	}
	be := newGPU(b, Options{})
	f, err := gguf.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	t0 := time.Now()
	m, err := model.Load(f, be, model.Options{})
	if err != nil {
		b.Fatal(err)
	}
	total, weights := be.Allocated()
	b.Logf("%s: loaded %s of weights in %.2f s (%s allocated)", be.Name(), gib(weights), time.Since(t0).Seconds(), gib(total))
	V := m.Config.Vocab
	ids := func(seed uint32, n int) []int32 { // gollm bench's generator
		out := make([]int32, n)
		x := seed
		for i := range out {
			x = 1664525*x + 1013904223
			out[i] = int32((x >> 8) % uint32(V))
		}
		return out
	}
	state := func(b *testing.B, capacity, maxBatch int) *model.State {
		s, err := m.NewState(model.StateOptions{Capacity: capacity, BlockSize: 16, KVType: tensor.F16, MaxBatch: maxBatch})
		if err != nil {
			b.Fatal(err)
		}
		return s
	}
	check := func(b *testing.B) {
		if err := be.Err(); err != nil {
			b.Fatal(err)
		}
	}

	b.Run("tg128", func(b *testing.B) {
		s := state(b, 256, 1)
		logits := make([]float32, V)
		var batch flat.Batch
		run := func() {
			s.KV.Free(0)
			s.KV.AddSeq(0)
			tok := ids(2, 1)[0]
			for step := 0; step < 128; step++ {
				pos, _ := s.KV.Append(0, 1)
				batch.Reset()
				batch.Add(tok, pos, 0, true)
				if err := m.Forward(s, &batch, logits); err != nil {
					b.Fatal(err)
				}
				tok = (tok*31 + 7) % int32(V)
			}
		}
		run()
		check(b)
		for b.Loop() {
			run()
		}
		check(b)
		tps := float64(128*b.N) / b.Elapsed().Seconds()
		b.ReportMetric(tps, "tok/s")
		b.ReportMetric(tps*float64(m.WeightBytesPerToken())/1e9, "GB/s")
	})

	b.Run("pp512", func(b *testing.B) {
		s := state(b, 1024, 512)
		logits := make([]float32, V)
		prompt := ids(1, 512)
		var batch flat.Batch
		run := func() {
			s.KV.Free(0)
			s.KV.AddSeq(0)
			s.KV.Append(0, len(prompt))
			batch.Reset()
			for p, id := range prompt {
				batch.Add(id, p, 0, p == len(prompt)-1)
			}
			if err := m.Forward(s, &batch, logits); err != nil {
				b.Fatal(err)
			}
		}
		run()
		check(b)
		for b.Loop() {
			run()
		}
		check(b)
		b.ReportMetric(float64(512*b.N)/b.Elapsed().Seconds(), "tok/s")
	})

	b.Run("batch64", func(b *testing.B) {
		const seqs, promptLen, gen = 64, 32, 64
		s := state(b, seqs*(promptLen+gen+16), 512)
		logits := make([]float32, seqs*V)
		var batch flat.Batch
		var ppTime, tgTime time.Duration
		run := func() (pp, tg time.Duration) {
			for k := 0; k < seqs; k++ {
				s.KV.Free(flat.SeqID(k))
				s.KV.AddSeq(flat.SeqID(k))
			}
			t0 := time.Now()
			// Prompts: 512 tokens (16 sequences) per step.
			for k0 := 0; k0 < seqs; k0 += 512 / promptLen {
				batch.Reset()
				for k := k0; k < min(seqs, k0+512/promptLen); k++ {
					start, _ := s.KV.Append(flat.SeqID(k), promptLen)
					for p, id := range ids(uint32(100+k), promptLen) {
						batch.Add(id, start+p, flat.SeqID(k), p == promptLen-1)
					}
				}
				if err := m.Forward(s, &batch, logits); err != nil {
					b.Fatal(err)
				}
			}
			t1 := time.Now()
			for step := 0; step < gen; step++ {
				batch.Reset()
				for k := 0; k < seqs; k++ {
					pos, _ := s.KV.Append(flat.SeqID(k), 1)
					batch.Add(int32((k*977+step*31+7)%V), pos, flat.SeqID(k), true)
				}
				if err := m.Forward(s, &batch, logits); err != nil {
					b.Fatal(err)
				}
			}
			return t1.Sub(t0), time.Since(t1)
		}
		run()
		check(b)
		for b.Loop() {
			pp, tg := run()
			ppTime += pp
			tgTime += tg
		}
		check(b)
		b.ReportMetric(float64(seqs*gen*b.N)/tgTime.Seconds(), "tok/s")
		b.ReportMetric(float64(seqs*promptLen*b.N)/ppTime.Seconds(), "pp-tok/s")
		b.ReportMetric(tgTime.Seconds()*1e3/float64(gen*b.N), "ms/step")
	})
}
