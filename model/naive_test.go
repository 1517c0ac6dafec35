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
// With round set, every matrix input first goes through the rounding
// llama.cpp applies to the activations of a product with that matrix's
// type: Q8_K for the K-quants, Q8_0 for Q8_0, none for F32.
func naive64(t *testing.T, f *gguf.File, c Config, tok int32, round bool) []float64 {
	// mat dequantizes a tensor into rows; a 3-D expert tensor gives every
	// expert's rows in turn.
	mat := func(name string) ([][]float64, tensor.DType) {
		tt, err := f.Tensor(name)
		if err != nil {
			t.Fatal(err)
		}
		cols := int(tt.Shape[0])
		rows := 1
		for _, n := range tt.Shape[1:] {
			rows *= int(n)
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
		return out, tt.Type
	}
	vec := func(name string) []float64 { m, _ := mat(name); return m[0] }
	// mvRows multiplies rows [lo, hi) of a matrix (all: hi 0) by x.
	mvRows := func(name string, lo, hi int, x []float64) []float64 {
		w, dt := mat(name)
		if hi == 0 {
			hi = len(w)
		}
		if round {
			switch dt {
			case tensor.Q8_0:
				x = q80(x)
			case tensor.F32:
			default:
				x = q8k(x)
			}
		}
		y := make([]float64, hi-lo)
		for r := lo; r < hi; r++ {
			for i, v := range w[r] {
				y[r-lo] += v * x[i]
			}
		}
		return y
	}
	mv := func(name string, x []float64) []float64 { return mvRows(name, 0, 0, x) }
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
	swiglu := func(gate, up []float64) []float64 {
		for i := range gate {
			gate[i] = gate[i] / (1 + math.Exp(-gate[i])) * up[i]
		}
		return gate
	}
	emb, _ := mat("token_embd.weight")
	x := append([]float64(nil), emb[tok]...)
	for l := 0; l < c.Layers; l++ {
		p := fmt.Sprintf("blk.%d.", l)
		xn := norm(x, vec(p+"attn_norm.weight"))
		v := mv(p+"attn_v.weight", xn)
		if c.fam.qkvBias { // at position 0 only v matters: q and k see one key
			for i, b := range vec(p + "attn_v.bias") {
				v[i] += b
			}
		}
		att := make([]float64, c.QDim)
		g := c.Heads / c.KVHeads
		for h := 0; h < c.Heads; h++ {
			copy(att[h*c.HeadDim:(h+1)*c.HeadDim], v[(h/g)*c.HeadDim:(h/g+1)*c.HeadDim])
		}
		o := mv(p+"attn_output.weight", att)
		for i := range x {
			x[i] += o[i]
		}
		xn = norm(x, vec(p+"ffn_norm.weight"))
		if c.fam.ffn == ffnMoE {
			// softmax over the router logits, the top k, renormalised.
			logits := mv(p+"ffn_gate_inp.weight", xn)
			sel, w := routeRef64(logits, c.ExpertsUsed)
			for r, e := range sel {
				ff := int(e) * c.ExpertFF
				h := swiglu(mvRows(p+"ffn_gate_exps.weight", ff, ff+c.ExpertFF, xn), mvRows(p+"ffn_up_exps.weight", ff, ff+c.ExpertFF, xn))
				d := mvRows(p+"ffn_down_exps.weight", int(e)*c.Embd, int(e+1)*c.Embd, h)
				for i := range x {
					x[i] += w[r] * d[i]
				}
			}
			continue
		}
		h := swiglu(mv(p+"ffn_gate.weight", xn), mv(p+"ffn_up.weight", xn))
		d := mv(p+"ffn_down.weight", h)
		for i := range x {
			x[i] += d[i]
		}
	}
	xn := norm(x, vec("output_norm.weight"))
	head := "output.weight"
	if c.Tied {
		head = "token_embd.weight"
	}
	return mv(head, xn)
}

// routeRef64 is routeRef on float64 logits.
func routeRef64(logits []float64, k int) ([]int32, []float64) {
	l32 := make([]float32, len(logits))
	for i, v := range logits {
		l32[i] = float32(v)
	}
	return routeRef(l32, k)
}

// q80 rounds x as the activations of a Q8_0 product are rounded.
func q80(x []float64) []float64 {
	xf := make([]float32, len(x))
	for i := range x {
		xf[i] = float32(x[i])
	}
	rb, _ := tensor.RowBytes(tensor.Q8_0, int64(len(x)))
	buf := make([]byte, rb)
	kernels.QuantizeRow(tensor.Q8_0, buf, xf)
	bl := tensor.Blocks[tensor.BlockQ8_0](buf)
	out := make([]float64, len(x))
	for i := range out {
		out[i] = float64(tensor.HalfToFloat(bl[i/32].D)) * float64(bl[i/32].Qs[i%32])
	}
	return out
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
// written out above, for a single token with 0 to all layers of each
// fixture (qwen3moe-tiny: router, top-2 of 8 experts): the exact mode
// without rounding, the default mode with every matrix input rounded as
// its type asks (Q8_K; Q8_0 for qwen3moe's attn_v; none for its F32
// router). A debugging aid that localises a
// fault to a layer; it also pins down that the default mode's rounding is
// exactly the one modelled.
func TestAgainstNaive(t *testing.T) {
	for _, model := range []string{"qwen3-tiny-q6k", "llama-tiny", "qwen2-tiny", "qwen3moe-tiny"} {
		t.Run(model, func(t *testing.T) { testAgainstNaive(t, model) })
	}
}

func testAgainstNaive(t *testing.T, model string) {
	fx0 := loadFixture(t, model, true, Options{})
	f := fx0.file
	for _, exact := range []bool{true, false} {
		for L := 0; L <= fx0.m.Config.Layers; L++ {
			fx := loadFixture(t, model, exact, Options{})
			fx.m.layers = fx.m.layers[:L]
			fx.m.stages[0].to = L
			c := fx.m.Config
			c.Layers = L
			ref := naive64(t, f, c, 5, !exact)
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
