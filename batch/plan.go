// Package batch is the planner: a pure function that decides, from the
// state of every request, what the next forward step carries.
//
// There are no prefill and decode modes. Each request simply has tokens
// it knows (its prompt, then every token it generated) and a count of
// tokens already computed into the KV cache; the difference is its work.
// A generating request has exactly one token of work per step (the token
// it just sampled); a request with a fresh prompt has many. This is vLLM
// v1's scheduler, and like it the planner only plans: the engine loop
// (the root package's engine.go) carries the plan out.
//
// Schedule, step by step:
//
//  1. Token budget. Running requests share the budget (BatchSize) first:
//     every one with a single token of work gets a place, so generation
//     never stalls behind a long prompt; the rest is split fairly among
//     those with longer work — equal shares, with what one cannot use
//     passed on to the others (node-llama-cpp's "maximumParallelism") — so
//     long prompts are evaluated in chunks over several steps (chunked
//     prefill). What is left goes to waiting requests in arrival order,
//     each taking all it can: spreading it thinly over many waiting
//     requests would start them all with a block each, and the next steps
//     would have to preempt most of them again.
//  2. Room, oldest running request first. A request's chunk needs KV blocks
//     for its new positions. When the pool has too few free blocks, the
//     planner takes blocks back from holders that are not running (idle
//     sequences, least recently used first, then waiting requests, newest
//     first), and then preempts running requests, the most recently
//     started first: their blocks are freed and they wait again, to be
//     recomputed later. Because a sequence's logits do not depend on what
//     else is in the batch (batch invariance), the recomputed request
//     continues exactly as it would have. Only a request that cannot fit
//     even with every other request preempted fails.
//  3. Admission by room. Waiting requests start in arrival order when the
//     blocks for their first chunk can be had, and only in a step that
//     preempted nobody (else a preempted request would come straight
//     back in and be preempted again). The first that does not fit stops
//     the others behind it, so none is overtaken forever.
//
// A worked example: a pool of 4 blocks of 16 tokens, two running
// requests each holding 2 full blocks and each with one new token to
// place. The older request needs a third block and none is free: the
// newer one is preempted (2 blocks free again), the older gets its block.
// The newer waits; when the older finishes, it is admitted again, finds
// its first blocks in the prefix cache, and goes on.
package batch

// Request is what the planner knows of one request.
type Request struct {
	// Running: the request has started (its sequence is being filled
	// and generated into). False: it waits to start.
	Running bool
	// Computed is the number of tokens of the request's sequence already
	// in the KV cache (for a waiting request: a prefix kept from an
	// earlier turn or found in the prefix cache).
	Computed int
	// Known is the number of tokens the sequence should hold: the prompt
	// and the tokens generated so far. Known - Computed is its work.
	Known int
	// Blocks is the number of KV blocks its sequence holds.
	Blocks int
}

// Holder is a sequence whose blocks can be taken back when room is short,
// by cutting it to zero tokens: an idle sequence (its next prompt finds
// what it can in the prefix cache and computes the rest) or the sequence
// of a waiting request.
type Holder struct {
	Blocks int // blocks given back by cutting it
	Req    int // index of its waiting request in State.Requests; -1: idle
}

// State is the input of Schedule.
type State struct {
	// Requests: the running ones in the order they started, then the
	// waiting ones in the order they arrived.
	Requests []Request
	// Holders in the order to take them back.
	Holders     []Holder
	FreeBlocks  int // blocks free now (including evictable cached ones)
	TotalBlocks int // blocks in the pool
	BlockSize   int // tokens per block
	Budget      int // most tokens in one step
	Step        int // step counter, to rotate places when the budget is short
}

// Item is one request's share of the step: its next Tokens tokens of work.
type Item struct{ Req, Tokens int }

// Plan is the output of Schedule.
type Plan struct {
	// Reclaim: holders (indexes into State.Holders) to cut to zero
	// tokens, before anything else.
	Reclaim []int
	// Preempt: running requests to stop, free and requeue at the front
	// of the waiting queue.
	Preempt []int
	// Fail: requests that cannot fit in the pool even alone.
	Fail []int
	// Items: the step's batch in order. An item of a waiting request
	// starts it.
	Items []Item
}

// Schedule plans one step.
func Schedule(s State) Plan {
	var pl Planner
	return pl.Schedule(s)
}

// Planner is Schedule with its working memory kept from one call to the
// next, so that an engine planning step after step allocates nothing.
// The Plan it returns is valid until its next call.
type Planner struct {
	comp, held, want []int
	out, started     []bool
	running, waiting []int
	plan             Plan
}

// grow returns buf resized to n zeroed elements, reusing its memory.
func grow[T any](buf []T, n int) []T {
	if cap(buf) < n {
		return make([]T, n)
	}
	buf = buf[:n]
	clear(buf)
	return buf
}

