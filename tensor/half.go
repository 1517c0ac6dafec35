package tensor

import "math"

// IEEE 754 binary16 ("half") and bfloat16 conversions. ggml stores block
// scales and F16 tensors as half bit patterns; the conversions here are
// exact for half→float and round to nearest, ties to even, for float→half,
// which is what x86's F16C instructions (and therefore llama.cpp on x86) do.

// HalfToFloat converts a binary16 bit pattern to float32 exactly.
func HalfToFloat(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h) & 0x3ff
	switch {
	case exp == 0x1f: // infinity or NaN
		return math.Float32frombits(sign | 0x7f800000 | mant<<13)
	case exp != 0: // normal
		return math.Float32frombits(sign | (exp+112)<<23 | mant<<13)
	case mant == 0: // signed zero
		return math.Float32frombits(sign)
	}
	// Subnormal half: value = mant * 2^-24, exactly representable in float32.
	f := float32(mant) * (1.0 / (1 << 24))
	if sign != 0 {
		f = -f
	}
	return f
}

// FloatToHalf converts float32 to the nearest binary16, ties to even.
// Values beyond the half range become ±Inf; NaN stays NaN (quiet).
func FloatToHalf(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int32(b>>23) & 0xff
	mant := b & 0x7fffff
	if exp == 0xff { // Inf or NaN
		if mant != 0 {
			return sign | 0x7e00 | uint16(mant>>13)
		}
		return sign | 0x7c00
	}
	e := exp - 127 + 15 // rebiased exponent
	if e >= 0x1f {
		return sign | 0x7c00 // overflow to infinity
	}
	if e <= 0 {
		// Subnormal or zero in half. Shift the full significand (with
		// the implicit 1) right and round to nearest even.
		if e < -10 {
			return sign // too small: rounds to zero
		}
		m := mant | 0x800000
		shift := uint32(14 - e) // 24-bit significand down to 10-e bits
		half := uint32(1) << (shift - 1)
		r := m >> shift
		rem := m & (1<<shift - 1)
		if rem > half || (rem == half && r&1 == 1) {
			r++
		}
		return sign | uint16(r)
	}
	r := uint32(e)<<10 | mant>>13
	rem := mant & 0x1fff
	if rem > 0x1000 || (rem == 0x1000 && r&1 == 1) {
		r++ // may carry into the exponent, which is the correct result
	}
	return sign | uint16(r)
}

// BF16ToFloat converts a bfloat16 bit pattern to float32 (exact).
func BF16ToFloat(h uint16) float32 { return math.Float32frombits(uint32(h) << 16) }

// FloatToBF16 converts float32 to bfloat16, ties to even (NaN stays NaN),
// as ggml's GGML_FP32_TO_BF16 does.
func FloatToBF16(f float32) uint16 {
	b := math.Float32bits(f)
	if b&0x7fffffff > 0x7f800000 {
		return uint16(b>>16) | 64 // quiet NaN
	}
	return uint16((b + (0x7fff + (b>>16)&1)) >> 16)
}
