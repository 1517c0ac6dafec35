package tensor

import (
	"encoding/binary"
	"fmt"
	"math"
)

// Reference quantization: float32 → blocks, for weights.
//
// These are ports of ggml's quantize_row_*_ref (ggml-quants.c), the
// functions llama-quantize calls when it has no importance matrix. They are
// written to follow ggml's arithmetic step by step so that a row quantizes
// to the same bytes; the algorithm notes at each function say what it does.
// They are not fast (the K-quant searches try dozens of candidate scales per
// group) and are meant for making model files and for tests. Activation
// quantizers used during inference live in package kernels.
//
// Rounding notes, as in dequant.go:
//   - nearestInt is ggml's nearest_int: round to nearest, ties to even,
//     by adding 1.5·2^23 in float32.
//   - float32(a*b) + c keeps Go from fusing the multiply and add into one
//     FMA. ggml's reference is plain C, where each operation rounds. (A
//     llama.cpp binary compiled with -march=native may itself contract a few
//     of these into FMAs; then a tie can rarely come out differently. We
//     follow the source as written, which is also what gguf-py's numpy
//     port does.)
//
// During development every quantizer here was checked byte for byte
// against ggml's C reference (built with -ffp-contract=off), on a million
// values drawn from eight distributions (Gaussian, ggml's cosine test data,
// uniform, sparse, heavy-tailed, many exact ties, tiny offsets, one-sided),
// with the default GOAMD64 and with GOAMD64=v3, where Go could otherwise
// use FMA: all blocks were identical.
//
// Like the dequantizers, the per-type functions panic when src does not
// hold exactly len(dst) blocks of values (a programming error); QuantizeRow
// checks lengths and returns errors.

// groupMaxEps is ggml's GROUP_MAX_EPS: a group whose largest magnitude is
// below it is treated as all zeros.
const groupMaxEps = 1e-15

// QuantizeRow converts len(src) float32 values to type t, writing exactly
// RowBytes(t, len(src)) bytes to dst. Supported types: F32, F16, BF16, Q4_0,
// Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, Q8_K. Other types
// give an error wrapping ErrUnsupported; wrong lengths an error wrapping
// ErrLength.
func QuantizeRow(t DType, dst []byte, src []float32) error {
	if err := checkRow(t, len(src), len(dst)); err != nil {
		return err
	}
	switch t {
	case F32:
		for i, v := range src {
			binary.LittleEndian.PutUint32(dst[4*i:], math.Float32bits(v))
		}
	case F16:
		for i, v := range src {
			binary.LittleEndian.PutUint16(dst[2*i:], FloatToHalf(v))
		}
	case BF16:
		for i, v := range src {
			binary.LittleEndian.PutUint16(dst[2*i:], FloatToBF16(v))
		}
	case Q4_0:
		quantizeInto(dst, src, QuantizeQ4_0)
	case Q4_1:
		quantizeInto(dst, src, QuantizeQ4_1)
	case Q5_0:
		quantizeInto(dst, src, QuantizeQ5_0)
	case Q5_1:
		quantizeInto(dst, src, QuantizeQ5_1)
	case Q8_0:
		quantizeInto(dst, src, QuantizeQ8_0)
	case Q2_K:
		quantizeInto(dst, src, QuantizeQ2K)
	case Q3_K:
		quantizeInto(dst, src, QuantizeQ3K)
	case Q4_K:
		quantizeInto(dst, src, QuantizeQ4K)
	case Q5_K:
		quantizeInto(dst, src, QuantizeQ5K)
	case Q6_K:
		quantizeInto(dst, src, QuantizeQ6K)
	case Q8_K:
		quantizeInto(dst, src, QuantizeQ8K)
	default:
		return fmt.Errorf("%w: cannot quantize to %s", ErrUnsupported, t)
	}
	return nil
}

// CanQuantize reports whether QuantizeRow supports t.
func CanQuantize(t DType) bool { return CanDequantize(t) }

// quantizeInto runs a block quantizer on raw bytes. When dst is not aligned
// for B it quantizes into an aligned buffer and copies (see blocksOf).
func quantizeInto[B any](dst []byte, src []float32, quantize func([]B, []float32)) {
	blocks := blocksOf[B](dst)
	quantize(blocks, src)
	if out := BlockBytesOf(blocks); len(out) > 0 && &out[0] != &dst[0] {
		copy(dst, out)
	}
}

