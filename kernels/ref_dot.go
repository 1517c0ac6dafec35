package kernels

import (
	"encoding/binary"

	"github.com/gollm/gollm/tensor"
)

// Reference dot products: one weight row (raw bytes of type wt) times one
// activation row (raw bytes of the paired activation type), cols values
// each. These functions define the exact float operations every faster
// implementation must reproduce (see the package comment, "Numerics").
//
// A note on Go and fused multiply-add: the Go spec lets a compiler fuse
// a*b+c into one FMA instruction (gc does it on arm64, and on amd64 with
// GOAMD64=v3), which rounds once instead of twice. Every product below that
// is added to something is therefore wrapped in an explicit float32(...)
// conversion, which the spec says must round. This keeps the results the
// same on every platform and equal to the assembly, which uses separate
// multiply and add instructions.

// dotKernel computes the dot product of one weight row w with one
// activation row a, both holding cols values.
type dotKernel func(w, a []byte, cols int) float32

// --- float types --------------------------------------------------------

// lanes is the number of partial sums of the float dot products. 32 lanes
// let an AVX-512 implementation keep two independent 16-wide accumulators
// and an AVX2 one four 8-wide accumulators.
const lanes = 32

// foldLanes adds 32 partial sums pairwise: l += l+16, then +8, +4, +2, +1.
func foldLanes(s *[lanes]float32) float32 {
	for width := lanes / 2; width >= 1; width /= 2 {
		for l := 0; l < width; l++ {
			s[l] += s[l+width]
		}
	}
	return s[0]
}

// dotF32Ref is the reference float32 dot product (also used by Dot).
func dotF32Ref(x, y []float32) float32 {
	n := len(x)
	var s [lanes]float32
	full := n / lanes * lanes
	for i := 0; i < full; i += lanes {
		for l := 0; l < lanes; l++ {
			s[l] += float32(x[i+l] * y[i+l])
		}
	}
	sum := foldLanes(&s)
	for i := full; i < n; i++ {
		sum += float32(x[i] * y[i])
	}
	return sum
}

// dotF16F32Ref is the float dot product of half values with float32 values
// (DotF16; F16 weights with F32 activations). Same order as dotF32Ref.
func dotF16F32Ref(y []float32, h []uint16) float32 {
	n := len(y)
	var s [lanes]float32
	full := n / lanes * lanes
	for i := 0; i < full; i += lanes {
		for l := 0; l < lanes; l++ {
			s[l] += float32(tensor.HalfToFloat(h[i+l]) * y[i+l])
		}
	}
	sum := foldLanes(&s)
	for i := full; i < n; i++ {
		sum += float32(tensor.HalfToFloat(h[i]) * y[i])
	}
	return sum
}

// dotF16F16Ref is ggml_vec_dot_f16: F16 weights with F16 activations.
// A product of two halves is exact in float32, so only the sums round.
func dotF16F16Ref(w, a []uint16) float32 {
	n := len(w)
	var s [lanes]float32
	full := n / lanes * lanes
	for i := 0; i < full; i += lanes {
		for l := 0; l < lanes; l++ {
			s[l] += tensor.HalfToFloat(w[i+l]) * tensor.HalfToFloat(a[i+l])
		}
	}
	sum := foldLanes(&s)
	for i := full; i < n; i++ {
		sum += tensor.HalfToFloat(w[i]) * tensor.HalfToFloat(a[i])
	}
	return sum
}

// dotBF16BF16Ref: BF16 weights with BF16 activations (products exact).
func dotBF16BF16Ref(w, a []uint16) float32 {
	n := len(w)
	var s [lanes]float32
	full := n / lanes * lanes
	for i := 0; i < full; i += lanes {
		for l := 0; l < lanes; l++ {
			s[l] += tensor.BF16ToFloat(w[i+l]) * tensor.BF16ToFloat(a[i+l])
		}
	}
	sum := foldLanes(&s)
	for i := full; i < n; i++ {
		sum += tensor.BF16ToFloat(w[i]) * tensor.BF16ToFloat(a[i])
	}
	return sum
}

