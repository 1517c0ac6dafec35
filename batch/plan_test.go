package batch

import (
	"reflect"
	"testing"
)

// run and wait are shorthands for requests: a running one with work, a
// waiting one with its prompt.
func run(computed, known, blocks int) Request {
	return Request{Running: true, Computed: computed, Known: known, Blocks: blocks}
}
func wait(computed, known, blocks int) Request {
	return Request{Computed: computed, Known: known, Blocks: blocks}
}

// TestSchedule is the planner's table: every case is a state and the
// plan it must give. Block size 4 unless a case says otherwise.
func TestSchedule(t *testing.T) {
	cases := []struct {
		name string
		s    State
		want Plan
	}{
		{"nothing to do", State{Budget: 8, FreeBlocks: 4, TotalBlocks: 4}, Plan{}},
		{"decoders first, then fair shares of the rest",
			State{Budget: 10, FreeBlocks: 100, TotalBlocks: 100, Requests: []Request{
				run(0, 20, 0), run(5, 6, 2), run(0, 20, 0), run(7, 8, 2)}},
			Plan{Items: []Item{{0, 4}, {1, 1}, {2, 4}, {3, 1}}}},
		{"leftovers of a short prompt go to the long one",
			State{Budget: 10, FreeBlocks: 100, TotalBlocks: 100, Requests: []Request{run(0, 3, 0), run(0, 30, 0)}},
			Plan{Items: []Item{{0, 3}, {1, 7}}}},
		{"chunked prefill: a long prompt takes the budget step by step",
			State{Budget: 8, FreeBlocks: 100, TotalBlocks: 100, Requests: []Request{run(8, 20, 2)}},
			Plan{Items: []Item{{0, 8}}}},
		{"more decoders than budget: places rotate with the step",
			State{Budget: 2, Step: 1, FreeBlocks: 100, TotalBlocks: 100, Requests: []Request{
				run(4, 5, 2), run(4, 5, 2), run(4, 5, 2)}},
			Plan{Items: []Item{{1, 1}, {2, 1}}}},
		{"waiting requests get what running ones leave, first come first served",
			State{Budget: 10, FreeBlocks: 100, TotalBlocks: 100, Requests: []Request{
				run(4, 5, 2), wait(0, 6, 0), wait(0, 6, 0)}},
			Plan{Items: []Item{{0, 1}, {1, 6}, {2, 3}}}},
		{"admission by room: the first that does not fit stops the rest",
			State{Budget: 100, FreeBlocks: 3, TotalBlocks: 10, Requests: []Request{
				wait(0, 8, 0), wait(0, 16, 0), wait(0, 2, 0)}},
			Plan{Items: []Item{{0, 8}}}},
		{"a waiting request keeps the blocks of its kept prefix",
			State{Budget: 100, FreeBlocks: 1, TotalBlocks: 10, Requests: []Request{wait(8, 11, 2)}},
			Plan{Items: []Item{{0, 3}}}},
		{"no room: the newest running request is preempted, and nobody starts",
			State{Budget: 100, FreeBlocks: 0, TotalBlocks: 4, Requests: []Request{
				run(8, 9, 2), run(8, 9, 2), wait(0, 3, 0)}},
			Plan{Preempt: []int{1}, Items: []Item{{0, 1}}}},
		{"the newest preempts itself when it is the one short of room",
			State{Budget: 100, FreeBlocks: 0, TotalBlocks: 4, Requests: []Request{
				run(6, 7, 2), run(8, 9, 2)}},
			Plan{Preempt: []int{1}, Items: []Item{{0, 1}}}},
		{"idle sequences are taken back before anyone is preempted",
			State{Budget: 100, FreeBlocks: 0, TotalBlocks: 6, Requests: []Request{run(8, 9, 2), run(8, 9, 2)},
				Holders: []Holder{{Blocks: 1, Req: -1}, {Blocks: 1, Req: -1}, {Blocks: 1, Req: -1}}},
			Plan{Reclaim: []int{0, 1}, Items: []Item{{0, 1}, {1, 1}}}},
		{"a waiting request's prefix is taken back for a running one",
			State{Budget: 100, FreeBlocks: 0, TotalBlocks: 4, Requests: []Request{run(8, 9, 2), wait(8, 10, 2)},
				Holders: []Holder{{Blocks: 2, Req: 1}}},
			Plan{Reclaim: []int{0}, Items: []Item{{0, 1}, {1, 2}}}},
		{"a waiting request does not take back its own prefix",
			State{Budget: 100, FreeBlocks: 0, TotalBlocks: 4, Requests: []Request{wait(8, 10, 2)},
				Holders: []Holder{{Blocks: 2, Req: 0}}},
			Plan{}},
		{"alone and still too big: it fails",
			State{Budget: 100, FreeBlocks: 0, TotalBlocks: 2, Requests: []Request{run(8, 9, 2)}},
			Plan{Fail: []int{0}}},
		{"a prompt bigger than the whole pool fails at once; the next one starts",
			State{Budget: 100, FreeBlocks: 2, TotalBlocks: 2, Requests: []Request{wait(0, 9, 0), wait(0, 5, 0)}},
			Plan{Fail: []int{0}, Items: []Item{{1, 5}}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.s.BlockSize == 0 {
				c.s.BlockSize = 4
			}
			got := Schedule(c.s)
			if !reflect.DeepEqual(norm(got), norm(c.want)) {
				t.Fatalf("plan %+v, want %+v", got, c.want)
			}
			checkRoom(t, c.s, got)
		})
	}
}