// mustHoldBlocks panics unless src holds exactly nblocks*size values.
func mustHoldBlocks(src []float32, nblocks, size int) {
	if len(src) != nblocks*size {
		panic(fmt.Sprintf("tensor: %d float32 values given for %d blocks of %d", len(src), nblocks, size))
	}
}

// nearestInt rounds to the nearest integer, ties to even, as ggml's
// nearest_int: adding 1.5·2^23 pushes the integer part into the low
// mantissa bits, where float32 addition rounds it. Valid for
// |f| <= 4194303; ggml asserts that, and no caller here exceeds it for
// finite input.
func nearestInt(f float32) int {
	// float32(f): when this function is inlined, f may be a product such as
	// iscale*x, and without the conversion Go may fuse it with the add.
	v := float32(f) + 12582912
	return int(math.Float32bits(v)&0x007fffff) - 0x00400000
}

func clampInt(v, lo, hi int) int { return max(lo, min(hi, v)) }

// ---- 32-value blocks ----

// QuantizeQ4_0 (quantize_row_q4_0_ref): d = the signed value of largest
// magnitude / -8, so that value maps to q = 0 exactly; q = x/d + 8 rounded
// by truncating x/d + 8.5, capped at 15.
func QuantizeQ4_0(dst []BlockQ4_0, src []float32) {
	mustHoldBlocks(src, len(dst), QK)
	for i := range dst {
		x := src[i*QK : (i+1)*QK]
		var amax, maxv float32
		for _, v := range x {
			if a := abs32(v); amax < a {
				amax, maxv = a, v
			}
		}
		d := maxv / -8
		var id float32
		if d != 0 {
			id = 1 / d
		}
		dst[i].D = FloatToHalf(d)
		for j := 0; j < QK/2; j++ {
			x0 := float32(x[j] * id) // rounded before the add below
			x1 := float32(x[j+QK/2] * id)
			xi0 := min(15, int8(x0+8.5))
			xi1 := min(15, int8(x1+8.5))
			dst[i].Qs[j] = byte(xi0) | byte(xi1)<<4
		}
	}
}

// QuantizeQ4_1 (quantize_row_q4_1_ref): min and max of the block; d =
// (max-min)/15, m = min, q = (x-min)/d rounded half up.
func QuantizeQ4_1(dst []BlockQ4_1, src []float32) {
	mustHoldBlocks(src, len(dst), QK)
	for i := range dst {
		x := src[i*QK : (i+1)*QK]
		minv, maxv := float32(math.MaxFloat32), float32(-math.MaxFloat32)
		for _, v := range x {
			minv = min(minv, v)
			maxv = max(maxv, v)
		}
		d := (maxv - minv) / 15
		var id float32
		if d != 0 {
			id = 1 / d
		}
		dst[i].D = FloatToHalf(d)
		dst[i].M = FloatToHalf(minv)
		for j := 0; j < QK/2; j++ {
			x0 := float32((x[j] - minv) * id)
			x1 := float32((x[j+QK/2] - minv) * id)
			xi0 := min(15, int8(x0+0.5))
			xi1 := min(15, int8(x1+0.5))
			dst[i].Qs[j] = byte(xi0) | byte(xi1)<<4
		}
	}
}

// QuantizeQ5_0 (quantize_row_q5_0_ref): as Q4_0 with 5 bits, d = max/-16;
// the fifth bit of value j goes to bit j of Qh.
func QuantizeQ5_0(dst []BlockQ5_0, src []float32) {
	mustHoldBlocks(src, len(dst), QK)
	for i := range dst {
		x := src[i*QK : (i+1)*QK]
		var amax, maxv float32
		for _, v := range x {
			if a := abs32(v); amax < a {
				amax, maxv = a, v
			}
		}
		d := maxv / -16
		var id float32
		if d != 0 {
			id = 1 / d
		}
		dst[i].D = FloatToHalf(d)
		var qh uint32
		for j := 0; j < QK/2; j++ {
			xi0 := byte(min(31, int8(float32(x[j]*id)+16.5)))
			xi1 := byte(min(31, int8(float32(x[j+QK/2]*id)+16.5)))
			dst[i].Qs[j] = xi0&0x0F | (xi1&0x0F)<<4
			qh |= uint32(xi0&0x10) >> 4 << j
			qh |= uint32(xi1&0x10) >> 4 << (j + QK/2)
		}
		binary.LittleEndian.PutUint32(dst[i].Qh[:], qh)
	}
}

