// Package sample picks the next token from one row of logits.
//
// After each forward step the scheduler hands every sequence that wants a
// token one row of logits: float32, one per vocabulary entry (151936 for
// Qwen3). A Sampler, one per sequence, turns that row into a token id.
//
// # The chain
//
// Sample applies the same steps, in the same order, as llama.cpp's default
// sampler chain (common/sampling.cpp: logit bias, penalties, top-k, top-p,
// min-p, temperature, dist):
//
//  1. Logit bias: logit[id] += LogitBias[id].
//  2. Penalties: for every token t that occurs c > 0 times among the last
//     PenaltyLastN accepted tokens, a positive logit[t] is divided by
//     RepeatPenalty and a zero or negative one multiplied by it (llama.cpp's
//     rule: either way the token becomes less likely), then
//     c*FrequencyPenalty + PresencePenalty is subtracted.
//  3. Greedy: if Temperature is 0, return the highest logit now, ties to
//     the lowest id. (Steps 4 to 6 always keep the highest logit, so they
//     could not change this answer.)
//  4. Top-k: keep the TopK highest logits.
//  5. Top-p: take the softmax (at temperature 1) of what is left; keep the
//     shortest run of tokens, by decreasing logit, whose probabilities add
//     up to at least TopP.
//  6. Min-p: keep tokens with logit >= maxLogit + ln(MinP), which is
//     probability >= MinP times the top token's probability.
//  7. Temperature: divide the surviving logits by Temperature.
//  8. Softmax over the survivors and draw one of them with a PCG generator
//     (math/rand/v2) seeded from Params.Seed.
//
// Top-p and min-p look at the logits before the temperature, as in
// llama.cpp: the temperature reshapes the draw among the survivors but does
// not decide who survives. Wherever rank matters (greedy, top-k, top-p,
// TopK), tokens are ranked by logit descending, ties by lower id.
//
// # Accepted tokens and penalties
//
// Sample does not record the token it returns. Call Accept for every token
// that enters the sequence: first the prompt's tokens (as llama-server
// does, so the penalties see the prompt too), then each generated token.
// The penalties look only at what was accepted. Reset forgets the history
// and restarts the random generator from Params.Seed.
//
// # Odd logits
//
//   - NaN is an error: TrySample returns an error wrapping ErrNaNLogit
//     that names the first NaN token, and Sample returns NoToken. A NaN
//     logit means the model's arithmetic broke somewhere; drawing from
//     the remaining tokens would hide that behind plausible text. Finding
//     it costs nothing: every path already scans the whole row once for
//     its highest logits (argmax or selectTop), and the test "l beats the
//     best so far" is written !(l <= best), which is also true for NaN, so
//     NaN takes the same rarely taken branch as a new maximum.
//   - -Inf has probability zero and is never picked. A LogitBias of -Inf
//     therefore bans a token.
//   - +Inf is certain: if any logit is +Inf after bias and penalties, the
//     lowest such id is returned, greedy or not (softmax has no meaning
//     there). A LogitBias of +Inf therefore forces a token.
//   - An infinite LogitBias wins over an infinite logit of the other sign
//     (where the sum would be NaN): a banned token stays banned even when
//     its logit is +Inf.
//   - If the row is empty, or every logit is -Inf after bias and
//     penalties, there is nothing to draw: TrySample returns an error
//     wrapping ErrNoCandidates and Sample returns NoToken.
//
// The caller's logits are never modified: Sample copies the row into
// scratch space first, so the caller may still print or reuse it.
//
// # Cost
//
// Sampling runs once per token per sequence, on rows of 151936 logits, so a
// Sampler keeps all its scratch buffers and allocates nothing per call once
// it has seen a row of the usual size. Greedy is one copy and one pass over
// the row. Top-k does not sort the row: a bounded heap keeps the best k in
// one pass (see selectTop). With top-k off and top-p on, a histogram of
// distances from the top logit shows which tokens are surely in the
// nucleus, and only the tokens of one histogram bucket, where the nucleus
// ends, are sorted (see nucleus). The penalties cost O(PenaltyLastN), not
// O(vocabulary). Without top-k every path computes one exp per token of
// the row (top-p needs the softmax normaliser of the whole row), so those
// paths cost about 15 to 25 times the top-k path (see the benchmarks).
//
// A Sampler is not safe for concurrent use; give each sequence its own.
package sample

import (
	"cmp"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
)

// NoToken is what Sample returns when no token can be drawn.
const NoToken int32 = -1

