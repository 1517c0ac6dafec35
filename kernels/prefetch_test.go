package kernels

import "testing"

// TestPrefetch: Prefetch changes nothing and accepts any arguments,
// including rows that run past the slice (skipped), empty slices and
// zero or negative counts.
func TestPrefetch(t *testing.T) {
	x := make([]uint16, 1000)
	for i := range x {
		x[i] = uint16(i)
	}
	y := make([]float32, 77)
	for _, c := range []struct{ stride, rows, n int }{
		{0, 0, 0}, {10, 3, 10}, {100, 10, 100}, {100, 11, 100}, {100, 50, 64},
		{7, 1000, 3}, {0, 5, 1000}, {0, 1, 1001}, {-1, 2, 2}, {10, -1, 2}, {10, 2, -1}, {1 << 40, 2, 1},
	} {
		Prefetch(x, c.stride, c.rows, c.n)
		Prefetch(x[1:], c.stride, c.rows, c.n) // unaligned
		Prefetch(y, c.stride, c.rows, c.n)
		Prefetch([]byte(nil), c.stride, c.rows, c.n)
	}
	for i := range x {
		if x[i] != uint16(i) {
			t.Fatalf("x[%d] = %d", i, x[i])
		}
	}
}
