package gollm

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/gollm/gollm/flat"
	"github.com/gollm/gollm/grammar"
	"github.com/gollm/gollm/sample"
)

// Sequence is one conversation's share of a Context: the tokens it holds
// in the shared KV cache. Its methods may be called from any goroutine,
// callbacks included; one generation runs at a time per sequence.
type Sequence struct {
	ctx    *Context
	id     flat.SeqID
	turn   chan struct{} // capacity 1: held for a whole generation
	closed atomic.Bool
}

// ID is the sequence's number within its context (0 … Sequences-1).
func (s *Sequence) ID() int { return int(s.id) }

// Context is the sequence's context.
func (s *Sequence) Context() *Context { return s.ctx }

// Tokens returns a copy of the tokens held in the KV cache (during a
// generation: those computed so far).
func (s *Sequence) Tokens() []int32 {
	if s.closed.Load() {
		return nil
	}
	return s.ctx.eng.kv.Tokens(s.id)
}

// Close gives the sequence's KV blocks and its slot back to the context.
// A generation under way on it ends with ErrClosed.
func (s *Sequence) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	s.ctx.release(s.id)
	return nil
}

// Fork takes a free sequence of the same context that starts with a copy
// of this one's tokens (those computed so far). Their KV blocks are shared
// by reference, and copied only when one of them writes into a shared,
// partly filled block (copy on write), so n answers to one prompt
// evaluate the prompt once. It returns ErrNoSequences when none is free.
func (s *Sequence) Fork() (*Sequence, error) {
	if s.closed.Load() {
		return nil, ErrClosed
	}
	return s.ctx.fork(s.id)
}

// Clear empties the sequence's KV cache.
func (s *Sequence) Clear() error { return s.Truncate(0) }

// Truncate cuts the sequence's KV cache back to its first n tokens.
func (s *Sequence) Truncate(n int) error {
	if s.closed.Load() {
		return ErrClosed
	}
	var err error
	if e := s.ctx.eng.do(func() {
		if s.ctx.eng.bySeq[s.id] != nil {
			err = fmt.Errorf("gollm: sequence %d is generating; it cannot be cut now", s.id+1)
			return
		}
		err = s.ctx.eng.kv.Truncate(s.id, n)
	}); e != nil {
		return e
	}
	return err
}

// GenerateOptions control Generate.
type GenerateOptions struct {
	// MaxTokens ends generation after this many tokens (0: no limit
	// besides the end-of-generation token and the context size).
	MaxTokens int
	// Sampling chooses tokens (nil: sample.DefaultParams()).
	Sampling *sample.Params
	// IgnoreEOG keeps generating past end-of-generation tokens.
	IgnoreEOG bool
	// OnToken is called with each generated token, on the goroutine that
	// called Generate; returning true stops generation after it.
	OnToken func(id int32) (stop bool)
	// OnLogits is called with the logits row of each generated token
	// (for study; a copy, which the callback may keep). With a Grammar
	// it is the model's row, before the mask.
	OnLogits func(logits []float32)
	// Grammar, when set, constrains the generated text to the grammar's
	// language (grammar.Parse for GBNF, grammar.JSONSchema,
	// grammar.JSONObject): tokens that cannot continue it are never
	// sampled, end of generation is allowed only where the text is a
	// complete sentence, and generation ends by itself (FinishEOG) once
	// nothing may follow. Special tokens are never generated. A state
	// where nothing is allowed ends with an error wrapping
	// ErrGrammarStuck. With IgnoreEOG, end-of-generation tokens stay
	// refused: generation ends where nothing may follow, or at
	// MaxTokens. One Grammar may serve any number of requests at once.
	// See constrain.go.
	Grammar *grammar.Grammar
	// Trigger, with Grammar, makes it lazy: the text is free until the
	// token Trigger.Open, the grammar constrains what follows up to the
	// token Trigger.Close (forced once the grammar is complete), and so
	// on for every span: tool calls (see constrain.go).
	Trigger *GrammarTrigger
}

// Finish reasons.
const (
	FinishEOG     = "eog"     // the model produced an end-of-generation token
	FinishLength  = "length"  // MaxTokens reached
	FinishStop    = "stop"    // OnToken asked to stop (a stop string, say)
	FinishContext = "context" // the context (or the shared cache) is full
	FinishCancel  = "cancelled"
	FinishError   = "error"
)

