// Package batch is the scheduler: one goroutine that owns the forward pass
// and, step after step, packs the pending tokens of every active sequence
// into one flat batch.
//
// There are no prefill and decode modes. Each sequence simply has tokens
// it knows (its prompt, then every token it generated) and a count of
// tokens already computed into the KV cache; the difference is its work.
// A generating sequence has exactly one token of work per step (the token
// it just sampled); a sequence with a fresh prompt has many. Each step:
//
//  1. every sequence with one token of work (the generating ones) gets a
//     place first, so generation never stalls behind a long prompt;
//  2. the rest of the token budget (BatchSize) is split fairly among the
//     sequences with longer work — equal shares, with what one cannot use
//     passed on to the others (node-llama-cpp's "maximumParallelism") —
//     so long prompts are evaluated in chunks over several steps (chunked
//     prefill);
//  3. one Forward evaluates the batch; each sequence whose last known
//     token was in it gets that token's logits and samples its next token.
//
// Sequences join and leave between steps (continuous batching). The
// scheduler depends only on the Forwarder interface, so it can be tested
// with a fake model.
package batch

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Errors.
var (
	ErrClosed = errors.New("batch: scheduler is closed")
	ErrBusy   = errors.New("batch: sequence already has a request running")
)

// Forwarder is what the scheduler needs from a model with its KV cache.
// Sequences are small integers. Calls come from the scheduler goroutine
// only.
type Forwarder interface {
	// Vocab is the length of a logits row.
	Vocab() int
	// Reserve makes room for n more tokens of seq in the KV cache and
	// returns the position of the first. It fails (with the cache's
	// ErrKVFull) without changing anything when the cache is full.
	Reserve(seq, n int) (int, error)
	// Truncate cuts seq's cache back to its first n tokens.
	Truncate(seq, n int) error
	// Forward evaluates one flat batch (parallel arrays, one entry per
	// token) and writes the logits of the tokens flagged in output into
	// logits, (output, vocab) in batch order.
	Forward(tokens, pos, seq []int32, output []bool, logits []float32) error
}

// Sampler turns a logits row into the next token. stop ends the request
// (end of generation, a stop string, the token limit…); the token is then
// not added. It is called on the scheduler goroutine and must be quick.
type Sampler func(logits []float32) (tok int32, stop bool)

// Request asks the scheduler to evaluate Tokens at the end of sequence Seq
// and then, if Sample is set, to generate token after token until Sample
// says stop. Ctx cancels it between steps.
type Request struct {
	Ctx    context.Context
	Seq    int
	Start  int     // position of Tokens[0]: the sequence's computed length
	Tokens []int32 // tokens to evaluate (at least one)
	Sample Sampler // nil: evaluate only (the result is then just the count)
	// EveryLogits, when set, asks for the logits of every evaluated token
	// (not just the last) and receives them in order (must not keep the
	// slice). This is how per-position logits are studied.
	EveryLogits func(logits []float32)
}

// Result reports how a request ended.
type Result struct {
	Computed int   // tokens of this request written to the KV cache
	Err      error // nil, a context error, ErrKVFull, or a forward error
}

// StepInfo describes one step, for tracing.
type StepInfo struct {
	Step     int
	Tokens   int // tokens in the batch
	Items    []StepItem
	Duration time.Duration
}

// StepItem is one sequence's share of a step.
type StepItem struct {
	Seq     int
	Tokens  int
	Prompt  bool // true: part of a prompt (or other known tokens); false: one generated token
	FromPos int  // position of the first token
}

// Options configure a Scheduler.
type Options struct {
	BatchSize int             // most tokens per step (default 512)
	Trace     func(StepInfo)  // called after every step (on the scheduler goroutine)
	Idle      func(steps int) // called when the scheduler runs out of work (tests)
}

// Scheduler packs requests into steps. Create it with New; Close stops it.
type Scheduler struct {
	fw   Forwarder
	opts Options
	wake chan struct{} // (capacity 1) a request arrived or Close was called
	done chan struct{} // closed when the loop has ended

	mu      sync.Mutex
	closed  bool
	paused  bool
	busy    map[int]bool
	pending []*active // submitted, not yet taken by the loop

	// Owned by the loop goroutine.
	active []*active
	steps  int
	b      flat
	logits []float32
}

// active is a request being worked on.
type active struct {
	req      Request
	known    []int32 // tokens known but not yet computed, in order
	pos      int     // position of known[0]
	computed int     // tokens computed so far
	sampled  bool    // known holds a token this request generated
	result   chan Result
}

// flat is the batch being built: parallel arrays, as in llama_batch.
type flat struct {
	tokens, pos, seq []int32
	output           []bool
	owner            []*active // (token) request it came from
}

