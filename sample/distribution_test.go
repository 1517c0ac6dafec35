package sample

import (
	"math"
	"testing"
)

// The distribution tests draw many tokens from a small known logit vector
// and compare the counts with the probabilities worked out by hand, with
// Pearson's chi-square test. Seeds are fixed, so each test is
// deterministic; the acceptance level is strict (p = 1e-5) so that a
// correct sampler passes for essentially any seed, while a wrong
// distribution (a temperature applied twice, a nucleus renormalised over
// the wrong set) misses by a wide margin with this many draws.

const draws = 20000

// q is a distribution chosen so that every cut below can be checked by
// hand. The logits are ln(q), so softmax(logits) = q. Token ids are
// shuffled so that id order and probability order differ.
//
//	id:  0     1     2     3     4     5
//	q:   0.10  0.40  0.04  0.25  0.06  0.15
var (
	q      = []float64{0.10, 0.40, 0.04, 0.25, 0.06, 0.15}
	logitQ = func() []float32 {
		l := make([]float32, len(q))
		for i, p := range q {
			l[i] = float32(math.Log(p))
		}
		return l
	}()
)

// tempered returns q restricted to the tokens in keep, raised to 1/T and
// renormalised: softmax(ln q / T) over the survivors.
func tempered(keep []int, temperature float64) []float64 {
	out := make([]float64, len(q))
	sum := 0.0
	for _, id := range keep {
		out[id] = math.Pow(q[id], 1/temperature)
		sum += out[id]
	}
	for id := range out {
		out[id] /= sum
	}
	return out
}

func TestDistributions(t *testing.T) {
	cases := []struct {
		name        string
		temperature float32
		topK        int
		topP, minP  float32
		keep        []int // survivors, worked out by hand
	}{
		// Temperature alone: every token, with softmax(ln q / T).
		{"temperature 1", 1, 0, 1, 0, []int{0, 1, 2, 3, 4, 5}},
		{"temperature 0.7", 0.7, 0, 1, 0, []int{0, 1, 2, 3, 4, 5}},
		{"temperature 1.8", 1.8, 0, 1, 0, []int{0, 1, 2, 3, 4, 5}},

		// Top-p 0.75 without top-k: sorted q is 0.40 (id 1), 0.25 (id 3),
		// 0.15 (id 5): running sums 0.40, 0.65, 0.80 ≥ 0.75, so the nucleus
		// is {1, 3, 5}. The temperature (applied after) reshapes the draw
		// but not the nucleus.
		{"top-p 0.75", 1, 0, 0.75, 0, []int{1, 3, 5}},
		{"top-p 0.75, temperature 1.3", 1.3, 0, 0.75, 0, []int{1, 3, 5}},
		{"top-p 0.75, temperature 0.5", 0.5, 0, 0.75, 0, []int{1, 3, 5}},
		// Top-p 0.65: the running sum reaches 0.65 at id 3 (kept, ≥).
		// 0.6 sits safely inside: 0.40 < 0.6 ≤ 0.65.
		{"top-p 0.6", 1, 0, 0.6, 0, []int{1, 3}},

		// Top-k 2: ids 1 and 3.
		{"top-k 2", 1, 2, 1, 0, []int{1, 3}},
		{"top-k 2, temperature 2", 2, 2, 1, 0, []int{1, 3}},
		// Top-k 5 then top-p 0.75, renormalised over the five survivors
		// (total 0.96): running sums 0.417, 0.677, 0.833 ≥ 0.75.
		{"top-k 5, top-p 0.75", 1, 5, 0.75, 0, []int{1, 3, 5}},
		// Top-k 5 then top-p 0.68: 0.68 lies between the running sums
		// renormalised over the top 5 (0.677) and over all six (0.65, which
		// would stop at id 3). So this checks top-p is relative to top-k's
		// survivors: {1, 3, 5}.
		{"top-k 5, top-p 0.68", 1, 5, 0.68, 0, []int{1, 3, 5}},

		// Min-p 0.3: keep q ≥ 0.3 × 0.40 = 0.12: ids 1, 3, 5.
		{"min-p 0.3", 1, 0, 1, 0.3, []int{1, 3, 5}},
		{"min-p 0.3, temperature 0.9", 0.9, 0, 1, 0.3, []int{1, 3, 5}},
		// Min-p 0.2: q ≥ 0.08: ids 0, 1, 3, 5.
		{"min-p 0.2, top-p 0.95", 1, 0, 0.95, 0.2, []int{0, 1, 3, 5}},

		// Everything at once, llama.cpp's defaults: top-k 40 keeps all six,
		// top-p 0.95 keeps 0.40+0.25+0.15+0.10+0.06 = 0.96 → {0,1,3,4,5},
		// min-p 0.05 (q ≥ 0.02) keeps them all.
		{"defaults", 0.8, 40, 0.95, 0.05, []int{0, 1, 3, 4, 5}},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := DefaultParams()
			p.Temperature, p.TopK, p.TopP, p.MinP = c.temperature, c.topK, c.topP, c.minP
			p.Seed = uint64(1000 + i)
			s := mustNew(t, p)
			counts := make([]int, len(q))
			for range draws {
				id, err := s.TrySample(logitQ)
				if err != nil {
					t.Fatal(err)
				}
				counts[id]++
			}
			checkCounts(t, counts, tempered(c.keep, float64(c.temperature)))
		})
	}
}

