//go:build !purego

package kernels

// Go sides of layer_amd64.s: the assembly does whole multiples of 16
// values, Go the rest, in the reference's order.

//go:noescape
func sumSquaresMain(x *float32, n int) float64

//go:noescape
func rmsApplyMain(dst, x, w *float32, scale float32, n int)

//go:noescape
func maxMain(x *float32, n int) (m float32, nan bool)

//go:noescape
func expSumMain(x *float32, n int, m float32) float64

//go:noescape
func scaleMain(x *float32, s float32, n int)

//go:noescape
func expMain(dst, x *float32, n int)

//go:noescape
func addMain(dst, x *float32, n int)

//go:noescape
func ropeMain(x *float32, heads, half int, cos, sin *float32)

//go:noescape
func swiGLUMain(dst, gate, up *float32, n int)

func rmsNormAVX512(dst, x, w []float32, eps float32) {
	full := len(x) / sumLanes * sumLanes
	var sum float64
	if full > 0 {
		sum = sumSquaresMain(&x[0], full)
	}
	for _, v := range x[full:] {
		sum += float64(float32(v * v))
	}
	scale := rmsScale(sum, len(x), eps)
	if full > 0 {
		rmsApplyMain(&dst[0], &x[0], &w[0], scale, full)
	}
	rmsNormApply(dst[full:], x[full:], w[full:], scale)
}

func softmaxAVX512(x []float32) {
	full := len(x) / sumLanes * sumLanes
	if full == 0 {
		softmaxRef(x)
		return
	}
	m, nan := maxMain(&x[0], full)
	for _, v := range x[full:] {
		m = max(m, v)
	}
	if nan || m != m {
		softmaxRef(x) // NaN in, NaN out: leave the details to the reference
		return
	}
	sum := expSumMain(&x[0], full, m)
	for i := full; i < len(x); i++ {
		e := Exp(x[i] - m)
		x[i] = e
		sum += float64(e)
	}
	scaleAVX512(x, float32(1/sum))
}

func scaleAVX512(x []float32, s float32) {
	full := len(x) / 16 * 16
	if full > 0 {
		scaleMain(&x[0], s, full)
	}
	scaleRef(x[full:], s)
}

func swiGLUAVX512(dst, gate, up []float32) {
	full := len(gate) / 16 * 16
	if full > 0 {
		swiGLUMain(&dst[0], &gate[0], &up[0], full)
	}
	swiGLURef(dst[full:], gate[full:], up[full:])
}

func expVecAVX512(dst, x []float32) {
	full := len(x) / 16 * 16
	if full > 0 {
		expMain(&dst[0], &x[0], full)
	}
	expVecRef(dst[full:], x[full:])
}

func ropeAVX512(x []float32, dims int, cos, sin []float32) {
	if dims%32 != 0 || len(x) == 0 {
		ropeRef(x, dims, cos, sin)
		return
	}
	ropeMain(&x[0], len(x)/dims, dims/2, &cos[0], &sin[0])
}

func addAVX512(dst, x []float32) {
	full := len(x) / 16 * 16
	if full > 0 {
		addMain(&dst[0], &x[0], full)
	}
	addRef(dst[full:], x[full:])
}

// installLayerAVX512 puts the layer kernels into im.
func installLayerAVX512(im *Impl) {
	im.rmsNorm = rmsNormAVX512
	im.softmax = softmaxAVX512
	im.scale = scaleAVX512
	im.swiGLU = swiGLUAVX512
	im.exp = expVecAVX512
	im.rope = ropeAVX512
	im.add = addAVX512
}