// pcgStream is the second half of the PCG's 128-bit seed. Any fixed value
// would do: Params.Seed alone chooses the random sequence.
const pcgStream = 0x9e3779b97f4a7c15

// negInf is -Inf as a float32, for comparisons in the hot loops.
var negInf = float32(math.Inf(-1))

// Sampler picks tokens for one sequence. Create it with New.
type Sampler struct {
	params Params      // validated; LogitBias is the Sampler's own copy
	bias   []tokenBias // (len(LogitBias)) the logit bias, sorted by id

	src *rand.PCG  // the generator's state, kept to reseed it in Reset
	rng *rand.Rand // draws from src

	// history holds the accepted tokens, oldest first. With
	// PenaltyLastN = n > 0 only the last n matter, so Accept keeps between
	// n and 2n of them; with -1 it keeps them all; with 0 none.
	history []int32

	// Scratch, sized on first use and reused by every call.
	work    []float32 // (vocab) the caller's row after bias and penalties
	counts  []int32   // (vocab) occurrences in the penalty window; all zero between calls
	cands   []IDLogit // (candidates) tokens still in the running
	weights []float64 // (candidates) exp((logit - maxLogit) / Temperature)
}

// tokenBias is one entry of Params.LogitBias.
type tokenBias struct {
	id   int32
	bias float32
}

// New validates p and returns a Sampler for one sequence.
func New(p Params) (*Sampler, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	s := &Sampler{params: p.clone()}
	for id, b := range s.params.LogitBias {
		s.bias = append(s.bias, tokenBias{id: id, bias: b})
	}
	slices.SortFunc(s.bias, func(a, b tokenBias) int { return cmp.Compare(a.id, b.id) })
	s.src = rand.NewPCG(p.Seed, pcgStream)
	s.rng = rand.New(s.src)
	return s, nil
}

// Params returns the Sampler's parameters (with a fresh copy of LogitBias).
func (s *Sampler) Params() Params { return s.params.clone() }

// Accept records a token that entered the sequence, prompt or generated,
// so that the penalties can see it. Ids outside the logits row are kept but
// ignored by the penalties.
func (s *Sampler) Accept(id int32) {
	n := s.params.PenaltyLastN
	if n == 0 {
		return // the penalties look at nothing
	}
	if n > 0 && len(s.history)-n >= n {
		// Only the last n tokens matter. Moving them to the front once
		// every n accepts costs O(1) per token on average and never
		// allocates.
		kept := copy(s.history, s.history[len(s.history)-n:])
		s.history = s.history[:kept]
	}
	s.history = append(s.history, id)
}

// AcceptAll calls Accept for each id in order, e.g. for a prompt.
func (s *Sampler) AcceptAll(ids []int32) {
	for _, id := range ids {
		s.Accept(id)
	}
}

// Reset forgets the accepted tokens and reseeds the random generator, so
// the Sampler behaves exactly as one fresh from New.
func (s *Sampler) Reset() {
	s.history = s.history[:0]
	s.src.Seed(s.params.Seed, pcgStream)
}

// Sample returns the next token for this row of logits, or NoToken when
// none can be drawn (see TrySample for why). It never modifies logits.
func (s *Sampler) Sample(logits []float32) int32 {
	id, err := s.TrySample(logits)
	if err != nil {
		return NoToken
	}
	return id
}

// TrySample is Sample with the reason for a failure: an error wrapping
// ErrNaNLogit when a logit is NaN, ErrNoCandidates when the row is empty
// or every logit is -Inf after bias and penalties, or ErrInvalidParams
// when LogitBias names a token id beyond the end of the row.
func (s *Sampler) TrySample(logits []float32) (int32, error) {
	work, err := s.prepare(logits) // steps 1 and 2
	if err != nil {
		return NoToken, err
	}
	if s.params.Temperature == 0 { // step 3
		id, nan := argmax(work)
		switch {
		case nan >= 0:
			return NoToken, errNaN(logits, nan)
		case id == NoToken:
			return NoToken, errAllMasked(len(work))
		}
		return id, nil
	}
	cands, maxLogit, err := s.truncate(logits, work) // steps 4 to 6
	if err != nil {
		return NoToken, err
	}
	return s.draw(cands, maxLogit), nil // steps 7 and 8
}

// errAllMasked is the error for a row with nothing left to draw.
func errAllMasked(n int) error {
	if n == 0 {
		return fmt.Errorf("%w: the logits row is empty", ErrNoCandidates)
	}
	return fmt.Errorf("%w: all %d logits are -Inf after logit bias and penalties", ErrNoCandidates, n)
}

