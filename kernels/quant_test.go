package kernels

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/gollm/gollm/tensor"
)

func TestActType(t *testing.T) {
	for w, want := range map[tensor.DType]tensor.DType{
		tensor.F32: tensor.F32, tensor.F16: tensor.F16, tensor.BF16: tensor.BF16,
		tensor.Q8_0: tensor.Q8_0, tensor.Q4_0: tensor.Q8_0, tensor.Q5_0: tensor.Q8_0,
		tensor.Q4_1: tensor.Q8_1, tensor.Q5_1: tensor.Q8_1,
		tensor.Q2_K: tensor.Q8_K, tensor.Q3_K: tensor.Q8_K, tensor.Q4_K: tensor.Q8_K,
		tensor.Q5_K: tensor.Q8_K, tensor.Q6_K: tensor.Q8_K,
	} {
		got, err := ActType(w)
		if err != nil || got != want {
			t.Errorf("ActType(%v) = %v, %v; want %v", w, got, err, want)
		}
	}
	for _, w := range []tensor.DType{tensor.Q8_K, tensor.IQ2_XXS, tensor.I32, tensor.DType(99)} {
		if _, err := ActType(w); err == nil {
			t.Errorf("ActType(%v) gave no error", w)
		}
	}
	for _, w := range Supported() {
		at, err := ActType(w)
		if err != nil || !canMultiply(generic, w, at) || !canMultiply(generic, w, tensor.F32) {
			t.Errorf("supported type %v: ActType %v (%v), cannot multiply", w, at, err)
		}
	}
}

// TestQuantizeQ8_0Cases pins the rounding of llama.cpp's x86
// quantize_row_q8_0 on hand-made blocks: amax = 127 makes id = 127/amax = 1
// and d = 1 exactly, so q = round(x) and ties show.
func TestQuantizeQ8_0Cases(t *testing.T) {
	x := make([]float32, 64)
	x[0] = 127
	vals := []float32{2.5, 3.5, -2.5, 0.5, 1.5, -0.5, 126.5, -126.5, 0.49999997, -1.5}
	want := []int8{2, 4, -2, 0, 2, 0, 126, -126, 0, -2} // ties to even (roundf would give 3, 4, -3, 1, 2, -1, 127, -127, 0, -2)
	copy(x[1:], vals)
	// Second block: all zeros except an all-negative maximum.
	for i := 32; i < 64; i++ {
		x[i] = -float32(i - 32)
	}
	for _, im := range Implementations() {
		dst := make([]byte, rowBytes(tensor.Q8_0, 64))
		im.QuantizeRow(tensor.Q8_0, dst, x)
		b := tensor.Blocks[tensor.BlockQ8_0](dst)
		if b[0].D != tensor.FloatToHalf(1) || b[0].Qs[0] != 127 {
			t.Fatalf("%s: block 0 d=%#x q0=%d", im, b[0].D, b[0].Qs[0])
		}
		for k, w := range want {
			if b[0].Qs[1+k] != w {
				t.Errorf("%s: q(%v) = %d, want %d", im, vals[k], b[0].Qs[1+k], w)
			}
		}
		// amax = 31: d = 31/127, id = 127/31; value -31 maps to -127.
		if b[1].D != tensor.FloatToHalf(float32(31)/127) || b[1].Qs[31] != -127 || b[1].Qs[0] != 0 {
			t.Errorf("%s: negative block d=%#x q=%v", im, b[1].D, b[1].Qs)
		}
		for j := 0; j < 32; j++ {
			id := float32(127) / 31
			if w := int8(math.RoundToEven(float64(-float32(j) * id))); b[1].Qs[j] != w {
				t.Errorf("%s: negative block q[%d] = %d, want %d", im, j, b[1].Qs[j], w)
			}
		}
		// A zero block.
		zero := make([]float32, 32)
		dz := make([]byte, 34)
		for i := range dz {
			dz[i] = 0xAA
		}
		im.QuantizeRow(tensor.Q8_0, dz, zero)
		for i, v := range dz {
			if v != 0 {
				t.Fatalf("%s: zero block byte %d = %#x", im, i, v)
			}
		}
	}
}

