package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/gollm/gollm/tensor"
)

// TestMatMulLarge: implementations that switch to another kernel for
// larger products (the AMX tiles take 16 rows and 16 or more tokens at a
// time) agree with the reference bit for bit on such products too: token
// counts around multiples of 16 and 32, row ranges that start anywhere
// and leave a partial group of 16 rows, NaN canaries around the output.
func TestMatMulLarge(t *testing.T) {
	rng := rand.New(rand.NewPCG(41, 42))
	for _, wt := range []tensor.DType{tensor.Q6_K} {
		at, _ := ActType(wt)
		for _, cols := range []int{256, 768} {
			const rows = 53
			w := shifted(randomWeights(rng, wt, rows, cols))
			const maxN = 70
			x := randomFloats(rng, maxN*cols)
			a := shifted(quantizeRows(generic, at, x, maxN, cols))
			for _, n := range []int{15, 16, 17, 31, 32, 33, 48, 63, 70} {
				r0, r1 := rng.IntN(5), rows-rng.IntN(5)
				c := matMulCase{wt, at, rows, cols, n, r0, r1, rows + 3}
				want := runCase(t, generic, c, w, a)
				for _, im := range Implementations()[1:] {
					got := runCase(t, im, c, w, a)
					for j := 0; j < n; j++ {
						for r := r0; r < r1; r++ {
							if g, w := got.at(j, r), want.at(j, r); math.Float32bits(g) != math.Float32bits(w) {
								t.Fatalf("%s %v cols=%d n=%d rows [%d,%d): (token %d, row %d) = %v, reference %v", im, wt, cols, n, r0, r1, j, r, g, w)
							}
						}
					}
				}
			}
		}
	}
	_ = fmt.Sprint
}