// dotBF16F32Ref: BF16 weights with F32 activations.
func dotBF16F32Ref(w []uint16, a []float32) float32 {
	n := len(w)
	var s [lanes]float32
	full := n / lanes * lanes
	for i := 0; i < full; i += lanes {
		for l := 0; l < lanes; l++ {
			s[l] += float32(tensor.BF16ToFloat(w[i+l]) * a[i+l])
		}
	}
	sum := foldLanes(&s)
	for i := full; i < n; i++ {
		sum += float32(tensor.BF16ToFloat(w[i]) * a[i])
	}
	return sum
}

// --- 32-value blocks (activations Q8_0 or Q8_1) ---------------------------

// dotQ8_0Q8_0Ref is ggml_vec_dot_q8_0_q8_0: per block the integer sum of
// 32 products, scaled by d_w*d_a.
func dotQ8_0Q8_0Ref(w, a []byte, cols int) float32 {
	wb := tensor.Blocks[tensor.BlockQ8_0](w)[:cols/32]
	ab := tensor.Blocks[tensor.BlockQ8_0](a)[:cols/32]
	var acc float32
	for i := range wb {
		var isum int32
		for j := 0; j < 32; j++ {
			isum += int32(wb[i].Qs[j]) * int32(ab[i].Qs[j])
		}
		d := tensor.HalfToFloat(wb[i].D) * tensor.HalfToFloat(ab[i].D)
		acc += float32(d * float32(isum))
	}
	return acc
}

// dotQ4_0Q8_0Ref is ggml_vec_dot_q4_0_q8_0: weight value j of a block is
// (low nibble of Qs[j] - 8) for j < 16 and (high nibble of Qs[j-16] - 8)
// above.
func dotQ4_0Q8_0Ref(w, a []byte, cols int) float32 {
	wb := tensor.Blocks[tensor.BlockQ4_0](w)[:cols/32]
	ab := tensor.Blocks[tensor.BlockQ8_0](a)[:cols/32]
	var acc float32
	for i := range wb {
		var isum int32
		for j := 0; j < 16; j++ {
			lo := int32(wb[i].Qs[j]&0xF) - 8
			hi := int32(wb[i].Qs[j]>>4) - 8
			isum += lo*int32(ab[i].Qs[j]) + hi*int32(ab[i].Qs[j+16])
		}
		d := tensor.HalfToFloat(wb[i].D) * tensor.HalfToFloat(ab[i].D)
		acc += float32(d * float32(isum))
	}
	return acc
}

// dotQ5_0Q8_0Ref is ggml_vec_dot_q5_0_q8_0: as Q4_0 with a fifth bit from
// Qh (bit j for value j) and an offset of 16.
func dotQ5_0Q8_0Ref(w, a []byte, cols int) float32 {
	wb := tensor.Blocks[tensor.BlockQ5_0](w)[:cols/32]
	ab := tensor.Blocks[tensor.BlockQ8_0](a)[:cols/32]
	var acc float32
	for i := range wb {
		qh := binary.LittleEndian.Uint32(wb[i].Qh[:])
		var isum int32
		for j := 0; j < 16; j++ {
			lo := int32(wb[i].Qs[j]&0xF|byte(qh>>j&1)<<4) - 16
			hi := int32(wb[i].Qs[j]>>4|byte(qh>>(j+16)&1)<<4) - 16
			isum += lo*int32(ab[i].Qs[j]) + hi*int32(ab[i].Qs[j+16])
		}
		d := tensor.HalfToFloat(wb[i].D) * tensor.HalfToFloat(ab[i].D)
		acc += float32(d * float32(isum))
	}
	return acc
}

