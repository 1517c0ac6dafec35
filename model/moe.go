package model

import (
	"cmp"
	"math"
	"slices"

	"github.com/gollm/gollm/backend"
	"github.com/gollm/gollm/kernels"
)

// The mixture-of-experts feed-forward block (qwen3moe).
//
// Each layer has E experts, SwiGLU blocks of width expertFF, and a router
// (ffn_gate_inp, E × embd). For every token x̂ (the normalised residual):
//
//	p   = softmax(W_router · x̂)                  (E)  probabilities
//	e_r = the k experts of largest p, r = 0..k-1   (k = expert_used_count)
//	w_r = p[e_r] / max(Σ_r p[e_r], 2^-14)          renormalised: Σ w_r = 1
//	y   = Σ_r w_r · W_down,e_r · (silu(W_gate,e_r·x̂) ⊙ W_up,e_r·x̂)
//
// which is llama.cpp's build_moe_ffn for qwen3moe: softmax gating, top-k,
// the k weights always renormalised (qwen3moe's norm_w is fixed to true;
// the file's norm_topk_prob is not read), the sum clamped below at the
// smallest normal half, 6.103515625e-5, and no extra scale.
//
// Numerics, step by step as llama.cpp's CPU backend does them: the router
// product is an F32 × F32 product (no activation rounding, like
// ggml_mul_mat on F32 weights); the softmax is ggml_soft_max's
// (kernels.Softmax: e^(x−max), the sum in float64, times float32(1/sum));
// the sum of the k weights is accumulated in float64 and rounded once
// (ggml_sum_rows), each weight divided by it in float32; each expert
// output is multiplied by its weight in float32 and the k products added
// in rank order (ggml_mul, then ggml_add of the views; llama.cpp's top_k
// swaps ranks 0 and 1, which changes nothing as their sum commutes).
//
// Ties. llama.cpp takes the top k with std::partial_sort (ggml's top_k
// on the CPU), which the C++ standard leaves unspecified for equal
// values. libstdc++'s version heaps the first k ids and lets a later id
// in only when it is strictly greater than the heap's least, so at the
// boundary the lower id stays; gollm ranks equal probabilities by the
// lower id everywhere, which picks the same set, deterministically. (The
// order inside the set only changes the order of the final sum, where
// llama.cpp's swap of ranks 0 and 1 and any tie order give the same
// float32 results for k = 2. On real routers exact ties do not occur:
// the logits are products of distinct float32 rows.)
//
// Grouping. The routing runs on the host (the router logits, E floats a
// token, are read back), then the (token, rank) pairs are grouped by
// expert: a counting sort, tokens in batch order within each expert. Each
// expert that some token chose then runs once on its gathered rows:
//
//	gather rows of x̂ → Linear(gate_e, up_e) → SwiGLU → Linear(down_e)
//	→ scatter to rows t·k + r of a (token·k, embd) buffer
//
// so its three matrices are read once per step whatever the number of
// tokens that chose it, and an expert no token chose is not read at all.
// Finally WeightedSum mixes each token's k rows in rank order.
//
// Worked example: 3 tokens, E = 4, k = 2, the router picks token 0 →
// (2, 0), token 1 → (2, 3), token 2 → (0, 2) (rank order). Grouped by
// expert: expert 0: tokens (0, 2) into rows (0·2+1, 2·2+0) = (1, 4);
// expert 1: none (not read); expert 2: tokens (0, 1, 2) into rows (0, 2,
// 5); expert 3: token 1 into row 3. Then x̂'[t] = w[t,0]·out[2t] +
// w[t,1]·out[2t+1].
//
// Batch invariance: a token's expert rows go through the quantized
// kernels, whose result for a (weight row, token) pair does not depend on
// the other tokens of the call (package kernels), and its k products are
// summed in its own rank order, so its result is the same bit for bit
// whether it shares an expert with no other token or with many.

// moeScratch holds a stage's mixture-of-experts buffers on its backend.
type moeScratch struct {
	router backend.Buffer // (token, expert) router logits
	x      backend.Buffer // (token, embd) the rows gathered for one expert
	y      backend.Buffer // (token, embd) that expert's output
	out    backend.Buffer // (token·k, embd) row t·k+r: token t's rank-r expert output
}

// routing is the host side of the routing of one step, sized once.
type routing struct {
	logits []float32 // (token, expert) router logits, then probabilities
	order  []int32   // (expert) scratch: one token's experts by decreasing probability
	sel    []int32   // (token, k) chosen experts, by rank
	w      []float32 // (token, k) their renormalised weights
	start  []int32   // (expert+1) the pairs of expert e are [start[e], start[e+1]) of toks, slots
	toks   []int32   // (token·k) batch index of each (token, rank) pair, grouped by expert
	slots  []int32   // (token·k) its row t·k+r in moeScratch.out
}

