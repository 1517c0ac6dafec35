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

// TestRopeFactors: Factors divides each pair's angle before anything
// else: factors of 1 change nothing, and a factor f on pair k gives the
// angle pos·θ_k/f (checked with YaRN too, where the division comes
// before the blend).
func TestRopeFactors(t *testing.T) {
	const dims = 16
	for _, ext := range []float32{0, 1} {
		base := Rope{Dims: dims, Base: 500000, Scale: 0.25, ExtMix: ext, AttnMul: 1, BetaFast: 32, BetaSlow: 1, OrigCtx: 64}
		ones := make([]float32, dims/2)
		for i := range ones {
			ones[i] = 1
		}
		withOnes := base
		withOnes.Factors = &ones
		want, got := make([]float32, dims), make([]float32, dims)
		for _, pos := range []int{0, 1, 7, 1000, 100000} {
			base.Angles(want, pos)
			withOnes.Angles(got, pos)
			for i := range want {
				if math.Float32bits(want[i]) != math.Float32bits(got[i]) {
					t.Fatalf("ext %g pos %d: factors of 1 changed value %d: %g, want %g", ext, pos, i, got[i], want[i])
				}
			}
		}
	}
	// Without YaRN, factor 4 on every pair is linear scaling by 1/4:
	// θ/4 and θ·0.25 are the same float32.
	plain := Rope{Dims: dims, Base: 10000, Scale: 1, AttnMul: 1}
	fours := make([]float32, dims/2)
	for i := range fours {
		fours[i] = 4
	}
	divided, scaled := plain, plain
	divided.Factors = &fours
	scaled.Scale = 0.25
	want, got := make([]float32, dims), make([]float32, dims)
	for _, pos := range []int{1, 3, 999} {
		scaled.Angles(want, pos)
		divided.Angles(got, pos)
		for i := range want {
			if math.Float32bits(want[i]) != math.Float32bits(got[i]) {
				t.Fatalf("pos %d: value %d = %g with factors 4, %g with scale 1/4", pos, i, got[i], want[i])
			}
		}
	}
}