// QuantizeQ5_1 (quantize_row_q5_1_ref): as Q4_1 with 5 bits, d = (max-min)/31.
func QuantizeQ5_1(dst []BlockQ5_1, src []float32) {
	mustHoldBlocks(src, len(dst), QK)
	for i := range dst {
		x := src[i*QK : (i+1)*QK]
		minv, maxv := float32(math.MaxFloat32), float32(-math.MaxFloat32)
		for _, v := range x {
			minv = min(minv, v)
			maxv = max(maxv, v)
		}
		d := (maxv - minv) / 31
		var id float32
		if d != 0 {
			id = 1 / d
		}
		dst[i].D = FloatToHalf(d)
		dst[i].M = FloatToHalf(minv)
		var qh uint32
		for j := 0; j < QK/2; j++ {
			xi0 := uint8(float32((x[j]-minv)*id) + 0.5)
			xi1 := uint8(float32((x[j+QK/2]-minv)*id) + 0.5)
			dst[i].Qs[j] = xi0&0x0F | (xi1&0x0F)<<4
			qh |= uint32(xi0&0x10) >> 4 << j
			qh |= uint32(xi1&0x10) >> 4 << (j + QK/2)
		}
		binary.LittleEndian.PutUint32(dst[i].Qh[:], qh)
	}
}

// QuantizeQ8_0 (quantize_row_q8_0_ref): d = amax/127, q = round(x/d)
// (half away from zero, C's roundf).
func QuantizeQ8_0(dst []BlockQ8_0, src []float32) {
	mustHoldBlocks(src, len(dst), QK)
	for i := range dst {
		x := src[i*QK : (i+1)*QK]
		var amax float32
		for _, v := range x {
			amax = max(amax, abs32(v))
		}
		d := amax / 127
		var id float32
		if d != 0 {
			id = 1 / d
		}
		dst[i].D = FloatToHalf(d)
		for j, v := range x {
			dst[i].Qs[j] = int8(math.Round(float64(v * id)))
		}
	}
}

// ---- scale searches shared by the K-quants ----

// makeQxQuants is ggml's make_qx_quants: symmetric quantization of n values
// to integers in [-nmax, nmax-1], stored in L offset by nmax. It starts from
// the scale that maps the value of largest magnitude to -nmax, then (for
// rmseType != 0) tries 18 nearby scales, keeping the one that minimizes the
// weighted squared error sum w*(x - scale*l)^2, where the best scale for a
// given set of l is sum(w*x*l)/sum(w*l*l). Weights: qw if given, else by
// rmseType 1: x², 2: 1, 3: |x|, 4: sqrt|x|. It returns the scale.
func makeQxQuants(n, nmax int, x []float32, L []int8, rmseType int, qw []float32) float32 {
	var maxv, amax float32
	for i := 0; i < n; i++ {
		if ax := abs32(x[i]); ax > amax {
			amax, maxv = ax, x[i]
		}
	}
	if amax < groupMaxEps { // all zero
		for i := 0; i < n; i++ {
			L[i] = 0
		}
		return 0
	}
	iscale := float32(-nmax) / maxv
	if rmseType == 0 {
		for i := 0; i < n; i++ {
			l := nearestInt(iscale * x[i])
			L[i] = int8(nmax + clampInt(l, -nmax, nmax-1))
		}
		return 1 / iscale
	}
	returnEarly := false
	if rmseType < 0 {
		rmseType = -rmseType
		returnEarly = true
	}
	weight := func(i int) float32 {
		switch {
		case qw != nil:
			return qw[i]
		case rmseType == 1:
			return x[i] * x[i]
		case rmseType == 2:
			return 1
		case rmseType == 3:
			return abs32(x[i])
		}
		return float32(math.Sqrt(float64(abs32(x[i]))))
	}
	var sumlx, suml2 float32
	for i := 0; i < n; i++ {
		l := clampInt(nearestInt(iscale*x[i]), -nmax, nmax-1)
		L[i] = int8(l + nmax)
		w := weight(i)
		sumlx += float32(w * x[i] * float32(l))
		suml2 += float32(w * float32(l) * float32(l))
	}
	var scale float32
	if suml2 != 0 {
		scale = sumlx / suml2
	}
	if returnEarly {
		if suml2 > 0 {
			return 0.5 * (scale + 1/iscale)
		}
		return 1 / iscale
	}
	best := scale * sumlx
	for is := -9; is <= 9; is++ {
		if is == 0 {
			continue
		}
		iscale = -(float32(nmax) + float32(0.1*float32(is))) / maxv
		sumlx, suml2 = 0, 0
		for i := 0; i < n; i++ {
			l := clampInt(nearestInt(iscale*x[i]), -nmax, nmax-1)
			w := weight(i)
			sumlx += float32(w * x[i] * float32(l))
			suml2 += float32(w * float32(l) * float32(l))
		}
		if suml2 > 0 && sumlx*sumlx > best*suml2 {
			for i := 0; i < n; i++ {
				l := nearestInt(iscale * x[i])
				L[i] = int8(nmax + clampInt(l, -nmax, nmax-1))
			}
			scale = sumlx / suml2
			best = scale * sumlx
		}
	}
	return scale
}