func (f *flat) reset() {
	f.tokens, f.pos, f.seq, f.output, f.owner = f.tokens[:0], f.pos[:0], f.seq[:0], f.output[:0], f.owner[:0]
}

// New starts a scheduler goroutine over fw.
func New(fw Forwarder, o Options) *Scheduler {
	if o.BatchSize <= 0 {
		o.BatchSize = 512
	}
	s := &Scheduler{fw: fw, opts: o, wake: make(chan struct{}, 1),
		done: make(chan struct{}), busy: map[int]bool{}}
	go s.loop()
	return s
}

// Steps is the number of forward steps run so far.
func (s *Scheduler) Steps() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.steps
}

// Submit hands a request to the scheduler and returns a channel that
// receives its Result once. A sequence can have one request at a time.
func (s *Scheduler) Submit(r Request) (<-chan Result, error) {
	if len(r.Tokens) == 0 {
		return nil, fmt.Errorf("batch: request for sequence %d has no tokens", r.Seq)
	}
	if r.Ctx == nil {
		r.Ctx = context.Background()
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, ErrClosed
	}
	if s.busy[r.Seq] {
		s.mu.Unlock()
		return nil, fmt.Errorf("%w: %d", ErrBusy, r.Seq)
	}
	s.busy[r.Seq] = true
	a := &active{req: r, known: append([]int32(nil), r.Tokens...), pos: r.Start, result: make(chan Result, 1)}
	s.pending = append(s.pending, a)
	s.mu.Unlock()
	s.poke()
	return a.result, nil
}

func (s *Scheduler) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Pause stops the scheduler from starting new steps (a step under way
// finishes); requests submitted meanwhile wait. Together with Running it
// lets a caller start several requests in the same first step.
func (s *Scheduler) Pause() {
	s.mu.Lock()
	s.paused = true
	s.mu.Unlock()
}

// Resume lets the scheduler run steps again.
func (s *Scheduler) Resume() {
	s.mu.Lock()
	s.paused = false
	s.mu.Unlock()
	s.poke()
}

// Running is the number of requests submitted and not yet finished.
func (s *Scheduler) Running() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.busy)
}

// Run submits a request and waits for its result.
func (s *Scheduler) Run(r Request) Result {
	ch, err := s.Submit(r)
	if err != nil {
		return Result{Err: err}
	}
	return <-ch
}

// Close stops the scheduler; running requests end with ErrClosed.
func (s *Scheduler) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	s.mu.Unlock()
	s.poke()
	<-s.done
}

func (s *Scheduler) release(seq int) {
	s.mu.Lock()
	delete(s.busy, seq)
	s.mu.Unlock()
}

func (s *Scheduler) finish(a *active, err error) {
	s.release(a.req.Seq)
	a.result <- Result{Computed: a.computed, Err: err}
}

func (s *Scheduler) loop() {
	defer close(s.done)
	for {
		// Take the requests submitted since the last step; when there is
		// nothing to do, sleep until something arrives.
		s.mu.Lock()
		s.active = append(s.active, s.pending...)
		s.pending = s.pending[:0]
		closed, paused := s.closed, s.paused
		s.mu.Unlock()
		if closed {
			for _, a := range s.active {
				s.finish(a, ErrClosed)
			}
			return
		}
		if len(s.active) == 0 || paused {
			if s.opts.Idle != nil {
				s.opts.Idle(s.steps)
			}
			<-s.wake
			continue
		}
		s.step()
	}
}

