package kernels

import (
	"fmt"
	"os"

	"github.com/gollm/gollm/tensor"
)

// An Impl is one complete set of kernels: the plain-Go reference
// ("generic") or a SIMD version for some CPU feature level. A SIMD Impl
// starts as a copy of the reference and replaces the entries it speeds up,
// so every Impl can do everything.
//
// The package-level functions (MatMul, QuantizeRow, Dot, ...) call the
// active Impl, chosen once at start-up: the best one this CPU can run, or
// the one named by the environment variable GOLLM_KERNELS (for example
// GOLLM_KERNELS=generic) when it is set and available. Tests and
// benchmarks call the methods of each Impl in Implementations directly.
type Impl struct {
	// Name identifies the implementation: "generic", "avx2", "avx512vnni".
	Name string

	// dots maps (weight type, activation type) to the dot product of one
	// weight row with one activation row.
	dots map[dotKey]dotKernel
	// mats optionally maps a (weight, activation) pair to a whole matrix
	// kernel that serves several tokens per pass over the weights. It must
	// give, for every (row, token), exactly what dots gives.
	mats map[dotKey]matKernel
	// quant maps an activation type to its row quantizer.
	quant map[tensor.DType]func(dst []byte, x []float32)

	// Element-wise kernels (see vec.go for what each computes).
	dot      func(x, y []float32) float32
	dotF16   func(x []float32, h []uint16) float32
	axpy     func(dst []float32, alpha float32, x []float32)
	axpyF16  func(dst []float32, alpha float32, h []uint16)
	scale    func(dst []float32, s float32)
	add      func(dst, x []float32)
	mul      func(dst, x []float32)
	f32ToF16 func(dst []uint16, src []float32)
	f16ToF32 func(dst []float32, src []uint16)
	rmsNorm  func(dst, x, w []float32, eps float32)
	swiGLU   func(dst, gate, up []float32)
	softmax  func(x []float32)
	exp      func(dst, x []float32)
	rope     func(x []float32, dims int, cos, sin []float32)
	ropeNorm func(x []float32, dims int, cos, sin []float32)

	// Attention kernels (attn.go).
	attnScores    func(dst []float32, dstStride int, q []float32, heads, d int, k []float32, kStride, rows int, scale float32)
	attnScoresF16 func(dst []float32, dstStride int, q []float32, heads, d int, k []uint16, kStride, rows int, scale float32)
	attnValues    func(out []float32, heads, d int, p []float32, pStride int, v []float32, vStride, rows int)
	attnValuesF16 func(out []float32, heads, d int, p []float32, pStride int, v []uint16, vStride, rows int)
}

// dotKey names a pairing of weight and activation types.
type dotKey struct{ w, a tensor.DType }

// matKernel multiplies weight rows [r0, r1) with n activation rows:
// dst[j*dstStride + r] = dot(row r, activation j). The arguments have been
// checked by MatMul.
type matKernel func(dst []float32, dstStride int, w, act []byte, n, cols, r0, r1 int)

