package kernels

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/gollm/gollm/tensor"
)

// Benchmarks. Matrix-vector products report GB/s of weight bytes (the
// memory traffic that bounds one-sequence generation); compare with
// BenchmarkMemBandwidth. Matrix-matrix products report GOPS (2 operations
// per multiply-add). Shapes are those of Qwen3-0.6B: hidden 1024, FFN
// 3072, vocabulary 151936.

var benchShapes = []struct {
	name       string
	rows, cols int
}{
	{"1024x3072", 1024, 3072}, // ffn_down: 1024 outputs, 3072 inputs
	{"3072x1024", 3072, 1024}, // ffn_gate / ffn_up
}

// benchSetup makes random weights and n quantized activation rows.
func benchSetup(wt tensor.DType, rows, cols, n int) (w []byte, at tensor.DType, act []byte) {
	rng := rand.New(rand.NewPCG(1, uint64(rows*cols)))
	at, _ = ActType(wt)
	return randomWeights(rng, wt, rows, cols), at, quantizeRows(generic, at, randomFloats(rng, n*cols), n, cols)
}

// matMulPool runs one MatMul over the pool's threads, split on row ranges
// that are multiples of 16.
func matMulPool(p *Pool, im *Impl, dst []float32, wt tensor.DType, w []byte, at tensor.DType, act []byte, n, rows, cols int) func(lo, hi int) {
	return func(lo, hi int) { im.MatMul(dst, rows, wt, w, at, act, n, cols, lo, hi) }
}

func BenchmarkMatVec(b *testing.B) {
	types := []tensor.DType{tensor.Q6_K, tensor.Q4_K, tensor.Q5_K, tensor.Q8_0, tensor.Q4_0, tensor.F16, tensor.BF16, tensor.F32}
	for _, im := range Implementations() {
		for _, wt := range types {
			for _, sh := range benchShapes {
				for _, threads := range []int{1, 2} {
					b.Run(fmt.Sprintf("%s/%v/%s/t%d", im, wt, sh.name, threads), func(b *testing.B) {
						w, at, act := benchSetup(wt, sh.rows, sh.cols, 1)
						dst := make([]float32, sh.rows)
						p := NewPool(threads)
						defer p.Close()
						fn := matMulPool(p, im, dst, wt, w, at, act, 1, sh.rows, sh.cols)
						b.SetBytes(int64(len(w)))
						b.ReportAllocs()
						b.ResetTimer()
						for range b.N {
							p.ForGrain(sh.rows, 16, fn)
						}
					})
				}
			}
		}
	}
}

// BenchmarkLMHead: the 151936×1024 output matrix (Q6_K), n = 1.
func BenchmarkLMHead(b *testing.B) {
	const rows, cols = 151936, 1024
	w, at, act := benchSetup(tensor.Q6_K, rows, cols, 1)
	for _, im := range Implementations() {
		for _, threads := range []int{1, 2} {
			b.Run(fmt.Sprintf("%s/t%d", im, threads), func(b *testing.B) {
				dst := make([]float32, rows)
				p := NewPool(threads)
				defer p.Close()
				fn := matMulPool(p, im, dst, tensor.Q6_K, w, at, act, 1, rows, cols)
				b.SetBytes(int64(len(w)))
				b.ReportAllocs()
				b.ResetTimer()
				for range b.N {
					p.ForGrain(rows, 16, fn)
				}
			})
		}
	}
}

