package gollm

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/gollm/gollm/batch"
	"github.com/gollm/gollm/kvcache"
	"github.com/gollm/gollm/sample"
)

// Sequence is one conversation's share of a Context: the tokens it holds
// in the shared KV cache. Its methods may be called from any goroutine;
// one generation runs at a time per sequence.
type Sequence struct {
	ctx *Context
	id  int

	mu     sync.Mutex // held for a whole Generate
	tokens []int32    // the tokens in the KV cache, in order
	closed bool
}

// ID is the sequence's number within its context (0 … Sequences-1).
func (s *Sequence) ID() int { return s.id }

// Context is the sequence's context.
func (s *Sequence) Context() *Context { return s.ctx }

// Tokens returns a copy of the tokens held in the KV cache.
func (s *Sequence) Tokens() []int32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]int32(nil), s.tokens...)
}

// Close gives the sequence's KV blocks and its slot back to the context.
// It waits for a generation under way on the sequence to end.
func (s *Sequence) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	s.tokens = nil
	s.ctx.release(s.id)
	return nil
}

// Clear empties the sequence's KV cache.
func (s *Sequence) Clear() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	s.tokens = nil
	return s.ctx.state.KV.Truncate(kvcache.SeqID(s.id), 0)
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
	// OnToken is called with each generated token as soon as it is
	// chosen; returning true stops generation after it.
	OnToken func(id int32) (stop bool)
	// OnLogits is called with the logits row of each generated token
	// before sampling (for study; the slice must not be kept).
	OnLogits func(logits []float32)
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
	EvaluatedTotal int     // tokens written to the KV cache by this call
	FinishReason   string
	PromptTime     time.Duration // until the first generated token
	GenTime        time.Duration // from the first to the last generated token
}

// Generate makes the sequence hold prompt (reusing the longest prefix it
// already holds in the KV cache and evaluating only the rest), then
// samples tokens one by one until an end-of-generation token, MaxTokens,
// OnToken's stop, or the context size. Evaluation and generation share
// forward steps with the other sequences of the context.
//
// If ctx is cancelled, generation stops within one step, the sequence is
// cut back to the prefix it held before the call (its new KV blocks go
// back to the pool) and the context's error is returned.
func (s *Sequence) Generate(ctx context.Context, prompt []int32, o GenerateOptions) (Generation, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := Generation{PromptTokens: len(prompt)}
	if s.closed {
		return g, ErrClosed
	}
	if len(prompt) == 0 {
		return g, fmt.Errorf("gollm: empty prompt")
	}
	vocab := s.ctx.net.Config.Vocab
	for i, t := range prompt {
		if t < 0 || int(t) >= vocab {
			return g, fmt.Errorf("gollm: prompt token %d at index %d is outside the vocabulary of %d", t, i, vocab)
		}
	}
	if limit := s.ctx.opts.ContextSize; len(prompt) > limit {
		return g, fmt.Errorf("%w: the prompt has %d tokens, the context size is %d", ErrContextOverflow, len(prompt), limit)
	}
	params := sample.DefaultParams()
	if o.Sampling != nil {
		params = *o.Sampling
	}
	smp, err := sample.New(params)
	if err != nil {
		return g, err
	}

	// Keep the common prefix, but always evaluate at least the last
	// prompt token: its logits choose the first new token.
	keep := commonPrefix(s.tokens, prompt)
	keep = min(keep, len(prompt)-1)
	if err := s.ctx.state.KV.Truncate(kvcache.SeqID(s.id), keep); err != nil {
		return g, err
	}
	s.tokens = append(s.tokens[:keep], prompt[keep:]...) // what the cache will hold
	g.ReusedTokens = keep
	for _, t := range prompt {
		smp.Accept(t) // penalties see the prompt too
	}

	tok := s.ctx.model.tok
	start := time.Now()
	var first time.Time
	finish := ""
	var sampleErr error
	sampler := func(logits []float32) (int32, bool) {
		if o.OnLogits != nil {
			o.OnLogits(logits)
		}
		id, err := smp.TrySample(logits)
		if err != nil {
			finish, sampleErr = FinishError, err
			return 0, true
		}
		if len(g.Tokens) == 0 {
			first = time.Now()
		}
		if !o.IgnoreEOG && tok.IsEOG(id) {
			finish = FinishEOG
			return id, true
		}
		smp.Accept(id)
		g.Tokens = append(g.Tokens, id)
		stop := o.OnToken != nil && o.OnToken(id)
		switch {
		case stop:
			finish = FinishStop
		case o.MaxTokens > 0 && len(g.Tokens) >= o.MaxTokens:
			finish = FinishLength
		default:
			return id, false
		}
		return id, true // recorded, but no need to evaluate it
	}
	res := s.ctx.sched.Run(batch.Request{Ctx: ctx, Seq: s.id, Start: keep, Tokens: prompt[keep:], Sample: sampler})
	now := time.Now()
	if first.IsZero() {
		g.PromptTime = now.Sub(start)
	} else {
		g.PromptTime, g.GenTime = first.Sub(start), now.Sub(first)
	}
	g.EvaluatedTotal = res.Computed
	// The cache now holds keep + Computed tokens: the prompt, then every
	// generated token that was fed back.
	s.tokens = append(s.tokens[:len(prompt)], g.Tokens...)[:keep+res.Computed]
	switch {
	case res.Err == nil:
		g.FinishReason = finish
		return g, sampleErr
	case ctx.Err() != nil && errors.Is(res.Err, ctx.Err()):
		g.FinishReason = FinishCancel
		s.ctx.state.KV.Truncate(kvcache.SeqID(s.id), keep)
		s.tokens = s.tokens[:keep]
		return g, res.Err
	case errors.Is(res.Err, ErrContextOverflow) || errors.Is(res.Err, kvcache.ErrKVFull):
		g.FinishReason = FinishContext
		return g, res.Err
	default:
		g.FinishReason = FinishError
		return g, res.Err
	}
}

// Evaluate makes the sequence hold tokens without generating.
func (s *Sequence) Evaluate(ctx context.Context, tokens []int32) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if len(tokens) == 0 {
		return nil
	}
	keep := commonPrefix(s.tokens, tokens)
	if keep == len(tokens) {
		s.tokens = s.tokens[:keep]
		return s.ctx.state.KV.Truncate(kvcache.SeqID(s.id), keep)
	}
	if limit := s.ctx.opts.ContextSize; len(tokens) > limit {
		return fmt.Errorf("%w: %d tokens, the context size is %d", ErrContextOverflow, len(tokens), limit)
	}
	if err := s.ctx.state.KV.Truncate(kvcache.SeqID(s.id), keep); err != nil {
		return err
	}
	res := s.ctx.sched.Run(batch.Request{Ctx: ctx, Seq: s.id, Start: keep, Tokens: tokens[keep:]})
	s.tokens = append(s.tokens[:keep], tokens[keep:keep+res.Computed]...)
	if res.Err != nil && ctx.Err() != nil {
		s.ctx.state.KV.Truncate(kvcache.SeqID(s.id), keep)
		s.tokens = s.tokens[:keep]
	}
	return res.Err
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
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.tokens) != 0 {
		return fmt.Errorf("gollm: evaluateAll needs an empty sequence")
	}
	res := s.ctx.sched.Run(batch.Request{Ctx: ctx, Seq: s.id, Tokens: ids, EveryLogits: each})
	s.tokens = append(s.tokens, ids[:res.Computed]...)
	return res.Err
}
