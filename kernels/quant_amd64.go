//go:build !purego

package kernels

import "github.com/gollm/gollm/tensor"

//go:noescape
func quantQ8KAVX512(dst *byte, x *float32, nb int)

// quantizeQ8KAVX512 is quantizeQ8KRef in AVX-512 (quant_amd64.s).
func quantizeQ8KAVX512(dst []byte, x []float32) {
	checkQuantizeArgs(tensor.Q8_K, dst, x)
	if nb := len(x) / 256; nb > 0 {
		quantQ8KAVX512(&dst[0], &x[0], nb)
	}
}

//go:noescape
func quantQ8KAVX2(dst *byte, x *float32, nb int)

// quantizeQ8KA2 is quantizeQ8KRef in AVX2 (quant_avx2_amd64.s).
func quantizeQ8KA2(dst []byte, x []float32) {
	checkQuantizeArgs(tensor.Q8_K, dst, x)
	if nb := len(x) / 256; nb > 0 {
		quantQ8KAVX2(&dst[0], &x[0], nb)
	}
}

// installQuantAVX512 puts the activation quantizers into im.
func installQuantAVX512(im *Impl) {
	im.quant[tensor.Q8_K] = quantizeQ8KAVX512
}

// installQuantAVX2 puts the AVX2 activation quantizers into im.
func installQuantAVX2(im *Impl) {
	im.quant[tensor.Q8_K] = quantizeQ8KA2
}