// Generation is the outcome of Generate.
type Generation struct {
	Tokens         []int32 // generated tokens (the end-of-generation token excluded)
	PromptTokens   int     // prompt tokens given
	ReusedTokens   int     // of those, already in the KV cache (not evaluated again)
	CachedTokens   int     // of ReusedTokens, found in the prefix cache (shared with other sequences)
	EvaluatedTotal int     // tokens written to the KV cache by this call (recomputations included)
	Preempted      int     // times the request gave up its KV blocks for others and was recomputed
	FinishReason   string
	PromptTime     time.Duration // until the first generated token
	GenTime        time.Duration // from the first to the last generated token
}

// Generate makes the sequence hold prompt (reusing the longest prefix it
// already holds in the KV cache, then whatever the prefix cache has, and
// evaluating only the rest), then samples tokens one by one until an
// end-of-generation token, MaxTokens, OnToken's stop, or the context
// size. Evaluation and generation share forward steps with the other
// sequences of the context. The callbacks run on the calling goroutine,
// never on the engine loop: a slow callback delays only this request, a
// panicking one panics here (the request is ended first).
//
// If ctx is cancelled, generation stops within one step, the sequence is
// cut back to the prefix it held before the call (its new KV blocks go
// back to the pool) and the context's error is returned.
func (s *Sequence) Generate(ctx context.Context, prompt []int32, o GenerateOptions) (Generation, error) {
	r, err := s.Start(ctx, prompt, o)
	if err != nil {
		return Generation{PromptTokens: len(prompt)}, err
	}
	return r.Wait()
}

// Pending is a generation submitted with Start.
type Pending struct {
	seq  *Sequence
	req  *request
	o    GenerateOptions
	done bool
	res  Generation
	err  error
}

// Start submits a generation and returns at once; Wait delivers its
// tokens to the callbacks and returns its outcome. Together with
// Context.Together it lets several generations start in one step.
func (s *Sequence) Start(ctx context.Context, prompt []int32, o GenerateOptions) (*Pending, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	if s.closed.Load() {
		return nil, ErrClosed
	}
	if len(prompt) == 0 {
		return nil, fmt.Errorf("gollm: empty prompt")
	}
	vocab := s.ctx.model.net.Config.Vocab
	for i, t := range prompt {
		if t < 0 || int(t) >= vocab {
			return nil, fmt.Errorf("gollm: prompt token %d at index %d is outside the vocabulary of %d", t, i, vocab)
		}
	}
	if limit := s.ctx.opts.ContextSize; len(prompt) > limit {
		return nil, fmt.Errorf("%w: the prompt has %d tokens, the context size is %d", ErrContextOverflow, len(prompt), limit)
	}
	if t := o.Trigger; t != nil {
		switch {
		case o.Grammar == nil:
			return nil, fmt.Errorf("gollm: a grammar Trigger without a Grammar")
		case t.Open < 0 || int(t.Open) >= vocab || t.Close < 0 || int(t.Close) >= vocab:
			return nil, fmt.Errorf("gollm: grammar trigger tokens %d and %d must be in the vocabulary of %d", t.Open, t.Close, vocab)
		case t.Open == t.Close:
			return nil, fmt.Errorf("gollm: grammar trigger: Open and Close are the same token %d", t.Open)
		}
	}
	params := sample.DefaultParams()
	if o.Sampling != nil {
		params = *o.Sampling
	}
	smp, err := sample.New(params)
	if err != nil {
		return nil, err
	}
	smp.AcceptAll(prompt) // penalties see the prompt too
	r := &request{ctx: ctx, seq: s.id, known: append([]int32(nil), prompt...), prompt: len(prompt),
		smp: smp, maxTokens: o.MaxTokens, ignoreEOG: o.IgnoreEOG, copyLogits: o.OnLogits != nil,
		con: s.ctx.model.newConstraint(o.Grammar, o.Trigger)}
	if err := s.begin(ctx, r); err != nil {
		return nil, err
	}
	return &Pending{seq: s, req: r, o: o}, nil
}

