// Package tensor describes ggml's element types: how many values a block
// holds, how many bytes it takes, and how each block is laid out. It also
// holds the plain-Go reference conversions between those blocks and float32.
package tensor

import (
	"fmt"
	"math"
)

// DType is a ggml element type. The numeric values are ggml's own (enum
// ggml_type), because that is what a GGUF file stores on disk.
type DType uint32

// The ggml types. Gaps in the numbering are types ggml has removed.
const (
	F32     DType = 0
	F16     DType = 1
	Q4_0    DType = 2
	Q4_1    DType = 3
	Q5_0    DType = 6
	Q5_1    DType = 7
	Q8_0    DType = 8
	Q8_1    DType = 9
	Q2_K    DType = 10
	Q3_K    DType = 11
	Q4_K    DType = 12
	Q5_K    DType = 13
	Q6_K    DType = 14
	Q8_K    DType = 15
	IQ2_XXS DType = 16
	IQ2_XS  DType = 17
	IQ3_XXS DType = 18
	IQ1_S   DType = 19
	IQ4_NL  DType = 20
	IQ3_S   DType = 21
	IQ2_S   DType = 22
	IQ4_XS  DType = 23
	I8      DType = 24
	I16     DType = 25
	I32     DType = 26
	I64     DType = 27
	F64     DType = 28
	IQ1_M   DType = 29
	BF16    DType = 30
	TQ1_0   DType = 34
	TQ2_0   DType = 35
	MXFP4   DType = 39
)

// traits describes one type: its name as ggml prints it, the number of
// values in one block, and the bytes one block takes.
type traits struct {
	name       string
	blockSize  int // values per block
	blockBytes int // bytes per block
}

var typeTraits = map[DType]traits{
	F32:     {"f32", 1, 4},
	F16:     {"f16", 1, 2},
	Q4_0:    {"q4_0", 32, 18},
	Q4_1:    {"q4_1", 32, 20},
	Q5_0:    {"q5_0", 32, 22},
	Q5_1:    {"q5_1", 32, 24},
	Q8_0:    {"q8_0", 32, 34},
	Q8_1:    {"q8_1", 32, 36},
	Q2_K:    {"q2_K", 256, 84},
	Q3_K:    {"q3_K", 256, 110},
	Q4_K:    {"q4_K", 256, 144},
	Q5_K:    {"q5_K", 256, 176},
	Q6_K:    {"q6_K", 256, 210},
	Q8_K:    {"q8_K", 256, 292},
	IQ2_XXS: {"iq2_xxs", 256, 66},
	IQ2_XS:  {"iq2_xs", 256, 74},
	IQ3_XXS: {"iq3_xxs", 256, 98},
	IQ1_S:   {"iq1_s", 256, 50},
	IQ4_NL:  {"iq4_nl", 32, 18},
	IQ3_S:   {"iq3_s", 256, 110},
	IQ2_S:   {"iq2_s", 256, 82},
	IQ4_XS:  {"iq4_xs", 256, 136},
	I8:      {"i8", 1, 1},
	I16:     {"i16", 1, 2},
	I32:     {"i32", 1, 4},
	I64:     {"i64", 1, 8},
	F64:     {"f64", 1, 8},
	IQ1_M:   {"iq1_m", 256, 56},
	BF16:    {"bf16", 1, 2},
	TQ1_0:   {"tq1_0", 256, 54},
	TQ2_0:   {"tq2_0", 256, 66},
	MXFP4:   {"mxfp4", 32, 17},
}

// Known reports whether t is a type this package can describe.
func (t DType) Known() bool { _, ok := typeTraits[t]; return ok }

// String gives ggml's name for the type (for example "q6_K"), or
// "type(N)" for a number ggml does not define.
func (t DType) String() string {
	if tr, ok := typeTraits[t]; ok {
		return tr.name
	}
	return fmt.Sprintf("type(%d)", uint32(t))
}

// BlockSize is the number of values one block holds (1 for plain types).
// It is 0 for an unknown type.
func (t DType) BlockSize() int { return typeTraits[t].blockSize }

// BlockBytes is the number of bytes one block takes. It is 0 for an
// unknown type.
func (t DType) BlockBytes() int { return typeTraits[t].blockBytes }

// BitsPerWeight is the storage cost of one value in bits.
func (t DType) BitsPerWeight() float64 {
	tr, ok := typeTraits[t]
	if !ok {
		return 0
	}
	return float64(tr.blockBytes*8) / float64(tr.blockSize)
}

// ParseDType finds a type by ggml's name, case-insensitively ("Q6_K",
// "q6_k" and "q6_K" all work).
func ParseDType(name string) (DType, error) {
	for t, tr := range typeTraits {
		if equalFold(tr.name, name) {
			return t, nil
		}
	}
	return 0, fmt.Errorf("tensor: unknown type name %q", name)
}

func equalFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// RowBytes is the byte size of a row of n values of type t. It returns an
// error when t is unknown or n is not a whole number of blocks.
func RowBytes(t DType, n int64) (int64, error) {
	tr, ok := typeTraits[t]
	if !ok {
		return 0, fmt.Errorf("tensor: unknown type %d", uint32(t))
	}
	if n < 0 || n%int64(tr.blockSize) != 0 {
		return 0, fmt.Errorf("tensor: row of %d values is not a whole number of %s blocks (%d values each)", n, tr.name, tr.blockSize)
	}
	blocks := n / int64(tr.blockSize)
	if blocks > math.MaxInt64/int64(tr.blockBytes) {
		return 0, fmt.Errorf("tensor: row of %d %s values overflows int64 bytes", n, tr.name)
	}
	return blocks * int64(tr.blockBytes), nil
}
