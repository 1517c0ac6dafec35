//go:build !purego

package kernels

import "github.com/gollm/gollm/tensor"

// Go sides of float_amd64.s: the assembly does the whole multiples of 32
// (dots) or 16 (element-wise), Go the rest, in the reference's order.

//go:noescape
func dotF32Main(x, y *float32, n int) float32

//go:noescape
func dotF16F32Main(x *float32, h *uint16, n int) float32

//go:noescape
func dotF16F16Main(w, a *uint16, n int) float32

//go:noescape
func dotBF16BF16Main(w, a *uint16, n int) float32

//go:noescape
func dotBF16F32Main(w *uint16, a *float32, n int) float32

//go:noescape
func axpyMain(dst *float32, alpha float32, x *float32, n int)

//go:noescape
func axpyF16Main(dst *float32, alpha float32, h *uint16, n int)

//go:noescape
func f16ToF32Main(dst *float32, h *uint16, n int)

//go:noescape
func f32ToF16Main(dst *uint16, x *float32, n int)

func dotF32AVX512(x, y []float32) float32 {
	full := len(x) / lanes * lanes
	var sum float32
	if full > 0 {
		sum = dotF32Main(&x[0], &y[0], full)
	}
	for i := full; i < len(x); i++ {
		sum += float32(x[i] * y[i])
	}
	return sum
}

func dotF16F32AVX512(x []float32, h []uint16) float32 {
	full := len(x) / lanes * lanes
	var sum float32
	if full > 0 {
		sum = dotF16F32Main(&x[0], &h[0], full)
	}
	for i := full; i < len(x); i++ {
		sum += float32(tensor.HalfToFloat(h[i]) * x[i])
	}
	return sum
}

func dotF16F16AVX512(w, a []uint16) float32 {
	full := len(w) / lanes * lanes
	var sum float32
	if full > 0 {
		sum = dotF16F16Main(&w[0], &a[0], full)
	}
	for i := full; i < len(w); i++ {
		sum += tensor.HalfToFloat(w[i]) * tensor.HalfToFloat(a[i])
	}
	return sum
}

func dotBF16BF16AVX512(w, a []uint16) float32 {
	full := len(w) / lanes * lanes
	var sum float32
	if full > 0 {
		sum = dotBF16BF16Main(&w[0], &a[0], full)
	}
	for i := full; i < len(w); i++ {
		sum += tensor.BF16ToFloat(w[i]) * tensor.BF16ToFloat(a[i])
	}
	return sum
}

func dotBF16F32AVX512(w []uint16, a []float32) float32 {
	full := len(w) / lanes * lanes
	var sum float32
	if full > 0 {
		sum = dotBF16F32Main(&w[0], &a[0], full)
	}
	for i := full; i < len(w); i++ {
		sum += float32(tensor.BF16ToFloat(w[i]) * a[i])
	}
	return sum
}

func axpyAVX512(dst []float32, alpha float32, x []float32) {
	full := len(x) / 16 * 16
	if full > 0 {
		axpyMain(&dst[0], alpha, &x[0], full)
	}
	axpyRef(dst[full:], alpha, x[full:])
}

func axpyF16AVX512(dst []float32, alpha float32, h []uint16) {
	full := len(h) / 16 * 16
	if full > 0 {
		axpyF16Main(&dst[0], alpha, &h[0], full)
	}
	axpyF16Ref(dst[full:], alpha, h[full:])
}

func f16ToF32AVX512(dst []float32, h []uint16) {
	full := len(h) / 16 * 16
	if full > 0 {
		f16ToF32Main(&dst[0], &h[0], full)
	}
	f16ToF32Ref(dst[full:], h[full:])
}

func f32ToF16AVX512(dst []uint16, x []float32) {
	full := len(x) / 16 * 16
	if full > 0 {
		f32ToF16Main(&dst[0], &x[0], full)
	}
	f32ToF16Ref(dst[full:], x[full:])
}

// Row adapters for the matrix products.
func dotF32F32RowAVX512(w, a []byte, cols int) float32 {
	return dotF32AVX512(float32s(w)[:cols], float32s(a)[:cols])
}
func dotF16F16RowAVX512(w, a []byte, cols int) float32 {
	return dotF16F16AVX512(uint16s(w)[:cols], uint16s(a)[:cols])
}
func dotF16F32RowAVX512(w, a []byte, cols int) float32 {
	return dotF16F32AVX512(float32s(a)[:cols], uint16s(w)[:cols])
}
func dotBF16BF16RowAVX512(w, a []byte, cols int) float32 {
	return dotBF16BF16AVX512(uint16s(w)[:cols], uint16s(a)[:cols])
}
func dotBF16F32RowAVX512(w, a []byte, cols int) float32 {
	return dotBF16F32AVX512(uint16s(w)[:cols], float32s(a)[:cols])
}

// installFloatAVX512 puts the float kernels into im.
func installFloatAVX512(im *Impl) {
	im.dot = dotF32AVX512
	im.dotF16 = dotF16F32AVX512
	im.axpy = axpyAVX512
	im.axpyF16 = axpyF16AVX512
	im.f16ToF32 = f16ToF32AVX512
	im.f32ToF16 = f32ToF16AVX512
	im.dots[dotKey{tensor.F32, tensor.F32}] = dotF32F32RowAVX512
	im.dots[dotKey{tensor.F16, tensor.F16}] = dotF16F16RowAVX512
	im.dots[dotKey{tensor.F16, tensor.F32}] = dotF16F32RowAVX512
	im.dots[dotKey{tensor.BF16, tensor.BF16}] = dotBF16BF16RowAVX512
	im.dots[dotKey{tensor.BF16, tensor.F32}] = dotBF16F32RowAVX512
}
