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

// --- layer kernels: RMSNorm, SwiGLU, Softmax ---
//
// These follow ggml's formulas with two changes that let them run as SIMD
// code computing exactly what the plain-Go references compute:
//
//   - e^x is Exp below (Cephes' expf: a polynomial in float32, within one
//     unit in the last place), where ggml calls the C library's expf or,
//     in its SIMD loops, a polynomial of its own (ggml_v_expf);
//   - the float64 sums of RMSNorm and Softmax run in 16 lanes (element i
//     goes to lane i mod 16, the lanes are folded l += l+8, +4, +2, +1,
//     and the elements past the last multiple of 16 are added one by one),
//     where ggml sums one element after the other. The sums are in double
//     precision, so the order changes them by parts in 10^16.

// RMSNorm computes dst = x / sqrt(mean(x²) + eps) * w as ggml does it:
// the float32 squares are summed in float64 (ggml_float), scale =
// 1/sqrtf(mean + eps) in float32, y = x*scale, and then the weight
// multiply (a separate ggml_mul). dst may alias x.
func RMSNorm(dst, x, w []float32, eps float32) { active.RMSNorm(dst, x, w, eps) }

// Silu is x/(1+e^-x) in float32 (ggml_silu_f32), with e^x from Exp.
func Silu(x float32) float32 {
	return x / (1 + Exp(-x))
}

// SwiGLU computes dst = silu(gate) * up (ggml_swiglu: gate is the first
// half of the pair, up the second). dst may alias gate or up.
func SwiGLU(dst, gate, up []float32) { active.SwiGLU(dst, gate, up) }

// Softmax replaces x by softmax(x) in place, as ggml_soft_max does it:
// subtract the maximum, y = e^(x - max), sum the y in float64, then
// multiply every y by float32(1/sum). Entries of -Inf (masked) become 0.
func Softmax(x []float32) { active.Softmax(x) }

func (im *Impl) RMSNorm(dst, x, w []float32, eps float32) {
	sameLen("RMSNorm", len(dst), len(x))
	sameLen("RMSNorm", len(x), len(w))
	if len(x) > 0 {
		im.rmsNorm(dst, x, w, eps)
	}
}

func (im *Impl) SwiGLU(dst, gate, up []float32) {
	sameLen("SwiGLU", len(dst), len(gate))
	sameLen("SwiGLU", len(gate), len(up))
	im.swiGLU(dst, gate, up)
}

func (im *Impl) Softmax(x []float32) {
	if len(x) > 0 {
		im.softmax(x)
	}
}

// RoPE rotates every head of x (consecutive heads of dims values) by the
// angles of one position, NeoX style: value k of a head pairs with value
// k + dims/2, and the pair turns by the angle whose cosine and sine are
// cos[k] and sin[k]:
//
//	x0, x1 := h[k], h[k+dims/2]
//	h[k]        = x0·cos[k] - x1·sin[k]
//	h[k+dims/2] = x0·sin[k] + x1·cos[k]
//
// each product rounded to float32 before the sum. len(x) must be a
// multiple of dims, dims even, and cos and sin must hold dims/2 values.
func RoPE(x []float32, dims int, cos, sin []float32) { active.RoPE(x, dims, cos, sin) }

func (im *Impl) RoPE(x []float32, dims int, cos, sin []float32) {
	if dims <= 0 || dims%2 != 0 || len(x)%dims != 0 {
		panic(fmt.Sprintf("kernels: RoPE: %d values in heads of %d", len(x), dims))
	}
	sameLen("RoPE", len(cos), dims/2)
	sameLen("RoPE", len(sin), dims/2)
	im.rope(x, dims, cos, sin)
}

func ropeRef(x []float32, dims int, cos, sin []float32) {
	half := dims / 2
	for h := 0; h < len(x); h += dims {
		head := x[h : h+dims]
		for k := 0; k < half; k++ {
			c, s := cos[k], sin[k]
			x0, x1 := head[k], head[k+half]
			head[k] = float32(x0*c) - float32(x1*s)
			head[k+half] = float32(x0*s) + float32(x1*c)
		}
	}
}

// RoPENorm rotates each head of x like RoPE, but pairs adjacent
// dimensions (llama.cpp's rope type NORM, used by its llama architecture)
// instead of dimension k with k+dims/2 (NEOX, used by the Qwens): pair k is
// (2k, 2k+1),
//
//	x0, x1 := h[2k], h[2k+1]
//	h[2k]   = x0·cos[k] - x1·sin[k]
//	h[2k+1] = x0·sin[k] + x1·cos[k]
//
// with the same rounding as RoPE. The two styles differ only in which
// dimensions form a pair: a Llama checkpoint's q and k rows were permuted
// by the GGUF converter so that NORM on them equals Hugging Face's
// rotate-half. For dims = 4, NEOX turns (h0, h2) and (h1, h3), NORM turns
// (h0, h1) and (h2, h3), both by angles cos[0..1], sin[0..1].
func RoPENorm(x []float32, dims int, cos, sin []float32) { active.RoPENorm(x, dims, cos, sin) }

func (im *Impl) RoPENorm(x []float32, dims int, cos, sin []float32) {
	if dims <= 0 || dims%2 != 0 || len(x)%dims != 0 {
		panic(fmt.Sprintf("kernels: RoPENorm: %d values in heads of %d", len(x), dims))
	}
	sameLen("RoPENorm", len(cos), dims/2)
	sameLen("RoPENorm", len(sin), dims/2)
	im.ropeNorm(x, dims, cos, sin)
}

