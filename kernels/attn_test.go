package kernels

import (
	"fmt"
	"math"
	"math/big"
	"math/rand/v2"
	"testing"
)

// nanBuffer returns n values inside a NaN-filled buffer with guard bands
// on both sides, starting one float past a 64-byte boundary's alignment.
func nanBuffer(n int) (buf, inner []float32) {
	buf = make([]float32, n+2*guardBand+1)
	for i := range buf {
		buf[i] = float32(math.NaN())
	}
	return buf, buf[guardBand+1 : guardBand+1+n : guardBand+1+n]
}

// TestAttnImpls runs the attention kernels of every implementation
// against the reference, bit for bit: group sizes 1..5 (odd ones exercise
// the lone-head path), head sizes that are and are not multiples of the
// vector widths, 0..40 rows (partial groups of 16), strides wider than a
// head, unaligned inputs, and NaN guard bands around and between the
// outputs.
func TestAttnImpls(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 22))
	for _, heads := range []int{1, 2, 3, 4, 5} {
		for _, d := range []int{8, 16, 32, 48, 64, 100, 128} {
			for _, rows := range []int{0, 1, 2, 15, 16, 17, 33, 40} {
				stride := d + rng.IntN(3)*16 + rng.IntN(2) // row stride of the cache (kvDim-like)
				q := shiftedFloats(randomFloats(rng, heads*d))
				kf := shiftedFloats(randomFloats(rng, max(0, (rows-1)*stride+d)))
				kh := halves(randomFloats(rng, len(kf)))
				p := shiftedFloats(randomFloats(rng, heads*(rows+3)))
				out0 := randomFloats(rng, heads*d)
				scale := float32(1 / math.Sqrt(float64(d)))
				name := fmt.Sprintf("heads=%d d=%d rows=%d", heads, d, rows)

				sStride := rows + 5 // score rows: gaps between heads stay NaN
				wantS := make([]float32, heads*sStride)
				wantH := make([]float32, heads*sStride)
				attnScoresRef(wantS, sStride, q, heads, d, kf, stride, rows, scale)
				attnScoresF16Ref(wantH, sStride, q, heads, d, kh, stride, rows, scale)
				wantV := append([]float32(nil), out0...)
				wantVH := append([]float32(nil), out0...)
				attnValuesRef(wantV, heads, d, p, rows+3, kf, stride, rows)
				attnValuesF16Ref(wantVH, heads, d, p, rows+3, kh, stride, rows)

				for _, im := range Implementations() {
					checkScores := func(op string, want []float32, fn func(dst []float32)) {
						buf, dst := nanBuffer(heads * sStride)
						fn(dst)
						for h := 0; h < heads; h++ {
							for j := 0; j < sStride; j++ {
								got := dst[h*sStride+j]
								if j >= rows {
									if !math.IsNaN(float64(got)) {
										t.Fatalf("%s %s %s: wrote past the rows at head %d, %d", im, op, name, h, j)
									}
									continue
								}
								if math.Float32bits(got) != math.Float32bits(want[h*sStride+j]) {
									t.Fatalf("%s %s %s: head %d row %d = %v, reference %v", im, op, name, h, j, got, want[h*sStride+j])
								}
							}
						}
						checkGuards(t, buf, heads*sStride, im.Name+" "+op+" "+name)
					}
					checkScores("AttnScores", wantS, func(dst []float32) { im.AttnScores(dst, sStride, q, heads, d, kf, stride, rows, scale) })
					checkScores("AttnScoresF16", wantH, func(dst []float32) { im.AttnScoresF16(dst, sStride, q, heads, d, kh, stride, rows, scale) })

					checkValues := func(op string, want []float32, fn func(out []float32)) {
						buf, out := nanBuffer(heads * d)
						copy(out, out0)
						fn(out)
						if i := sameBits(out, want); i >= 0 {
							t.Fatalf("%s %s %s: out[%d] = %v, reference %v", im, op, name, i, out[i], want[i])
						}
						checkGuards(t, buf, heads*d, im.Name+" "+op+" "+name)
					}
					checkValues("AttnValues", wantV, func(out []float32) { im.AttnValues(out, heads, d, p, rows+3, kf, stride, rows) })
					checkValues("AttnValuesF16", wantVH, func(out []float32) { im.AttnValuesF16(out, heads, d, p, rows+3, kh, stride, rows) })
				}
			}
		}
	}
}

// checkGuards fails unless the guard bands of a nanBuffer of n values are
// still NaN.
func checkGuards(t *testing.T, buf []float32, n int, what string) {
	t.Helper()
	for i, v := range buf {
		if (i <= guardBand || i >= guardBand+1+n) && !math.IsNaN(float64(v)) {
			t.Fatalf("%s: wrote outside its buffer at %d", what, i-guardBand-1)
		}
	}
}