// BenchmarkMatMul: several tokens at once (prompt processing, batched
// decoding) on the 3072×1024 FFN shape, reporting GOPS.
func BenchmarkMatMul(b *testing.B) {
	const rows, cols = 3072, 1024
	for _, wt := range []tensor.DType{tensor.Q6_K, tensor.Q4_K, tensor.Q8_0, tensor.F16} {
		for _, n := range []int{2, 4, 8, 64, 512} {
			w, at, act := benchSetup(wt, rows, cols, n)
			for _, im := range Implementations() {
				if im == generic && n > 64 {
					continue // too slow to be interesting
				}
				for _, threads := range []int{1, 2} {
					b.Run(fmt.Sprintf("%s/%v/n%d/t%d", im, wt, n, threads), func(b *testing.B) {
						dst := make([]float32, rows*n)
						p := NewPool(threads)
						defer p.Close()
						fn := matMulPool(p, im, dst, wt, w, at, act, n, rows, cols)
						b.ReportAllocs()
						b.ResetTimer()
						for range b.N {
							p.ForGrain(rows, 16, fn)
						}
						b.ReportMetric(2*float64(rows)*cols*float64(n)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GOPS")
					})
				}
			}
		}
	}
}

func BenchmarkQuantizeRow(b *testing.B) {
	x := randomFloats(rand.New(rand.NewPCG(1, 2)), 3072)
	for _, im := range Implementations() {
		for _, at := range []tensor.DType{tensor.Q8_K, tensor.Q8_0, tensor.F16} {
			b.Run(fmt.Sprintf("%s/%v", im, at), func(b *testing.B) {
				dst := make([]byte, rowBytes(at, len(x)))
				b.SetBytes(int64(4 * len(x)))
				b.ReportAllocs()
				for range b.N {
					im.QuantizeRow(at, dst, x)
				}
			})
		}
	}
}

func BenchmarkVec(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	const n = 4096
	x, y := randomFloats(rng, n), randomFloats(rng, n)
	h := halves(randomFloats(rng, n))
	ones := make([]float32, n) // Mul by 1 keeps y normal (repeated products sink into slow denormals)
	for i := range ones {
		ones[i] = 1
	}
	for _, im := range Implementations() {
		bench := func(name string, bytes int, fn func()) {
			b.Run(im.Name+"/"+name, func(b *testing.B) {
				b.SetBytes(int64(bytes))
				b.ReportAllocs()
				for range b.N {
					fn()
				}
			})
		}
		var sink float32
		bench("Dot", 8*n, func() { sink += im.Dot(x, y) })
		bench("DotF16", 6*n, func() { sink += im.DotF16(x, h) })
		bench("Axpy", 8*n, func() { im.Axpy(y, 1e-9, x) })
		bench("AxpyF16", 6*n, func() { im.AxpyF16(y, 1e-9, h) })
		bench("Mul", 8*n, func() { im.Mul(y, ones) })
		bench("F16ToF32", 6*n, func() { im.F16ToF32(y, h) })
		_ = sink
	}
}

// bigBuffer is 1 GiB of Q6_K weight blocks (a 16 MiB random matrix
// repeated), larger than this machine's caches (its L3 is 480 MiB), shared
// by the bandwidth benchmarks below.
var bigBuffer = sync.OnceValue(func() []byte {
	const rows, cols = 8192, 1024 // 8192 rows of 840 bytes: 6.6 MiB
	one := randomWeights(rand.New(rand.NewPCG(1, 1)), tensor.Q6_K, rows, cols)
	buf := make([]byte, 0, 1<<30)
	for len(buf)+len(one) <= cap(buf) {
		buf = append(buf, one...)
	}
	return buf
})

// BenchmarkMemBandwidth streams through 1 GiB and reports GB/s: the
// ceiling for the matrix-vector products.
func BenchmarkMemBandwidth(b *testing.B) {
	buf := bigBuffer()
	for _, threads := range []int{1, 2} {
		b.Run(fmt.Sprintf("t%d", threads), func(b *testing.B) {
			p := NewPool(threads)
			defer p.Close()
			const chunk = 1 << 20
			var sums [64]uint64
			fn := func(lo, hi int) { sums[lo%64] += StreamRead(buf[lo*chunk : hi*chunk]) }
			b.SetBytes(int64(len(buf) / chunk * chunk))
			for range b.N {
				p.For(len(buf)/chunk, fn)
			}
		})
	}
}

// BenchmarkMatVecModel multiplies one token with 1 GiB of Q6_K weights
// (as 1024-column matrices), so the weights come from memory as in
// one-sequence generation of a model bigger than the caches. Compare its
// GB/s with BenchmarkMemBandwidth.
func BenchmarkMatVecModel(b *testing.B) {
	buf := bigBuffer()
	const cols = 1024
	rows := len(buf) / rowBytes(tensor.Q6_K, cols)
	_, at, act := benchSetup(tensor.Q6_K, 1, cols, 1)
	for _, im := range Implementations() {
		if im == generic {
			continue
		}
		for _, threads := range []int{1, 2} {
			b.Run(fmt.Sprintf("%s/t%d", im, threads), func(b *testing.B) {
				dst := make([]float32, rows)
				p := NewPool(threads)
				defer p.Close()
				fn := matMulPool(p, im, dst, tensor.Q6_K, buf, at, act, 1, rows, cols)
				b.SetBytes(int64(rows * rowBytes(tensor.Q6_K, cols)))
				b.ReportAllocs()
				b.ResetTimer()
				for range b.N {
					p.ForGrain(rows, 16, fn)
				}
			})
		}
	}
}