// checkCounts requires that tokens with probability 0 were never drawn
// and that the other counts pass a chi-square goodness-of-fit test.
func checkCounts(t *testing.T, counts []int, probs []float64) {
	t.Helper()
	total := 0
	for _, c := range counts {
		total += c
	}
	chi2, df := 0.0, -1
	for id, p := range probs {
		if p == 0 {
			if counts[id] != 0 {
				t.Fatalf("token %d is outside the allowed set but was drawn %d times (counts %v)", id, counts[id], counts)
			}
			continue
		}
		expected := p * float64(total)
		if expected < 5 {
			t.Fatalf("token %d: expected count %.1f is too small for a chi-square test", id, expected)
		}
		d := float64(counts[id]) - expected
		chi2 += d * d / expected
		df++
	}
	if df == 0 {
		return // a single survivor: drawn every time, checked above
	}
	limit := chiSquare1e5[df]
	t.Logf("counts %v, expected %v, chi² = %.2f (df %d, limit %.2f)", counts, scaled(probs, total), chi2, df, limit)
	if chi2 > limit {
		t.Fatalf("chi² = %.2f with %d degrees of freedom exceeds %.2f: counts %v, expected %v",
			chi2, df, limit, counts, scaled(probs, total))
	}
}

// chiSquare1e5[df] is the chi-square critical value with df degrees of
// freedom that a correct sampler exceeds with probability 1e-5 (standard
// tables; for df = 2 it is exactly -2 ln 1e-5).
var chiSquare1e5 = []float64{1: 19.511, 2: 23.026, 3: 25.902, 4: 28.473, 5: 30.856}

func scaled(probs []float64, total int) []int {
	out := make([]int, len(probs))
	for i, p := range probs {
		out[i] = int(math.Round(p * float64(total)))
	}
	return out
}

// TestChiSquareCatchesWrongDistribution makes sure checkCounts is not too
// lenient: draws at temperature 1 must fail against temperature 1.1.
func TestChiSquareCatchesWrongDistribution(t *testing.T) {
	p := DefaultParams()
	p.Temperature, p.TopK, p.TopP, p.MinP = 1, 0, 1, 0
	s := mustNew(t, p)
	counts := make([]int, len(q))
	for range draws {
		counts[s.Sample(logitQ)]++
	}
	probs := tempered([]int{0, 1, 2, 3, 4, 5}, 1.1)
	chi2 := 0.0
	for id, p := range probs {
		e := p * draws
		chi2 += (float64(counts[id]) - e) * (float64(counts[id]) - e) / e
	}
	t.Logf("chi² against temperature 1.1: %.1f", chi2)
	if limit := chiSquare1e5[5]; chi2 <= limit {
		t.Fatalf("temperature 1 draws pass as temperature 1.1 (chi² %.1f ≤ %.1f): the test has no power", chi2, limit)
	}
}