// TestQuantizeQ8KCases pins quantize_row_q8_K_ref: the signed maximum maps
// to -127, ties round to even, bsums are group sums, zero blocks are zero.
func TestQuantizeQ8KCases(t *testing.T) {
	x := make([]float32, 768)
	// Block 0: maximum -127 (negative) gives iscale = 1, so q = round(x).
	x[5] = -127
	x[6] = 127 // same |x|, later: the first one wins
	x[7], x[8], x[9], x[10] = 2.5, -2.5, 3.5, 0.5
	// Block 1: maximum +127 gives iscale = -1, q = -round(x).
	x[256+3] = 127
	x[256+4], x[256+5] = 2.5, -1.5
	// Block 2 stays zero.
	want0 := map[int]int8{5: -127, 6: 127, 7: 2, 8: -2, 9: 4, 10: 0}
	want1 := map[int]int8{3: -127, 4: -2, 5: 2}
	for _, im := range Implementations() {
		dst := make([]byte, rowBytes(tensor.Q8_K, 768))
		for i := range dst {
			dst[i] = 0x55
		}
		im.QuantizeRow(tensor.Q8_K, dst, x)
		b := tensor.Blocks[tensor.BlockQ8_K](dst)
		if b[0].D != 1 || b[1].D != -1 || b[2].D != 0 {
			t.Errorf("%s: d = %v %v %v, want 1 -1 0", im, b[0].D, b[1].D, b[2].D)
		}
		for blk, want := range []map[int]int8{want0, want1, {}} {
			for j := 0; j < 256; j++ {
				if b[blk].Qs[j] != want[j] {
					t.Errorf("%s: block %d q[%d] = %d, want %d", im, blk, j, b[blk].Qs[j], want[j])
				}
			}
			for g := 0; g < 16; g++ {
				var s int16
				for _, q := range b[blk].Qs[16*g : 16*g+16] {
					s += int16(q)
				}
				if b[blk].Bsums[g] != s {
					t.Errorf("%s: block %d bsum[%d] = %d, want %d", im, blk, g, b[blk].Bsums[g], s)
				}
			}
		}
	}
}

// TestQuantizeImpls checks every implementation's quantizers bit for bit
// against the reference on random rows (odd block counts, outliers, zero
// blocks), with a destination at an odd address.
func TestQuantizeImpls(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, at := range []tensor.DType{tensor.Q8_K, tensor.Q8_0, tensor.Q8_1, tensor.F16, tensor.BF16, tensor.F32} {
		bs := at.BlockSize()
		for _, blocks := range []int{1, 2, 3, 5, 12} {
			cols := blocks * max(bs, 32)
			if at == tensor.F16 || at == tensor.F32 || at == tensor.BF16 {
				cols += blocks // odd lengths for the plain types
			}
			x := randomFloats(rng, cols)
			if blocks == 3 {
				for i := 0; i < max(bs, 32); i++ {
					x[i] = 0
				}
			}
			want := make([]byte, rowBytes(at, cols))
			quantizeRowRef(at, want, x)
			for _, im := range Implementations() {
				got := shifted(make([]byte, len(want)))
				im.QuantizeRow(at, got, shiftedFloats(x))
				if string(got) != string(want) {
					t.Errorf("%s: QuantizeRow(%v, %d values) differs from the reference", im, at, cols)
				}
			}
		}
	}
}

// TestQuantizeMatchesDequant: a quantized row dequantizes back close to x.
func TestQuantizeMatchesDequant(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	x := randomFloats(rng, 1024)
	for _, at := range []tensor.DType{tensor.Q8_K, tensor.Q8_0, tensor.F16, tensor.BF16, tensor.F32} {
		q := make([]byte, rowBytes(at, len(x)))
		QuantizeRow(at, q, x)
		back := make([]float32, len(x))
		if err := tensor.DequantizeRow(at, back, q); err != nil {
			t.Fatal(err)
		}
		bs := max(at.BlockSize(), 32)
		for i := range x {
			var amax float64
			for _, v := range x[i/bs*bs : i/bs*bs+bs] {
				amax = math.Max(amax, math.Abs(float64(v)))
			}
			tol := amax / 127 * 0.5001 // Q8_K: d is a float32
			if at == tensor.Q8_0 || at == tensor.Q8_1 {
				tol = amax / 127 * (0.5 + 127.0/2048) // d rounded to a half: 2^-11 relative on up to 127 steps
			}
			if at == tensor.F16 || at == tensor.BF16 || at == tensor.F32 {
				tol = math.Abs(float64(x[i])) / 128
			}
			if d := math.Abs(float64(back[i] - x[i])); d > tol*1.001 {
				t.Fatalf("%v: value %d: %v came back as %v (tolerance %v)", at, i, x[i], back[i], tol)
			}
		}
	}
}