func newRouting(maxTokens, experts, k int) *routing {
	return &routing{
		logits: make([]float32, maxTokens*experts), order: make([]int32, experts),
		sel: make([]int32, maxTokens*k), w: make([]float32, maxTokens*k),
		start: make([]int32, experts+1),
		toks:  make([]int32, maxTokens*k), slots: make([]int32, maxTokens*k),
	}
}

// minWeightSum is llama.cpp's lower clamp of the sum of a token's k
// probabilities before it divides by it: the smallest normal half, 2^-14.
const minWeightSum = 6.103515625e-5

// route turns the router logits of n tokens into each token's k experts
// (by decreasing probability, equal ones by lower id) and their
// renormalised weights. The logits are replaced by the probabilities.
//
// The experts are ranked by a sort, O(E log E) a token whatever k is
// (a file may ask for k = E = 4096). A NaN probability (a router row
// that overflowed) ranks as -Inf, so the order stays a strict one and a
// broken row still yields k distinct valid experts.
func (rt *routing) route(n, experts, k int) {
	for t := 0; t < n; t++ {
		p := rt.logits[t*experts : (t+1)*experts]
		kernels.Softmax(p) // (expert)
		order := rt.order[:experts]
		for e := range order {
			order[e] = int32(e)
		}
		slices.SortFunc(order, func(a, b int32) int {
			pa, pb := rankKey(p[a]), rankKey(p[b])
			switch {
			case pa > pb:
				return -1
			case pa < pb:
				return 1
			}
			return cmp.Compare(a, b)
		})
		sel, w := rt.sel[t*k:(t+1)*k], rt.w[t*k:(t+1)*k]
		copy(sel, order[:k])
		for r, e := range sel {
			w[r] = p[e]
		}
		var sum float64 // ggml_sum_rows: float64, rounded once
		for _, v := range w {
			sum += float64(v)
		}
		s := max(float32(sum), minWeightSum)
		for r := range w {
			w[r] /= s
		}
	}
}

// rankKey orders probabilities for the top-k: a NaN counts as -Inf.
func rankKey(p float32) float32 {
	if p != p {
		return float32(math.Inf(-1))
	}
	return p
}

// group sorts the n·k (token, rank) pairs by expert (counting sort;
// batch order within an expert): afterwards expert e's tokens are
// toks[start[e]:start[e+1]] and their output rows slots[…].
func (rt *routing) group(n, experts, k int) {
	start := rt.start
	clear(start)
	for _, e := range rt.sel[:n*k] {
		start[e+1]++
	}
	for e := 0; e < experts; e++ {
		start[e+1] += start[e]
	}
	// Fill each expert's range in order, using start[e] as its cursor,
	// then shift the cursors back into starts.
	for i, e := range rt.sel[:n*k] {
		at := start[e]
		rt.toks[at], rt.slots[at] = int32(i/k), int32(i)
		start[e]++
	}
	copy(start[1:], start[:experts])
	start[0] = 0
}

// mixtureOfExperts computes the MoE block on the normalised rows xn
// (token, embd), leaving its output in xn (see the top of this file).
func (m *Model) mixtureOfExperts(be backend.Backend, n int, ss *stageState, P *layerProj, rt *routing) {
	c, ms := &m.Config, ss.moe
	E, k := c.Experts, c.ExpertsUsed
	be.Linear(ss.xn, n, P.router...) // router logits (token, expert)
	be.Read(rt.logits, ms.router, n) // to the host
	rt.route(n, E, k)                // sel, w (token, k)
	rt.group(n, E, k)                // (token, rank) pairs by expert
	for e := 0; e < E; e++ {
		lo, hi := rt.start[e], rt.start[e+1]
		if lo == hi {
			continue // no token chose expert e: its weights are not read
		}
		cnt := int(hi - lo)
		be.Gather(ms.x, ss.xn, rt.toks[lo:hi])    // (cnt, embd)
		be.Linear(ms.x, cnt, P.expGateUp[e]...)   // gate, up (cnt, expertFF)
		be.SwiGLU(ss.gate, ss.gate, ss.up, cnt)   // silu(gate) ⊙ up
		be.Linear(ss.gate, cnt, P.expDown[e]...)  // y = W_down,e · gate (cnt, embd)
		be.Scatter(ms.out, ms.y, rt.slots[lo:hi]) // rows t·k + r
	}
	be.WeightedSum(ss.xn, ms.out, rt.w[:n*k], k, n) // xn[t] = Σ_r w[t,r]·out[t·k+r]
}
