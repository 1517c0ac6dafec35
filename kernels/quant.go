package kernels

import (
	"errors"
	"fmt"
	"math"
	"unsafe"

	"github.com/gollm/gollm/tensor"
)

// ErrUnsupported is returned (wrapped, naming the type) for a weight type
// the kernels cannot multiply.
var ErrUnsupported = errors.New("kernels: unsupported type")

// ActType gives the activation format paired with weight type w in the
// default (llama.cpp-like) mode: the format a row of activations is
// quantized to before it is multiplied with a matrix of type w. This is
// ggml's vec_dot_type for each weight type on x86.
func ActType(w tensor.DType) (tensor.DType, error) {
	switch w {
	case tensor.F32:
		return tensor.F32, nil
	case tensor.F16:
		return tensor.F16, nil
	case tensor.BF16:
		return tensor.BF16, nil
	case tensor.Q8_0, tensor.Q4_0, tensor.Q5_0:
		return tensor.Q8_0, nil
	case tensor.Q4_1, tensor.Q5_1:
		return tensor.Q8_1, nil
	case tensor.Q2_K, tensor.Q3_K, tensor.Q4_K, tensor.Q5_K, tensor.Q6_K:
		return tensor.Q8_K, nil
	}
	return 0, fmt.Errorf("%w: no activation format for weight type %v", ErrUnsupported, w)
}

// Supported lists the weight types MatMul handles. Each of them works with
// its ActType activations and with F32 activations (the exact mode).
func Supported() []tensor.DType { return append([]tensor.DType(nil), supportedTypes...) }

var supportedTypes = []tensor.DType{
	tensor.F32, tensor.F16, tensor.BF16,
	tensor.Q4_0, tensor.Q4_1, tensor.Q5_0, tensor.Q5_1, tensor.Q8_0,
	tensor.Q2_K, tensor.Q3_K, tensor.Q4_K, tensor.Q5_K, tensor.Q6_K,
}

// IsSupported reports whether MatMul handles weights of type w.
func IsSupported(w tensor.DType) bool {
	for _, t := range supportedTypes {
		if t == w {
			return true
		}
	}
	return false
}

// QuantizeRow writes the float row x (len = cols) into dst in activation
// format t: Q8_K, Q8_0, Q8_1, F16, BF16, or F32 (raw little-endian float32
// bytes). dst must be exactly tensor.RowBytes(t, len(x)) bytes; cols must be
// a whole number of t's blocks. A wrong length or type is a programming
// error and panics.
func QuantizeRow(t tensor.DType, dst []byte, x []float32) { active.QuantizeRow(t, dst, x) }

// rowBytes is tensor.RowBytes for lengths that the caller has checked,
// as an int. It panics on a bad length (programming error).
func rowBytes(t tensor.DType, n int) int {
	b, err := tensor.RowBytes(t, int64(n))
	if err != nil {
		panic("kernels: " + err.Error())
	}
	return int(b)
}

// checkQuantizeArgs panics unless dst has exactly the size of len(x) values
// of type t.
func checkQuantizeArgs(t tensor.DType, dst []byte, x []float32) {
	if want := rowBytes(t, len(x)); len(dst) != want {
		panic(fmt.Sprintf("kernels: QuantizeRow %v: dst has %d bytes, %d values need %d", t, len(dst), len(x), want))
	}
}

// float32s views raw little-endian bytes as float32 values (no copy).
// Unaligned starts are fine on the platforms Go supports with unaligned
// loads, and float32 holds no pointers, so checkptr allows it too.
func float32s(b []byte) []float32 {
	if len(b) < 4 {
		return nil
	}
	return unsafe.Slice((*float32)(unsafe.Pointer(unsafe.SliceData(b))), len(b)/4)
}

// uint16s views raw little-endian bytes as 16-bit values (no copy).
func uint16s(b []byte) []uint16 {
	if len(b) < 2 {
		return nil
	}
	return unsafe.Slice((*uint16)(unsafe.Pointer(unsafe.SliceData(b))), len(b)/2)
}

