package tensor

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"unsafe"
)

// Reference dequantization: blocks → float32.
//
// Each DequantizeXxx function follows ggml's dequantize_row_xxx
// (ggml-quants.c) operation for operation, so its results are bit-identical
// to ggml's reference and to gguf-py's numpy port of it. Three things make
// that so:
//
//  1. The same float32 operations in the same order. For example Q6_K
//     computes (d*scale)*q, not d*(scale*q); the two differ in the last bit.
//  2. Half fields are widened exactly (HalfToFloat).
//  3. No fused multiply-add. Go may fuse a*b+c into one FMA instruction,
//     which rounds once instead of twice (the Go spec allows it; the
//     compiler does it on arm64, and on amd64 with GOAMD64=v3). An explicit
//     float32(...) conversion forces the product to be rounded first, so
//     every "scale*q + min" below is written float32(scale*q) + min. (For
//     the formats here the product happens to be exact anyway: a half has
//     11 significant bits, a sub-scale at most 6 and q at most 6, which fits
//     in float32's 24. The conversion keeps the code from depending on that.)
//
// The per-type functions take a slice of blocks and a destination that must
// hold exactly len(blocks)*BlockSize values; a wrong length is a programming
// error and panics like an out-of-range index. DequantizeRow is the checked
// entry point that works on raw bytes and returns errors instead.

// ErrUnsupported is returned (wrapped, with the type named) for a type this
// package cannot convert.
var ErrUnsupported = errors.New("tensor: unsupported type")

// ErrLength is returned (wrapped, with the numbers) when a source and a
// destination do not describe the same number of values.
var ErrLength = errors.New("tensor: length mismatch")

// DequantizeRow converts len(dst) values of type t, stored in src, to
// float32. src must hold exactly the bytes of those values
// (RowBytes(t, len(dst))), and len(dst) must be a whole number of t's
// blocks. Supported types: F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0,
// Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, Q8_K. Other types give an error wrapping
// ErrUnsupported; wrong lengths give an error wrapping ErrLength.
//
// src may have any alignment: a misaligned block slice is copied to an
// aligned buffer first (see blocksOf).
func DequantizeRow(t DType, dst []float32, src []byte) error {
	if err := checkRow(t, len(dst), len(src)); err != nil {
		return err
	}
	switch t {
	case F32:
		for i := range dst {
			dst[i] = math.Float32frombits(binary.LittleEndian.Uint32(src[4*i:]))
		}
	case F16:
		for i := range dst {
			dst[i] = HalfToFloat(binary.LittleEndian.Uint16(src[2*i:]))
		}
	case BF16:
		for i := range dst {
			dst[i] = BF16ToFloat(binary.LittleEndian.Uint16(src[2*i:]))
		}
	case Q4_0:
		DequantizeQ4_0(dst, blocksOf[BlockQ4_0](src))
	case Q4_1:
		DequantizeQ4_1(dst, blocksOf[BlockQ4_1](src))
	case Q5_0:
		DequantizeQ5_0(dst, blocksOf[BlockQ5_0](src))
	case Q5_1:
		DequantizeQ5_1(dst, blocksOf[BlockQ5_1](src))
	case Q8_0:
		DequantizeQ8_0(dst, blocksOf[BlockQ8_0](src))
	case Q2_K:
		DequantizeQ2K(dst, blocksOf[BlockQ2_K](src))
	case Q3_K:
		DequantizeQ3K(dst, blocksOf[BlockQ3_K](src))
	case Q4_K:
		DequantizeQ4K(dst, blocksOf[BlockQ4_K](src))
	case Q5_K:
		DequantizeQ5K(dst, blocksOf[BlockQ5_K](src))
	case Q6_K:
		DequantizeQ6K(dst, blocksOf[BlockQ6_K](src))
	case Q8_K:
		DequantizeQ8K(dst, blocksOf[BlockQ8_K](src))
	default:
		return fmt.Errorf("%w: cannot dequantize %s", ErrUnsupported, t)
	}
	return nil
}

// CanDequantize reports whether DequantizeRow supports t.
func CanDequantize(t DType) bool {
	switch t {
	case F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, Q8_K:
		return true
	}
	return false
}

// checkRow validates a row of n values of type t held in nbytes bytes.
// The type check comes first so that an unknown type is reported as such.
func checkRow(t DType, n, nbytes int) error {
	if !t.Known() {
		return fmt.Errorf("%w: type %s", ErrUnsupported, t)
	}
	bs := t.BlockSize()
	if n%bs != 0 {
		return fmt.Errorf("%w: %d values is not a whole number of %s blocks (%d values each)", ErrLength, n, t, bs)
	}
	if want := n / bs * t.BlockBytes(); nbytes != want {
		return fmt.Errorf("%w: %d %s values take %d bytes, got %d", ErrLength, n, t, want, nbytes)
	}
	return nil
}

