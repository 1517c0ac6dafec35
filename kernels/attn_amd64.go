//go:build !purego

package kernels

// Go sides of attn_amd64.s. The assembly serves two query heads per call
// (a lone last head is paired with itself, its twin's results going to a
// scratch buffer) and up to 16 cached rows per score call; head sizes
// that are not a multiple of 32 (scores) or 16 (values) take the
// reference loops.

//go:noescape
func attnScoresF16x2(dstA, dstB *float32, qA, qB *float32, d int, k *uint16, kStride int, rows int, scale float32, tmp *float32)

//go:noescape
func attnScoresF32x2(dstA, dstB *float32, qA, qB *float32, d int, k *float32, kStride int, rows int, scale float32, tmp *float32)

//go:noescape
func attnValuesF16x2(outA, outB *float32, d int, pA, pB *float32, v *uint16, vStride int, rows int)

//go:noescape
func attnValuesF32x2(outA, outB *float32, d int, pA, pB *float32, v *float32, vStride int, rows int)

// attnRows is the most key rows one score call takes (one register of
// results).
const attnRows = 16

func attnScoresF16AVX512(dst []float32, dstStride int, q []float32, heads, d int, k []uint16, kStride, rows int, scale float32) {
	if d%32 != 0 {
		attnScoresF16Ref(dst, dstStride, q, heads, d, k, kStride, rows, scale)
		return
	}
	var tmp [2 * attnRows * attnRows]float32 // (head of the pair, row, 16 partial sums)
	var spare [attnRows]float32              // results of a lone head's twin
	for h := 0; h < heads; h += 2 {
		pair := h+1 < heads
		qa, qb := &q[h*d], &q[h*d]
		if pair {
			qb = &q[(h+1)*d]
		}
		for j := 0; j < rows; j += attnRows {
			db := &spare[0]
			if pair {
				db = &dst[(h+1)*dstStride+j]
			}
			attnScoresF16x2(&dst[h*dstStride+j], db, qa, qb, d, &k[j*kStride], 2*kStride, min(attnRows, rows-j), scale, &tmp[0])
		}
	}
}

func attnScoresF32AVX512(dst []float32, dstStride int, q []float32, heads, d int, k []float32, kStride, rows int, scale float32) {
	if d%32 != 0 {
		attnScoresRef(dst, dstStride, q, heads, d, k, kStride, rows, scale)
		return
	}
	var tmp [2 * attnRows * attnRows]float32
	var spare [attnRows]float32
	for h := 0; h < heads; h += 2 {
		pair := h+1 < heads
		qa, qb := &q[h*d], &q[h*d]
		if pair {
			qb = &q[(h+1)*d]
		}
		for j := 0; j < rows; j += attnRows {
			db := &spare[0]
			if pair {
				db = &dst[(h+1)*dstStride+j]
			}
			attnScoresF32x2(&dst[h*dstStride+j], db, qa, qb, d, &k[j*kStride], 4*kStride, min(attnRows, rows-j), scale, &tmp[0])
		}
	}
}

func attnValuesF16AVX512(out []float32, heads, d int, p []float32, pStride int, v []uint16, vStride, rows int) {
	if d%16 != 0 {
		attnValuesF16Ref(out, heads, d, p, pStride, v, vStride, rows)
		return
	}
	var spare [512]float32 // a lone head's twin output, when d fits
	for h := 0; h < heads; h += 2 {
		var ob *float32 // the second head's output: its own, or a scratch twin
		oa, pa, pb := &out[h*d], &p[h*pStride], &p[h*pStride]
		if h+1 < heads {
			ob, pb = &out[(h+1)*d], &p[(h+1)*pStride]
		} else if d <= len(spare) {
			ob = &spare[0]
		} else {
			attnValuesF16Ref(out[h*d:], 1, d, p[h*pStride:], pStride, v, vStride, rows)
			break
		}
		attnValuesF16x2(oa, ob, d, pa, pb, &v[0], 2*vStride, rows)
	}
}

func attnValuesF32AVX512(out []float32, heads, d int, p []float32, pStride int, v []float32, vStride, rows int) {
	if d%16 != 0 {
		attnValuesRef(out, heads, d, p, pStride, v, vStride, rows)
		return
	}
	var spare [512]float32
	for h := 0; h < heads; h += 2 {
		var ob *float32 // the second head's output: its own, or a scratch twin
		oa, pa, pb := &out[h*d], &p[h*pStride], &p[h*pStride]
		if h+1 < heads {
			ob, pb = &out[(h+1)*d], &p[(h+1)*pStride]
		} else if d <= len(spare) {
			ob = &spare[0]
		} else {
			attnValuesRef(out[h*d:], 1, d, p[h*pStride:], pStride, v, vStride, rows)
			break
		}
		attnValuesF32x2(oa, ob, d, pa, pb, &v[0], 4*vStride, rows)
	}
}

// installAttnAVX512 puts the attention kernels into im.
func installAttnAVX512(im *Impl) {
	im.attnScores = attnScoresF32AVX512
	im.attnScoresF16 = attnScoresF16AVX512
	im.attnValues = attnValuesF32AVX512
	im.attnValuesF16 = attnValuesF16AVX512
}
