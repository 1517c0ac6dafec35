package tensor

import "unsafe"

// Block layouts, field for field as in ggml-common.h. A "half" field is an
// IEEE 754 binary16 value kept as its bit pattern (see Half). Each struct's
// size is asserted below, so a layout mistake fails to compile.

// QK is the number of values in a small block (Q4_0 … Q8_1).
const QK = 32

// QKK is the number of values in a K-quant super-block.
const QKK = 256

// BlockQ4_0: 32 values, x = d * (q - 8), q in 0..15.
type BlockQ4_0 struct {
	D  uint16   // scale (half)
	Qs [16]byte // low nibble: values 0..15, high nibble: values 16..31
}

// BlockQ4_1: 32 values, x = d * q + m.
type BlockQ4_1 struct {
	D, M uint16 // scale and minimum (half)
	Qs   [16]byte
}

// BlockQ5_0: 32 values, x = d * (q - 16), q has 5 bits: 4 in Qs, 1 in Qh.
type BlockQ5_0 struct {
	D  uint16
	Qh [4]byte // bit j = fifth bit of value j
	Qs [16]byte
}

// BlockQ5_1: 32 values, x = d * q + m with 5-bit q.
type BlockQ5_1 struct {
	D, M uint16
	Qh   [4]byte
	Qs   [16]byte
}

// BlockQ8_0: 32 values, x = d * q.
type BlockQ8_0 struct {
	D  uint16
	Qs [32]int8
}

// BlockQ8_1: 32 values, x = d * q, with S = d * sum(q) kept for Q4_1/Q5_1 dots.
type BlockQ8_1 struct {
	D, S uint16
	Qs   [32]int8
}

// BlockQ2_K: 256 values in 16 groups of 16; each group has a 4-bit scale
// and a 4-bit minimum (packed in Scales), values have 2 bits.
type BlockQ2_K struct {
	Scales  [16]byte
	Qs      [64]byte
	D, Dmin uint16
}

// BlockQ3_K: 256 values in 16 groups of 16 with 6-bit scales; values have
// 2 low bits in Qs and a high bit in Hmask.
type BlockQ3_K struct {
	Hmask  [32]byte
	Qs     [64]byte
	Scales [12]byte
	D      uint16
}

// BlockQ4_K: 256 values in 8 groups of 32; each group has a 6-bit scale
// and a 6-bit minimum packed into Scales; x = d*sc*q - dmin*m.
type BlockQ4_K struct {
	D, Dmin uint16
	Scales  [12]byte
	Qs      [128]byte
}

// BlockQ5_K: as Q4_K, with a fifth bit per value in Qh.
type BlockQ5_K struct {
	D, Dmin uint16
	Scales  [12]byte
	Qh      [32]byte
	Qs      [128]byte
}

// BlockQ6_K: 256 values in 16 groups of 16 with signed 8-bit scales;
// values have 4 low bits in Ql and 2 high bits in Qh; x = d*sc*(q-32).
type BlockQ6_K struct {
	Ql     [128]byte
	Qh     [64]byte
	Scales [16]int8
	D      uint16
}

// BlockQ8_K: 256 values quantized for dot products with K-quants.
// D is a float32 (not a half), and Bsums holds the sum of each group of 16.
type BlockQ8_K struct {
	D     float32
	Qs    [256]int8
	Bsums [16]int16
}

// Size assertions: each line fails to compile if a struct has the wrong size.
var (
	_ [18 - unsafe.Sizeof(BlockQ4_0{})]struct{}
	_ [unsafe.Sizeof(BlockQ4_0{}) - 18]struct{}
	_ [20 - unsafe.Sizeof(BlockQ4_1{})]struct{}
	_ [unsafe.Sizeof(BlockQ4_1{}) - 20]struct{}
	_ [22 - unsafe.Sizeof(BlockQ5_0{})]struct{}
	_ [unsafe.Sizeof(BlockQ5_0{}) - 22]struct{}
	_ [24 - unsafe.Sizeof(BlockQ5_1{})]struct{}
	_ [unsafe.Sizeof(BlockQ5_1{}) - 24]struct{}
	_ [34 - unsafe.Sizeof(BlockQ8_0{})]struct{}
	_ [unsafe.Sizeof(BlockQ8_0{}) - 34]struct{}
	_ [36 - unsafe.Sizeof(BlockQ8_1{})]struct{}
	_ [unsafe.Sizeof(BlockQ8_1{}) - 36]struct{}
	_ [84 - unsafe.Sizeof(BlockQ2_K{})]struct{}
	_ [unsafe.Sizeof(BlockQ2_K{}) - 84]struct{}
	_ [110 - unsafe.Sizeof(BlockQ3_K{})]struct{}
	_ [unsafe.Sizeof(BlockQ3_K{}) - 110]struct{}
	_ [144 - unsafe.Sizeof(BlockQ4_K{})]struct{}
	_ [unsafe.Sizeof(BlockQ4_K{}) - 144]struct{}
	_ [176 - unsafe.Sizeof(BlockQ5_K{})]struct{}
	_ [unsafe.Sizeof(BlockQ5_K{}) - 176]struct{}
	_ [210 - unsafe.Sizeof(BlockQ6_K{})]struct{}
	_ [unsafe.Sizeof(BlockQ6_K{}) - 210]struct{}
	_ [292 - unsafe.Sizeof(BlockQ8_K{})]struct{}
	_ [unsafe.Sizeof(BlockQ8_K{}) - 292]struct{}
)

// Blocks reinterprets raw bytes (a whole number of blocks of type B) as a
// slice of blocks without copying. The caller guarantees the byte length is
// a multiple of the block size; extra bytes are ignored.
func Blocks[B any](raw []byte) []B {
	var zero B
	n := len(raw) / int(unsafe.Sizeof(zero))
	if n == 0 {
		return nil
	}
	return unsafe.Slice((*B)(unsafe.Pointer(unsafe.SliceData(raw))), n)
}

// BlockBytesOf is the inverse of Blocks: the raw bytes behind a slice of blocks.
func BlockBytesOf[B any](blocks []B) []byte {
	if len(blocks) == 0 {
		return nil
	}
	var zero B
	return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(blocks))), len(blocks)*int(unsafe.Sizeof(zero)))
}
