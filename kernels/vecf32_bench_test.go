//go:build amd64

// (amd64 only: vecf32 v0.9.0 pulls in github.com/chewxy/math32 v1.0.0,
// whose arm64 build lacks function bodies and does not compile.)

package kernels

import (
	"math/rand/v2"
	"testing"

	"gorgonia.org/vecf32"
)

// BenchmarkVecf32 compares gorgonia.org/vecf32's Add and Mul with this
// package's. Without its avx/sse build tags vecf32 compiles plain Go loops
// (go.go), the same as addRef/mulRef, so it brings nothing by default.
func BenchmarkVecf32(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	const n = 4096
	x, y := randomFloats(rng, n), randomFloats(rng, n)
	ones := make([]float32, n) // Mul by 1 keeps y normal (repeated products would sink into slow denormals)
	for i := range ones {
		ones[i] = 1
	}
	b.Run("vecf32.Add", func(b *testing.B) {
		b.SetBytes(8 * n)
		for range b.N {
			vecf32.Add(y, x)
		}
	})
	b.Run("kernels.Add", func(b *testing.B) {
		b.SetBytes(8 * n)
		for range b.N {
			Add(y, x)
		}
	})
	b.Run("vecf32.Mul", func(b *testing.B) {
		b.SetBytes(8 * n)
		for range b.N {
			vecf32.Mul(y, ones)
		}
	})
	b.Run("kernels.Mul", func(b *testing.B) {
		b.SetBytes(8 * n)
		for range b.N {
			Mul(y, ones)
		}
	})
}
