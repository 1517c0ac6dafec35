//go:build !purego

package kernels

// Go sides of layer_avx2_amd64.s: the assembly does whole multiples of 16
// (sums) or 8 values, Go the rest, in the reference's order.

//go:noescape
func sumSquaresAVX2(x *float32, n int) float64

//go:noescape
func rmsApplyAVX2(dst, x, w *float32, scale float32, n int)

//go:noescape
func maxAVX2(x *float32, n int) (m float32, nan bool)

//go:noescape
func expSumAVX2(x *float32, n int, m float32) float64

//go:noescape
func scaleAVX2(x *float32, s float32, n int)

//go:noescape
func addAVX2(dst, x *float32, n int)

//go:noescape
func expAVX2(dst, x *float32, n int)

//go:noescape
func swiGLUAVX2(dst, gate, up *float32, n int)

//go:noescape
func ropeAVX2(x *float32, heads, half int, cos, sin *float32)

func rmsNormA2(dst, x, w []float32, eps float32) {
	full := len(x) / sumLanes * sumLanes
	var sum float64
	if full > 0 {
		sum = sumSquaresAVX2(&x[0], full)
	}
	for _, v := range x[full:] {
		sum += float64(float32(v * v))
	}
	scale := rmsScale(sum, len(x), eps)
	if n8 := len(x) / 8 * 8; n8 > 0 {
		rmsApplyAVX2(&dst[0], &x[0], &w[0], scale, n8)
		rmsNormApply(dst[n8:], x[n8:], w[n8:], scale)
		return
	}
	rmsNormApply(dst, x, w, scale)
}

func softmaxA2(x []float32) {
	full := len(x) / sumLanes * sumLanes
	if full == 0 {
		softmaxRef(x)
		return
	}
	m, nan := maxAVX2(&x[0], full)
	for _, v := range x[full:] {
		m = max(m, v)
	}
	if nan || m != m {
		softmaxRef(x)
		return
	}
	sum := expSumAVX2(&x[0], full, m)
	for i := full; i < len(x); i++ {
		e := Exp(x[i] - m)
		x[i] = e
		sum += float64(e)
	}
	scaleA2(x, float32(1/sum))
}

func scaleA2(x []float32, s float32) {
	n8 := len(x) / 8 * 8
	if n8 > 0 {
		scaleAVX2(&x[0], s, n8)
	}
	scaleRef(x[n8:], s)
}

func addA2(dst, x []float32) {
	n8 := len(x) / 8 * 8
	if n8 > 0 {
		addAVX2(&dst[0], &x[0], n8)
	}
	addRef(dst[n8:], x[n8:])
}

func expVecA2(dst, x []float32) {
	n8 := len(x) / 8 * 8
	if n8 > 0 {
		expAVX2(&dst[0], &x[0], n8)
	}
	expVecRef(dst[n8:], x[n8:])
}

func swiGLUA2(dst, gate, up []float32) {
	n8 := len(gate) / 8 * 8
	if n8 > 0 {
		swiGLUAVX2(&dst[0], &gate[0], &up[0], n8)
	}
	swiGLURef(dst[n8:], gate[n8:], up[n8:])
}

func ropeA2(x []float32, dims int, cos, sin []float32) {
	if dims%16 != 0 || len(x) == 0 {
		ropeRef(x, dims, cos, sin)
		return
	}
	ropeAVX2(&x[0], len(x)/dims, dims/2, &cos[0], &sin[0])
}

// installLayerAVX2 puts the AVX2 layer kernels into im.
func installLayerAVX2(im *Impl) {
	im.rmsNorm = rmsNormA2
	im.softmax = softmaxA2
	im.scale = scaleA2
	im.add = addA2
	im.exp = expVecA2
	im.swiGLU = swiGLUA2
	im.rope = ropeA2
}