// makeQ3Quants is ggml's make_q3_quants (used by Q3_K): symmetric levels
// in [-nmax, nmax-1], refined (doRMSE) by up to 5 passes of coordinate
// descent that move single values to the level that lowers the x²-weighted
// error. L receives levels offset by nmax. It returns the scale.
func makeQ3Quants(n, nmax int, x []float32, L []int8, doRMSE bool) float32 {
	var maxv, amax float32
	for i := 0; i < n; i++ {
		if ax := abs32(x[i]); ax > amax {
			amax, maxv = ax, x[i]
		}
	}
	if amax < groupMaxEps { // all zero
		for i := 0; i < n; i++ {
			L[i] = 0
		}
		return 0
	}
	iscale := float32(-nmax) / maxv
	if doRMSE {
		var sumlx, suml2 float32
		for i := 0; i < n; i++ {
			l := clampInt(nearestInt(iscale*x[i]), -nmax, nmax-1)
			L[i] = int8(l)
			w := x[i] * x[i]
			sumlx += float32(w * x[i] * float32(l))
			suml2 += float32(w * float32(l) * float32(l))
		}
		for itry := 0; itry < 5; itry++ {
			changed := 0
			for i := 0; i < n; i++ {
				w := x[i] * x[i]
				li := float32(L[i])
				slx := sumlx - float32(w*x[i]*li)
				if slx > 0 {
					sl2 := suml2 - float32(w*li*li)
					newL := clampInt(nearestInt(x[i]*sl2/slx), -nmax, nmax-1)
					if newL != int(L[i]) {
						slx += float32(w * x[i] * float32(newL))
						sl2 += float32(w * float32(newL) * float32(newL))
						if sl2 > 0 && slx*slx*suml2 > sumlx*sumlx*sl2 {
							L[i] = int8(newL)
							sumlx, suml2 = slx, sl2
							changed++
						}
					}
				}
			}
			if changed == 0 {
				break
			}
		}
		for i := 0; i < n; i++ {
			L[i] += int8(nmax)
		}
		if suml2 > 0 {
			return sumlx / suml2
		}
		return 0
	}
	for i := 0; i < n; i++ {
		l := clampInt(nearestInt(iscale*x[i]), -nmax, nmax-1)
		L[i] = int8(l + nmax)
	}
	return 1 / iscale
}

