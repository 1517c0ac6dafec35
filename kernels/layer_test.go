package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/gollm/gollm/tensor"
)

// sameFloats reports the first index where a and b differ in bits,
// counting any two NaNs as equal (NaN payloads may differ between
// implementations), or -1.
func sameFloats(a, b []float32) int {
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) && !(a[i] != a[i] && b[i] != b[i]) {
			return i
		}
	}
	return -1
}

// TestExpAccuracy: Exp is within one unit in the last place of e^x
// wherever the result is a normal float32, and gets the edges right.
func TestExpAccuracy(t *testing.T) {
	worst := 0.0
	for _, r := range [][2]uint32{{0x80000000, 0xc2d00000}, {0, 0x42b20000}} { // [-104, -0], [0, 89]
		for b := r[0]; b < r[1]; b += 509 {
			x := math.Float32frombits(b)
			want := math.Exp(float64(x))
			if want < 0x1p-126 || want > math.MaxFloat32 {
				continue
			}
			w32 := float32(want)
			ulp := float64(math.Nextafter32(w32, float32(math.Inf(1))) - w32)
			e := math.Abs(float64(Exp(x))-want) / ulp
			if e >= 1 {
				t.Fatalf("Exp(%v) = %v, e^x = %v: %.3f ulp", x, Exp(x), want, e)
			}
			worst = max(worst, e)
		}
	}
	t.Logf("largest error: %.3f ulp", worst)
	inf := float32(math.Inf(1))
	for _, c := range []struct{ x, want float32 }{
		{0, 1}, {float32(math.Copysign(0, -1)), 1}, {-inf, 0}, {-104, 0}, {-1e30, 0},
		{inf, inf}, {89, inf}, {1e30, inf},
		{1, float32(math.E)},
	} {
		if got := Exp(c.x); got != c.want {
			t.Errorf("Exp(%v) = %v, want %v", c.x, got, c.want)
		}
	}
	if got := Exp(float32(math.NaN())); got == got {
		t.Errorf("Exp(NaN) = %v", got)
	}
	// Results below the smallest normal float32 are rounded once.
	for _, x := range []float32{-87.5, -90, -95, -100, -103} {
		if got, want := Exp(x), float32(math.Exp(float64(x))); math.Abs(float64(got-want)) > float64(math.Nextafter32(want, 1)-want) {
			t.Errorf("Exp(%v) = %v, want about %v", x, got, want)
		}
	}
}