// blocksOf views raw bytes as blocks of type B. Blocks holding a uint16 or
// float32 field need 2- or 4-byte alignment; a file mapping is aligned, but
// a caller may pass any sub-slice, so a misaligned src is copied into a
// fresh (aligned) block slice instead of being reinterpreted in place.
func blocksOf[B any](src []byte) []B {
	var zero B
	if uintptr(unsafe.Pointer(unsafe.SliceData(src)))%unsafe.Alignof(zero) == 0 {
		return Blocks[B](src)
	}
	out := make([]B, len(src)/int(unsafe.Sizeof(zero)))
	copy(BlockBytesOf(out), src)
	return out
}

// mustHold panics unless a float slice has exactly n values. The per-type
// functions use it to reject a caller's length mistake up front.
func mustHold(x []float32, n int) {
	if len(x) != n {
		panic(fmt.Sprintf("tensor: %d float32 values given where the blocks hold %d", len(x), n))
	}
}

// ---- 32-value blocks ----

// DequantizeQ4_0: x = d * (q - 8). The low nibbles of Qs are values 0..15,
// the high nibbles values 16..31.
func DequantizeQ4_0(dst []float32, blocks []BlockQ4_0) {
	mustHold(dst, len(blocks)*QK)
	for i := range blocks {
		b := &blocks[i]
		y := dst[i*QK : (i+1)*QK] // (value in block)
		d := HalfToFloat(b.D)
		for j := 0; j < QK/2; j++ {
			x0 := int(b.Qs[j]&0x0F) - 8
			x1 := int(b.Qs[j]>>4) - 8
			y[j] = float32(x0) * d
			y[j+QK/2] = float32(x1) * d
		}
	}
}

// DequantizeQ4_1: x = d*q + m.
func DequantizeQ4_1(dst []float32, blocks []BlockQ4_1) {
	mustHold(dst, len(blocks)*QK)
	for i := range blocks {
		b := &blocks[i]
		y := dst[i*QK : (i+1)*QK]
		d := HalfToFloat(b.D)
		m := HalfToFloat(b.M)
		for j := 0; j < QK/2; j++ {
			x0 := b.Qs[j] & 0x0F
			x1 := b.Qs[j] >> 4
			y[j] = float32(float32(x0)*d) + m
			y[j+QK/2] = float32(float32(x1)*d) + m
		}
	}
}

// DequantizeQ5_0: x = d * (q - 16) with a 5-bit q whose fifth bit for value
// j is bit j of the little-endian 32-bit word Qh.
func DequantizeQ5_0(dst []float32, blocks []BlockQ5_0) {
	mustHold(dst, len(blocks)*QK)
	for i := range blocks {
		b := &blocks[i]
		y := dst[i*QK : (i+1)*QK]
		d := HalfToFloat(b.D)
		qh := binary.LittleEndian.Uint32(b.Qh[:])
		for j := 0; j < QK/2; j++ {
			xh0 := byte((qh>>j)<<4) & 0x10 // fifth bit of value j
			xh1 := byte(qh>>(j+12)) & 0x10 // fifth bit of value j+16
			x0 := int32(b.Qs[j]&0x0F|xh0) - 16
			x1 := int32(b.Qs[j]>>4|xh1) - 16
			y[j] = float32(x0) * d
			y[j+QK/2] = float32(x1) * d
		}
	}
}

// DequantizeQ5_1: x = d*q + m with a 5-bit q.
func DequantizeQ5_1(dst []float32, blocks []BlockQ5_1) {
	mustHold(dst, len(blocks)*QK)
	for i := range blocks {
		b := &blocks[i]
		y := dst[i*QK : (i+1)*QK]
		d := HalfToFloat(b.D)
		m := HalfToFloat(b.M)
		qh := binary.LittleEndian.Uint32(b.Qh[:])
		for j := 0; j < QK/2; j++ {
			xh0 := byte((qh>>j)<<4) & 0x10
			xh1 := byte(qh>>(j+12)) & 0x10
			x0 := b.Qs[j]&0x0F | xh0
			x1 := b.Qs[j]>>4 | xh1
			y[j] = float32(float32(x0)*d) + m
			y[j+QK/2] = float32(float32(x1)*d) + m
		}
	}
}

// DequantizeQ8_0: x = d * q.
func DequantizeQ8_0(dst []float32, blocks []BlockQ8_0) {
	mustHold(dst, len(blocks)*QK)
	for i := range blocks {
		b := &blocks[i]
		y := dst[i*QK : (i+1)*QK]
		d := HalfToFloat(b.D)
		for j := 0; j < QK; j++ {
			y[j] = float32(b.Qs[j]) * d
		}
	}
}

