package kernels

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/gollm/gollm/gguf"
	"github.com/gollm/gollm/internal/testdata"
	"github.com/gollm/gollm/tensor"
)

// TestMatMulOnFixtureWeights multiplies every weight matrix of the two
// fixture models (all of F32, F16, Q8_0, Q4_K, Q5_K, Q6_K, written by
// llama-quantize) with random activations, in both modes and with every
// implementation: the implementations agree bit for bit, and the
// llama.cpp-like mode stays within the worst-case activation rounding
// error of the exact mode.
func TestMatMulOnFixtureWeights(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 22))
	for _, name := range []string{"qwen3-tiny-q6k.gguf", "qwen3-tiny-mixed.gguf"} {
		f, err := gguf.Open(testdata.Path("models", name))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		for _, info := range f.Tensors() {
			if len(info.Shape) != 2 {
				continue
			}
			tt, err := f.Tensor(info.Name)
			if err != nil {
				t.Fatal(err)
			}
			cols, rows := int(info.Shape[0]), int(info.Shape[1])
			rows = min(rows, 64)
			const n = 3
			x := randomFloats(rng, n*cols)
			at, err := ActType(info.Type)
			if err != nil {
				t.Fatalf("%s: %v", info.Name, err)
			}
			act := quantizeRows(generic, at, x, n, cols)
			exactAct := quantizeRows(generic, tensor.F32, x, n, cols)
			want := make([]float32, n*rows)
			generic.MatMul(want, rows, info.Type, tt.Data, at, act, n, cols, 0, rows)
			exact := make([]float32, n*rows)
			generic.MatMul(exact, rows, info.Type, tt.Data, tensor.F32, exactAct, n, cols, 0, rows)
			// Magnitude of each row's terms, for the closeness check.
			wf := make([]float32, cols)
			for r := 0; r < rows; r++ {
				if err := tensor.DequantizeRow(info.Type, wf, tt.Data[r*rowBytes(info.Type, cols):(r+1)*rowBytes(info.Type, cols)]); err != nil {
					t.Fatal(err)
				}
				for j := 0; j < n; j++ {
					// Worst case of rounding the activations: half a
					// quantization step per value (steps amax/127 per
					// block, or 2^-11 relative for halves), times |w|.
					var mag, bound float64
					xs := x[j*cols : (j+1)*cols]
					bs := max(at.BlockSize(), 32)
					amax := make([]float64, cols/bs)
					for i, u := range xs {
						amax[i/bs] = math.Max(amax[i/bs], math.Abs(float64(u)))
					}
					for i, v := range wf {
						mag += math.Abs(float64(v) * float64(xs[i]))
						step := math.Abs(float64(xs[i])) * math.Pow(2, -10)
						if at.BlockSize() > 1 {
							step = amax[i/bs] / 127 * 1.07 // Q8_0 scales are halves
						}
						bound += math.Abs(float64(v)) * step / 2
					}
					if d := math.Abs(float64(want[j*rows+r] - exact[j*rows+r])); d > bound+1e-5*mag {
						t.Errorf("%s %s (%v): row %d token %d: quantized-activation result %v, exact %v (magnitude %v)", name, info.Name, info.Type, r, j, want[j*rows+r], exact[j*rows+r], mag)
					}
				}
			}
			for _, im := range Implementations()[1:] {
				for _, mode := range []struct {
					at   tensor.DType
					a    []byte
					want []float32
				}{{at, act, want}, {tensor.F32, exactAct, exact}} {
					got := make([]float32, n*rows)
					im.MatMul(got, rows, info.Type, tt.Data, mode.at, mode.a, n, cols, 0, rows)
					if i := sameBits(got, mode.want); i >= 0 {
						t.Fatalf("%s %s %s×%v: entry %d = %v, reference %v", im, name, info.Name, mode.at, i, got[i], mode.want[i])
					}
				}
			}
		}
	}
}