// begin takes the sequence's turn and submits r.
func (s *Sequence) begin(ctx context.Context, r *request) error {
	select {
	case s.turn <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	case <-s.ctx.closing:
		return ErrClosed
	}
	if err := s.ctx.eng.submit(r); err != nil {
		<-s.turn
		return err
	}
	return nil
}

// Wait delivers the generation's tokens to its callbacks, on the calling
// goroutine, and returns the outcome. Calling it again returns the same.
func (p *Pending) Wait() (g Generation, err error) {
	if p.done {
		return p.res, p.err
	}
	s, r, o := p.seq, p.req, p.o
	g = Generation{PromptTokens: r.prompt}
	stopAt := -1 // generated tokens kept when the caller stopped
	var fin *outcome
	defer func() {
		if fin == nil { // a callback panicked: end the request first
			r.stop.Store(true)
			s.ctx.eng.poke()
			for fin == nil {
				for _, ev := range r.out.take(nil) {
					fin = ev.final
				}
			}
			<-s.turn
		}
	}()
	var evs []event
	for fin == nil {
		evs = r.out.take(evs)
		for _, ev := range evs {
			if ev.final != nil {
				fin = ev.final
				break
			}
			if stopAt >= 0 {
				continue // stopped: what the loop made meanwhile is dropped
			}
			if ev.row != nil && o.OnLogits != nil {
				o.OnLogits(ev.row)
			}
			if !ev.hasTok {
				continue
			}
			g.Tokens = append(g.Tokens, ev.tok)
			if o.OnToken != nil && o.OnToken(ev.tok) {
				stopAt = len(g.Tokens)
				r.stop.Store(true)
				s.ctx.eng.poke()
			}
		}
	}
	s.ctx.tr.wait(fin.step)
	g.ReusedTokens, g.CachedTokens = fin.reused+fin.cached, fin.cached
	g.EvaluatedTotal, g.Preempted = fin.evaluated, fin.preempted
	g.PromptTime, g.GenTime = fin.promptTime, fin.genTime
	g.FinishReason, err = fin.finish, fin.err
	if stopAt >= 0 {
		// The caller's stop came first: the sequence keeps the prompt and
		// the tokens up to the stop (the loop may have gone further).
		g.FinishReason, err = FinishStop, nil
		keep := r.prompt + stopAt
		s.ctx.eng.do(func() {
			if n := s.ctx.eng.kv.Len(s.id); n > keep && s.ctx.eng.bySeq[s.id] == nil {
				s.ctx.eng.kv.Truncate(s.id, keep)
			}
		})
	}
	<-s.turn
	p.done, p.res, p.err = true, g, err
	return g, err
}

// Evaluate makes the sequence hold tokens without generating.
func (s *Sequence) Evaluate(ctx context.Context, tokens []int32) error {
	if ctx == nil {
		ctx = context.Background()
	}
	if s.closed.Load() {
		return ErrClosed
	}
	if len(tokens) == 0 {
		return nil
	}
	if limit := s.ctx.opts.ContextSize; len(tokens) > limit {
		return fmt.Errorf("%w: %d tokens, the context size is %d", ErrContextOverflow, len(tokens), limit)
	}
	r := &request{ctx: ctx, seq: s.id, known: append([]int32(nil), tokens...), prompt: len(tokens)}
	if err := s.begin(ctx, r); err != nil {
		return err
	}
	p := &Pending{seq: s, req: r}
	_, err := p.Wait()
	return err
}

func commonPrefix(a, b []int32) int {
	n := 0
	for n < len(a) && n < len(b) && a[n] == b[n] {
		n++
	}
	return n
}

// evaluateAll evaluates ids from position 0 of an empty sequence and
// passes the logits row of every position to each, in order.
func (s *Sequence) evaluateAll(ctx context.Context, ids []int32, each func([]float32)) error {
	if len(s.Tokens()) != 0 {
		return fmt.Errorf("gollm: evaluateAll needs an empty sequence")
	}
	r := &request{ctx: ctx, seq: s.id, known: append([]int32(nil), ids...), prompt: len(ids), everyLogits: true}
	if err := s.begin(ctx, r); err != nil {
		return err
	}
	p := &Pending{seq: s, req: r, o: GenerateOptions{OnLogits: each}}
	_, err := p.Wait()
	return err
}