// ---- 256-value K-quant super-blocks ----

// DequantizeQ2K: 16 groups of 16 values; each Scales byte holds a 4-bit
// scale (low nibble) and a 4-bit minimum (high nibble):
// x = (d*sc)*q - (dmin*m), q in 0..3.
//
// Qs layout: each half (128 values) uses 32 bytes; byte l holds, in bit
// pairs 0-1, 2-3, 4-5, 6-7, the values l, l+32, l+64, l+96 of that half.
func DequantizeQ2K(dst []float32, blocks []BlockQ2_K) {
	mustHold(dst, len(blocks)*QKK)
	for i := range blocks {
		b := &blocks[i]
		y := dst[i*QKK : (i+1)*QKK] // (value in super-block)
		d := HalfToFloat(b.D)
		dmin := HalfToFloat(b.Dmin)
		q := b.Qs[:]
		is := 0 // scale index, 0..15
		k := 0  // output index
		for n := 0; n < QKK; n += 128 {
			shift := 0
			for j := 0; j < 4; j++ {
				for half := 0; half < 2; half++ { // values l and l+16 of this group pair
					sc := b.Scales[is]
					is++
					dl := d * float32(sc&0xF)
					ml := dmin * float32(sc>>4)
					for l := 0; l < 16; l++ {
						v := (q[l+16*half] >> shift) & 3
						y[k] = float32(dl*float32(v)) - ml
						k++
					}
				}
				shift += 2
			}
			q = q[32:]
		}
	}
}

// q3KScales unpacks Q3_K's sixteen 6-bit scales from 12 bytes and removes
// their bias of 32. Scale j has its low 4 bits in byte j (j < 8, low
// nibble) or byte j-8 (high nibble), and its high 2 bits in byte 8+j%4 at
// bit 2*(j/4). ggml does the same with 32-bit masks (kmask1, kmask2).
func q3KScales(s *[12]byte) [16]int8 {
	var out [16]int8
	for j := 0; j < 16; j++ {
		var lo byte
		if j < 8 {
			lo = s[j] & 0xF
		} else {
			lo = s[j-8] >> 4
		}
		hi := (s[8+j%4] >> (2 * (j / 4))) & 3
		out[j] = int8(lo|hi<<4) - 32
	}
	return out
}

// DequantizeQ3K: 16 groups of 16 values with signed 6-bit scales;
// x = (d*sc) * q, q in -4..3: 2 low bits in Qs (same layout as Q2_K) and a
// high bit in Hmask. A set high bit means "no offset", a clear one
// subtracts 4. Bit b of Hmask byte l belongs to value l (or l+16) of the
// b-th group pair.
func DequantizeQ3K(dst []float32, blocks []BlockQ3_K) {
	mustHold(dst, len(blocks)*QKK)
	for i := range blocks {
		b := &blocks[i]
		y := dst[i*QKK : (i+1)*QKK]
		dAll := HalfToFloat(b.D)
		scales := q3KScales(&b.Scales)
		q := b.Qs[:]
		hm := b.Hmask[:]
		m := byte(1)
		is, k := 0, 0
		for n := 0; n < QKK; n += 128 {
			shift := 0
			for j := 0; j < 4; j++ {
				for half := 0; half < 2; half++ {
					dl := dAll * float32(scales[is])
					is++
					for l := 0; l < 16; l++ {
						v := int8((q[l+16*half] >> shift) & 3)
						if hm[l+16*half]&m == 0 {
							v -= 4
						}
						y[k] = dl * float32(v)
						k++
					}
				}
				shift += 2
				m <<= 1
			}
			q = q[32:]
		}
	}
}

// ScaleMinK4 unpacks scale j and minimum j (6 bits each, j = 0..7) of a
// Q4_K/Q5_K super-block, as ggml's get_scale_min_k4. Bytes 0-3 hold scales
// 0-3 and bytes 4-7 minimums 0-3 in their low 6 bits; scales and minimums
// 4-7 have their low 4 bits in the nibbles of bytes 8-11 and their high 2
// bits in the top bits of bytes 0-3 (scales) and 4-7 (minimums).
func ScaleMinK4(j int, q *[12]byte) (sc, m uint8) {
	if j < 4 {
		return q[j] & 63, q[j+4] & 63
	}
	sc = q[j+4]&0xF | (q[j-4]>>6)<<4
	m = q[j+4]>>4 | (q[j]>>6)<<4
	return sc, m
}