// makeQkx2Quants is ggml's make_qkx2_quants: asymmetric quantization
// x ≈ scale*l - theMin with l in [0, nmax], for the K-quants that store a
// minimum (Q2_K, Q4_K, Q5_K). It starts from the min/max fit, then tries
// nstep+1 candidate scales (nmax + rmin + rdelta*is)/(max-min); for each
// set of levels it solves the weighted least-squares problem for scale and
// min in closed form, and keeps the candidate with the lowest weighted
// error (absolute if useMad, else squared). The minimum is clamped to <= 0
// (so theMin >= 0). It returns the scale and writes theMin.
func makeQkx2Quants(n, nmax int, x, weights []float32, L, Laux []uint8,
	rmin, rdelta float32, nstep int, useMad bool) (scale, theMin float32) {
	minv, maxv := x[0], x[0]
	sumW := weights[0]
	sumX := sumW * x[0]
	for i := 1; i < n; i++ {
		minv = min(minv, x[i])
		maxv = max(maxv, x[i])
		w := weights[i]
		sumW += w
		sumX += float32(w * x[i])
	}
	if minv > 0 {
		minv = 0
	}
	if maxv == minv {
		for i := 0; i < n; i++ {
			L[i] = 0
		}
		return 0, -minv
	}
	iscale := float32(nmax) / (maxv - minv)
	scale = 1 / iscale
	var bestError float32
	for i := 0; i < n; i++ {
		l := nearestInt(iscale * (x[i] - minv))
		L[i] = uint8(clampInt(l, 0, nmax))
		diff := float32(scale*float32(L[i])) + minv - x[i]
		if useMad {
			diff = abs32(diff)
		} else {
			diff = diff * diff
		}
		bestError += float32(weights[i] * diff)
	}
	if nstep < 1 {
		return scale, -minv
	}
	for is := 0; is <= nstep; is++ {
		iscale = (rmin + float32(rdelta*float32(is)) + float32(nmax)) / (maxv - minv)
		var sumL, sumL2, sumXL float32
		for i := 0; i < n; i++ {
			l := clampInt(nearestInt(iscale*(x[i]-minv)), 0, nmax)
			Laux[i] = uint8(l)
			w := weights[i]
			fl := float32(l)
			sumL += float32(w * fl)
			sumL2 += float32(w * fl * fl)
			sumXL += float32(w * fl * x[i])
		}
		D := float32(sumW*sumL2) - float32(sumL*sumL)
		if D > 0 {
			thisScale := (float32(sumW*sumXL) - float32(sumX*sumL)) / D
			thisMin := (float32(sumL2*sumX) - float32(sumL*sumXL)) / D
			if thisMin > 0 {
				thisMin = 0
				thisScale = sumXL / sumL2
			}
			var curError float32
			for i := 0; i < n; i++ {
				diff := float32(thisScale*float32(Laux[i])) + thisMin - x[i]
				if useMad {
					diff = abs32(diff)
				} else {
					diff = diff * diff
				}
				curError += float32(weights[i] * diff)
			}
			if curError < bestError {
				copy(L[:n], Laux[:n])
				bestError = curError
				scale = thisScale
				minv = thisMin
			}
		}
	}
	return scale, -minv
}

// ---- 256-value K-quant super-blocks ----

// QuantizeQ2K (quantize_row_q2_K_ref): for each group of 16, an
// asymmetric 2-bit fit (makeQkx2Quants, |x| weights, absolute error); the
// 16 group scales and minimums are then quantized to 4 bits against the
// super-block's largest (d = maxScale/15, dmin = maxMin/15), and the values
// are re-quantized with the rounded scales.
func QuantizeQ2K(dst []BlockQ2_K, src []float32) {
	mustHoldBlocks(src, len(dst), QKK)
	var (
		L       [QKK]uint8 // (value) levels 0..3
		Laux    [16]uint8
		weights [16]float32
		mins    [QKK / 16]float32
		scales  [QKK / 16]float32
	)
	const q4scale = 15
	for i := range dst {
		x := src[i*QKK : (i+1)*QKK]
		y := &dst[i]
		var maxScale, maxMin float32
		for j := 0; j < QKK/16; j++ {
			for l := 0; l < 16; l++ {
				weights[l] = abs32(x[16*j+l])
			}
			scales[j], mins[j] = makeQkx2Quants(16, 3, x[16*j:], weights[:], L[16*j:], Laux[:], -0.5, 0.1, 15, true)
			maxScale = max(maxScale, scales[j])
			maxMin = max(maxMin, mins[j])
		}
		if maxScale > 0 {
			iscale := q4scale / maxScale
			for j := 0; j < QKK/16; j++ {
				y.Scales[j] = uint8(nearestInt(iscale * scales[j]))
			}
			y.D = FloatToHalf(maxScale / q4scale)
		} else {
			for j := range y.Scales {
				y.Scales[j] = 0
			}
			y.D = FloatToHalf(0)
		}
		if maxMin > 0 {
			iscale := q4scale / maxMin
			for j := 0; j < QKK/16; j++ {
				y.Scales[j] |= uint8(nearestInt(iscale*mins[j])) << 4
			}
			y.Dmin = FloatToHalf(maxMin / q4scale)
		} else {
			y.Dmin = FloatToHalf(0)
		}
		for j := 0; j < QKK/16; j++ {
			d := HalfToFloat(y.D) * float32(y.Scales[j]&0xF)
			if d == 0 {
				continue
			}
			dm := HalfToFloat(y.Dmin) * float32(y.Scales[j]>>4)
			for ii := 0; ii < 16; ii++ {
				l := nearestInt((x[16*j+ii] + dm) / d)
				L[16*j+ii] = uint8(clampInt(l, 0, 3))
			}
		}
		for j := 0; j < QKK; j += 128 {
			for l := 0; l < 32; l++ {
				y.Qs[j/4+l] = L[j+l] | L[j+l+32]<<2 | L[j+l+64]<<4 | L[j+l+96]<<6
			}
		}
	}
}