// quantizeRowRef is the reference QuantizeRow.
func quantizeRowRef(t tensor.DType, dst []byte, x []float32) {
	checkQuantizeArgs(t, dst, x)
	switch t {
	case tensor.F32:
		copy(float32s(dst), x)
	case tensor.F16:
		f32ToF16Ref(uint16s(dst), x)
	case tensor.BF16:
		h := uint16s(dst)
		for i, v := range x {
			h[i] = tensor.FloatToBF16(v)
		}
	case tensor.Q8_0:
		quantizeQ8_0Ref(tensor.Blocks[tensor.BlockQ8_0](dst), x)
	case tensor.Q8_1:
		quantizeQ8_1Ref(tensor.Blocks[tensor.BlockQ8_1](dst), x)
	case tensor.Q8_K:
		quantizeQ8KRef(tensor.Blocks[tensor.BlockQ8_K](dst), x)
	default:
		panic(fmt.Sprintf("kernels: QuantizeRow: %v is not an activation format", t))
	}
}

// roundEven rounds to the nearest integer, ties to even. This is what
// x86's cvtps2dq / roundps(_MM_ROUND_NEAREST) do in the default rounding
// mode, and what ggml's nearest_int (adding 1.5*2^23 in float32) does.
func roundEven(v float32) int32 { return int32(math.RoundToEven(float64(v))) }

// quantizeQ8_0Ref quantizes 32 values per block to 8 bits with one half
// scale, as llama.cpp's x86 build does it (quantize_row_q8_0 in
// ggml-cpu/arch/x86/quants.c, the AVX2 branch; not quantize_row_q8_0_ref):
//
//	amax = max |x|
//	d    = amax / 127           (float32 division; stored as a half, ties to even)
//	id   = 127 / amax, or 0 when amax == 0
//	q    = round(x * id)        (float32 product, rounded ties to EVEN)
//
// The reference C version (quantize_row_q8_0_ref) rounds with roundf, ties
// away from zero, and so differs on exact ties such as x*id = 2.5.
func quantizeQ8_0Ref(y []tensor.BlockQ8_0, x []float32) {
	for i := range y {
		xb := x[i*32 : i*32+32]
		var amax float32
		for _, v := range xb {
			amax = max(amax, abs32(v))
		}
		d := amax / 127
		var id float32
		if amax != 0 {
			id = 127 / amax
		}
		y[i].D = tensor.FloatToHalf(d)
		for j, v := range xb {
			y[i].Qs[j] = int8(roundEven(v * id))
		}
	}
}

// quantizeQ8_1Ref is quantizeQ8_0Ref plus S = half(d * sum(q)), as the AVX2
// branch of llama.cpp's x86 quantize_row_q8_1 computes it (d is the float32
// scale before it is rounded to a half).
func quantizeQ8_1Ref(y []tensor.BlockQ8_1, x []float32) {
	for i := range y {
		xb := x[i*32 : i*32+32]
		var amax float32
		for _, v := range xb {
			amax = max(amax, abs32(v))
		}
		d := amax / 127
		var id float32
		if amax != 0 {
			id = 127 / amax
		}
		y[i].D = tensor.FloatToHalf(d)
		var sum int32
		for j, v := range xb {
			q := roundEven(v * id)
			y[i].Qs[j] = int8(q)
			sum += q
		}
		y[i].S = tensor.FloatToHalf(d * float32(sum))
	}
}

// quantizeQ8KRef quantizes 256 values per block for the K-quant dot
// products. llama.cpp's x86 build uses the reference routine here
// (quantize_row_q8_K calls quantize_row_q8_K_ref in ggml-cpu/arch/x86/quants.c):
//
//	max    = the x with the largest |x| (the first one on ties)
//	iscale = -127 / max          (note the sign: the largest value maps to -127)
//	q      = min(127, nearest_int(iscale * x))   (ties to even)
//	d      = 1 / iscale
//	bsums[g] = sum of q over values 16g .. 16g+15
//
// A block of zeros gets d = 0 and q = 0. (ggml leaves its bsums as they
// were; we write zeros. Nothing reads them when d = 0.)
func quantizeQ8KRef(y []tensor.BlockQ8_K, x []float32) {
	for i := range y {
		xb := x[i*256 : i*256+256]
		var amax, maxv float32
		for _, v := range xb {
			if a := abs32(v); a > amax {
				amax, maxv = a, v
			}
		}
		if amax == 0 {
			y[i] = tensor.BlockQ8_K{}
			continue
		}
		iscale := -127 / maxv
		for j, v := range xb {
			y[i].Qs[j] = int8(min(127, roundEven(iscale*v)))
		}
		for g := 0; g < 16; g++ {
			var s int16
			for _, q := range y[i].Qs[g*16 : g*16+16] {
				s += int16(q)
			}
			y[i].Bsums[g] = s
		}
		y[i].D = 1 / iscale
	}
}

func abs32(v float32) float32 { return math.Float32frombits(math.Float32bits(v) &^ (1 << 31)) }