// TestLayerImpls runs ExpVec, RMSNorm, SwiGLU, Softmax and Scale of every
// implementation against the references bit for bit.
func TestLayerImpls(t *testing.T) {
	// ExpVec over a sample of all float32 bit patterns (every 251st:
	// every sign, exponent and many mantissas, NaN and Inf included).
	xs := make([]float32, 0, 1<<24+1)
	for b := uint64(0); b < 1<<32; b += 251 {
		xs = append(xs, math.Float32frombits(uint32(b)))
	}
	xs = append(xs, float32(math.Inf(1)), float32(math.Inf(-1)), -104, 89, 0)
	want := make([]float32, len(xs))
	expVecRef(want, xs)
	for _, im := range Implementations() {
		got := make([]float32, len(xs))
		im.ExpVec(got[1:], xs[1:]) // unaligned
		im.ExpVec(got[:1], xs[:1])
		if i := sameFloats(got, want); i >= 0 {
			t.Fatalf("%s: ExpVec(%v) = %v, reference %v", im, xs[i], got[i], want[i])
		}
	}

	rng := rand.New(rand.NewPCG(31, 32))
	lengths := []int{}
	for n := 0; n <= 100; n++ {
		lengths = append(lengths, n)
	}
	lengths = append(lengths, 127, 128, 129, 513, 1024, 3072)
	for _, n := range lengths {
		for _, special := range []bool{false, true} {
			x := shiftedFloats(randomFloats(rng, n))
			w := shiftedFloats(randomFloats(rng, n))
			scores := shiftedFloats(randomFloats(rng, n))
			for i := range scores {
				scores[i] *= 8 // spread like attention scores
			}
			if special && n > 0 {
				vals := []float32{float32(math.Inf(-1)), float32(math.Inf(1)), float32(math.NaN()), 1e30, -1e30, 1e-40, float32(math.Copysign(0, -1)), 95, -95}
				for k := 0; k < 3; k++ {
					i := rng.IntN(n)
					x[i] = vals[rng.IntN(len(vals))]
					scores[i] = float32(math.Inf(-1)) // masked
				}
			}
			alpha := float32(rng.NormFloat64())
			type op struct {
				name string
				fn   func(im *Impl, dst []float32)
			}
			ops := []op{
				{"RMSNorm", func(im *Impl, d []float32) { im.RMSNorm(d, x, w, 1e-6) }},
				{"RMSNorm in place", func(im *Impl, d []float32) { copy(d, x); im.RMSNorm(d, d, w, 1e-6) }},
				{"SwiGLU", func(im *Impl, d []float32) { im.SwiGLU(d, x, w) }},
				{"SwiGLU in place", func(im *Impl, d []float32) { copy(d, x); im.SwiGLU(d, d, w) }},
				{"Softmax", func(im *Impl, d []float32) { copy(d, scores); im.Softmax(d) }},
				{"Softmax x", func(im *Impl, d []float32) { copy(d, x); im.Softmax(d) }},
				{"Scale", func(im *Impl, d []float32) { copy(d, x); im.Scale(d, alpha) }},
				{"ExpVec", func(im *Impl, d []float32) { im.ExpVec(d, x) }},
			}
			for _, o := range ops {
				ref := make([]float32, n)
				o.fn(generic, ref)
				for _, im := range Implementations() {
					what := fmt.Sprintf("%s: %s n=%d special=%v", im, o.name, n, special)
					buf, dst := nanBuffer(n)
					o.fn(im, dst)
					if i := sameFloats(dst, ref); i >= 0 {
						t.Fatalf("%s: element %d = %v, reference %v", what, i, dst[i], ref[i])
					}
					checkGuards(t, buf, n, what)
				}
			}
		}
	}
}

// TestRoPEImpls: every implementation rotates like the reference, bit
// for bit, for head sizes on and off the vector width.
func TestRoPEImpls(t *testing.T) {
	rng := rand.New(rand.NewPCG(35, 36))
	for _, dims := range []int{2, 8, 32, 64, 96, 128, 256} {
		for _, heads := range []int{0, 1, 3, 16} {
			x := shiftedFloats(randomFloats(rng, heads*dims))
			cos, sin := randomFloats(rng, dims/2), randomFloats(rng, dims/2)
			want := append([]float32(nil), x...)
			ropeRef(want, dims, cos, sin)
			for _, im := range Implementations() {
				buf, got := nanBuffer(len(x))
				copy(got, x)
				im.RoPE(got, dims, cos, sin)
				what := fmt.Sprintf("%s: RoPE dims=%d heads=%d", im, dims, heads)
				if i := sameFloats(got, want); i >= 0 {
					t.Fatalf("%s: element %d = %v, reference %v", what, i, got[i], want[i])
				}
				checkGuards(t, buf, len(x), what)
			}
		}
	}
}