// DequantizeQ4K: 8 groups of 32 values; x = (d*sc)*q - (dmin*m), q in
// 0..15. Each 32-byte slice of Qs holds two groups: low nibbles the first,
// high nibbles the second.
func DequantizeQ4K(dst []float32, blocks []BlockQ4_K) {
	mustHold(dst, len(blocks)*QKK)
	for i := range blocks {
		b := &blocks[i]
		y := dst[i*QKK : (i+1)*QKK]
		d := HalfToFloat(b.D)
		dmin := HalfToFloat(b.Dmin)
		q := b.Qs[:]
		is, k := 0, 0
		for j := 0; j < QKK; j += 64 {
			sc, m := ScaleMinK4(is, &b.Scales)
			d1, m1 := d*float32(sc), dmin*float32(m)
			sc, m = ScaleMinK4(is+1, &b.Scales)
			d2, m2 := d*float32(sc), dmin*float32(m)
			for l := 0; l < 32; l++ {
				y[k] = float32(d1*float32(q[l]&0xF)) - m1
				k++
			}
			for l := 0; l < 32; l++ {
				y[k] = float32(d2*float32(q[l]>>4)) - m2
				k++
			}
			q = q[32:]
			is += 2
		}
	}
}

// DequantizeQ5K: as Q4_K with a fifth bit per value from Qh: for the
// n-th pair of groups, bit 2n of Qh[l] belongs to value l of the first
// group and bit 2n+1 to value l of the second.
func DequantizeQ5K(dst []float32, blocks []BlockQ5_K) {
	mustHold(dst, len(blocks)*QKK)
	for i := range blocks {
		b := &blocks[i]
		y := dst[i*QKK : (i+1)*QKK]
		d := HalfToFloat(b.D)
		dmin := HalfToFloat(b.Dmin)
		ql := b.Qs[:]
		qh := &b.Qh
		is, k := 0, 0
		u1, u2 := byte(1), byte(2)
		for j := 0; j < QKK; j += 64 {
			sc, m := ScaleMinK4(is, &b.Scales)
			d1, m1 := d*float32(sc), dmin*float32(m)
			sc, m = ScaleMinK4(is+1, &b.Scales)
			d2, m2 := d*float32(sc), dmin*float32(m)
			for l := 0; l < 32; l++ {
				v := ql[l] & 0xF
				if qh[l]&u1 != 0 {
					v += 16
				}
				y[k] = float32(d1*float32(v)) - m1
				k++
			}
			for l := 0; l < 32; l++ {
				v := ql[l] >> 4
				if qh[l]&u2 != 0 {
					v += 16
				}
				y[k] = float32(d2*float32(v)) - m2
				k++
			}
			ql = ql[32:]
			is += 2
			u1 <<= 2
			u2 <<= 2
		}
	}
}

// DequantizeQ6K: 16 groups of 16 values with signed 8-bit scales;
// x = (d*sc) * (q - 32), q in 0..63. Each half (128 values) uses 64 bytes
// of Ql and 32 of Qh: for l in 0..31, Ql[l] holds the low 4 bits of values
// l (low nibble) and l+64 (high nibble), Ql[l+32] those of l+32 and l+96,
// and Qh[l] the high 2 bits of l, l+32, l+64, l+96 in bit pairs 0-1 … 6-7.
func DequantizeQ6K(dst []float32, blocks []BlockQ6_K) {
	mustHold(dst, len(blocks)*QKK)
	for i := range blocks {
		b := &blocks[i]
		y := dst[i*QKK : (i+1)*QKK]
		d := HalfToFloat(b.D)
		ql := b.Ql[:]
		qh := b.Qh[:]
		sc := b.Scales[:]
		for n := 0; n < QKK; n += 128 {
			for l := 0; l < 32; l++ {
				is := l / 16
				q1 := int8(ql[l]&0xF|((qh[l]>>0)&3)<<4) - 32
				q2 := int8(ql[l+32]&0xF|((qh[l]>>2)&3)<<4) - 32
				q3 := int8(ql[l]>>4|((qh[l]>>4)&3)<<4) - 32
				q4 := int8(ql[l+32]>>4|((qh[l]>>6)&3)<<4) - 32
				y[l] = d * float32(sc[is]) * float32(q1)
				y[l+32] = d * float32(sc[is+2]) * float32(q2)
				y[l+64] = d * float32(sc[is+4]) * float32(q3)
				y[l+96] = d * float32(sc[is+6]) * float32(q4)
			}
			y = y[128:]
			ql = ql[64:]
			qh = qh[32:]
			sc = sc[8:]
		}
	}
}

// DequantizeQ8K: x = d * q with a float32 d. (Q8_K is the activation type
// of K-quant dot products; files never store it, but it converts like any
// other type.)
func DequantizeQ8K(dst []float32, blocks []BlockQ8_K) {
	mustHold(dst, len(blocks)*QKK)
	for i := range blocks {
		b := &blocks[i]
		y := dst[i*QKK : (i+1)*QKK]
		for j := 0; j < QKK; j++ {
			y[j] = b.D * float32(b.Qs[j])
		}
	}
}