func ropeNormRef(x []float32, dims int, cos, sin []float32) {
	half := dims / 2
	for h := 0; h < len(x); h += dims {
		head := x[h : h+dims]
		for k := 0; k < half; k++ {
			c, s := cos[k], sin[k]
			x0, x1 := head[2*k], head[2*k+1]
			head[2*k] = float32(x0*c) - float32(x1*s)
			head[2*k+1] = float32(x0*s) + float32(x1*c)
		}
	}
}

// ExpVec computes dst[i] = Exp(x[i]). dst may alias x.
func ExpVec(dst, x []float32) { active.ExpVec(dst, x) }

func (im *Impl) ExpVec(dst, x []float32) {
	sameLen("ExpVec", len(dst), len(x))
	im.exp(dst, x)
}

func expVecRef(dst, x []float32) {
	for i, v := range x {
		dst[i] = Exp(v)
	}
}

// Exp is e^x in float32, computed as Cephes' expf does it (with a multiply
// and an add where a fused multiply-add could go, so that SIMD code can
// reproduce it bit for bit):
//
//	n = round(x·log2(e))                   (ties to even)
//	r = (x - n·C1) - n·C2                  (C1 + C2 = ln 2, C1 with 9 bits: n·C1 is exact)
//	p = ((((P0·r + P1)·r + P2)·r + P3)·r + P4)·r + P5
//	e^x ≈ 2^n · ((p·r² + r) + 1)          (2^n applied exactly, rounding once)
//
// with every operation rounded to float32. Checked against float64 exp on
// every 7th float32 in [-104, 89]: the error is below 0.99 units in the
// last place, and 99% of the results are correctly rounded. x is clamped
// to [-104, 89] first (e^-104 rounds to 0, e^89 overflows to +Inf); NaN
// gives NaN.
func Exp(x float32) float32 {
	if x != x {
		return x
	}
	if x < expLo {
		x = expLo
	} else if x > expHi {
		x = expHi
	}
	n := float32(math.RoundToEven(float64(float32(x * expLog2e))))
	r := x - float32(n*expC1)
	r = r - float32(n*expC2)
	z := float32(r * r)
	p := float32(expP0*r) + expP1
	p = float32(p*r) + expP2
	p = float32(p*r) + expP3
	p = float32(p*r) + expP4
	p = float32(p*r) + expP5
	y := float32(p*z) + r + 1
	return float32(math.Ldexp(float64(y), int(n)))
}

// Constants of Exp (the assembly has them as bit patterns; TestExpConstants
// checks that they agree).
const (
	expLo    float32 = -104
	expHi    float32 = 89
	expLog2e float32 = 1.44269504088896341
	expC1    float32 = 0.693359375
	expC2    float32 = -2.12194440e-4
	expP0    float32 = 1.9875691500e-4
	expP1    float32 = 1.3981999507e-3
	expP2    float32 = 8.3334519073e-3
	expP3    float32 = 4.1665795894e-2
	expP4    float32 = 1.6666665459e-1
	expP5    float32 = 5.0000001201e-1
)

// sumLanes is the number of float64 partial sums of RMSNorm and Softmax.
const sumLanes = 16

// foldSums adds 16 partial sums pairwise: l += l+8, then +4, +2, +1.
func foldSums(s *[sumLanes]float64) float64 {
	for width := sumLanes / 2; width >= 1; width /= 2 {
		for l := 0; l < width; l++ {
			s[l] += s[l+width]
		}
	}
	return s[0]
}

// rmsNormRef is the reference RMSNorm.
func rmsNormRef(dst, x, w []float32, eps float32) {
	var s [sumLanes]float64
	full := len(x) / sumLanes * sumLanes
	for i := 0; i < full; i += sumLanes {
		for l := 0; l < sumLanes; l++ {
			v := x[i+l]
			s[l] += float64(float32(v * v)) // square rounded to float32 first, as in C
		}
	}
	sum := foldSums(&s)
	for _, v := range x[full:] {
		sum += float64(float32(v * v))
	}
	rmsNormApply(dst, x, w, rmsScale(sum, len(x), eps))
}

// rmsScale turns the sum of squares into the RMSNorm scale factor.
func rmsScale(sum float64, n int, eps float32) float32 {
	mean := float32(sum / float64(n))
	return 1 / float32(math.Sqrt(float64(mean+eps))) // sqrtf is correctly rounded: sqrt in double, then round, gives the same
}

// rmsNormApply computes dst = x*scale*w (two roundings, in that order).
func rmsNormApply(dst, x, w []float32, scale float32) {
	for i, v := range x {
		dst[i] = v * scale * w[i]
	}
}

// swiGLURef is the reference SwiGLU.
func swiGLURef(dst, gate, up []float32) {
	for i, g := range gate {
		dst[i] = Silu(g) * up[i]
	}
}

// softmaxRef is the reference Softmax.
func softmaxRef(x []float32) {
	m := float32(math.Inf(-1))
	for _, v := range x {
		m = max(m, v)
	}
	var s [sumLanes]float64
	full := len(x) / sumLanes * sumLanes
	for i := 0; i < full; i += sumLanes {
		for l := 0; l < sumLanes; l++ {
			e := Exp(x[i+l] - m)
			x[i+l] = e
			s[l] += float64(e)
		}
	}
	sum := foldSums(&s)
	for i := full; i < len(x); i++ {
		e := Exp(x[i] - m)
		x[i] = e
		sum += float64(e)
	}
	inv := float32(1 / sum)
	for i := range x {
		x[i] *= inv
	}
}
