package cpu

import (
	"testing"

	"github.com/gollm/gollm/backend"
)

// TestAttnSplit: the attention jobs are dealt to the workers in runs of
// about equal cost, every job exactly once, including when the tokens
// attend to slightly different numbers of positions.
func TestAttnSplit(t *testing.T) {
	for _, c := range []struct {
		pos     []int32
		threads int
		want    []int // jobs per chunk
	}{
		{[]int32{128, 127}, 2, []int{2, 2}}, // was 1 and 3
		{[]int32{127, 128}, 2, []int{2, 2}},
		{[]int32{160, 160}, 2, []int{2, 2}},
		{[]int32{40}, 2, []int{1, 1}},
		{[]int32{10, 300}, 2, []int{3, 1}}, // costs 44, 44, 1204, 1204: 1292 and 1204
		{[]int32{5, 6, 7}, 2, []int{3, 3}},
		{[]int32{100, 100, 100, 100}, 4, []int{4, 4, 4, 4}},
	} {
		p := &backend.AttnPlan{N: len(c.pos), Pos: c.pos, KVHeads: 8}
		at := &attnTask{p: p}
		chunks := at.plan(c.threads)
		got := make([]int, chunks)
		next := 0
		for k := range chunks {
			lo, hi := at.jobs(k, chunks)
			if lo != next || hi < lo {
				t.Fatalf("pos %v: chunk %d is jobs [%d, %d), want it to start at %d", c.pos, k, lo, hi, next)
			}
			got[k], next = hi-lo, hi
		}
		if next != len(at.cost) {
			t.Fatalf("pos %v: chunks cover %d of %d jobs", c.pos, next, len(at.cost))
		}
		for k := range got {
			if k >= len(c.want) || got[k] != c.want[k] {
				t.Errorf("pos %v, %d threads: jobs per chunk %v, want %v", c.pos, c.threads, got, c.want)
				break
			}
		}
	}
}
