package model

import (
	"fmt"
	"math"
	"testing"

	"github.com/gollm/gollm/gguf"
	"github.com/gollm/gollm/kernels"
	"github.com/gollm/gollm/tensor"
)

// naive64 computes the logits of a single token at position 0 in float64
// from dequantized weights: a debugging reference.
//
// With quant set, every matrix input first goes through quant, which
// models llama.cpp's activation rounding.
func naive64(t *testing.T, f *gguf.File, c Config, tok int32, quant func([]float64) []float64) []float64 {
	mat := func(name string) [][]float64 {
		tt, err := f.Tensor(name)
		if err != nil {
			t.Fatal(err)
		}
		cols := int(tt.Shape[0])
		rows := 1
		if len(tt.Shape) > 1 {
			rows = int(tt.Shape[1])
		}
		rb, _ := tensor.RowBytes(tt.Type, int64(cols))
		out := make([][]float64, rows)
		tmp := make([]float32, cols)
		for r := range out {
			if err := tensor.DequantizeRow(tt.Type, tmp, tt.Data[int64(r)*rb:int64(r+1)*rb]); err != nil {
				t.Fatal(err)
			}
			out[r] = make([]float64, cols)
			for i, v := range tmp {
				out[r][i] = float64(v)
			}
		}
		return out
	}
	mv := func(w [][]float64, x []float64) []float64 {
		if quant != nil {
			x = quant(x)
		}
		y := make([]float64, len(w))
		for r := range w {
			for i, v := range w[r] {
				y[r] += v * x[i]
			}
		}
		return y
	}
	norm := func(x, w []float64) []float64 {
		ss := 0.0
		for _, v := range x {
			ss += v * v
		}
		sc := 1 / math.Sqrt(ss/float64(len(x))+c.RMSEps)
		y := make([]float64, len(x))
		for i := range x {
			y[i] = x[i] * sc * w[i]
		}
		return y
	}
	x := append([]float64(nil), mat("token_embd.weight")[tok]...)
	for l := 0; l < c.Layers; l++ {
		p := fmt.Sprintf("blk.%d.", l)
		xn := norm(x, mat(p + "attn_norm.weight")[0])
		v := mv(mat(p+"attn_v.weight"), xn)
		if c.fam.qkvBias { // at position 0 only v matters: q and k see one key
			for i, b := range mat(p + "attn_v.bias")[0] {
				v[i] += b
			}
		}
		att := make([]float64, c.QDim)
		g := c.Heads / c.KVHeads
		for h := 0; h < c.Heads; h++ {
			copy(att[h*c.HeadDim:(h+1)*c.HeadDim], v[(h/g)*c.HeadDim:(h/g+1)*c.HeadDim])
		}
		o := mv(mat(p+"attn_output.weight"), att)
		for i := range x {
			x[i] += o[i]
		}
		xn = norm(x, mat(p + "ffn_norm.weight")[0])
		gate := mv(mat(p+"ffn_gate.weight"), xn)
		up := mv(mat(p+"ffn_up.weight"), xn)
		for i := range gate {
			gate[i] = gate[i] / (1 + math.Exp(-gate[i])) * up[i]
		}
		d := mv(mat(p+"ffn_down.weight"), gate)
		for i := range x {
			x[i] += d[i]
		}
	}
	xn := norm(x, mat("output_norm.weight")[0])
	head := "output.weight"
	if c.Tied {
		head = "token_embd.weight"
	}
	return mv(mat(head), xn)
}

// q8k rounds x as the activations of a K-quant product are rounded:
// quantized to Q8_K and read back.
func q8k(x []float64) []float64 {
	xf := make([]float32, len(x))
	for i := range x {
		xf[i] = float32(x[i])
	}
	rb, _ := tensor.RowBytes(tensor.Q8_K, int64(len(x)))
	buf := make([]byte, rb)
	kernels.QuantizeRow(tensor.Q8_K, buf, xf)
	bl := tensor.Blocks[tensor.BlockQ8_K](buf)
	out := make([]float64, len(x))
	for i := range out {
		out[i] = float64(bl[i/256].D) * float64(bl[i/256].Qs[i%256])
	}
	return out
}

// TestAgainstNaive compares gollm with a plain float64 implementation
// written out above, for a single token with 0 to 4 layers of the all-Q6_K
// model: the exact mode without rounding, the default mode with every
// matrix input rounded through Q8_K. A debugging aid that localises a
// fault to a layer; it also pins down that the default mode's rounding is
// exactly the one modelled.
func TestAgainstNaive(t *testing.T) {
	for _, model := range []string{"qwen3-tiny-q6k", "llama-tiny", "qwen2-tiny"} {
		t.Run(model, func(t *testing.T) { testAgainstNaive(t, model) })
	}
}

func testAgainstNaive(t *testing.T, model string) {
	fx0 := loadFixture(t, model, true, Options{})
	f := fx0.file
	for _, exact := range []bool{true, false} {
		quant := q8k
		if exact {
			quant = nil
		}
		for L := 0; L <= 4; L++ {
			fx := loadFixture(t, model, exact, Options{})
			fx.m.layers = fx.m.layers[:L]
			fx.m.stages[0].to = L
			c := fx.m.Config
			c.Layers = L
			ref := naive64(t, f, c, 5, quant)
			s := fx.state(t, 64, 4, tensor.F32)
			rows := runPrompt(t, fx.m, s, 0, []int32{5}, nil)
			w := 0.0
			for i := range ref {
				w = math.Max(w, math.Abs(ref[i]-float64(rows[0][i])))
			}
			if w > 1e-4 {
				t.Errorf("exact=%v, %d layers: largest difference %.3g", exact, L, w)
			}
		}
	}
}
