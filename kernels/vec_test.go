package kernels

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/gollm/gollm/tensor"
)

func halves(x []float32) []uint16 {
	h := make([]uint16, len(x))
	for i, v := range x {
		h[i] = tensor.FloatToHalf(v)
	}
	return h
}

func sameBits(a, b []float32) int {
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			return i
		}
	}
	return -1
}

// TestVecImpls runs every element-wise kernel of every implementation
// against the reference, bit for bit, on lengths 0..100 and a few long
// ones, with inputs that start off any vector alignment.
func TestVecImpls(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	lengths := []int{}
	for n := 0; n <= 100; n++ {
		lengths = append(lengths, n)
	}
	lengths = append(lengths, 127, 128, 129, 1000, 4097)
	for _, n := range lengths {
		x := shiftedFloats(randomFloats(rng, n))
		y := shiftedFloats(randomFloats(rng, n))
		h := halves(randomFloats(rng, n))
		alpha := float32(rng.NormFloat64())
		wantDot := dotF32Ref(x, y)
		wantDotF16 := dotF16F32Ref(x, h)
		for _, im := range Implementations() {
			if got := im.Dot(x, y); math.Float32bits(got) != math.Float32bits(wantDot) {
				t.Errorf("%s: Dot n=%d = %v, reference %v", im, n, got, wantDot)
			}
			if got := im.DotF16(x, h); math.Float32bits(got) != math.Float32bits(wantDotF16) {
				t.Errorf("%s: DotF16 n=%d = %v, reference %v", im, n, got, wantDotF16)
			}
			type op struct {
				name    string
				ref, fn func(dst []float32)
			}
			ops := []op{
				{"Axpy", func(d []float32) { axpyRef(d, alpha, x) }, func(d []float32) { im.Axpy(d, alpha, x) }},
				{"AxpyF16", func(d []float32) { axpyF16Ref(d, alpha, h) }, func(d []float32) { im.AxpyF16(d, alpha, h) }},
				{"Scale", func(d []float32) { scaleRef(d, alpha) }, func(d []float32) { im.Scale(d, alpha) }},
				{"Add", func(d []float32) { addRef(d, x) }, func(d []float32) { im.Add(d, x) }},
				{"Mul", func(d []float32) { mulRef(d, x) }, func(d []float32) { im.Mul(d, x) }},
				{"F16ToF32", func(d []float32) { f16ToF32Ref(d, h) }, func(d []float32) { im.F16ToF32(d, h) }},
			}
			for _, o := range ops {
				// Guard bands: the kernel gets a window of a NaN-filled buffer.
				want := append([]float32(nil), y...)
				o.ref(want)
				buf := make([]float32, n+2*guardBand+1)
				for i := range buf {
					buf[i] = float32(math.NaN())
				}
				got := buf[guardBand+1 : guardBand+1+n]
				copy(got, y)
				o.fn(got)
				if i := sameBits(got, want); i >= 0 {
					t.Errorf("%s: %s n=%d: element %d = %v, reference %v", im, o.name, n, i, got[i], want[i])
				}
				for i, v := range buf {
					if (i <= guardBand || i >= guardBand+1+n) && !math.IsNaN(float64(v)) {
						t.Fatalf("%s: %s n=%d wrote outside dst at %d", im, o.name, n, i-guardBand-1)
					}
				}
			}
			want16 := make([]uint16, n)
			f32ToF16Ref(want16, x)
			got16 := make([]uint16, n+2)
			im.F32ToF16(got16[1:n+1], x)
			for i := range want16 {
				if got16[i+1] != want16[i] {
					t.Fatalf("%s: F32ToF16 n=%d element %d = %#x, reference %#x", im, n, i, got16[i+1], want16[i])
				}
			}
			if got16[0] != 0 || got16[n+1] != 0 {
				t.Fatalf("%s: F32ToF16 wrote outside dst", im)
			}
		}
	}
}