// TestAttnPerRow: a score or an output does not depend on how the rows
// are split over calls (what batch invariance of attention rests on).
func TestAttnPerRow(t *testing.T) {
	rng := rand.New(rand.NewPCG(23, 24))
	const heads, d, rows, stride = 2, 128, 37, 1024
	q := randomFloats(rng, heads*d)
	k := halves(randomFloats(rng, (rows-1)*stride+d))
	p := randomFloats(rng, heads*rows)
	for _, im := range Implementations() {
		all := make([]float32, heads*rows)
		im.AttnScoresF16(all, rows, q, heads, d, k, stride, rows, 0.125)
		outAll := make([]float32, heads*d)
		im.AttnValuesF16(outAll, heads, d, p, rows, k, stride, rows)
		one := make([]float32, heads)
		outOne := make([]float32, heads*d)
		pj := make([]float32, heads)
		for j := 0; j < rows; j++ {
			im.AttnScoresF16(one, 1, q, heads, d, k[j*stride:], stride, 1, 0.125)
			for h := 0; h < heads; h++ {
				if math.Float32bits(one[h]) != math.Float32bits(all[h*rows+j]) {
					t.Fatalf("%s: score head %d row %d alone %v, with the others %v", im, h, j, one[h], all[h*rows+j])
				}
				pj[h] = p[h*rows+j]
			}
			im.AttnValuesF16(outOne, heads, d, pj, 1, k[j*stride:], stride, 1)
		}
		if i := sameBits(outOne, outAll); i >= 0 {
			t.Fatalf("%s: values row by row differ at %d: %v vs %v", im, i, outOne[i], outAll[i])
		}
	}
}

// fmaExact is a·b + c rounded once to float32, computed with math/big.
func fmaExact(a, b, c float32) float32 {
	if a != a || b != b || c != c || math.IsInf(float64(a), 0) || math.IsInf(float64(b), 0) || math.IsInf(float64(c), 0) {
		return float32(float64(a)*float64(b) + float64(c)) // NaN/Inf rules; no rounding question
	}
	x := new(big.Float).SetPrec(2000).SetFloat64(float64(a))
	x.Mul(x, new(big.Float).SetPrec(2000).SetFloat64(float64(b)))
	x.Add(x, new(big.Float).SetPrec(2000).SetFloat64(float64(c)))
	if x.Sign() == 0 {
		// The sign of an exact zero follows IEEE: +0 unless both terms are -0 (or -0 + -0).
		return float32(float64(a)*float64(b) + float64(c))
	}
	f, _ := x.Float32()
	return f
}

// TestFMA32: FMA32 rounds a·b + c once, including the cases where
// rounding to float64 first would land on a float32 midpoint, subnormal
// results, zeros and infinities.
func TestFMA32(t *testing.T) {
	check := func(a, b, c float32) {
		t.Helper()
		got, want := FMA32(a, b, c), fmaExact(a, b, c)
		if math.Float32bits(got) != math.Float32bits(want) && !(got != got && want != want) {
			t.Fatalf("FMA32(%g, %g, %g) = %g (%#x), want %g (%#x)", a, b, c, got, math.Float32bits(got), want, math.Float32bits(want))
		}
	}
	// (1 + 2^-12)² = 1 + 2^-11 + 2^-24: halfway between two float32s; a
	// tiny c decides the direction, which double rounding would lose.
	a := float32(1 + 1.0/4096)
	for _, c := range []float32{0x1p-80, -0x1p-80, 0x1p-60, -0x1p-60, 0, float32(math.Copysign(0, -1))} {
		check(a, a, c)
		check(-a, a, c)
	}
	nan, inf := float32(math.NaN()), float32(math.Inf(1))
	specials := []float32{0, float32(math.Copysign(0, -1)), 1, -1, 0x1p-149, -0x1p-149, 0x1p-126, 3e38, -3e38, inf, -inf, nan, 1.5, 0x1.fffffep127}
	for _, x := range specials {
		for _, y := range specials {
			for _, z := range specials {
				check(x, y, z)
			}
		}
	}
	rng := rand.New(rand.NewPCG(25, 26))
	for i := 0; i < 200000; i++ {
		// Random bit patterns, and values with close exponents (where the
		// sum cancels or needs many bits).
		x, y, z := math.Float32frombits(rng.Uint32()), math.Float32frombits(rng.Uint32()), math.Float32frombits(rng.Uint32())
		check(x, y, z)
		x, y = float32(rng.NormFloat64()), float32(rng.NormFloat64())
		check(x, y, -x*y*float32(1+rng.NormFloat64()*1e-6))
		check(x*1e-20, y*1e-20, float32(rng.NormFloat64())*1e-40)
	}
}
