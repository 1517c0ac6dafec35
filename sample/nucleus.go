package sample

import (
	"math"
	"slices"
)

// nucleusBuckets is the number of histogram buckets nucleus uses.
const nucleusBuckets = 128

// nucleus applies top-p and min-p (steps 5 and 6) to a whole row, for when
// top-k is off. maxLogit is the row's highest logit, which must be finite.
// The survivors come back in no particular order; the draw does not need
// one.
//
// Top-p is defined on the sorted row: keep the shortest run of tokens, by
// decreasing logit, whose probabilities reach p. Sorting all 151936 logits
// would cost far more than everything else, so nucleus sorts almost
// nothing. It is a bucket select:
//
//  1. One pass computes the softmax normaliser z = sum exp(l - maxLogit)
//     over the whole row (top-p's probabilities are relative to all of it),
//     and a histogram of the same weights by distance d = maxLogit - l, in
//     nucleusBuckets equal buckets from d = 0 to d = far.
//  2. Walking the buckets from the top, the first one where the running
//     mass reaches top-p's target p*z is the boundary bucket. Every token in
//     an earlier bucket outranks every token in the boundary bucket, and
//     those earlier buckets together fall short of the target, so all of
//     them belong to the nucleus. Tokens in later buckets do not.
//  3. A second pass collects the tokens of the earlier buckets (unsorted)
//     and of the boundary bucket. Only the boundary bucket's tokens are
//     sorted, and walked to find the exact cut, starting from the mass of
//     the earlier buckets. With 128 buckets over about 15 nats, a bucket
//     spans about 0.12 nats, so even on a flat row the boundary bucket
//     holds a small fraction of the vocabulary.
//
// far bounds how deep the nucleus can reach. A token with d > far weighs
// less than exp(-far), so all n of them together weigh less than
// n*exp(-far). With far = ln(n / (1-p)) that is 1-p, which is at most
// (1-p)*z because z >= 1 (the top token alone weighs exp(0) = 1). So the
// tokens with d <= far always hold at least p of the mass, and tokens
// beyond far are never needed.
//
// Min-p keeps a sorted prefix too (logit >= threshold), so leaving its
// rejects out of the histogram and the collection gives the same result as
// applying it after top-p: the shorter of the two prefixes. When min-p cuts
// first, the running mass never reaches the target and every collected
// token survives.
//
// The histogram adds the float64 weights in id order, while a sorted walk
// would add them in rank order; the sums can differ in the last bits, which
// can only matter when a token's running sum lands within rounding of the
// target.
func (s *Sampler) nucleus(work []float32, maxLogit float32) []IDLogit {
	p := float64(s.params.TopP)
	threshold := minPThreshold(maxLogit, s.params.MinP)
	top := float64(maxLogit)
	far := math.Log(float64(len(work)) / (1 - p))
	perNat := nucleusBuckets / far // buckets per unit of distance
	bucket := func(d float64) int { return min(int(d*perNat), nucleusBuckets-1) }

	// Pass 1: normaliser and histogram.
	var (
		mass  [nucleusBuckets]float64 // (bucket) summed weights of the collectable tokens
		count [nucleusBuckets]int     // (bucket) number of collectable tokens
	)
	z := 0.0
	for _, l := range work {
		if !(l > negInf) {
			continue // NaN or -Inf: weight 0
		}
		w := weight(l, maxLogit)
		z += w
		if d := top - float64(l); d <= far && l >= threshold {
			b := bucket(d)
			mass[b] += w
			count[b]++
		}
	}

	// The boundary bucket, and the mass of the buckets before it. If no
	// bucket reaches the target, min-p has cut first: every collectable
	// token survives, and the last bucket plays the boundary.
	target := p * z
	boundary, below, reached := nucleusBuckets-1, 0.0, false
	for b, m := range mass {
		if below+m >= target {
			boundary, reached = b, true
			break
		}
		below += m
	}
	inside := 0 // tokens in the buckets before the boundary
	for _, c := range count[:boundary] {
		inside += c
	}

	// Pass 2: the earlier buckets' tokens go to cands[:inside], the
	// boundary bucket's to cands[inside:].
	s.cands = resize(s.cands, inside+count[boundary])
	cands := s.cands // (candidates)
	nIn, nEdge := 0, inside
	for i, l := range work {
		if !(l > negInf) || l < threshold {
			continue
		}
		d := top - float64(l)
		if d > far {
			continue
		}
		switch b := bucket(d); {
		case b < boundary:
			cands[nIn] = IDLogit{ID: int32(i), Logit: l}
			nIn++
		case b == boundary:
			cands[nEdge] = IDLogit{ID: int32(i), Logit: l}
			nEdge++
		}
	}

	if !reached {
		return cands
	}

	// The exact cut inside the boundary bucket.
	edge := cands[inside:]
	slices.SortFunc(edge, compareRank)
	cum := below
	for i, c := range edge {
		cum += weight(c.Logit, maxLogit)
		if cum >= target {
			return cands[:inside+i+1]
		}
	}
	return cands // short only by rounding: keep the whole bucket
}