// dotQ4_1Q8_1Ref is ggml_vec_dot_q4_1_q8_1: x = d*q + m, so the dot is
// d_w*d_a*sum(q*a) + m_w*s_a with s_a = d_a*sum(a) kept in the Q8_1 block.
func dotQ4_1Q8_1Ref(w, a []byte, cols int) float32 {
	wb := tensor.Blocks[tensor.BlockQ4_1](w)[:cols/32]
	ab := tensor.Blocks[tensor.BlockQ8_1](a)[:cols/32]
	var acc, accm float32
	for i := range wb {
		var isum int32
		for j := 0; j < 16; j++ {
			isum += int32(wb[i].Qs[j]&0xF)*int32(ab[i].Qs[j]) + int32(wb[i].Qs[j]>>4)*int32(ab[i].Qs[j+16])
		}
		d := tensor.HalfToFloat(wb[i].D) * tensor.HalfToFloat(ab[i].D)
		acc += float32(d * float32(isum))
		accm += float32(tensor.HalfToFloat(wb[i].M) * tensor.HalfToFloat(ab[i].S))
	}
	return acc + accm
}

// dotQ5_1Q8_1Ref is ggml_vec_dot_q5_1_q8_1 (Q4_1 with a fifth bit).
func dotQ5_1Q8_1Ref(w, a []byte, cols int) float32 {
	wb := tensor.Blocks[tensor.BlockQ5_1](w)[:cols/32]
	ab := tensor.Blocks[tensor.BlockQ8_1](a)[:cols/32]
	var acc, accm float32
	for i := range wb {
		qh := binary.LittleEndian.Uint32(wb[i].Qh[:])
		var isum int32
		for j := 0; j < 16; j++ {
			lo := int32(wb[i].Qs[j]&0xF | byte(qh>>j&1)<<4)
			hi := int32(wb[i].Qs[j]>>4 | byte(qh>>(j+16)&1)<<4)
			isum += lo*int32(ab[i].Qs[j]) + hi*int32(ab[i].Qs[j+16])
		}
		d := tensor.HalfToFloat(wb[i].D) * tensor.HalfToFloat(ab[i].D)
		acc += float32(d * float32(isum))
		accm += float32(tensor.HalfToFloat(wb[i].M) * tensor.HalfToFloat(ab[i].S))
	}
	return acc + accm
}

// --- K-quants (256-value super-blocks, activations Q8_K) ----------------

// unpackQ6K writes the 256 six-bit values (0..63, before the -32 offset)
// of a Q6_K block in their natural order. Values 128h+l+32k (h = half,
// l = 0..31, k = 0..3) take their low 4 bits from Ql[64h + l + 32(k&1)]
// (low nibble for k < 2, high nibble otherwise) and their top 2 bits from
// bits 2k, 2k+1 of Qh[32h + l].
func unpackQ6K(b *tensor.BlockQ6_K, q *[256]uint8) {
	for h := 0; h < 2; h++ {
		ql := b.Ql[64*h : 64*h+64]
		qh := b.Qh[32*h : 32*h+32]
		for l := 0; l < 32; l++ {
			q[128*h+l+0] = ql[l]&0xF | (qh[l]>>0&3)<<4
			q[128*h+l+32] = ql[l+32]&0xF | (qh[l]>>2&3)<<4
			q[128*h+l+64] = ql[l]>>4 | (qh[l]>>4&3)<<4
			q[128*h+l+96] = ql[l+32]>>4 | (qh[l]>>6&3)<<4
		}
	}
}

// dotQ6KQ8KRef is ggml_vec_dot_q6_K_q8_K. A Q6_K value is
// d * scale[g] * (q - 32) with 16 groups g of 16 values. The -32 is taken
// out through the activation block sums, as ggml's x86 code does:
//
//	isum = sum_g scale[g] * (sum_{i in g} q_i*a_i  -  32 * bsum[g])
func dotQ6KQ8KRef(w, a []byte, cols int) float32 {
	wb := tensor.Blocks[tensor.BlockQ6_K](w)[:cols/256]
	ab := tensor.Blocks[tensor.BlockQ8_K](a)[:cols/256]
	var acc float32
	var q [256]uint8
	for i := range wb {
		unpackQ6K(&wb[i], &q)
		var isum int32
		for g := 0; g < 16; g++ {
			var s int32
			for k := 16 * g; k < 16*g+16; k++ {
				s += int32(q[k]) * int32(ab[i].Qs[k])
			}
			isum += int32(wb[i].Scales[g]) * (s - 32*int32(ab[i].Bsums[g]))
		}
		d := ab[i].D * tensor.HalfToFloat(wb[i].D)
		acc += float32(d * float32(isum))
	}
	return acc
}

