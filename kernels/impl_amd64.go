//go:build !purego

package kernels

import (
	"unsafe"

	"github.com/gollm/gollm/tensor"
	"golang.org/x/sys/cpu"
)

// archImpls lists the SIMD implementations this amd64 CPU can run, worst
// to best. (The selection happens here and in chooseImpl, nowhere else.)
func archImpls() []*Impl {
	var list []*Impl
	if hasAVX2() {
		list = append(list, newAVX2())
	}
	if hasAVX512VNNI() {
		list = append(list, newAVX512())
		if hasAMX() {
			list = append(list, newAMX(list[len(list)-1]))
		}
	}
	return list
}

// hasAVX512VNNI: the AVX-512 implementation needs F, BW, VL, VNNI, plus
// F16C for half conversions. (x/sys/cpu also checks that the OS saves the
// AVX-512 registers.)
func hasAVX512VNNI() bool {
	return cpu.X86.HasAVX512F && cpu.X86.HasAVX512BW && cpu.X86.HasAVX512VL &&
		cpu.X86.HasAVX512VNNI && cpu.X86.HasAVX2 && cpu.X86.HasFMA && cpu.X86.HasF16C
}

// hasAVX2: the AVX2 implementation needs AVX2, FMA and F16C (Haswell on).
func hasAVX2() bool { return cpu.X86.HasAVX2 && cpu.X86.HasFMA && cpu.X86.HasF16C }

// newAVX2 covers Q6_K, Q4_K, Q5_K, Q8_0 and Q4_0, the attention kernels, the layer
// kernels (RMSNorm, Softmax, SwiGLU, RoPE, ...) and the Q8_K quantizer
// with AVX2; everything else runs the plain-Go reference.
func newAVX2() *Impl {
	im := derive(generic, "avx2")
	im.dots[dotKey{tensor.Q6_K, tensor.Q8_K}] = func(w, a []byte, cols int) float32 { return dot1(q6kDotsAVX2, w, a, cols/256) }
	im.mats[dotKey{tensor.Q6_K, tensor.Q8_K}] = func(dst []float32, dstStride int, w, act []byte, n, cols, r0, r1 int) {
		tiledMat(q6kDotsAVX2, tensor.Q6_K, tensor.Q8_K, dst, dstStride, w, act, n, cols, r0, r1)
	}
	for _, k := range []struct {
		wt   tensor.DType
		kern kernelFunc
	}{{tensor.Q8_0, q80DotsAVX2}, {tensor.Q4_0, q40DotsAVX2}} {
		wt, kern := k.wt, k.kern
		im.dots[dotKey{wt, tensor.Q8_0}] = func(w, a []byte, cols int) float32 { return dot1(kern, w, a, cols/32) }
		im.mats[dotKey{wt, tensor.Q8_0}] = func(dst []float32, dstStride int, w, act []byte, n, cols, r0, r1 int) {
			tiledMat(kern, wt, tensor.Q8_0, dst, dstStride, w, act, n, cols, r0, r1)
		}
	}
	im.dots[dotKey{tensor.Q4_K, tensor.Q8_K}] = func(w, a []byte, cols int) float32 { return dot1(q4kDotsAVX2, w, a, cols/256) }
	im.mats[dotKey{tensor.Q4_K, tensor.Q8_K}] = func(dst []float32, dstStride int, w, act []byte, n, cols, r0, r1 int) {
		tiledMat(q4kDotsAVX2, tensor.Q4_K, tensor.Q8_K, dst, dstStride, w, act, n, cols, r0, r1)
	}
	im.dots[dotKey{tensor.Q5_K, tensor.Q8_K}] = func(w, a []byte, cols int) float32 { return dot1(q5kDotsAVX2, w, a, cols/256) }
	im.mats[dotKey{tensor.Q5_K, tensor.Q8_K}] = func(dst []float32, dstStride int, w, act []byte, n, cols, r0, r1 int) {
		tiledMat(q5kDotsAVX2, tensor.Q5_K, tensor.Q8_K, dst, dstStride, w, act, n, cols, r0, r1)
	}
	installAttnAVX2(im)
	installLayerAVX2(im)
	installQuantAVX2(im)
	return im
}