// QuantizeQ3K (quantize_row_q3_K_ref): for each group of 16, a symmetric
// 3-bit fit (makeQ3Quants with refinement); the 16 signed group scales are
// quantized to 6 bits against the one of largest magnitude (d = -max/32),
// and the values re-quantized with the rounded scales. See DequantizeQ3K
// for the bit layout.
func QuantizeQ3K(dst []BlockQ3_K, src []float32) {
	mustHoldBlocks(src, len(dst), QKK)
	var (
		L      [QKK]int8 // (value) levels 0..7
		scales [QKK / 16]float32
	)
	for i := range dst {
		x := src[i*QKK : (i+1)*QKK]
		y := &dst[i]
		var maxScale, amax float32
		for j := 0; j < QKK/16; j++ {
			scales[j] = makeQ3Quants(16, 4, x[16*j:], L[16*j:], true)
			if s := abs32(scales[j]); s > amax {
				amax, maxScale = s, scales[j]
			}
		}
		y.Scales = [12]byte{}
		if maxScale != 0 {
			iscale := -32 / maxScale
			for j := 0; j < QKK/16; j++ {
				l := int8(nearestInt(iscale * scales[j]))
				l = max(-32, min(31, l)) + 32
				if j < 8 {
					y.Scales[j] = byte(l) & 0xF
				} else {
					y.Scales[j-8] |= (byte(l) & 0xF) << 4
				}
				l >>= 4
				y.Scales[j%4+8] |= byte(l) << (2 * (j / 4))
			}
			y.D = FloatToHalf(1 / iscale)
		} else {
			y.D = FloatToHalf(0)
		}
		sc := q3KScales(&y.Scales)
		for j := 0; j < QKK/16; j++ {
			d := HalfToFloat(y.D) * float32(sc[j])
			if d == 0 {
				continue
			}
			for ii := 0; ii < 16; ii++ {
				l := clampInt(nearestInt(x[16*j+ii]/d), -4, 3)
				L[16*j+ii] = int8(l + 4)
			}
		}
		// The high bit of the first 32 values goes to bit 0 of Hmask[0..31],
		// of the next 32 to bit 1, and so on.
		y.Hmask = [32]byte{}
		m, hm := 0, byte(1)
		for j := 0; j < QKK; j++ {
			if L[j] > 3 {
				y.Hmask[m] |= hm
				L[j] -= 4
			}
			if m++; m == QKK/8 {
				m = 0
				hm <<= 1
			}
		}
		for j := 0; j < QKK; j += 128 {
			for l := 0; l < 32; l++ {
				y.Qs[j/4+l] = byte(L[j+l]) | byte(L[j+l+32])<<2 | byte(L[j+l+64])<<4 | byte(L[j+l+96])<<6
			}
		}
	}
}

// SetScaleMinK4 stores 6-bit scale ls and minimum lm of group j (0..7) in
// a Q4_K/Q5_K scales array (the inverse of ScaleMinK4). For j >= 4 it ORs
// into bytes that groups j-4 wrote first, so groups must go in order.
func SetScaleMinK4(s *[12]byte, j int, ls, lm uint8) {
	if j < 4 {
		s[j] = ls
		s[j+4] = lm
		return
	}
	s[j+4] = ls&0xF | (lm&0xF)<<4
	s[j-4] |= (ls >> 4) << 6
	s[j] |= (lm >> 4) << 6
}

