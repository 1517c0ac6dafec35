package kernels

import "fmt"

// Attention kernels. Scaled dot-product attention for one token and one
// key/value head reads that head's cached keys and values row by row (a
// row per earlier position). In grouped-query attention several query
// heads share a key/value head, so these kernels take the whole group of
// query heads and read each cached row once for all of them, instead of
// once per query head.
//
// The float order is fixed per (query head, row), exactly that of Dot and
// Axpy, so a score or an output does not depend on how many rows or heads
// share a call (batch invariance):
//
//	AttnScores:  dst[h][j] = Dot(q[h], k[j]) * scale          (float32 multiply after the dot)
//	AttnValues:  out[h]   += p[h][j] * v[j]  for j in order    (Axpy, one row after the other)

// AttnScores computes the scaled attention scores of heads query vectors
// against rows cached keys:
//
//	dst[h*dstStride + j] = Dot(q[h*d : (h+1)*d], k[j*kStride : j*kStride+d]) * scale
//
// for h in [0, heads), j in [0, rows). q is (head, d); k is (row, kStride),
// of which the first d values of each row are read; dst is (head,
// dstStride). Mismatched lengths are programming errors and panic.
func AttnScores(dst []float32, dstStride int, q []float32, heads, d int, k []float32, kStride, rows int, scale float32) {
	active.AttnScores(dst, dstStride, q, heads, d, k, kStride, rows, scale)
}

// AttnScoresF16 is AttnScores with keys stored as IEEE halves (an F16 KV
// cache); each score is DotF16(q[h], k[j]) * scale.
func AttnScoresF16(dst []float32, dstStride int, q []float32, heads, d int, k []uint16, kStride, rows int, scale float32) {
	active.AttnScoresF16(dst, dstStride, q, heads, d, k, kStride, rows, scale)
}

// AttnValues adds rows cached values, weighted by attention probabilities,
// into the outputs of heads query heads:
//
//	for j in [0, rows), in order: Axpy(out[h*d : (h+1)*d], p[h*pStride + j], v[j*vStride : j*vStride+d])
//
// out is (head, d); p is (head, pStride); v is (row, vStride), of which the
// first d values of each row are read.
func AttnValues(out []float32, heads, d int, p []float32, pStride int, v []float32, vStride, rows int) {
	active.AttnValues(out, heads, d, p, pStride, v, vStride, rows)
}

// AttnValuesF16 is AttnValues with values stored as IEEE halves
// (AxpyF16 for each row).
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

// --- references: one Dot or Axpy per (head, row) ---

func attnScoresRef(dst []float32, dstStride int, q []float32, heads, d int, k []float32, kStride, rows int, scale float32) {
	for h := 0; h < heads; h++ {
		qh := q[h*d : (h+1)*d]
		for j := 0; j < rows; j++ {
			dst[h*dstStride+j] = dotF32Ref(qh, k[j*kStride:j*kStride+d]) * scale
		}
	}
}

func attnScoresF16Ref(dst []float32, dstStride int, q []float32, heads, d int, k []uint16, kStride, rows int, scale float32) {
	for h := 0; h < heads; h++ {
		qh := q[h*d : (h+1)*d]
		for j := 0; j < rows; j++ {
			dst[h*dstStride+j] = dotF16F32Ref(qh, k[j*kStride:j*kStride+d]) * scale
		}
	}
}

func attnValuesRef(out []float32, heads, d int, p []float32, pStride int, v []float32, vStride, rows int) {
	for j := 0; j < rows; j++ {
		vj := v[j*vStride : j*vStride+d]
		for h := 0; h < heads; h++ {
			axpyRef(out[h*d:(h+1)*d], p[h*pStride+j], vj)
		}
	}
}

func attnValuesF16Ref(out []float32, heads, d int, p []float32, pStride int, v []uint16, vStride, rows int) {
	for j := 0; j < rows; j++ {
		vj := v[j*vStride : j*vStride+d]
		for h := 0; h < heads; h++ {
			axpyF16Ref(out[h*d:(h+1)*d], p[h*pStride+j], vj)
		}
	}
}
