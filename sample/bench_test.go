package sample

import (
	"testing"
)

// The benchmarks sample a Qwen3-sized row: 151936 logits from N(0, 2²)
// with a few tokens well above the rest. BenchmarkCopyRow is the floor to
// compare against: every sampling path starts by copying the row once
// (608 KiB), so greedy can at best be about twice a copy (copy, then one
// read pass).

const qwen3Vocab = 151936

func benchSample(b *testing.B, p Params) {
	row := randomRow(1, qwen3Vocab, 2)
	s := mustNew(b, p)
	for i := range int32(64) {
		s.Accept(i * 31)
	}
	s.Sample(row) // size the scratch buffers
	b.SetBytes(int64(4 * len(row)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if s.Sample(row) == NoToken {
			b.Fatal("NoToken")
		}
	}
}

func BenchmarkCopyRow(b *testing.B) {
	row := randomRow(1, qwen3Vocab, 2)
	dst := make([]float32, len(row))
	b.SetBytes(int64(4 * len(row)))
	b.ReportAllocs()
	for b.Loop() {
		copy(dst, row)
	}
}

func BenchmarkSampleGreedy(b *testing.B) { benchSample(b, GreedyParams()) }

func BenchmarkSampleDefault(b *testing.B) { benchSample(b, DefaultParams()) }

func BenchmarkSampleDefaultPenalties(b *testing.B) {
	p := DefaultParams()
	p.RepeatPenalty, p.PresencePenalty, p.FrequencyPenalty = 1.1, 0.5, 0.5
	benchSample(b, p)
}

// Top-k off, top-p on: the histogram nucleus path. This row is flat for
// a language model: its nucleus at top-p 0.95 holds 25253 tokens (with
// min-p 0.05 on, as in BenchmarkSampleTopPMinP, 6 survive).
func BenchmarkSampleTopPOnly(b *testing.B) {
	p := DefaultParams()
	p.TopK, p.MinP = 0, 0
	benchSample(b, p)
}

// Top-k off, top-p and min-p on.
func BenchmarkSampleTopPMinP(b *testing.B) {
	p := DefaultParams()
	p.TopK = 0
	benchSample(b, p)
}

// No truncation at all: softmax and draw over the whole row.
func BenchmarkSampleTemperatureOnly(b *testing.B) {
	p := DefaultParams()
	p.TopK, p.TopP, p.MinP = 0, 1, 0
	benchSample(b, p)
}

// TopK as `gollm logits` uses it (allocates its result).
func BenchmarkTopK20(b *testing.B) {
	row := randomRow(1, qwen3Vocab, 2)
	b.SetBytes(int64(4 * len(row)))
	b.ReportAllocs()
	for b.Loop() {
		TopK(row, 20)
	}
}
