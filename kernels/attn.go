package kernels

import (
	"fmt"
	"math"

	"github.com/gollm/gollm/tensor"
)

// Attention kernels. Scaled dot-product attention for one token and one
// key/value head reads that head's cached keys and values row by row (a
// row per earlier position). In grouped-query attention several query
// heads share a key/value head, so these kernels take the whole group of
// query heads and read each cached row once for all of them, instead of
// once per query head.
//
// The float order is fixed per (query head, row), so a score or an output
// does not depend on how many rows or heads share a call (batch
// invariance). Unlike Dot and Axpy, these kernels use fused multiply-adds
// (one rounding for a·b + c, as the FMA instructions of x86 since Haswell
// compute it; see FMA32): attention is most of the arithmetic of a long
// prompt, and a fused multiply-add does a multiply and an add in one
// instruction.
//
//	AttnScores:  dst[h][j] = attnDot(q[h], k[j]) * scale      (float32 multiply after the dot)
//	AttnValues:  out[h][i] = FMA32(p[h][j], v[j][i], out[h][i]) for j in order
//
// attnDot keeps Dot's 32 lanes (element i in lane i mod 32, lane =
// FMA32(x_i, y_i, lane)), folds them like Dot (l += l+16, +8, +4, +2, +1)
// and adds the elements past the last multiple of 32 one by one with
// FMA32.

// AttnScores computes the scaled attention scores of heads query vectors
// against rows cached keys:
//
//	dst[h*dstStride + j] = attnDot(q[h*d : (h+1)*d], k[j*kStride : j*kStride+d]) * scale
//
// for h in [0, heads), j in [0, rows). q is (head, d); k is (row, kStride),
// of which the first d values of each row are read; dst is (head,
// dstStride). Mismatched lengths are programming errors and panic.
func AttnScores(dst []float32, dstStride int, q []float32, heads, d int, k []float32, kStride, rows int, scale float32) {
	active.AttnScores(dst, dstStride, q, heads, d, k, kStride, rows, scale)
}

// AttnScoresF16 is AttnScores with keys stored as IEEE halves (an F16 KV
// cache), converted exactly to float32.
func AttnScoresF16(dst []float32, dstStride int, q []float32, heads, d int, k []uint16, kStride, rows int, scale float32) {
	active.AttnScoresF16(dst, dstStride, q, heads, d, k, kStride, rows, scale)
}

// AttnValues adds rows cached values, weighted by attention probabilities,
// into the outputs of heads query heads:
//
//	for j in [0, rows), in order: out[h*d + i] = FMA32(p[h*pStride + j], v[j*vStride + i], out[h*d + i])
//
// out is (head, d); p is (head, pStride); v is (row, vStride), of which the
// first d values of each row are read.
func AttnValues(out []float32, heads, d int, p []float32, pStride int, v []float32, vStride, rows int) {
	active.AttnValues(out, heads, d, p, pStride, v, vStride, rows)
}

// AttnValuesF16 is AttnValues with values stored as IEEE halves.
func AttnValuesF16(out []float32, heads, d int, p []float32, pStride int, v []uint16, vStride, rows int) {
	active.AttnValuesF16(out, heads, d, p, pStride, v, vStride, rows)
}

// checkAttn panics unless the buffers of an attention kernel hold what
// the shapes say: heads vectors of d values in x (q or out), heads rows
// of rows values with stride s in y (dst or p), and rows cached rows of
// at least d values with stride cs in a cache of cacheLen values.
func checkAttn(op string, xLen, yLen, s, heads, d, cacheLen, cs, rows int) {
	switch {
	case heads < 1 || d < 1 || rows < 0:
		panic(fmt.Sprintf("kernels: %s: %d heads of %d values, %d rows", op, heads, d, rows))
	case xLen < heads*d:
		panic(fmt.Sprintf("kernels: %s: %d values cannot hold %d heads of %d", op, xLen, heads, d))
	case rows == 0:
		return
	case s < rows || yLen < (heads-1)*s+rows:
		panic(fmt.Sprintf("kernels: %s: %d values with stride %d cannot hold %d heads × %d rows", op, yLen, s, heads, rows))
	case cs < d || cacheLen < (rows-1)*cs+d:
		panic(fmt.Sprintf("kernels: %s: cache of %d values with stride %d cannot hold %d rows of %d", op, cacheLen, cs, rows, d))
	}
}

// Methods: the same operations computed with one implementation.

func (im *Impl) AttnScores(dst []float32, dstStride int, q []float32, heads, d int, k []float32, kStride, rows int, scale float32) {
	checkAttn("AttnScores", len(q), len(dst), dstStride, heads, d, len(k), kStride, rows)
	if rows > 0 {
		im.attnScores(dst, dstStride, q, heads, d, k, kStride, rows, scale)
	}
}

func (im *Impl) AttnScoresF16(dst []float32, dstStride int, q []float32, heads, d int, k []uint16, kStride, rows int, scale float32) {
	checkAttn("AttnScoresF16", len(q), len(dst), dstStride, heads, d, len(k), kStride, rows)
	if rows > 0 {
		im.attnScoresF16(dst, dstStride, q, heads, d, k, kStride, rows, scale)
	}
}