// quantizeK4Scales is the part Q4_K and Q5_K share after the per-group
// fits: the eight group scales and minimums are quantized to 6 bits against
// the largest of each (d = maxScale/63, dmin = maxMin/63), and the values
// are re-quantized to levels 0..nmax with the rounded scales.
func quantizeK4Scales(x []float32, L *[QKK]uint8, scales, mins *[QKK / 32]float32, nmax int,
	sc *[12]byte, dOut, dminOut *uint16) {
	var maxScale, maxMin float32
	for j := 0; j < QKK/32; j++ {
		maxScale = max(maxScale, scales[j])
		maxMin = max(maxMin, mins[j])
	}
	var invScale, invMin float32
	if maxScale > 0 {
		invScale = 63 / maxScale
	}
	if maxMin > 0 {
		invMin = 63 / maxMin
	}
	for j := 0; j < QKK/32; j++ {
		ls := min(63, uint8(nearestInt(invScale*scales[j])))
		lm := min(63, uint8(nearestInt(invMin*mins[j])))
		SetScaleMinK4(sc, j, ls, lm)
	}
	*dOut = FloatToHalf(maxScale / 63)
	*dminOut = FloatToHalf(maxMin / 63)
	for j := 0; j < QKK/32; j++ {
		s, m := ScaleMinK4(j, sc)
		d := HalfToFloat(*dOut) * float32(s)
		if d == 0 {
			continue
		}
		dm := HalfToFloat(*dminOut) * float32(m)
		for ii := 0; ii < 32; ii++ {
			l := nearestInt((x[32*j+ii] + dm) / d)
			L[32*j+ii] = uint8(clampInt(l, 0, nmax))
		}
	}
}

// fitK4Groups runs the per-group fit of Q4_K/Q5_K: each group of 32 gets
// weights rms(group) + |x| and an asymmetric fit to levels 0..nmax.
func fitK4Groups(x []float32, L *[QKK]uint8, scales, mins *[QKK / 32]float32, nmax int, rmin, rdelta float32, nstep int) {
	var (
		weights [32]float32
		Laux    [32]uint8
	)
	for j := 0; j < QKK/32; j++ {
		var sumX2 float32
		for l := 0; l < 32; l++ {
			sumX2 += float32(x[32*j+l] * x[32*j+l])
		}
		avX := float32(math.Sqrt(float64(sumX2 / 32)))
		for l := 0; l < 32; l++ {
			weights[l] = avX + abs32(x[32*j+l])
		}
		scales[j], mins[j] = makeQkx2Quants(32, nmax, x[32*j:], weights[:], L[32*j:], Laux[:], rmin, rdelta, nstep, false)
	}
}

// QuantizeQ4K (quantize_row_q4_K_ref): 8 groups of 32; each group gets an
// asymmetric 4-bit fit (makeQkx2Quants with weights rms+|x|, 21 candidate
// scales from nmax-1 to nmax+1), then scales and minimums are quantized to
// 6 bits and the values re-quantized. See DequantizeQ4K for the layout.
func QuantizeQ4K(dst []BlockQ4_K, src []float32) {
	mustHoldBlocks(src, len(dst), QKK)
	var (
		L      [QKK]uint8 // (value) levels 0..15
		scales [QKK / 32]float32
		mins   [QKK / 32]float32
	)
	for i := range dst {
		x := src[i*QKK : (i+1)*QKK]
		y := &dst[i]
		fitK4Groups(x, &L, &scales, &mins, 15, -1, 0.1, 20)
		y.Scales = [12]byte{}
		quantizeK4Scales(x, &L, &scales, &mins, 15, &y.Scales, &y.D, &y.Dmin)
		for j, q := 0, 0; j < QKK; j, q = j+64, q+32 {
			for l := 0; l < 32; l++ {
				y.Qs[q+l] = L[j+l] | L[j+l+32]<<4
			}
		}
	}
}

// QuantizeQ5K (quantize_row_q5_K_ref): as Q4_K with 5-bit levels (16
// candidate scales from nmax-0.5 to nmax+1); the fifth bits go to Qh.
func QuantizeQ5K(dst []BlockQ5_K, src []float32) {
	mustHoldBlocks(src, len(dst), QKK)
	var (
		L      [QKK]uint8 // (value) levels 0..31
		scales [QKK / 32]float32
		mins   [QKK / 32]float32
	)
	for i := range dst {
		x := src[i*QKK : (i+1)*QKK]
		y := &dst[i]
		fitK4Groups(x, &L, &scales, &mins, 31, -0.5, 0.1, 15)
		y.Scales = [12]byte{}
		quantizeK4Scales(x, &L, &scales, &mins, 31, &y.Scales, &y.D, &y.Dmin)
		y.Qh = [32]byte{}
		m1, m2 := byte(1), byte(2)
		ql := y.Qs[:]
		for n := 0; n < QKK; n += 64 {
			for j := 0; j < 32; j++ {
				l1 := L[n+j]
				if l1 > 15 {
					l1 -= 16
					y.Qh[j] |= m1
				}
				l2 := L[n+j+32]
				if l2 > 15 {
					l2 -= 16
					y.Qh[j] |= m2
				}
				ql[j] = l1 | l2<<4
			}
			m1 <<= 2
			m2 <<= 2
			ql = ql[32:]
		}
	}
}