// TestF16Conversions: every half converts exactly, and float→half ties go
// to even, for every implementation (all 65536 bit patterns).
func TestF16Conversions(t *testing.T) {
	all := make([]uint16, 65536)
	for i := range all {
		all[i] = uint16(i)
	}
	for _, im := range Implementations() {
		f := make([]float32, len(all))
		im.F16ToF32(f, all)
		back := make([]uint16, len(all))
		im.F32ToF16(back, f)
		for i, h := range all {
			if math.Float32bits(f[i]) != math.Float32bits(tensor.HalfToFloat(h)) && !math.IsNaN(float64(f[i])) {
				t.Fatalf("%s: half %#x → %v, want %v", im, h, f[i], tensor.HalfToFloat(h))
			}
			if back[i] != h && !math.IsNaN(float64(f[i])) {
				t.Fatalf("%s: half %#x does not round-trip: %#x", im, h, back[i])
			}
		}
		// Midpoints between neighbouring halves round to the even one.
		mid := make([]float32, 0, 2048)
		for h := uint16(0x3c00); h < 0x3c00+2048; h++ {
			a, b := float64(tensor.HalfToFloat(h)), float64(tensor.HalfToFloat(h+1))
			mid = append(mid, float32((a+b)/2))
		}
		got := make([]uint16, len(mid))
		im.F32ToF16(got, mid)
		for i, m := range mid {
			if got[i] != tensor.FloatToHalf(m) || got[i]&1 != 0 {
				t.Fatalf("%s: midpoint %v → %#x, want even %#x", im, m, got[i], tensor.FloatToHalf(m))
			}
		}
	}
}

func TestRMSNorm(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	for _, n := range []int{1, 7, 256, 1024} {
		x := randomFloats(rng, n)
		w := randomFloats(rng, n)
		dst := make([]float32, n)
		RMSNorm(dst, x, w, 1e-6)
		var ss float64
		for _, v := range x {
			ss += float64(v) * float64(v)
		}
		scale := 1 / math.Sqrt(ss/float64(n)+1e-6)
		for i := range x {
			want := float64(x[i]) * scale * float64(w[i])
			if d := math.Abs(float64(dst[i]) - want); d > 4e-7*math.Abs(want)+1e-30 {
				t.Fatalf("n=%d: y[%d] = %v, want %v", n, i, dst[i], want)
			}
		}
		// In place gives the same bits.
		in := append([]float32(nil), x...)
		RMSNorm(in, in, w, 1e-6)
		if i := sameBits(in, dst); i >= 0 {
			t.Fatalf("in-place RMSNorm differs at %d", i)
		}
	}
}

func TestSwiGLUAndSoftmax(t *testing.T) {
	gate := []float32{0, 1, -1, 10, -10, 100, -100, 0.5}
	up := []float32{1, 2, 3, 4, 5, 6, 7, 8}
	dst := make([]float32, len(gate))
	SwiGLU(dst, gate, up)
	for i, g := range gate {
		want := float64(g) / (1 + math.Exp(-float64(g))) * float64(up[i])
		if d := math.Abs(float64(dst[i]) - want); d > 3e-7*math.Abs(want)+1e-30 {
			t.Errorf("SwiGLU(%v, %v) = %v, want %v", g, up[i], dst[i], want)
		}
	}
	x := []float32{1, 2, 3, float32(math.Inf(-1)), 3}
	Softmax(x)
	var sum float64
	for _, v := range x {
		sum += float64(v)
	}
	if x[3] != 0 || math.Abs(sum-1) > 1e-6 || x[2] != x[4] || !(x[0] < x[1] && x[1] < x[2]) {
		t.Errorf("Softmax = %v (sum %v)", x, sum)
	}
	e := math.Exp(1)
	if want := 1 / (1 + e + e*e*2) * e * e; math.Abs(float64(x[2])-want) > 1e-7 {
		t.Errorf("Softmax max entry %v, want %v", x[2], want)
	}
}