// generic is the plain-Go reference implementation; it always exists.
var generic = &Impl{
	Name: "generic",
	dots: map[dotKey]dotKernel{
		{tensor.F32, tensor.F32}:   dotF32F32Row,
		{tensor.F16, tensor.F16}:   dotF16F16Row,
		{tensor.F16, tensor.F32}:   dotF16F32Row,
		{tensor.BF16, tensor.BF16}: dotBF16BF16Row,
		{tensor.BF16, tensor.F32}:  dotBF16F32Row,
		{tensor.Q8_0, tensor.Q8_0}: dotQ8_0Q8_0Ref,
		{tensor.Q4_0, tensor.Q8_0}: dotQ4_0Q8_0Ref,
		{tensor.Q5_0, tensor.Q8_0}: dotQ5_0Q8_0Ref,
		{tensor.Q4_1, tensor.Q8_1}: dotQ4_1Q8_1Ref,
		{tensor.Q5_1, tensor.Q8_1}: dotQ5_1Q8_1Ref,
		{tensor.Q2_K, tensor.Q8_K}: dotQ2KQ8KRef,
		{tensor.Q3_K, tensor.Q8_K}: dotQ3KQ8KRef,
		{tensor.Q4_K, tensor.Q8_K}: dotQ4KQ8KRef,
		{tensor.Q5_K, tensor.Q8_K}: dotQ5KQ8KRef,
		{tensor.Q6_K, tensor.Q8_K}: dotQ6KQ8KRef,
	},
	mats: map[dotKey]matKernel{},
	quant: map[tensor.DType]func(dst []byte, x []float32){
		tensor.F32:  func(dst []byte, x []float32) { quantizeRowRef(tensor.F32, dst, x) },
		tensor.F16:  func(dst []byte, x []float32) { quantizeRowRef(tensor.F16, dst, x) },
		tensor.BF16: func(dst []byte, x []float32) { quantizeRowRef(tensor.BF16, dst, x) },
		tensor.Q8_0: func(dst []byte, x []float32) { quantizeRowRef(tensor.Q8_0, dst, x) },
		tensor.Q8_1: func(dst []byte, x []float32) { quantizeRowRef(tensor.Q8_1, dst, x) },
		tensor.Q8_K: func(dst []byte, x []float32) { quantizeRowRef(tensor.Q8_K, dst, x) },
	},
	dot:      dotF32Ref,
	dotF16:   dotF16F32Ref,
	axpy:     axpyRef,
	axpyF16:  axpyF16Ref,
	scale:    scaleRef,
	add:      addRef,
	mul:      mulRef,
	f32ToF16: f32ToF16Ref,
	f16ToF32: f16ToF32Ref,
	rmsNorm:  rmsNormRef,
	swiGLU:   swiGLURef,
	softmax:  softmaxRef,
	exp:      expVecRef,
	rope:     ropeRef,
	ropeNorm: ropeNormRef,

	attnScores:    attnScoresRef,
	attnScoresF16: attnScoresF16Ref,
	attnValues:    attnValuesRef,
	attnValuesF16: attnValuesF16Ref,
}

// Row adapters from raw bytes to the typed float references.
func dotF32F32Row(w, a []byte, cols int) float32 {
	return dotF32Ref(float32s(w)[:cols], float32s(a)[:cols])
}
func dotF16F16Row(w, a []byte, cols int) float32 {
	return dotF16F16Ref(uint16s(w)[:cols], uint16s(a)[:cols])
}
func dotF16F32Row(w, a []byte, cols int) float32 {
	return dotF16F32Ref(float32s(a)[:cols], uint16s(w)[:cols])
}
func dotBF16BF16Row(w, a []byte, cols int) float32 {
	return dotBF16BF16Ref(uint16s(w)[:cols], uint16s(a)[:cols])
}
func dotBF16F32Row(w, a []byte, cols int) float32 {
	return dotBF16F32Ref(uint16s(w)[:cols], float32s(a)[:cols])
}

// derive returns a copy of base (maps copied too) under a new name, for a
// SIMD implementation to override entries of.
func derive(base *Impl, name string) *Impl {
	c := *base
	c.Name = name
	c.dots = make(map[dotKey]dotKernel, len(base.dots))
	for k, v := range base.dots {
		c.dots[k] = v
	}
	c.mats = make(map[dotKey]matKernel, len(base.mats))
	for k, v := range base.mats {
		c.mats[k] = v
	}
	c.quant = make(map[tensor.DType]func([]byte, []float32), len(base.quant))
	for k, v := range base.quant {
		c.quant[k] = v
	}
	return &c
}

// available lists the implementations this machine can run, reference
// first and best last. archImpls (impl_amd64.go, or impl_other.go) adds
// the SIMD ones whose CPU features are present.
var available = append([]*Impl{generic}, archImpls()...)

// active is the implementation the package-level functions use.
var active = chooseImpl()

func chooseImpl() *Impl {
	if name := os.Getenv("GOLLM_KERNELS"); name != "" {
		if im := Lookup(name); im != nil {
			return im
		}
	}
	return available[len(available)-1]
}

// Implementations lists every implementation this machine can run, the
// plain-Go reference first.
func Implementations() []*Impl { return append([]*Impl(nil), available...) }

// Active is the implementation in use.
func Active() *Impl { return active }

// Lookup finds an available implementation by name, or returns nil.
func Lookup(name string) *Impl {
	for _, im := range available {
		if im.Name == name {
			return im
		}
	}
	return nil
}

// SetActive switches the package-level functions to the named
// implementation (for benchmarks and experiments). It is not safe to call
// while kernels run on other goroutines.
func SetActive(name string) error {
	im := Lookup(name)
	if im == nil {
		return fmt.Errorf("%w: no kernel implementation %q on this machine", ErrUnsupported, name)
	}
	active = im
	return nil
}

// String returns the implementation's name.
func (im *Impl) String() string { return im.Name }