func (im *Impl) AttnValues(out []float32, heads, d int, p []float32, pStride int, v []float32, vStride, rows int) {
	checkAttn("AttnValues", len(out), len(p), pStride, heads, d, len(v), vStride, rows)
	if rows > 0 {
		im.attnValues(out, heads, d, p, pStride, v, vStride, rows)
	}
}

func (im *Impl) AttnValuesF16(out []float32, heads, d int, p []float32, pStride int, v []uint16, vStride, rows int) {
	checkAttn("AttnValuesF16", len(out), len(p), pStride, heads, d, len(v), vStride, rows)
	if rows > 0 {
		im.attnValuesF16(out, heads, d, p, pStride, v, vStride, rows)
	}
}

// FMA32 returns a·b + c rounded once to float32 (round to nearest, ties
// to even), as the VFMADD instructions compute it.
//
// In plain Go: the product of two float32 values is exact in float64, so
// only the addition rounds; s = p + c in float64 and its exact error e
// (Knuth's TwoSum) give p + c = s + e exactly. Rounding s + e to float64
// with "round to odd" (keep s if e is 0 or s's last bit is 1, else step
// one unit towards e) and then to float32 gives the correctly rounded
// float32 result, because float64 has more than 24 + 2 bits (Boldo and
// Melquiond, "Emulation of FMA and correctly rounded sums: proved
// algorithms using rounding to odd", 2008). (float32(math.FMA(...)) would
// round twice, and differ in rare cases.)
func FMA32(a, b, c float32) float32 {
	p := float64(float64(a) * float64(b)) // exact; the conversion forbids fusing
	s := float64(p + float64(c))
	if math.IsInf(s, 0) || s != s {
		return float32(s)
	}
	bb := float64(s - p)
	e := float64(p-float64(s-bb)) + float64(float64(c)-bb)
	if bits := math.Float64bits(s); e != 0 && bits&1 == 0 {
		if (e > 0) == (s > 0) {
			bits++
		} else {
			bits--
		}
		s = math.Float64frombits(bits)
	}
	return float32(s)
}

// attnDotRef is attnDot (see the top of this file) for float32 keys.
func attnDotRef(x, y []float32) float32 {
	var s [lanes]float32
	full := len(x) / lanes * lanes
	for i := 0; i < full; i += lanes {
		for l := 0; l < lanes; l++ {
			s[l] = FMA32(x[i+l], y[i+l], s[l])
		}
	}
	sum := foldLanes(&s)
	for i := full; i < len(x); i++ {
		sum = FMA32(x[i], y[i], sum)
	}
	return sum
}

// attnDotF16Ref is attnDot for half keys.
func attnDotF16Ref(x []float32, h []uint16) float32 {
	var s [lanes]float32
	full := len(x) / lanes * lanes
	for i := 0; i < full; i += lanes {
		for l := 0; l < lanes; l++ {
			s[l] = FMA32(x[i+l], tensor.HalfToFloat(h[i+l]), s[l])
		}
	}
	sum := foldLanes(&s)
	for i := full; i < len(x); i++ {
		sum = FMA32(x[i], tensor.HalfToFloat(h[i]), sum)
	}
	return sum
}

// --- references: one attnDot or row of fused updates per (head, row) ---

func attnScoresRef(dst []float32, dstStride int, q []float32, heads, d int, k []float32, kStride, rows int, scale float32) {
	for h := 0; h < heads; h++ {
		qh := q[h*d : (h+1)*d]
		for j := 0; j < rows; j++ {
			dst[h*dstStride+j] = attnDotRef(qh, k[j*kStride:j*kStride+d]) * scale
		}
	}
}

func attnScoresF16Ref(dst []float32, dstStride int, q []float32, heads, d int, k []uint16, kStride, rows int, scale float32) {
	for h := 0; h < heads; h++ {
		qh := q[h*d : (h+1)*d]
		for j := 0; j < rows; j++ {
			dst[h*dstStride+j] = attnDotF16Ref(qh, k[j*kStride:j*kStride+d]) * scale
		}
	}
}

func attnValuesRef(out []float32, heads, d int, p []float32, pStride int, v []float32, vStride, rows int) {
	for j := 0; j < rows; j++ {
		vj := v[j*vStride : j*vStride+d]
		for h := 0; h < heads; h++ {
			o, a := out[h*d:(h+1)*d], p[h*pStride+j]
			for i, x := range vj {
				o[i] = FMA32(a, x, o[i])
			}
		}
	}
}

func attnValuesF16Ref(out []float32, heads, d int, p []float32, pStride int, v []uint16, vStride, rows int) {
	for j := 0; j < rows; j++ {
		vj := v[j*vStride : j*vStride+d]
		for h := 0; h < heads; h++ {
			o, a := out[h*d:(h+1)*d], p[h*pStride+j]
			for i, x := range vj {
				o[i] = FMA32(a, tensor.HalfToFloat(x), o[i])
			}
		}
	}
}