// errNaN is the error for a NaN at work[i]. logits is the caller's row:
// the NaN is normally there; the penalties can make one only from an
// infinite logit and a penalty c·FrequencyPenalty + PresencePenalty that
// overflows to the same infinity.
func errNaN(logits []float32, i int32) error {
	if l := logits[i]; l != l {
		return fmt.Errorf("%w: the logit of token %d (of %d) is NaN", ErrNaNLogit, i, len(logits))
	}
	return fmt.Errorf("%w: the logit of token %d (of %d) is NaN after the penalties (it was %g)", ErrNaNLogit, i, len(logits), logits[i])
}

// prepare copies the row into s.work and applies the logit bias and the
// penalties (steps 1 and 2). It returns s.work.
func (s *Sampler) prepare(logits []float32) ([]float32, error) {
	n := len(logits)
	if n == 0 {
		return nil, errAllMasked(0)
	}
	if k := len(s.bias); k > 0 && int(s.bias[k-1].id) >= n {
		return nil, fmt.Errorf("%w: logit bias for token %d, but the logits row has only %d entries",
			ErrInvalidParams, s.bias[k-1].id, n)
	}
	s.work = resize(s.work, n)
	work := s.work // (vocab)
	copy(work, logits)

	for _, b := range s.bias {
		l := work[b.id] + b.bias
		if l != l && work[b.id] == work[b.id] {
			// ±Inf plus ∓Inf: the caller's ban (or force) wins.
			l = b.bias
		}
		work[b.id] = l
	}
	if s.params.penaltiesOn() {
		s.applyPenalties(work)
	}
	return work, nil
}

// window returns the accepted tokens the penalties look at.
func (s *Sampler) window() []int32 {
	n := s.params.PenaltyLastN
	if n < 0 || len(s.history) <= n {
		return s.history
	}
	return s.history[len(s.history)-n:]
}

// applyPenalties applies step 2 to the row. It counts each token of the
// window in s.counts (one slot per vocabulary entry, so no map is needed),
// then visits the window again and penalises each distinct token once,
// zeroing its count as it goes. That zeroing both skips the token's later
// occurrences and leaves s.counts all zero for the next call. The cost is
// O(window), independent of the vocabulary size.
func (s *Sampler) applyPenalties(work []float32) {
	s.counts = resize(s.counts, len(work))
	counts := s.counts // (vocab)
	window := s.window()
	inRow := func(t int32) bool { return t >= 0 && int(t) < len(work) }

	for _, t := range window {
		if inRow(t) {
			counts[t]++
		}
	}
	repeat, freq, presence := s.params.RepeatPenalty, s.params.FrequencyPenalty, s.params.PresencePenalty
	for _, t := range window {
		if !inRow(t) || counts[t] == 0 {
			continue // outside the row, or already penalised
		}
		c := counts[t]
		counts[t] = 0

		l := work[t]
		if l <= 0 {
			l *= repeat // more negative
		} else {
			l /= repeat // less positive
		}
		l -= float32(c)*freq + presence
		work[t] = l
	}
}

// argmax returns the id of the highest logit, the lowest id among equals,
// or NoToken when every logit is -Inf; or, if it meets a NaN, the id of
// that NaN as nan (else nan is -1). !(l <= best) is l > best, strict so
// that the first of equals stays, or l is NaN (every comparison with NaN
// is false): one branch, rarely taken, serves both.
func argmax(row []float32) (id, nan int32) {
	best := negInf
	id = NoToken
	for i, l := range row {
		if !(l <= best) {
			if l != l {
				return NoToken, int32(i)
			}
			best, id = l, int32(i)
		}
	}
	return id, -1
}

