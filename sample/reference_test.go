package sample

import (
	"fmt"
	"math"
	"slices"
	"testing"
)

// referenceCandidates is the sampler chain up to the draw (steps 1 to 6 of
// the package comment) written as plainly as possible: a fresh copy of the
// row, penalties counted with a map, every usable token sorted, then top-k,
// top-p and min-p as successive cuts of the sorted list. It returns the
// survivors sorted by compareRank; for temperature 0, only the argmax.
func referenceCandidates(p Params, history []int32, logits []float32) []IDLogit {
	work := slices.Clone(logits)
	for id, b := range p.LogitBias {
		if math.IsInf(float64(b), 0) {
			work[id] = b // an infinite bias bans or forces, whatever the logit
		} else {
			work[id] += b
		}
	}

	if p.PenaltyLastN != 0 {
		window := history
		if p.PenaltyLastN > 0 && len(window) > p.PenaltyLastN {
			window = window[len(window)-p.PenaltyLastN:]
		}
		counts := map[int32]int{}
		for _, t := range window {
			if t >= 0 && int(t) < len(work) {
				counts[t]++
			}
		}
		for t, c := range counts {
			l := work[t]
			if l <= 0 {
				l *= p.RepeatPenalty
			} else {
				l /= p.RepeatPenalty
			}
			work[t] = l - (float32(c)*p.FrequencyPenalty + p.PresencePenalty)
		}
	}

	var all []IDLogit
	for i, l := range work {
		if !math.IsNaN(float64(l)) && !math.IsInf(float64(l), -1) {
			all = append(all, IDLogit{int32(i), l})
		}
	}
	if len(all) == 0 {
		return nil
	}
	slices.SortFunc(all, compareRank)
	if p.Temperature == 0 || math.IsInf(float64(all[0].Logit), 1) {
		return all[:1]
	}

	if p.TopK > 0 && p.TopK < len(all) {
		all = all[:p.TopK]
	}
	if p.TopP < 1 {
		top := float64(all[0].Logit)
		z := 0.0
		for _, c := range all {
			z += math.Exp(float64(c.Logit) - top)
		}
		cum := 0.0
		for i, c := range all {
			cum += math.Exp(float64(c.Logit) - top)
			if cum >= float64(p.TopP)*z {
				all = all[:i+1]
				break
			}
		}
	}
	if p.MinP > 0 {
		threshold := all[0].Logit + float32(math.Log(float64(p.MinP)))
		for i, c := range all {
			if c.Logit < threshold {
				all = all[:i]
				break
			}
		}
	}
	return all
}

// candidates runs the Sampler's steps 1 to 6 and returns the survivors
// sorted by compareRank, to compare with referenceCandidates.
func (s *Sampler) candidates(logits []float32) ([]IDLogit, error) {
	work, err := s.prepare(logits)
	if err != nil {
		return nil, err
	}
	if s.params.Temperature == 0 {
		id, nan := argmax(work)
		switch {
		case nan >= 0:
			return nil, errNaN(logits, nan)
		case id == NoToken:
			return nil, errAllMasked(len(work))
		}
		return []IDLogit{{id, work[id]}}, nil
	}
	cands, maxLogit, err := s.truncate(logits, work)
	if err != nil {
		return nil, err
	}
	out := slices.Clone(cands)
	slices.SortFunc(out, compareRank)
	if len(out) > 0 && out[0].Logit != maxLogit {
		return nil, fmt.Errorf("truncate reported max %g, candidates start at %g", maxLogit, out[0].Logit)
	}
	return out, nil
}

// TestChainMatchesReference compares the fast chain (heap top-k, histogram
// nucleus, count array penalties) with referenceCandidates on random rows
// of several shapes, over a grid of parameters.
func TestChainMatchesReference(t *testing.T) {
	type rowCase struct {
		name string
		row  []float32
	}
	var rows []rowCase
	rows = append(rows,
		rowCase{"normal σ1.6 n4096", randomRow(11, 4096, 1.6)},
		rowCase{"normal σ5 n4096", randomRow(12, 4096, 5)},
		rowCase{"normal σ0.3 n4096 (flat)", randomRow(13, 4096, 0.3)},
		rowCase{"n1", []float32{0.7}},
		rowCase{"n3", []float32{0.1, 0.3, 0.2}},
	)
	ties := randomRow(14, 3000, 2)
	for i := range ties {
		ties[i] = float32(math.Round(float64(ties[i])))
	}
	rows = append(rows, rowCase{"integer logits (ties)", ties})
	equal := make([]float32, 1000)
	rows = append(rows, rowCase{"all equal", equal})
	odd := randomRow(15, 2000, 2)
	for i := 0; i < len(odd); i += 17 {
		odd[i] = negInf
	}
	rows = append(rows, rowCase{"-Inf sprinkled", odd})

	history := []int32{5, 9, 5, 100, 2, 7, 7, 7, 0, 4095, 99999}
	n := 0
	for _, rc := range rows {
		for _, temp := range []float32{0, 0.7} {
			for _, topK := range []int{0, 1, 5, 40, len(rc.row)} {
				for _, topP := range []float32{1, 0.5, 0.9, 0.95, 0.999} {
					for _, minP := range []float32{0, 0.05, 0.3} {
						p := Params{Temperature: temp, TopK: topK, TopP: topP, MinP: minP,
							RepeatPenalty: 1.3, FrequencyPenalty: 0.2, PresencePenalty: 0.1, PenaltyLastN: 8,
							LogitBias: map[int32]float32{0: 2.5, 1: negInf}}
						if len(rc.row) < 2 {
							p.LogitBias = nil
						}
						checkAgainstReference(t, rc.name, p, history, rc.row)
						n++
					}
				}
			}
		}
	}

	// Full-size rows, fewer parameter sets (the reference sorts the row).
	big := randomRow(16, 151936, 2)
	flat := randomRow(17, 151936, 0.5)
	for _, row := range [][]float32{big, flat} {
		for _, p := range pathParams() {
			checkAgainstReference(t, "151936", p, nil, row)
			n++
		}
	}
	t.Logf("%d row × parameter combinations agree", n)
}

func checkAgainstReference(t *testing.T, name string, p Params, history []int32, row []float32) {
	t.Helper()
	s := mustNew(t, p)
	s.AcceptAll(history)
	got, err := s.candidates(row)
	if err != nil {
		t.Fatalf("%s %+v: %v", name, p, err)
	}
	want := referenceCandidates(p, history, row)
	if !slices.Equal(got, want) {
		t.Fatalf("%s %+v:\n got %d candidates %v\nwant %d candidates %v",
			name, p, len(got), head(got), len(want), head(want))
	}
}

func head(c []IDLogit) []IDLogit { return c[:min(len(c), 12)] }