func norm(p Plan) Plan {
	if len(p.Items) == 0 {
		p.Items = nil
	}
	if len(p.Preempt) == 0 {
		p.Preempt = nil
	}
	if len(p.Reclaim) == 0 {
		p.Reclaim = nil
	}
	if len(p.Fail) == 0 {
		p.Fail = nil
	}
	return p
}

// checkRoom verifies the plan's invariants: it fits the budget and the
// blocks it frees, and no request is both planned and preempted.
func checkRoom(t *testing.T, s State, p Plan) {
	t.Helper()
	free := s.FreeBlocks
	gone := map[int]bool{}
	for _, h := range p.Reclaim {
		free += s.Holders[h].Blocks
		if r := s.Holders[h].Req; r >= 0 {
			gone[r] = true
		}
	}
	for _, i := range p.Preempt {
		free += s.Requests[i].Blocks
		gone[i] = true
	}
	tokens := 0
	for _, it := range p.Items {
		r := s.Requests[it.Req]
		comp, held := r.Computed, r.Blocks
		if gone[it.Req] {
			if r.Running {
				t.Fatalf("request %d is preempted and planned", it.Req)
			}
			comp, held = 0, 0
		}
		if it.Tokens < 1 || comp+it.Tokens > r.Known {
			t.Fatalf("item %+v: %d tokens of work", it, r.Known-comp)
		}
		free -= (comp+it.Tokens+s.BlockSize-1)/s.BlockSize - held
		tokens += it.Tokens
	}
	if free < 0 || tokens > s.Budget {
		t.Fatalf("plan overcommits: %d blocks short, %d tokens for a budget of %d", -free, tokens, s.Budget)
	}
}

// FuzzSchedule: any state gives a plan within the budget and the room.
func FuzzSchedule(f *testing.F) {
	f.Add([]byte{3, 1, 2, 7, 0, 9, 1, 5, 2, 0, 4, 1}, uint8(4), uint8(8), uint8(16))
	f.Fuzz(func(t *testing.T, data []byte, bs, free, budget uint8) {
		s := State{BlockSize: int(bs%8) + 1, FreeBlocks: int(free), Budget: int(budget) + 1}
		s.TotalBlocks = s.FreeBlocks
		for i := 0; i+2 < len(data) && len(s.Requests) < 12; i += 3 {
			known := int(data[i]%40) + 1
			comp := int(data[i+1]) % known
			r := Request{Running: data[i+2]&1 == 1, Computed: comp, Known: known, Blocks: (comp + s.BlockSize - 1) / s.BlockSize}
			if !r.Running && r.Computed > 0 && data[i+2]&2 == 0 {
				r.Computed, r.Blocks = 0, 0
			}
			s.TotalBlocks += r.Blocks
			s.Requests = append(s.Requests, r)
		}
		// Running requests first, as the engine lists them.
		var ordered []Request
		for _, r := range s.Requests {
			if r.Running {
				ordered = append(ordered, r)
			}
		}
		for _, r := range s.Requests {
			if !r.Running {
				ordered = append(ordered, r)
			}
		}
		s.Requests = ordered
		for i, r := range s.Requests {
			if !r.Running && r.Blocks > 0 {
				s.Holders = append(s.Holders, Holder{Blocks: r.Blocks, Req: i})
			}
		}
		checkRoom(t, s, Schedule(s))
	})
}
