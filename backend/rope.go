package backend

import "math"

// Angles writes cos and sin of every rotation pair of r for one position:
// cs[2k] = cos θ_k · mscale, cs[2k+1] = sin θ_k · mscale (ggml's
// rope_cache_init and rope_yarn). cs has r.Dims elements.
//
// Pair k turns by θ_k = pos · Base^(-2k/Dims), times Scale (linear
// interpolation). With YaRN (ExtMix 1) the fast-turning pairs keep the
// unscaled angle, the slow ones take the scaled one, and the pairs
// between blend the two (the range is set by BetaFast, BetaSlow and
// OrigCtx); cos and sin are then multiplied by AttnMul·(1 + 0.1·ln(1/Scale)).
// With Factors, pair k's unscaled angle is θ_k / Factors[k] before any of
// that, as ggml's rope_cache_init divides by freq_factors.
//
// Every backend builds its rotation table from this one function, so that
// they all rotate by the same float32 values: the CPU in Go, the GPU on
// the host before uploading the table.
func (r *Rope) Angles(cs []float32, pos int) {
	dims := r.Dims
	thetaScale := float32(math.Pow(float64(r.Base), -2.0/float64(dims)))
	lowDim, highDim := yarnCorrDims(dims, r.OrigCtx, r.Base, r.BetaFast, r.BetaSlow)
	thetaBase := float32(pos)
	for i0 := 0; i0 < dims; i0 += 2 {
		theta := thetaBase
		if r.Factors != nil {
			theta /= (*r.Factors)[i0/2]
		}
		thetaInterp := r.Scale * theta
		t := thetaInterp
		mscale := r.AttnMul
		if r.ExtMix != 0 {
			mix := yarnRamp(lowDim, highDim, i0) * r.ExtMix
			t = thetaInterp*(1-mix) + theta*mix
			mscale *= 1 + 0.1*float32(math.Log(float64(1/r.Scale)))
		}
		cs[i0] = float32(math.Cos(float64(t))) * mscale
		cs[i0+1] = float32(math.Sin(float64(t))) * mscale
		thetaBase *= thetaScale
	}
}

// yarnCorrDims finds the dimension range over which YaRN blends from
// extrapolation to interpolation (ggml_rope_yarn_corr_dims).
func yarnCorrDims(dims, origCtx int, base, betaFast, betaSlow float32) (float32, float32) {
	corr := func(nRot float32) float32 {
		return float32(dims) * float32(math.Log(float64(float32(origCtx)/(nRot*2*math.Pi)))) / (2 * float32(math.Log(float64(base))))
	}
	start := float32(math.Floor(float64(corr(betaFast))))
	end := float32(math.Ceil(float64(corr(betaSlow))))
	return max(0, start), min(float32(dims-1), end)
}

func yarnRamp(low, high float32, i0 int) float32 {
	y := (float32(i0/2) - low) / max(0.001, high-low)
	return 1 - min(1, max(0, y))
}