// scaleMinK4 unpacks the 6-bit scale and minimum of group j (0..7) of a
// Q4_K/Q5_K block (ggml's get_scale_min_k4).
func scaleMinK4(j int, s *[12]byte) (sc, m int32) {
	if j < 4 {
		return int32(s[j] & 63), int32(s[j+4] & 63)
	}
	return int32(s[j+4]&0xF | (s[j-4]>>6)<<4), int32(s[j+4]>>4 | (s[j]>>6)<<4)
}

// dotQ4KQ8KRef is ggml_vec_dot_q4_K_q8_K. A Q4_K value is
// d*sc[g]*q - dmin*m[g] with 8 groups of 32 values, so
//
//	dot = d*d_a * sum_g sc[g]*sum_{i in g} q_i*a_i  -  dmin*d_a * sum_g m[g]*(bsum[2g]+bsum[2g+1])
//
// Both sums are accumulated over blocks separately (acc and accm) and
// subtracted at the end, as ggml does.
func dotQ4KQ8KRef(w, a []byte, cols int) float32 {
	wb := tensor.Blocks[tensor.BlockQ4_K](w)[:cols/256]
	ab := tensor.Blocks[tensor.BlockQ8_K](a)[:cols/256]
	var acc, accm float32
	for i := range wb {
		var isum, msum int32
		for j := 0; j < 4; j++ { // 64 values: group 2j (low nibbles), 2j+1 (high nibbles)
			sc0, m0 := scaleMinK4(2*j, &wb[i].Scales)
			sc1, m1 := scaleMinK4(2*j+1, &wb[i].Scales)
			var s0, s1 int32
			for l := 0; l < 32; l++ {
				qs := wb[i].Qs[32*j+l]
				s0 += int32(qs&0xF) * int32(ab[i].Qs[64*j+l])
				s1 += int32(qs>>4) * int32(ab[i].Qs[64*j+32+l])
			}
			isum += sc0*s0 + sc1*s1
			msum += m0*(int32(ab[i].Bsums[4*j])+int32(ab[i].Bsums[4*j+1])) + m1*(int32(ab[i].Bsums[4*j+2])+int32(ab[i].Bsums[4*j+3]))
		}
		d := ab[i].D * tensor.HalfToFloat(wb[i].D)
		dmin := ab[i].D * tensor.HalfToFloat(wb[i].Dmin)
		acc += float32(d * float32(isum))
		accm += float32(dmin * float32(msum))
	}
	return acc - accm
}

// dotQ5KQ8KRef is ggml_vec_dot_q5_K_q8_K: Q4_K with a fifth bit per value,
// bit 2j (values of group 2j) or 2j+1 (group 2j+1) of Qh[l].
func dotQ5KQ8KRef(w, a []byte, cols int) float32 {
	wb := tensor.Blocks[tensor.BlockQ5_K](w)[:cols/256]
	ab := tensor.Blocks[tensor.BlockQ8_K](a)[:cols/256]
	var acc, accm float32
	for i := range wb {
		var isum, msum int32
		for j := 0; j < 4; j++ {
			sc0, m0 := scaleMinK4(2*j, &wb[i].Scales)
			sc1, m1 := scaleMinK4(2*j+1, &wb[i].Scales)
			var s0, s1 int32
			for l := 0; l < 32; l++ {
				qs, qh := wb[i].Qs[32*j+l], wb[i].Qh[l]
				q0 := int32(qs&0xF | (qh>>(2*j)&1)<<4)
				q1 := int32(qs>>4 | (qh>>(2*j+1)&1)<<4)
				s0 += q0 * int32(ab[i].Qs[64*j+l])
				s1 += q1 * int32(ab[i].Qs[64*j+32+l])
			}
			isum += sc0*s0 + sc1*s1
			msum += m0*(int32(ab[i].Bsums[4*j])+int32(ab[i].Bsums[4*j+1])) + m1*(int32(ab[i].Bsums[4*j+2])+int32(ab[i].Bsums[4*j+3]))
		}
		d := ab[i].D * tensor.HalfToFloat(wb[i].D)
		dmin := ab[i].D * tensor.HalfToFloat(wb[i].Dmin)
		acc += float32(d * float32(isum))
		accm += float32(dmin * float32(msum))
	}
	return acc - accm
}

