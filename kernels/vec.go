package kernels

import (
	"fmt"
	"math"

	"github.com/gollm/gollm/tensor"
)

// Element-wise float32 kernels. Each exported function checks lengths
// (a mismatch is a programming error and panics) and calls the active
// implementation; the *Ref functions here are the plain-Go references.
// Kernels whose cost is negligible next to the matrix products (RMSNorm,
// SwiGLU, Softmax) exist only in plain Go and follow ggml's formulas.

func sameLen(op string, a, b int) {
	if a != b {
		panic(fmt.Sprintf("kernels: %s: lengths %d and %d differ", op, a, b))
	}
}

// Dot returns sum x[i]*y[i], in the fixed order described in the package
// comment (32 lanes, folded pairwise, then the tail).
func Dot(x, y []float32) float32 { return active.Dot(x, y) }

// DotF16 returns sum x[i]*half(h[i]) where h holds IEEE half bit patterns
// (an F16 KV cache row). Same order as Dot.
func DotF16(x []float32, h []uint16) float32 { return active.DotF16(x, h) }

// Axpy computes dst[i] += alpha*x[i] (product rounded, then the sum).
func Axpy(dst []float32, alpha float32, x []float32) { active.Axpy(dst, alpha, x) }

// AxpyF16 computes dst[i] += alpha*half(h[i]).
func AxpyF16(dst []float32, alpha float32, h []uint16) { active.AxpyF16(dst, alpha, h) }

// Scale computes dst[i] *= s.
func Scale(dst []float32, s float32) { active.Scale(dst, s) }

// Add computes dst[i] += x[i].
func Add(dst, x []float32) { active.Add(dst, x) }

// Mul computes dst[i] *= x[i].
func Mul(dst, x []float32) { active.Mul(dst, x) }

// F32ToF16 converts float32 values to half bit patterns, round to nearest
// even (tensor.FloatToHalf; what x86's vcvtps2ph with imm8=0 does).
func F32ToF16(dst []uint16, src []float32) { active.F32ToF16(dst, src) }

// F16ToF32 converts half bit patterns to float32 (exact).
func F16ToF32(dst []float32, src []uint16) { active.F16ToF32(dst, src) }

// Methods: the same operations computed with one implementation.

func (im *Impl) Dot(x, y []float32) float32 {
	sameLen("Dot", len(x), len(y))
	return im.dot(x, y)
}
func (im *Impl) DotF16(x []float32, h []uint16) float32 {
	sameLen("DotF16", len(x), len(h))
	return im.dotF16(x, h)
}
func (im *Impl) Axpy(dst []float32, alpha float32, x []float32) {
	sameLen("Axpy", len(dst), len(x))
	im.axpy(dst, alpha, x)
}
func (im *Impl) AxpyF16(dst []float32, alpha float32, h []uint16) {
	sameLen("AxpyF16", len(dst), len(h))
	im.axpyF16(dst, alpha, h)
}
func (im *Impl) Scale(dst []float32, s float32) { im.scale(dst, s) }
func (im *Impl) Add(dst, x []float32) {
	sameLen("Add", len(dst), len(x))
	im.add(dst, x)
}
func (im *Impl) Mul(dst, x []float32) {
	sameLen("Mul", len(dst), len(x))
	im.mul(dst, x)
}
func (im *Impl) F32ToF16(dst []uint16, src []float32) {
	sameLen("F32ToF16", len(dst), len(src))
	im.f32ToF16(dst, src)
}
func (im *Impl) F16ToF32(dst []float32, src []uint16) {
	sameLen("F16ToF32", len(dst), len(src))
	im.f16ToF32(dst, src)
}

// --- references ---

func axpyRef(dst []float32, alpha float32, x []float32) {
	for i, v := range x {
		dst[i] += float32(alpha * v)
	}
}

func axpyF16Ref(dst []float32, alpha float32, h []uint16) {
	for i, v := range h {
		dst[i] += float32(alpha * tensor.HalfToFloat(v))
	}
}

func scaleRef(dst []float32, s float32) {
	for i := range dst {
		dst[i] *= s
	}
}

func addRef(dst, x []float32) {
	for i, v := range x {
		dst[i] += v
	}
}

func mulRef(dst, x []float32) {
	for i, v := range x {
		dst[i] *= v
	}
}

func f32ToF16Ref(dst []uint16, src []float32) {
	for i, v := range src {
		dst[i] = tensor.FloatToHalf(v)
	}
}

func f16ToF32Ref(dst []float32, src []uint16) {
	for i, h := range src {
		dst[i] = tensor.HalfToFloat(h)
	}
}

// --- plain-Go layer kernels (ggml's formulas) ---

// RMSNorm computes dst = x / sqrt(mean(x²) + eps) * w, as llama.cpp does
// it: ggml_rms_norm sums the float32 squares in double (ggml_float),
// computes scale = 1/sqrtf(mean + eps) in float32 and y = x*scale; the
// weight multiply is a separate ggml_mul. dst may alias x.
func RMSNorm(dst, x, w []float32, eps float32) {
	sameLen("RMSNorm", len(dst), len(x))
	sameLen("RMSNorm", len(x), len(w))
	if len(x) == 0 {
		return
	}
	var sum float64
	for _, v := range x {
		sum += float64(v * v) // square rounded to float32 first, as in C
	}
	mean := float32(sum / float64(len(x)))
	scale := 1 / float32(math.Sqrt(float64(mean+eps))) // sqrtf is correctly rounded: sqrt in double, then round, gives the same
	for i, v := range x {
		dst[i] = v * scale * w[i]
	}
}

// Silu is x/(1+exp(-x)) in float32 (ggml_silu_f32), with expf computed
// as exp in double rounded to float32, which is the correctly rounded
// expf that glibc provides.
//
// llama.cpp's AVX-512/AVX2 builds vectorise this with a polynomial
// (ggml_v_expf) that can differ from expf in the last bit or two; that
// difference is far below the golden tolerances.
func Silu(x float32) float32 {
	return x / (1 + float32(math.Exp(float64(-x))))
}

// SwiGLU computes dst = silu(gate) * up (ggml_swiglu: gate is the first
// half of the pair, up the second). dst may alias gate or up.
func SwiGLU(dst, gate, up []float32) {
	sameLen("SwiGLU", len(dst), len(gate))
	sameLen("SwiGLU", len(gate), len(up))
	for i, g := range gate {
		dst[i] = Silu(g) * up[i]
	}
}

// Softmax replaces x by softmax(x) in place, as ggml_soft_max does it:
// subtract the maximum, y = expf(x - max), sum the y in double, then
// multiply every y by float32(1/sum). Entries of -Inf (masked) become 0.
func Softmax(x []float32) {
	if len(x) == 0 {
		return
	}
	m := float32(math.Inf(-1))
	for _, v := range x {
		m = max(m, v)
	}
	var sum float64
	for i, v := range x {
		e := float32(math.Exp(float64(v - m)))
		x[i] = e
		sum += float64(e)
	}
	inv := float32(1 / sum)
	for i := range x {
		x[i] *= inv
	}
}
