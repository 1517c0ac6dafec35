package tensor

import (
	"testing"
)

// BenchmarkDequantizeRow measures DequantizeRow per type on a 4096-value
// row (one row of a 4096-wide weight matrix). Throughput (MB/s) counts the
// bytes read (the quantized row), so it compares with memory bandwidth:
// a matrix-vector product over dequantized weights cannot go faster than
// its dequantization.
func BenchmarkDequantizeRow(b *testing.B) {
	const n = 4096
	x := ggmlTestData(0, n, 2)
	for _, typ := range quantTypes {
		rb, _ := RowBytes(typ, n)
		src := make([]byte, rb)
		if err := QuantizeRow(typ, src, x); err != nil {
			b.Fatal(err)
		}
		dst := make([]float32, n)
		b.Run(typ.String(), func(b *testing.B) {
			b.SetBytes(rb)
			for b.Loop() {
				if err := DequantizeRow(typ, dst, src); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkQuantizeRow measures the reference quantizers on the same row;
// throughput counts the float32 bytes read. The K-quant searches make
// these far slower than dequantization.
func BenchmarkQuantizeRow(b *testing.B) {
	const n = 4096
	x := ggmlTestData(0, n, 2)
	for _, typ := range quantTypes {
		rb, _ := RowBytes(typ, n)
		dst := make([]byte, rb)
		b.Run(typ.String(), func(b *testing.B) {
			b.SetBytes(4 * n)
			for b.Loop() {
				if err := QuantizeRow(typ, dst, x); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