// TestRoPENormImpls: every implementation's NORM rotation (adjacent
// pairs) matches the reference bit for bit, and the reference is NEOX
// applied to the de-interleaved head (pair k = dims 2k, 2k+1 moved to k,
// k+dims/2): the two styles differ only in which dimensions pair up.
func TestRoPENormImpls(t *testing.T) {
	rng := rand.New(rand.NewPCG(37, 38))
	for _, dims := range []int{2, 8, 32, 64, 96, 128, 256} {
		for _, heads := range []int{0, 1, 3, 16} {
			x := shiftedFloats(randomFloats(rng, heads*dims))
			cos, sin := randomFloats(rng, dims/2), randomFloats(rng, dims/2)
			want := append([]float32(nil), x...)
			ropeNormRef(want, dims, cos, sin)
			// The same through NEOX on permuted heads.
			half := dims / 2
			perm := make([]float32, len(x))
			for h := 0; h < len(x); h += dims {
				for k := 0; k < half; k++ {
					perm[h+k], perm[h+half+k] = x[h+2*k], x[h+2*k+1]
				}
			}
			ropeRef(perm, dims, cos, sin)
			for h := 0; h < len(x); h += dims {
				for k := 0; k < half; k++ {
					if math.Float32bits(perm[h+k]) != math.Float32bits(want[h+2*k]) ||
						math.Float32bits(perm[h+half+k]) != math.Float32bits(want[h+2*k+1]) {
						t.Fatalf("dims=%d: pair %d of head %d differs from NEOX on the permuted head", dims, k, h/dims)
					}
				}
			}
			for _, im := range Implementations() {
				buf, got := nanBuffer(len(x))
				copy(got, x)
				im.RoPENorm(got, dims, cos, sin)
				what := fmt.Sprintf("%s: RoPENorm dims=%d heads=%d", im, dims, heads)
				if i := sameFloats(got, want); i >= 0 {
					t.Fatalf("%s: element %d = %v, reference %v", what, i, got[i], want[i])
				}
				checkGuards(t, buf, len(x), what)
			}
		}
	}
}

// TestSoftmaxSums: the 16-lane float64 sum gives probabilities that add
// up to 1 as closely as the sequential sum did.
func TestSoftmaxSums(t *testing.T) {
	rng := rand.New(rand.NewPCG(33, 34))
	for _, n := range []int{1, 17, 513, 4096} {
		x := randomFloats(rng, n)
		Softmax(x)
		var s float64
		for _, v := range x {
			s += float64(v)
		}
		if math.Abs(s-1) > 1e-6 {
			t.Errorf("n=%d: probabilities sum to %v", n, s)
		}
	}
}

// TestQuantizeQ8KSpecials: the SIMD Q8_K quantizers agree with the
// reference on blocks with NaN, infinities, signed zeros, subnormals,
// ties for the largest magnitude at every position, and all-NaN blocks.
func TestQuantizeQ8KSpecials(t *testing.T) {
	rng := rand.New(rand.NewPCG(37, 38))
	nan, inf := float32(math.NaN()), float32(math.Inf(1))
	specials := []float32{nan, inf, -inf, 0, float32(math.Copysign(0, -1)), 1e-40, -1e-45, 3e38, -3e38}
	var x []float32
	for blk := 0; blk < 64; blk++ {
		b := randomFloats(rng, 256)
		switch blk % 8 {
		case 0: // a few specials
			for k := 0; k < 4; k++ {
				b[rng.IntN(256)] = specials[rng.IntN(len(specials))]
			}
		case 1: // a tie for the largest magnitude, either order
			i, j := rng.IntN(256), rng.IntN(256)
			b[i], b[j] = 50, -50
		case 2: // all NaN
			for i := range b {
				b[i] = nan
			}
		case 3: // zeros of both signs and subnormals only
			for i := range b {
				b[i] = specials[3+rng.IntN(4)]
			}
		case 4: // the maximum in the last lane
			b[255] = 100
		}
		x = append(x, b...)
	}
	want := make([]byte, rowBytes(tensor.Q8_K, len(x)))
	quantizeRowRef(tensor.Q8_K, want, x)
	for _, im := range Implementations() {
		got := make([]byte, len(want))
		im.QuantizeRow(tensor.Q8_K, got, x)
		wb, gb := tensor.Blocks[tensor.BlockQ8_K](want), tensor.Blocks[tensor.BlockQ8_K](got)
		for i := range wb {
			if wb[i].Qs != gb[i].Qs || wb[i].Bsums != gb[i].Bsums || math.Float32bits(wb[i].D) != math.Float32bits(gb[i].D) && !(wb[i].D != wb[i].D && gb[i].D != gb[i].D) {
				t.Fatalf("%s: block %d differs: d %v vs %v", im, i, gb[i].D, wb[i].D)
			}
		}
	}
}
