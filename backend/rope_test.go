package backend

import (
	"math"
	"testing"
)

// TestRopeAngles checks Angles against the formulas of its comment,
// computed in float64: plain rope, linear scaling, and YaRN at both ends
// of its blend (the fastest pair extrapolates, the slowest interpolates).
func TestRopeAngles(t *testing.T) {
	const dims, pos = 128, 1000
	plain := Rope{Dims: dims, Base: 1e6, Scale: 1, AttnMul: 1, BetaFast: 32, BetaSlow: 1, OrigCtx: 32768}
	linear := plain
	linear.Scale = 0.25
	yarn := linear
	yarn.ExtMix = 1
	mYarn := 1 + 0.1*math.Log(4)
	theta := func(k int) float64 { return pos * math.Pow(1e6, -2*float64(k)/dims) }
	check := func(name string, r Rope, k int, angle, mscale float64) {
		t.Helper()
		cs := make([]float32, dims)
		r.Angles(cs, pos)
		if c, s := float64(cs[2*k]), float64(cs[2*k+1]); math.Abs(c-math.Cos(angle)*mscale) > 1e-4 || math.Abs(s-math.Sin(angle)*mscale) > 1e-4 {
			t.Errorf("%s, pair %d: (cos, sin) = (%g, %g), want (%g, %g)", name, k, c, s, math.Cos(angle)*mscale, math.Sin(angle)*mscale)
		}
	}
	for _, k := range []int{0, 1, 20, dims/2 - 1} {
		check("plain", plain, k, theta(k), 1)
		check("linear", linear, k, theta(k)/4, 1)
	}
	check("yarn", yarn, 0, theta(0), mYarn)
	check("yarn", yarn, dims/2-1, theta(dims/2-1)/4, mYarn)
}
