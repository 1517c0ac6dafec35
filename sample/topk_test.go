package sample

import (
	"slices"
	"testing"
)

func TestTopK(t *testing.T) {
	row := []float32{0.5, 2, nan32, 2, negInf, -1, 2, 0.5, posInf}
	cases := []struct {
		k    int
		want []IDLogit
	}{
		{0, nil},
		{-3, nil},
		{1, []IDLogit{{8, posInf}}},
		{3, []IDLogit{{8, posInf}, {1, 2}, {3, 2}}}, // ties by lower id
		{4, []IDLogit{{8, posInf}, {1, 2}, {3, 2}, {6, 2}}},
		{6, []IDLogit{{8, posInf}, {1, 2}, {3, 2}, {6, 2}, {0, 0.5}, {7, 0.5}}},
		// More than the row holds: every non-NaN logit, -Inf last.
		{100, []IDLogit{{8, posInf}, {1, 2}, {3, 2}, {6, 2}, {0, 0.5}, {7, 0.5}, {5, -1}, {4, negInf}}},
	}
	for _, c := range cases {
		got := TopK(row, c.k)
		if !slices.Equal(got, c.want) {
			t.Errorf("TopK(k=%d) = %v, want %v", c.k, got, c.want)
		}
	}
	if got := TopK(nil, 5); got != nil {
		t.Errorf("TopK(nil) = %v, want nil", got)
	}
	if got := TopK([]float32{nan32, nan32}, 2); len(got) != 0 {
		t.Errorf("TopK(all NaN) = %v, want empty", got)
	}
}

// TestTopKMatchesSort compares the heap selection with a full sort on
// random rows, including rows full of ties, for many k.
func TestTopKMatchesSort(t *testing.T) {
	for seed := range uint64(20) {
		n := 1 + int(seed*97%3000)
		row := randomRow(seed, n, 1.5)
		if seed%3 == 0 {
			for i := range row { // heavy ties
				row[i] = float32(int(row[i] * 2))
			}
		}
		all := make([]IDLogit, n)
		for i, l := range row {
			all[i] = IDLogit{int32(i), l}
		}
		slices.SortFunc(all, compareRank)
		for _, k := range []int{1, 2, 7, 40, n / 2, n - 1, n, n + 5} {
			if k <= 0 {
				continue
			}
			got := TopK(row, k)
			if want := all[:min(k, n)]; !slices.Equal(got, want) {
				t.Fatalf("seed %d n %d k %d: TopK differs from a full sort:\n got %v\nwant %v", seed, n, k, got, want)
			}
		}
	}
}
