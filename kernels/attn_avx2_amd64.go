//go:build !purego

package kernels

// Go sides of attn_avx2_amd64.s: pairs of heads as in attn_amd64.go (a
// lone last head paired with itself, its twin's results going to a
// scratch buffer), 16 rows per score call; head sizes off the vector
// width take the reference loops.

//go:noescape
func attnScoresF16x2AVX2(dstA, dstB *float32, qA, qB *float32, d int, k *uint16, kStride int, rows int, scale float32)

//go:noescape
func attnScoresF32x2AVX2(dstA, dstB *float32, qA, qB *float32, d int, k *float32, kStride int, rows int, scale float32)

//go:noescape
func attnValuesF16x2AVX2(outA, outB *float32, d int, pA, pB *float32, v *uint16, vStride int, rows int)

//go:noescape
func attnValuesF32x2AVX2(outA, outB *float32, d int, pA, pB *float32, v *float32, vStride int, rows int)

func attnScoresF16AVX2(dst []float32, dstStride int, q []float32, heads, d int, k []uint16, kStride, rows int, scale float32) {
	if d%32 != 0 {
		attnScoresF16Ref(dst, dstStride, q, heads, d, k, kStride, rows, scale)
		return
	}
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
			attnScoresF16x2AVX2(&dst[h*dstStride+j], db, qa, qb, d, &k[j*kStride], 2*kStride, min(attnRows, rows-j), scale)
		}
	}
}

func attnScoresF32AVX2(dst []float32, dstStride int, q []float32, heads, d int, k []float32, kStride, rows int, scale float32) {
	if d%32 != 0 {
		attnScoresRef(dst, dstStride, q, heads, d, k, kStride, rows, scale)
		return
	}
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
			attnScoresF32x2AVX2(&dst[h*dstStride+j], db, qa, qb, d, &k[j*kStride], 4*kStride, min(attnRows, rows-j), scale)
		}
	}
}

func attnValuesF16AVX2(out []float32, heads, d int, p []float32, pStride int, v []uint16, vStride, rows int) {
	if d%8 != 0 {
		attnValuesF16Ref(out, heads, d, p, pStride, v, vStride, rows)
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
			attnValuesF16Ref(out[h*d:], 1, d, p[h*pStride:], pStride, v, vStride, rows)
			break
		}
		attnValuesF16x2AVX2(oa, ob, d, pa, pb, &v[0], 2*vStride, rows)
	}
}

func attnValuesF32AVX2(out []float32, heads, d int, p []float32, pStride int, v []float32, vStride, rows int) {
	if d%8 != 0 {
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
		attnValuesF32x2AVX2(oa, ob, d, pa, pb, &v[0], 4*vStride, rows)
	}
}

// installAttnAVX2 puts the AVX2 attention kernels into im.
func installAttnAVX2(im *Impl) {
	im.attnScores = attnScoresF32AVX2
	im.attnScoresF16 = attnScoresF16AVX2
	im.attnValues = attnValuesF32AVX2
	im.attnValuesF16 = attnValuesF16AVX2
}