//go:noescape
func q4kDotsAVX2(w *byte, nb int, act *byte, actStride int, ntok int, out *float32, outStride int)

//go:noescape
func q5kDotsAVX2(w *byte, nb int, act *byte, actStride int, ntok int, out *float32, outStride int)

//go:noescape
func q80DotsAVX2(w *byte, nb int, act *byte, actStride int, ntok int, out *float32, outStride int)

//go:noescape
func q40DotsAVX2(w *byte, nb int, act *byte, actStride int, ntok int, out *float32, outStride int)

//go:noescape
func q6kDotsAVX2(w *byte, nb int, act *byte, actStride int, ntok int, out *float32, outStride int)

func newAVX512() *Impl {
	im := derive(generic, "avx512vnni")
	im.dots[dotKey{tensor.Q6_K, tensor.Q8_K}] = dotQ6KAVX512
	im.mats[dotKey{tensor.Q6_K, tensor.Q8_K}] = matQ6KAVX512
	im.dots[dotKey{tensor.Q4_K, tensor.Q8_K}] = func(w, a []byte, cols int) float32 { return dot1(q4kDotsAVX512, w, a, cols/256) }
	im.mats[dotKey{tensor.Q4_K, tensor.Q8_K}] = func(dst []float32, dstStride int, w, act []byte, n, cols, r0, r1 int) {
		tiledMat(q4kDotsAVX512, tensor.Q4_K, tensor.Q8_K, dst, dstStride, w, act, n, cols, r0, r1)
	}
	im.dots[dotKey{tensor.Q5_K, tensor.Q8_K}] = func(w, a []byte, cols int) float32 { return dot1(q5kDotsAVX512, w, a, cols/256) }
	im.mats[dotKey{tensor.Q5_K, tensor.Q8_K}] = func(dst []float32, dstStride int, w, act []byte, n, cols, r0, r1 int) {
		tiledMat(q5kDotsAVX512, tensor.Q5_K, tensor.Q8_K, dst, dstStride, w, act, n, cols, r0, r1)
	}
	for _, k := range []struct {
		wt   tensor.DType
		kern kernelFunc
	}{{tensor.Q8_0, q80DotsAVX512}, {tensor.Q4_0, q40DotsAVX512}} {
		wt, kern := k.wt, k.kern
		im.dots[dotKey{wt, tensor.Q8_0}] = func(w, a []byte, cols int) float32 { return dot1(kern, w, a, cols/32) }
		im.mats[dotKey{wt, tensor.Q8_0}] = func(dst []float32, dstStride int, w, act []byte, n, cols, r0, r1 int) {
			tiledMat(kern, wt, tensor.Q8_0, dst, dstStride, w, act, n, cols, r0, r1)
		}
	}
	installFloatAVX512(im)
	installAttnAVX512(im)
	installLayerAVX512(im)
	installQuantAVX512(im)
	return im
}

//go:noescape
func q6kDotsAVX512(w *byte, nb int, act *byte, actStride int, ntok int, out *float32, outStride int)

//go:noescape
func q4kDotsAVX512(w *byte, nb int, act *byte, actStride int, ntok int, out *float32, outStride int)

//go:noescape
func q80DotsAVX512(w *byte, nb int, act *byte, actStride int, ntok int, out *float32, outStride int)

//go:noescape
func q40DotsAVX512(w *byte, nb int, act *byte, actStride int, ntok int, out *float32, outStride int)

//go:noescape
func q5kDotsAVX512(w *byte, nb int, act *byte, actStride int, ntok int, out *float32, outStride int)

func dotQ6KAVX512(w, a []byte, cols int) float32 {
	var out float32
	q6kDotsAVX512(unsafe.SliceData(w), cols/256, unsafe.SliceData(a), 0, 1, &out, 0)
	return out
}

