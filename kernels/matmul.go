package kernels

import (
	"fmt"

	"github.com/gollm/gollm/tensor"
)

// MatMul multiplies weight rows [r0, r1) with n activation rows:
//
//	dst[j*dstStride + r] = dot(weight row r, activation row j)   for r in [r0, r1), j in [0, n)
//
// w holds the weight matrix, rows of cols values of type wt, each
// tensor.RowBytes(wt, cols) bytes, row r at r*rowBytes.
// act holds n activation rows of type at, each RowBytes(at, cols) bytes:
// at is ActType(wt) (the llama.cpp-like mode; rows made with QuantizeRow)
// or F32 (the exact mode: each weight row is dequantized to float32 and
// dotted with the float activations).
// dst is (token, dstStride) in layout; only the entries named above are
// written, so several calls with disjoint row ranges can fill one output
// from several goroutines.
//
// Arguments that do not fit together (lengths, types) are programming
// errors and panic with a message; use CheckMatMul to get an error instead.
func MatMul(dst []float32, dstStride int, wt tensor.DType, w []byte, at tensor.DType, act []byte, n, cols, r0, r1 int) {
	active.MatMul(dst, dstStride, wt, w, at, act, n, cols, r0, r1)
}

// CheckMatMul returns an error (wrapping ErrUnsupported for unknown type
// pairs) when MatMul would panic on these arguments.
func CheckMatMul(dst []float32, dstStride int, wt tensor.DType, w []byte, at tensor.DType, act []byte, n, cols, r0, r1 int) error {
	if !canMultiply(generic, wt, at) {
		return fmt.Errorf("%w: weights %v with activations %v", ErrUnsupported, wt, at)
	}
	wrb, err := tensor.RowBytes(wt, int64(cols))
	if err != nil {
		return fmt.Errorf("kernels: weight rows: %w", err)
	}
	arb, err := tensor.RowBytes(at, int64(cols))
	if err != nil {
		return fmt.Errorf("kernels: activation rows: %w", err)
	}
	switch {
	case cols <= 0:
		return fmt.Errorf("kernels: MatMul with %d columns", cols)
	case n < 0 || r0 < 0 || r1 < r0:
		return fmt.Errorf("kernels: MatMul with n=%d, rows [%d, %d)", n, r0, r1)
	case int64(len(w)) < int64(r1)*wrb:
		return fmt.Errorf("kernels: MatMul: %d weight bytes, rows up to %d need %d", len(w), r1, int64(r1)*wrb)
	case int64(len(act)) < int64(n)*arb:
		return fmt.Errorf("kernels: MatMul: %d activation bytes, %d rows need %d", len(act), n, int64(n)*arb)
	case n > 0 && r1 > r0 && (dstStride < r1 || len(dst) < (n-1)*dstStride+r1):
		return fmt.Errorf("kernels: MatMul: dst of %d values with stride %d cannot hold %d tokens × rows up to %d", len(dst), dstStride, n, r1)
	}
	return nil
}

// canMultiply reports whether im handles weights wt with activations at.
func canMultiply(im *Impl, wt, at tensor.DType) bool {
	if _, ok := im.dots[dotKey{wt, at}]; ok {
		return true
	}
	return at == tensor.F32 && IsSupported(wt) && tensor.CanDequantize(wt)
}

// MatMul is the package-level MatMul computed with this implementation.
func (im *Impl) MatMul(dst []float32, dstStride int, wt tensor.DType, w []byte, at tensor.DType, act []byte, n, cols, r0, r1 int) {
	if err := CheckMatMul(dst, dstStride, wt, w, at, act, n, cols, r0, r1); err != nil {
		panic(err.Error())
	}
	if n == 0 || r0 == r1 {
		return
	}
	key := dotKey{wt, at}
	if mk, ok := im.mats[key]; ok {
		mk(dst, dstStride, w, act, n, cols, r0, r1)
		return
	}
	if dk, ok := im.dots[key]; ok {
		matMulRows(dk, dst, dstStride, rowBytes(wt, cols), w, rowBytes(at, cols), act, n, cols, r0, r1)
		return
	}
	im.matMulExact(dst, dstStride, wt, w, act, n, cols, r0, r1)
}

// matMulRows is the plain loop: each weight row is taken once and dotted
// with every activation row (which stay in cache for moderate n).
func matMulRows(dk dotKernel, dst []float32, dstStride, wrb int, w []byte, arb int, act []byte, n, cols, r0, r1 int) {
	for r := r0; r < r1; r++ {
		wrow := w[r*wrb : (r+1)*wrb]
		for j := 0; j < n; j++ {
			dst[j*dstStride+r] = dk(wrow, act[j*arb:(j+1)*arb], cols)
		}
	}
}

// floatScratch holds reusable float32 buffers for the exact mode, so that
// steady-state calls do not allocate.
var floatScratch scratchList[[]float32]

func getFloats(n int) *[]float32 {
	p := floatScratch.get()
	if cap(*p) < n {
		*p = make([]float32, n)
	}
	*p = (*p)[:n]
	return p
}

// matMulExact is the exact mode for quantized weights: each weight row is
// dequantized to float32 once (tensor.DequantizeRow, bit-exact with ggml)
// and dotted in float32 with every activation row.
func (im *Impl) matMulExact(dst []float32, dstStride int, wt tensor.DType, w []byte, act []byte, n, cols, r0, r1 int) {
	wrb := rowBytes(wt, cols)
	buf := getFloats(cols)
	defer floatScratch.put(buf)
	row := *buf // (cols)
	acts := float32s(act)
	for r := r0; r < r1; r++ {
		if err := tensor.DequantizeRow(wt, row, w[r*wrb:(r+1)*wrb]); err != nil {
			panic("kernels: " + err.Error())
		}
		for j := 0; j < n; j++ {
			dst[j*dstStride+r] = im.dot(row, acts[j*cols:(j+1)*cols])
		}
	}
}

// QuantizeRow is the package-level QuantizeRow computed with this
// implementation.
func (im *Impl) QuantizeRow(t tensor.DType, dst []byte, x []float32) {
	q, ok := im.quant[t]
	if !ok {
		panic(fmt.Sprintf("kernels: QuantizeRow: %v is not an activation format", t))
	}
	checkQuantizeArgs(t, dst, x)
	q(dst, x)
}