// QuantizeQ6K (quantize_row_q6_K_ref): 16 groups of 16; each group gets a
// symmetric 6-bit fit (makeQxQuants, x²-weighted, 19 candidate scales);
// the 16 signed group scales are quantized to int8 against the one of
// largest magnitude (d = -max/128, so that one becomes -128), and the
// values are re-quantized with the rounded scales. See DequantizeQ6K for
// the layout.
func QuantizeQ6K(dst []BlockQ6_K, src []float32) {
	mustHoldBlocks(src, len(dst), QKK)
	var (
		L      [QKK]int8 // (value) levels 0..63
		scales [QKK / 16]float32
	)
	for i := range dst {
		x := src[i*QKK : (i+1)*QKK]
		y := &dst[i]
		var maxScale, maxAbsScale float32
		for ib := 0; ib < QKK/16; ib++ {
			scale := makeQxQuants(16, 32, x[16*ib:], L[16*ib:], 1, nil)
			scales[ib] = scale
			if a := abs32(scale); a > maxAbsScale {
				maxAbsScale, maxScale = a, scale
			}
		}
		if maxAbsScale < groupMaxEps {
			*y = BlockQ6_K{} // all zero, d = 0
			continue
		}
		iscale := -128 / maxScale
		y.D = FloatToHalf(1 / iscale)
		for ib := 0; ib < QKK/16; ib++ {
			y.Scales[ib] = int8(min(127, nearestInt(iscale*scales[ib])))
		}
		for j := 0; j < QKK/16; j++ {
			d := HalfToFloat(y.D) * float32(y.Scales[j])
			if d == 0 {
				continue
			}
			for ii := 0; ii < 16; ii++ {
				l := clampInt(nearestInt(x[16*j+ii]/d), -32, 31)
				L[16*j+ii] = int8(l + 32)
			}
		}
		ql, qh := y.Ql[:], y.Qh[:]
		for j := 0; j < QKK; j += 128 {
			for l := 0; l < 32; l++ {
				q1 := byte(L[j+l]) & 0xF
				q2 := byte(L[j+l+32]) & 0xF
				q3 := byte(L[j+l+64]) & 0xF
				q4 := byte(L[j+l+96]) & 0xF
				ql[l] = q1 | q3<<4
				ql[l+32] = q2 | q4<<4
				qh[l] = byte(L[j+l])>>4 | (byte(L[j+l+32])>>4)<<2 | (byte(L[j+l+64])>>4)<<4 | (byte(L[j+l+96])>>4)<<6
			}
			ql = ql[64:]
			qh = qh[32:]
		}
	}
}

// QuantizeQ8K (quantize_row_q8_K_ref): d = max/-127 where max is the
// signed value of largest magnitude, q = nearest(x/d) capped at 127, and
// Bsums[j] = the sum of q over values 16j..16j+15.
func QuantizeQ8K(dst []BlockQ8_K, src []float32) {
	mustHoldBlocks(src, len(dst), QKK)
	for i := range dst {
		x := src[i*QKK : (i+1)*QKK]
		y := &dst[i]
		var maxv, amax float32
		for _, v := range x {
			if ax := abs32(v); ax > amax {
				amax, maxv = ax, v
			}
		}
		if amax == 0 {
			y.D = 0
			y.Qs = [QKK]int8{}
			// ggml leaves Bsums as they were here; we clear them so the
			// output does not depend on what dst held before.
			y.Bsums = [QKK / 16]int16{}
			continue
		}
		iscale := -127 / maxv
		for j, v := range x {
			y.Qs[j] = int8(min(127, nearestInt(iscale*v)))
		}
		for j := 0; j < QKK/16; j++ {
			var sum int
			for ii := 0; ii < 16; ii++ {
				sum += int(y.Qs[j*16+ii])
			}
			y.Bsums[j] = int16(sum)
		}
		y.D = 1 / iscale
	}
}

func abs32(x float32) float32 { return math.Float32frombits(math.Float32bits(x) &^ (1 << 31)) }
