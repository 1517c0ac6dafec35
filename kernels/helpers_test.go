package kernels

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/gollm/gollm/tensor"
)

// randHalf returns a random finite half of magnitude about scale.
func randHalf(rng *rand.Rand, scale float64) uint16 {
	return tensor.FloatToHalf(float32((rng.Float64()*1.5 + 0.25) * scale))
}

// randomWeights makes rows×cols weights of type t whose blocks look like
// what a quantizer writes: random quants, finite positive half scales,
// Q8_0 quants in [-127, 127].
func randomWeights(rng *rand.Rand, t tensor.DType, rows, cols int) []byte {
	n := rowBytes(t, cols) * rows
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	switch t {
	case tensor.F32:
		f := float32s(b)
		for i := range f {
			f[i] = float32(rng.NormFloat64())
		}
	case tensor.F16:
		h := uint16s(b)
		for i := range h {
			h[i] = tensor.FloatToHalf(float32(rng.NormFloat64()))
		}
	case tensor.BF16:
		h := uint16s(b)
		for i := range h {
			h[i] = tensor.FloatToBF16(float32(rng.NormFloat64()))
		}
	case tensor.Q4_0:
		bl := tensor.Blocks[tensor.BlockQ4_0](b)
		for i := range bl {
			bl[i].D = randHalf(rng, 0.01)
		}
	case tensor.Q4_1:
		bl := tensor.Blocks[tensor.BlockQ4_1](b)
		for i := range bl {
			bl[i].D = randHalf(rng, 0.01)
			bl[i].M = tensor.FloatToHalf(-float32(rng.Float64() * 0.08))
		}
	case tensor.Q5_0:
		bl := tensor.Blocks[tensor.BlockQ5_0](b)
		for i := range bl {
			bl[i].D = randHalf(rng, 0.01)
		}
	case tensor.Q5_1:
		bl := tensor.Blocks[tensor.BlockQ5_1](b)
		for i := range bl {
			bl[i].D = randHalf(rng, 0.01)
			bl[i].M = tensor.FloatToHalf(-float32(rng.Float64() * 0.16))
		}
	case tensor.Q8_0:
		bl := tensor.Blocks[tensor.BlockQ8_0](b)
		for i := range bl {
			bl[i].D = randHalf(rng, 0.001)
			for j := range bl[i].Qs {
				bl[i].Qs[j] = int8(rng.IntN(255) - 127)
			}
		}
	case tensor.Q2_K:
		bl := tensor.Blocks[tensor.BlockQ2_K](b)
		for i := range bl {
			bl[i].D, bl[i].Dmin = randHalf(rng, 0.005), randHalf(rng, 0.005)
		}
	case tensor.Q3_K:
		bl := tensor.Blocks[tensor.BlockQ3_K](b)
		for i := range bl {
			bl[i].D = randHalf(rng, 0.001)
		}
	case tensor.Q4_K:
		bl := tensor.Blocks[tensor.BlockQ4_K](b)
		for i := range bl {
			bl[i].D, bl[i].Dmin = randHalf(rng, 0.0005), randHalf(rng, 0.0005)
		}
	case tensor.Q5_K:
		bl := tensor.Blocks[tensor.BlockQ5_K](b)
		for i := range bl {
			bl[i].D, bl[i].Dmin = randHalf(rng, 0.0003), randHalf(rng, 0.0003)
		}
	case tensor.Q6_K:
		bl := tensor.Blocks[tensor.BlockQ6_K](b)
		for i := range bl {
			bl[i].D = randHalf(rng, 0.0002)
		}
	default:
		panic("randomWeights: type " + t.String())
	}
	return b
}

// randomFloats returns n normal values, with a few exact zeros, a few
// large outliers and, in some rows, a whole zero block.
func randomFloats(rng *rand.Rand, n int) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(rng.NormFloat64())
		switch rng.IntN(50) {
		case 0:
			x[i] = 0
		case 1:
			x[i] *= 20
		}
	}
	return x
}

// shifted returns a copy of b that starts at an odd address (one byte
// into a larger buffer), to catch kernels that assume alignment.
func shifted(b []byte) []byte {
	buf := make([]byte, len(b)+1)
	copy(buf[1:], b)
	return buf[1 : 1+len(b) : 1+len(b)]
}

// shiftedFloats returns a copy of x starting 4 bytes into a larger buffer
// (aligned for float32 but not for any vector width).
func shiftedFloats(x []float32) []float32 {
	buf := make([]float32, len(x)+1)
	copy(buf[1:], x)
	return buf[1 : 1+len(x) : 1+len(x)]
}

// quantizeRows quantizes n float rows of cols values into activation type at.
func quantizeRows(im *Impl, at tensor.DType, x []float32, n, cols int) []byte {
	arb := rowBytes(at, cols)
	out := make([]byte, n*arb)
	for j := 0; j < n; j++ {
		im.QuantizeRow(at, out[j*arb:(j+1)*arb], x[j*cols:(j+1)*cols])
	}
	return out
}

// guarded is an output buffer with NaN canaries around and between the
// entries a MatMul is allowed to write.
type guarded struct {
	buf            []float32
	off, stride, n int
	r0, r1         int
}

const guardBand = 16

func newGuarded(stride, n, r0, r1 int) *guarded {
	g := &guarded{buf: make([]float32, 2*guardBand+n*stride), off: guardBand, stride: stride, n: n, r0: r0, r1: r1}
	for i := range g.buf {
		g.buf[i] = float32(math.NaN())
	}
	return g
}

func (g *guarded) dst() []float32 { return g.buf[g.off : g.off+g.n*g.stride] }

func (g *guarded) at(j, r int) float32 { return g.buf[g.off+j*g.stride+r] }

// check fails t if any canary outside the written entries changed.
func (g *guarded) check(t *testing.T, what string) {
	t.Helper()
	for i, v := range g.buf {
		k := i - g.off
		j, r := k/g.stride, k%g.stride
		inside := k >= 0 && j < g.n && r >= g.r0 && r < g.r1
		if !inside && !math.IsNaN(float64(v)) {
			t.Fatalf("%s: wrote outside its range at buffer index %d (token %d, row %d): %v", what, i, j, r, v)
		}
	}
}
