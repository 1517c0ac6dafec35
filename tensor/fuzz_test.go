package tensor

import (
	"encoding/binary"
	"math"
	"testing"
)

// FuzzDequantizeRow: any type number and any bytes give an error or a
// result, never a panic; a supported type with the right byte count
// always succeeds.
func FuzzDequantizeRow(f *testing.F) {
	f.Add(uint32(Q6_K), 256, make([]byte, 210))
	f.Add(uint32(Q4_K), 256, make([]byte, 144))
	f.Add(uint32(IQ2_XXS), 256, make([]byte, 66))
	f.Add(uint32(999), 1, []byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, typ uint32, n int, data []byte) {
		if n < 0 || n > 1<<16 {
			return
		}
		dst := make([]float32, n)
		err := DequantizeRow(DType(typ), dst, data)
		if err == nil {
			return
		}
		if CanDequantize(DType(typ)) && n%DType(typ).BlockSize() == 0 && len(data) == n/DType(typ).BlockSize()*DType(typ).BlockBytes() {
			t.Fatalf("%s: valid row rejected: %v", DType(typ), err)
		}
	})
}

// FuzzQuantizeRow: arbitrary float32 bit patterns (NaN, infinities,
// subnormals, huge values) quantize and dequantize without panicking, and
// finite inputs of moderate size give finite outputs.
func FuzzQuantizeRow(f *testing.F) {
	seed := make([]byte, 4*256)
	for i, v := range []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1)), 1e-45, 3e38, -3e38, 0, 1} {
		binary.LittleEndian.PutUint32(seed[4*i:], math.Float32bits(v))
	}
	f.Add(seed)
	f.Fuzz(func(t *testing.T, raw []byte) {
		x := make([]float32, 256)
		finite := true
		for i := range x {
			if 4*i+4 <= len(raw) {
				x[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
			}
			if v := float64(x[i]); math.IsNaN(v) || math.Abs(v) > 1e4 {
				finite = false
			}
		}
		for _, typ := range quantTypes {
			rb, _ := RowBytes(typ, 256)
			q := make([]byte, rb)
			if err := QuantizeRow(typ, q, x); err != nil {
				t.Fatal(err)
			}
			y := make([]float32, 256)
			if err := DequantizeRow(typ, y, q); err != nil {
				t.Fatal(err)
			}
			if !finite {
				continue
			}
			for i, v := range y {
				if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
					t.Fatalf("%s: finite input gave %g at %d", typ, v, i)
				}
			}
		}
	})
}