// truncate runs top-k, top-p and min-p (steps 4 to 6) on the prepared row
// work (logits is the caller's row, for errors). It returns the surviving
// candidates, none of them -Inf, and the highest logit among them. If some
// logit is +Inf the only candidate is the lowest id with +Inf.
func (s *Sampler) truncate(logits, work []float32) (cands []IDLogit, maxLogit float32, err error) {
	p := s.params
	if p.TopK > 0 && p.TopK < len(work) {
		// Top-k by heap selection; cands come back sorted.
		var nan int32
		s.cands, nan = selectTop(s.cands, work, p.TopK)
		if nan >= 0 {
			return nil, 0, errNaN(logits, nan)
		}
		cands = s.cands
		for len(cands) > 0 && cands[len(cands)-1].Logit == negInf {
			cands = cands[:len(cands)-1] // -Inf tokens have probability 0
		}
		if len(cands) == 0 {
			return nil, 0, errAllMasked(len(work))
		}
		maxLogit = cands[0].Logit
		if math.IsInf(float64(maxLogit), 1) {
			return cands[:1], maxLogit, nil
		}
		if p.TopP < 1 {
			cands = topP(cands, p.TopP, sumExp(cands, maxLogit))
		}
		if p.MinP > 0 {
			cands = minPSorted(cands, p.MinP)
		}
		return cands, maxLogit, nil
	}

	// Top-k is off, or would keep every token.
	maxID, nan := argmax(work)
	switch {
	case nan >= 0:
		return nil, 0, errNaN(logits, nan)
	case maxID == NoToken:
		return nil, 0, errAllMasked(len(work))
	}
	maxLogit = work[maxID]
	if math.IsInf(float64(maxLogit), 1) {
		s.cands = append(s.cands[:0], IDLogit{ID: maxID, Logit: maxLogit})
		return s.cands, maxLogit, nil
	}
	if p.TopP < 1 {
		return s.nucleus(work, maxLogit), maxLogit, nil // top-p and min-p together
	}
	// No top-p: every token at or above the min-p threshold, in id order
	// (the draw does not need them sorted).
	threshold := minPThreshold(maxLogit, p.MinP)
	cands = s.cands[:0]
	for i, l := range work {
		if l > negInf && l >= threshold {
			cands = append(cands, IDLogit{ID: int32(i), Logit: l})
		}
	}
	s.cands = cands
	return cands, maxLogit, nil
}

// weight is the unnormalised softmax weight exp(logit - maxLogit), in
// float64 so that sums over 151936 tokens keep their precision.
func weight(logit, maxLogit float32) float64 {
	return math.Exp(float64(logit) - float64(maxLogit))
}

// sumExp is the softmax normaliser of the candidates at temperature 1.
func sumExp(cands []IDLogit, maxLogit float32) float64 {
	z := 0.0
	for _, c := range cands {
		z += weight(c.Logit, maxLogit)
	}
	return z
}

// topP keeps the shortest prefix of the sorted candidates whose
// probabilities weight/z add up to at least p (step 5). z is the softmax
// normaliser over the set top-p is applied to (after top-k when that is
// on, else the whole row).
func topP(sorted []IDLogit, p float32, z float64) []IDLogit {
	maxLogit := sorted[0].Logit
	target := float64(p) * z
	cum := 0.0
	for i, c := range sorted {
		cum += weight(c.Logit, maxLogit)
		if cum >= target {
			return sorted[:i+1]
		}
	}
	return sorted
}

// minPThreshold is the lowest logit min-p keeps: a token's probability is
// at least minP times the top one's exactly when its logit is at least
// maxLogit + ln(minP). With min-p off it is -Inf.
func minPThreshold(maxLogit, minP float32) float32 {
	if minP <= 0 {
		return negInf
	}
	return maxLogit + float32(math.Log(float64(minP)))
}

// minPSorted applies min-p (step 6) to sorted candidates: they pass while
// their logit stays at or above the threshold.
func minPSorted(sorted []IDLogit, minP float32) []IDLogit {
	threshold := minPThreshold(sorted[0].Logit, minP)
	for i, c := range sorted {
		if c.Logit < threshold {
			return sorted[:i]
		}
	}
	return sorted
}

// draw applies the temperature and draws one candidate from the softmax of
// the candidates (steps 7 and 8): with weights w_i = exp((l_i - max)/T) it
// picks a uniform u in [0, sum w) and returns the first candidate whose
// running sum of weights exceeds u.
func (s *Sampler) draw(cands []IDLogit, maxLogit float32) int32 {
	if len(cands) == 1 {
		return cands[0].ID // also the +Inf case, where softmax is undefined
	}
	t := float64(s.params.Temperature)
	s.weights = resize(s.weights, len(cands))
	weights := s.weights // (candidates)
	sum := 0.0
	for i, c := range cands {
		w := math.Exp((float64(c.Logit) - float64(maxLogit)) / t)
		weights[i] = w
		sum += w
	}

	u := s.rng.Float64() * sum // in [0, sum)
	cum := 0.0
	for i, w := range weights {
		cum += w
		if u < cum {
			return cands[i].ID
		}
	}
	// Not reached: the loop adds the same weights in the same order as the
	// sum, so cum ends equal to sum > u.
	return cands[len(cands)-1].ID
}

// resize returns buf with length n, reallocating only when its capacity is
// too small. New storage is zeroed.
func resize[T any](buf []T, n int) []T {
	if cap(buf) < n {
		return make([]T, n)
	}
	return buf[:n]
}
