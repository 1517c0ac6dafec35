package sample

import (
	"cmp"
	"slices"
)

// IDLogit is one token id with its logit.
type IDLogit struct {
	ID    int32
	Logit float32
}

// compareRank orders candidates the way every list in this package (and in
// the golden files) is ordered: logit descending, ties by lower id. It must
// not see NaN logits; callers drop those first.
func compareRank(a, b IDLogit) int {
	switch {
	case a.Logit > b.Logit:
		return -1
	case a.Logit < b.Logit:
		return 1
	}
	return cmp.Compare(a.ID, b.ID)
}

// ranksBelow reports whether a comes after b in compareRank's order.
func ranksBelow(a, b IDLogit) bool {
	return a.Logit < b.Logit || (a.Logit == b.Logit && a.ID > b.ID)
}

// TopK returns the k highest logits of the row with their token ids, sorted
// by logit descending and, for equal logits, by lower id first: exactly the
// order of the golden files' top-20 lists. NaN logits are skipped; -Inf
// logits count (they sort last). It returns fewer than k entries when the
// row has fewer usable logits, and nil when k <= 0. The result is newly
// allocated; the row is not modified.
func TopK(logits []float32, k int) []IDLogit {
	if k <= 0 || len(logits) == 0 {
		return nil
	}
	top, _ := selectTop(make([]IDLogit, 0, min(k, len(logits))), logits, k)
	return top
}

// selectTop finds the k highest non-NaN logits of the row and returns them
// sorted by compareRank, reusing dst's storage (it allocates only when
// cap(dst) is too small), and the id of the first NaN logit, or -1.
//
// It does not sort the whole row. It keeps the k best tokens seen so far in
// a binary min-heap whose root is the worst of them, and scans the row once:
// a token that does not beat the root (nearly every token, once the heap has
// warmed up) costs one comparison. That is O(n) for the scan plus
// O(k log k) for the final sort, against O(n log n) for a full sort; for
// n = 151936 and k = 40 most of the work is the single pass over the row.
//
// Ties: ids are visited in increasing order, so a later token with a logit
// equal to the root's has the higher id and ranks below the root. The test
// "beats the root" is therefore a strict l > root.Logit.
func selectTop(dst []IDLogit, logits []float32, k int) (top []IDLogit, nan int32) {
	heap := dst[:0] // (min(k, n)) min-heap: heap[0] ranks lowest
	nan = -1
	i := 0

	// Fill: the first k non-NaN tokens.
	for ; i < len(logits) && len(heap) < k; i++ {
		l := logits[i]
		if l != l {
			nan = firstNaN(nan, i)
			continue
		}
		heap = append(heap, IDLogit{ID: int32(i), Logit: l})
		siftUp(heap, len(heap)-1)
	}

	// Scan: replace the root whenever a token beats it. !(l <= worst) is
	// l > worst or l is NaN (see argmax), so noting NaN costs no branch
	// that the common token, which does not beat the root, takes.
	if len(heap) > 0 {
		worst := heap[0].Logit
		for ; i < len(logits); i++ {
			if l := logits[i]; !(l <= worst) {
				if l != l {
					nan = firstNaN(nan, i)
					continue
				}
				heap[0] = IDLogit{ID: int32(i), Logit: l}
				siftDown(heap, 0)
				worst = heap[0].Logit
			}
		}
	}

	slices.SortFunc(heap, compareRank)
	return heap, nan
}

// firstNaN keeps the first NaN id seen.
func firstNaN(nan int32, i int) int32 {
	if nan < 0 {
		return int32(i)
	}
	return nan
}

// siftUp restores the heap property after h[j] was appended.
func siftUp(h []IDLogit, j int) {
	for j > 0 {
		parent := (j - 1) / 2
		if !ranksBelow(h[j], h[parent]) {
			return
		}
		h[j], h[parent] = h[parent], h[j]
		j = parent
	}
}

// siftDown restores the heap property after h[j] was replaced.
func siftDown(h []IDLogit, j int) {
	for {
		child := 2*j + 1
		if child >= len(h) {
			return
		}
		if right := child + 1; right < len(h) && ranksBelow(h[right], h[child]) {
			child = right
		}
		if !ranksBelow(h[child], h[j]) {
			return
		}
		h[j], h[child] = h[child], h[j]
		j = child
	}
}