// dot1 runs a row kernel for a single token. (The out variable escapes
// through the function value; single dots are not on the hot path, which
// goes through the mats kernels.)
func dot1(kern kernelFunc, w, a []byte, nb int) float32 {
	var out float32
	kern(unsafe.SliceData(w), nb, unsafe.SliceData(a), 0, 1, &out, 0)
	return out
}

// Tiling of the matrix kernels: tokens are taken tileTokens at a time
// (one weight block unpacked serves them all; the Q4_K/Q5_K and AVX2
// kernels keep per-token state for at most 8), rows rowChunk at a time so
// that a chunk of weights stays in cache (32 Q6_K rows of 3072 values are
// 80 KiB) while every token group passes over it. The 8 activation rows
// of a group (up to 28 KiB for 3072 values) stay in the L1 cache.
const (
	tileTokens = 8
	rowChunk   = 32
)

// kernelFunc is the shape of the assembly row kernels.
type kernelFunc func(w *byte, nb int, act *byte, actStride int, ntok int, out *float32, outStride int)

// tiledMat runs kern over rows [r0, r1) and n tokens. Every (row, token)
// result is computed by the same per-pair instruction sequence whatever
// the tile, so the result is batch-invariant.
func tiledMat(kern kernelFunc, wt, at tensor.DType, dst []float32, dstStride int, w, act []byte, n, cols, r0, r1 int) {
	wrb, arb := rowBytes(wt, cols), rowBytes(at, cols)
	nb := cols / wt.BlockSize()
	for rc := r0; rc < r1; rc += rowChunk {
		rEnd := min(rc+rowChunk, r1)
		for j := 0; j < n; j += tileTokens {
			t := min(tileTokens, n-j)
			ap := &act[j*arb]
			for r := rc; r < rEnd; r++ {
				kern(&w[r*wrb], nb, ap, arb, t, &dst[j*dstStride+r], 4*dstStride)
			}
		}
	}
}

//go:noescape
func q6kRowsAVX512(w *byte, wrb, nrows, nb int, act *byte, actStride int, ntok int, out *float32, outStride int)

//go:noescape
func q6kRows2AVX512(w *byte, wrb, nrows, nb int, act *byte, actStride int, out *float32, outStride int)

//go:noescape
func q6kDots8AVX512(w *byte, nb int, act *byte, actStride int, out *float32, outStride int)

//go:noescape
func q6kDots4AVX512(w *byte, nb int, act *byte, actStride int, out *float32, outStride int)

// matQ6KAVX512 is tiledMat with the grouped kernels for tiles of exactly
// 8 or 4 tokens (they do the per-token work after the integer products
// for all the tokens at once), q6kRows2AVX512 for tiles of 2 (two
// sequences decoding together; a run of rows per call, the two tokens'
// per-block work shared) and q6kRowsAVX512 (a run of rows per call) for
// other counts; all give every (row, token) the reference's value.
func matQ6KAVX512(dst []float32, dstStride int, w, act []byte, n, cols, r0, r1 int) {
	const wt, at = tensor.Q6_K, tensor.Q8_K
	wrb, arb := rowBytes(wt, cols), rowBytes(at, cols)
	nb := cols / 256
	for rc := r0; rc < r1; rc += rowChunk {
		rEnd := min(rc+rowChunk, r1)
		for j := 0; j < n; j += tileTokens {
			t := min(tileTokens, n-j)
			ap := &act[j*arb]
			switch t {
			case 2:
				q6kRows2AVX512(&w[rc*wrb], wrb, rEnd-rc, nb, ap, arb, &dst[j*dstStride+rc], 4*dstStride)
			case 4, 8:
				for r := rc; r < rEnd; r++ {
					if t == 8 {
						q6kDots8AVX512(&w[r*wrb], nb, ap, arb, &dst[j*dstStride+r], 4*dstStride)
					} else {
						q6kDots4AVX512(&w[r*wrb], nb, ap, arb, &dst[j*dstStride+r], 4*dstStride)
					}
				}
			default:
				q6kRowsAVX512(&w[rc*wrb], wrb, rEnd-rc, nb, ap, arb, t, &dst[j*dstStride+rc], 4*dstStride)
			}
		}
	}
}