// dotQ2KQ8KRef is ggml_vec_dot_q2_K_q8_K: 16 groups of 16 two-bit values,
// each group with a 4-bit scale (low nibble of Scales[g]) and a 4-bit
// minimum (high nibble): x = d*sc*q - dmin*m.
func dotQ2KQ8KRef(w, a []byte, cols int) float32 {
	wb := tensor.Blocks[tensor.BlockQ2_K](w)[:cols/256]
	ab := tensor.Blocks[tensor.BlockQ8_K](a)[:cols/256]
	var acc, accm float32
	for i := range wb {
		var isum, msum int32
		for g := 0; g < 16; g++ {
			msum += int32(wb[i].Scales[g]>>4) * int32(ab[i].Bsums[g])
		}
		// Values 128h + 32k + l come from bits 2k..2k+1 of Qs[32h + l];
		// group g covers values 16g..16g+15.
		for h := 0; h < 2; h++ {
			for k := 0; k < 4; k++ {
				for half := 0; half < 2; half++ {
					g := 8*h + 2*k + half
					var s int32
					for l := 16 * half; l < 16*half+16; l++ {
						q := int32(wb[i].Qs[32*h+l] >> (2 * k) & 3)
						s += q * int32(ab[i].Qs[128*h+32*k+l])
					}
					isum += int32(wb[i].Scales[g]&0xF) * s
				}
			}
		}
		d := ab[i].D * tensor.HalfToFloat(wb[i].D)
		dmin := ab[i].D * tensor.HalfToFloat(wb[i].Dmin)
		acc += float32(d * float32(isum))
		accm += float32(dmin * float32(msum))
	}
	return acc - accm
}

// q3KScales unpacks the 16 six-bit scales of a Q3_K block, minus 32.
func q3KScales(s *[12]byte) [16]int32 {
	var out [16]int32
	for g := 0; g < 16; g++ {
		var low, high byte
		if g < 8 {
			low = s[g] & 0xF
		} else {
			low = s[g-8] >> 4
		}
		high = s[8+g%4] >> (2 * (g / 4)) & 3
		out[g] = int32(low|high<<4) - 32
	}
	return out
}

// dotQ3KQ8KRef is ggml_vec_dot_q3_K_q8_K: 16 groups of 16 three-bit values
// with signed 6-bit scales; value = d*sc*(q - 4*(1 - hbit)) where q is 2
// bits from Qs and hbit comes from Hmask.
func dotQ3KQ8KRef(w, a []byte, cols int) float32 {
	wb := tensor.Blocks[tensor.BlockQ3_K](w)[:cols/256]
	ab := tensor.Blocks[tensor.BlockQ8_K](a)[:cols/256]
	var acc float32
	for i := range wb {
		sc := q3KScales(&wb[i].Scales)
		var isum int32
		for h := 0; h < 2; h++ {
			for k := 0; k < 4; k++ {
				bit := byte(1) << (4*h + k)
				for half := 0; half < 2; half++ {
					g := 8*h + 2*k + half
					var s int32
					for l := 16 * half; l < 16*half+16; l++ {
						q := int32(wb[i].Qs[32*h+l] >> (2 * k) & 3)
						if wb[i].Hmask[l]&bit == 0 {
							q -= 4
						}
						s += q * int32(ab[i].Qs[128*h+32*k+l])
					}
					isum += sc[g] * s
				}
			}
		}
		d := ab[i].D * tensor.HalfToFloat(wb[i].D)
		acc += float32(d * float32(isum))
	}
	return acc
}