// step builds one batch, runs it and hands out logits.
func (s *Scheduler) step() {
	start := time.Now()
	// Requests cancelled since the last step leave now.
	kept := s.active[:0]
	for _, a := range s.active {
		if err := a.req.Ctx.Err(); err != nil {
			s.finish(a, err)
			continue
		}
		kept = append(kept, a)
	}
	s.active = kept
	if len(s.active) == 0 {
		return
	}

	plan := s.pack()
	s.b.reset()
	info := StepInfo{Step: s.steps + 1}
	var failed []*active
	for _, p := range plan {
		a, n := p.a, p.n
		first, err := s.fw.Reserve(a.req.Seq, n)
		if err == nil && first != a.pos {
			err = fmt.Errorf("batch: sequence %d: cache is at position %d, request expected %d", a.req.Seq, first, a.pos)
			s.fw.Truncate(a.req.Seq, first)
		}
		if err != nil {
			failed = append(failed, a)
			s.finish(a, err)
			continue
		}
		for k := 0; k < n; k++ {
			s.b.tokens = append(s.b.tokens, a.known[k])
			s.b.pos = append(s.b.pos, int32(a.pos+k))
			s.b.seq = append(s.b.seq, int32(a.req.Seq))
			// Logits are needed only for the last known token, and only
			// when the request generates (or asks for all of them).
			s.b.output = append(s.b.output, a.req.EveryLogits != nil || (k == len(a.known)-1 && a.req.Sample != nil))
			s.b.owner = append(s.b.owner, a)
		}
		info.Items = append(info.Items, StepItem{Seq: a.req.Seq, Tokens: n, Prompt: !a.sampled, FromPos: a.pos})
	}
	s.remove(failed)
	if len(s.b.tokens) == 0 {
		return
	}
	nOut := 0
	for _, o := range s.b.output {
		if o {
			nOut++
		}
	}
	if need := nOut * s.fw.Vocab(); cap(s.logits) < need {
		s.logits = make([]float32, need)
	}
	logits := s.logits[:nOut*s.fw.Vocab()]
	if err := s.fw.Forward(s.b.tokens, s.b.pos, s.b.seq, s.b.output, logits); err != nil {
		// A failed step fails everyone in it; their caches go back to
		// where they were before the step.
		for _, p := range plan {
			if !contains(failed, p.a) {
				s.fw.Truncate(p.a.req.Seq, p.a.pos)
				s.finish(p.a, err)
				failed = append(failed, p.a)
			}
		}
		s.remove(failed)
		return
	}
	s.mu.Lock()
	s.steps++
	s.mu.Unlock()

	// Advance every request by what it contributed, then sample.
	V := s.fw.Vocab()
	o := 0
	var ended []*active
	for i := 0; i < len(s.b.tokens); {
		a := s.b.owner[i]
		n := 0
		for i+n < len(s.b.tokens) && s.b.owner[i+n] == a {
			n++
		}
		a.known = a.known[n:]
		a.pos += n
		a.computed += n
		if a.req.EveryLogits != nil {
			for k := 0; k < n-1; k++ {
				a.req.EveryLogits(logits[o*V : (o+1)*V])
				o++
			}
		}
		if s.b.output[i+n-1] {
			row := logits[o*V : (o+1)*V]
			o++
			if a.req.EveryLogits != nil {
				a.req.EveryLogits(row)
			}
			if a.req.Sample == nil {
				if len(a.known) == 0 {
					ended = append(ended, a)
				}
				i += n
				continue
			}
			tok, stop := a.req.Sample(row)
			if stop {
				ended = append(ended, a)
			} else {
				a.known = append(a.known[:0], tok)
				a.sampled = true
			}
		} else if len(a.known) == 0 {
			ended = append(ended, a) // evaluate-only request done
		}
		i += n
	}
	// Trace before the results go out, so that a caller who has its
	// result has seen every step that produced it.
	info.Tokens = len(s.b.tokens)
	info.Duration = time.Since(start)
	if s.opts.Trace != nil {
		s.opts.Trace(info)
	}
	for _, a := range ended {
		s.finish(a, nil)
	}
	s.remove(ended)
}

func contains(list []*active, a *active) bool {
	for _, x := range list {
		if x == a {
			return true
		}
	}
	return false
}

func (s *Scheduler) remove(gone []*active) {
	if len(gone) == 0 {
		return
	}
	kept := s.active[:0]
	for _, a := range s.active {
		if !contains(gone, a) {
			kept = append(kept, a)
		}
	}
	s.active = kept
}

type share struct {
	a *active
	n int
}

// pack decides how many tokens each request contributes this step: first
// one token for every request with a single token of work, then fair
// shares of the remaining budget for the others, in arrival order.
func (s *Scheduler) pack() []share {
	budget := s.opts.BatchSize
	var plan []share
	var long []*active
	// One-token requests in arrival order; when there are more of them
	// than the budget, start at a different one each step so that none
	// waits forever.
	n, singles := len(s.active), 0
	for _, a := range s.active {
		if len(a.known) == 1 {
			singles++
		}
	}
	rot := 0
	if singles > budget {
		rot = s.steps
	}
	for k := 0; k < n; k++ {
		a := s.active[(k+rot)%n]
		if len(a.known) == 1 && budget > 0 {
			plan = append(plan, share{a, 1})
			budget--
		}
	}
	for _, a := range s.active {
		if len(a.known) > 1 {
			long = append(long, a)
		}
	}
	// Fair split: repeatedly give each remaining request an equal share of
	// what is left, capped by its need; leftovers go round again.
	alloc := make([]int, len(long))
	for budget > 0 {
		open := 0
		for i, a := range long {
			if alloc[i] < len(a.known) {
				open++
			}
		}
		if open == 0 {
			break
		}
		each := max(budget/open, 1)
		for i, a := range long {
			if budget == 0 {
				break
			}
			give := min(each, len(a.known)-alloc[i], budget)
			if give > 0 {
				alloc[i] += give
				budget -= give
			}
		}
	}
	for i, a := range long {
		if alloc[i] > 0 {
			plan = append(plan, share{a, alloc[i]})
		}
	}
	return plan
}