// Schedule plans one step (see the package doc).
func (pl *Planner) Schedule(s State) Plan {
	p := &pl.plan
	p.Reclaim, p.Preempt, p.Fail, p.Items = p.Reclaim[:0], p.Preempt[:0], p.Fail[:0], p.Items[:0]
	bs := max(s.BlockSize, 1)
	blocksFor := func(tokens int) int { return (tokens + bs - 1) / bs }
	n := len(s.Requests)
	pl.comp, pl.held, pl.want = grow(pl.comp, n), grow(pl.held, n), grow(pl.want, n)
	pl.out, pl.started = grow(pl.out, n), grow(pl.started, n)
	comp, held, want, out, started := pl.comp, pl.held, pl.want, pl.out, pl.started
	running, waiting := pl.running[:0], pl.waiting[:0]
	defer func() { pl.running, pl.waiting = running, waiting }()
	for i, r := range s.Requests {
		comp[i], held[i] = r.Computed, r.Blocks
		if r.Running {
			running = append(running, i)
		} else {
			waiting = append(waiting, i)
		}
	}
	free := s.FreeBlocks

	// 1. Token budget: running requests first, then waiting ones.
	left := share(s.Requests, running, want, s.Budget, s.Step)
	for _, i := range waiting {
		want[i] = min(s.Requests[i].Known-comp[i], left)
		left -= want[i]
	}

	// reclaim takes back the next holder that is not the request self
	// (nor one already started); false when none is left.
	next := 0
	reclaim := func(self int) bool {
		for ; next < len(s.Holders); next++ {
			h := s.Holders[next]
			if h.Req >= 0 && (h.Req == self || started[h.Req]) {
				continue
			}
			p.Reclaim = append(p.Reclaim, next)
			free += h.Blocks
			if h.Req >= 0 {
				comp[h.Req], held[h.Req] = 0, 0
			}
			next++
			return true
		}
		return false
	}

	// 2. Room for running requests, oldest first; preempt the newest.
	// out: preempted or failed.
	last := len(running) - 1
	for k, i := range running {
		if out[i] || want[i] == 0 {
			continue
		}
		need := blocksFor(comp[i]+want[i]) - held[i]
		for free < need && !out[i] {
			if reclaim(-1) {
				continue
			}
			for last >= 0 && out[running[last]] {
				last--
			}
			v := running[last]
			if v == i && k == firstLive(running, out) {
				p.Fail = append(p.Fail, i) // alone and still too big
				out[i] = true
				break
			}
			p.Preempt = append(p.Preempt, v)
			out[v] = true
			free += held[v]
		}
		if out[i] {
			continue
		}
		free -= max(need, 0)
		held[i] += max(need, 0)
		p.Items = append(p.Items, Item{Req: i, Tokens: want[i]})
	}

	// 3. Admission, in arrival order, when nobody was preempted.
	for _, i := range waiting {
		if len(p.Preempt) > 0 {
			break
		}
		if blocksFor(s.Requests[i].Known) > s.TotalBlocks {
			p.Fail = append(p.Fail, i)
			continue
		}
		take := min(want[i], s.Requests[i].Known-comp[i])
		if take <= 0 {
			break // the budget is spent
		}
		need := blocksFor(comp[i]+take) - held[i]
		for free < need && reclaim(i) {
		}
		if free < need {
			break
		}
		free -= max(need, 0)
		held[i] += max(need, 0)
		started[i] = true
		p.Items = append(p.Items, Item{Req: i, Tokens: take})
	}
	return *p
}

// firstLive is the position in list of the first request not out.
func firstLive(list []int, out []bool) int {
	for k, i := range list {
		if !out[i] {
			return k
		}
	}
	return -1
}

// share splits budget among the requests in list (indexes into reqs),
// writing each one's tokens into want, and returns what is left: first
// one token for every request with a single token of work, then fair
// shares for the others, in list order. When more requests have one
// token than the budget holds, the places rotate with step so that none
// waits forever.
func share(reqs []Request, list []int, want []int, budget, step int) int {
	work := func(i int) int { return reqs[i].Known - reqs[i].Computed }
	singles := 0
	for _, i := range list {
		if work(i) == 1 {
			singles++
		}
	}
	rot := 0
	if singles > budget && len(list) > 0 {
		rot = step % len(list)
	}
	for k := range list {
		i := list[(k+rot)%len(list)]
		if work(i) == 1 && budget > 0 {
			want[i] = 1
			budget--
		}
	}
	// Fair split: repeatedly give each open request an equal share of
	// what is left, capped by its work; leftovers go round again.
	for budget > 0 {
		open := 0
		for _, i := range list {
			if w := work(i); w > 1 && want[i] < w {
				open++
			}
		}
		if open == 0 {
			break
		}
		each := max(budget/open, 1)
		for _, i := range list {
			if budget == 0 {
				break
			}
			if w := work(i); w > 1 {
				give := min(each, w-want[i], budget)
				want[i] += give
				budget -= give
			}
		}
	}
	return budget
}
