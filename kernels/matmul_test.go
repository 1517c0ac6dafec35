package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/gollm/gollm/tensor"
)

// dequantAct turns an activation row back into float64 values.
func dequantAct(t *testing.T, at tensor.DType, a []byte, cols int) []float64 {
	f := make([]float32, cols)
	if at == tensor.Q8_1 {
		for i, b := range tensor.Blocks[tensor.BlockQ8_1](a)[:cols/32] {
			for j, q := range b.Qs {
				f[32*i+j] = tensor.HalfToFloat(b.D) * float32(q)
			}
		}
	} else if err := tensor.DequantizeRow(at, f, a); err != nil {
		t.Fatal(err)
	}
	out := make([]float64, cols)
	for i, v := range f {
		out[i] = float64(v)
	}
	return out
}

// colsFor gives test row lengths for weight type wt: whole blocks for the
// quantized types, odd lengths (tails) for the float types.
func colsFor(wt tensor.DType) []int {
	switch bs := wt.BlockSize(); bs {
	case 1:
		return []int{1, 7, 31, 32, 33, 95, 256, 300}
	case 32:
		return []int{32, 96, 256, 352}
	default:
		return []int{256, 768, 1280}
	}
}

// TestDotRefMatchesDequant checks the reference dot products (the integer
// formulas, the unpacking of every format, the scales) against a float64
// dot of the dequantized weights and activations.
func TestDotRefMatchesDequant(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, wt := range Supported() {
		at, _ := ActType(wt)
		for _, act := range []tensor.DType{at, tensor.F32} {
			for _, cols := range colsFor(wt) {
				w := randomWeights(rng, wt, 1, cols)
				x := randomFloats(rng, cols)
				a := quantizeRows(generic, act, x, 1, cols)
				wf := make([]float32, cols)
				if err := tensor.DequantizeRow(wt, wf, w); err != nil {
					t.Fatal(err)
				}
				af := dequantAct(t, act, a, cols)
				var want, mag float64
				for i := range wf {
					want += float64(wf[i]) * af[i]
					mag += math.Abs(float64(wf[i]) * af[i])
				}
				if act == tensor.Q8_1 {
					// The block sums S = half(d*sum(q)) are rounded to a
					// half from the float32 d (as in ggml): up to 2^-10 of
					// m_w*S per block on top of float rounding.
					for i := 0; i < cols/32; i++ {
						var s float64
						for _, v := range af[32*i : 32*i+32] {
							s += v
						}
						mw := float64(minOfQ1Block(wt, w, i))
						mag += math.Abs(mw*s) * math.Pow(2, -10) / (2e-6 * math.Sqrt(float64(cols)))
					}
				}
				got := make([]float32, 1)
				generic.MatMul(got, 1, wt, w, act, a, 1, cols, 0, 1)
				if d := math.Abs(float64(got[0]) - want); d > 2e-6*mag*math.Sqrt(float64(cols))+1e-30 {
					t.Errorf("%v×%v cols=%d: got %v, float64 dequantized dot %v (diff %.3g, magnitude %.3g)", wt, act, cols, got[0], want, d, mag)
				}
			}
		}
	}
}

// matMulCase is one MatMul configuration.
type matMulCase struct {
	wt, at         tensor.DType
	rows, cols, n  int
	r0, r1, stride int
}

// runCase computes a case with im into a guarded output.
func runCase(t *testing.T, im *Impl, c matMulCase, w, a []byte) *guarded {
	g := newGuarded(c.stride, c.n, c.r0, c.r1)
	im.MatMul(g.dst(), c.stride, c.wt, w, c.at, a, c.n, c.cols, c.r0, c.r1)
	g.check(t, fmt.Sprintf("%s %+v", im, c))
	return g
}

// TestMatMulImpls runs every implementation against the reference on
// random inputs: every supported type in both modes, odd lengths, many
// token counts, partial row ranges, unaligned inputs, NaN canaries around
// the output. Results must be bit-identical.
func TestMatMulImpls(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	ns := []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 16, 33}
	if testing.Short() {
		ns = []int{1, 2, 3, 8, 9, 10, 33}
	}
	for _, wt := range Supported() {
		at0, _ := ActType(wt)
		for _, at := range []tensor.DType{at0, tensor.F32} {
			cs := colsFor(wt)
			for ci, cols := range cs {
				rows := 13 + ci
				w := shifted(randomWeights(rng, wt, rows, cols))
				maxN := ns[len(ns)-1]
				x := randomFloats(rng, maxN*cols)
				a := shifted(quantizeRows(generic, at, x, maxN, cols))
				for _, n := range ns {
					if ci > 0 && n%4 != 1 && n%8 != 2 && n != 8 { // keep the run short (but every kernel: 1, 2, 4 and 8 tokens a tile)
						continue
					}
					r0, r1 := rng.IntN(3), rows-rng.IntN(3)
					c := matMulCase{wt, at, rows, cols, n, r0, r1, rows + 2}
					want := runCase(t, generic, c, w, a)
					for _, im := range Implementations()[1:] {
						got := runCase(t, im, c, w, a)
						for j := 0; j < n; j++ {
							for r := r0; r < r1; r++ {
								if g, w := got.at(j, r), want.at(j, r); math.Float32bits(g) != math.Float32bits(w) {
									t.Fatalf("%s %v×%v cols=%d n=%d: (token %d, row %d) = %v, reference %v", im, wt, at, cols, n, j, r, g, w)
								}
							}
						}
					}
				}
			}
		}
	}
}

// TestMatMulBatchInvariance: for every implementation, a (row, token)
// result is bit-identical whether the token is alone, first, in the
// middle or last of a batch of any size, and whatever row range the call
// covers.
func TestMatMulBatchInvariance(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	for _, wt := range []tensor.DType{tensor.Q6_K, tensor.Q4_K, tensor.Q5_K, tensor.Q8_0, tensor.Q4_0, tensor.F16, tensor.BF16, tensor.F32} {
		at0, _ := ActType(wt)
		for _, at := range []tensor.DType{at0, tensor.F32} {
			cols := 512
			if wt.BlockSize() == 1 {
				cols = 200
			}
			rows := 21
			w := randomWeights(rng, wt, rows, cols)
			const n = 37
			x := randomFloats(rng, n*cols)
			a := quantizeRows(generic, at, x, n, cols)
			arb := rowBytes(at, cols)
			for _, im := range Implementations() {
				full := make([]float32, n*rows)
				im.MatMul(full, rows, wt, w, at, a, n, cols, 0, rows)
				// Each token alone, each row alone.
				for j := 0; j < n; j += 5 {
					one := make([]float32, rows)
					for r := 0; r < rows; r++ {
						im.MatMul(one, rows, wt, w, at, a[j*arb:(j+1)*arb], 1, cols, r, r+1)
						if math.Float32bits(one[r]) != math.Float32bits(full[j*rows+r]) {
							t.Fatalf("%s %v×%v: token %d row %d alone (one row) %v, in a batch of %d %v", im, wt, at, j, r, one[r], n, full[j*rows+r])
						}
					}
				}
				for j := 0; j < n; j++ {
					alone := make([]float32, rows)
					im.MatMul(alone, rows, wt, w, at, a[j*arb:(j+1)*arb], 1, cols, 0, rows)
					for r := 0; r < rows; r++ {
						if math.Float32bits(alone[r]) != math.Float32bits(full[j*rows+r]) {
							t.Fatalf("%s %v×%v: token %d row %d alone %v, in a batch of %d %v", im, wt, at, j, r, alone[r], n, full[j*rows+r])
						}
					}
				}
				// Sub-batches at every offset and size, odd row splits; the
				// last trials take the sizes that have kernels of their
				// own (2, 4, 8 tokens, and 10 = 8 + 2).
				for trial := 0; trial < 24; trial++ {
					j0 := rng.IntN(n)
					m := 1 + rng.IntN(n-j0)
					if trial >= 20 {
						m = []int{2, 4, 8, 10}[trial-20]
						j0 = rng.IntN(n - m + 1)
					}
					r0 := rng.IntN(rows)
					r1 := r0 + 1 + rng.IntN(rows-r0)
					part := make([]float32, m*rows)
					im.MatMul(part, rows, wt, w, at, a[j0*arb:(j0+m)*arb], m, cols, r0, r1)
					for j := 0; j < m; j++ {
						for r := r0; r < r1; r++ {
							if math.Float32bits(part[j*rows+r]) != math.Float32bits(full[(j0+j)*rows+r]) {
								t.Fatalf("%s %v×%v: token %d row %d in batch [%d,+%d) rows [%d,%d): %v, full batch %v", im, wt, at, j0+j, r, j0, m, r0, r1, part[j*rows+r], full[(j0+j)*rows+r])
							}
						}
					}
				}
			}
		}
	}
}

// TestCheckMatMul: bad arguments give errors (and MatMul panics).
func TestCheckMatMul(t *testing.T) {
	w := make([]byte, rowBytes(tensor.Q6_K, 256)*4)
	a := make([]byte, rowBytes(tensor.Q8_K, 256)*2)
	dst := make([]float32, 8)
	if err := CheckMatMul(dst, 4, tensor.Q6_K, w, tensor.Q8_K, a, 2, 256, 0, 4); err != nil {
		t.Fatalf("good arguments: %v", err)
	}
	bad := []struct {
		name string
		err  error
	}{
		{"wrong act type", CheckMatMul(dst, 4, tensor.Q6_K, w, tensor.Q8_0, a, 2, 256, 0, 4)},
		{"unsupported", CheckMatMul(dst, 4, tensor.IQ2_XXS, w, tensor.Q8_K, a, 2, 256, 0, 4)},
		{"partial block", CheckMatMul(dst, 4, tensor.Q6_K, w, tensor.Q8_K, a, 2, 200, 0, 4)},
		{"short weights", CheckMatMul(dst, 4, tensor.Q6_K, w, tensor.Q8_K, a, 2, 256, 0, 5)},
		{"short acts", CheckMatMul(dst, 4, tensor.Q6_K, w, tensor.Q8_K, a, 3, 256, 0, 4)},
		{"short dst", CheckMatMul(dst[:7], 4, tensor.Q6_K, w, tensor.Q8_K, a, 2, 256, 0, 4)},
		{"small stride", CheckMatMul(dst, 3, tensor.Q6_K, w, tensor.Q8_K, a, 2, 256, 0, 4)},
		{"reversed range", CheckMatMul(dst, 4, tensor.Q6_K, w, tensor.Q8_K, a, 2, 256, 3, 2)},
	}
	for _, b := range bad {
		if b.err == nil {
			t.Errorf("%s: no error", b.name)
		}
	}
	defer func() {
		if recover() == nil {
			t.Error("MatMul with a short weight buffer did not panic")
		}
	}()
	MatMul(dst, 4, tensor.Q6_K, w, tensor.Q8_K, a, 2, 256, 0, 5)
}

// minOfQ1Block returns the minimum m of block i of a Q4_1/Q5_1 row.
func minOfQ1Block(wt tensor.DType, w []byte, i int) float32 {
	if wt == tensor.Q4_1 {
		return tensor.HalfToFloat(tensor.Blocks[tensor.BlockQ4_1](w)[i].M)
	}
	return tensor.HalfToFloat(tensor.Blocks[tensor.BlockQ5_1](w)[i].M)
}
