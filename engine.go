package gollm

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gollm/gollm/batch"
	"github.com/gollm/gollm/flat"
	"github.com/gollm/gollm/grammar"
	"github.com/gollm/gollm/kvcache"
	"github.com/gollm/gollm/model"
	"github.com/gollm/gollm/sample"
	"github.com/gollm/gollm/tokenizer"
)

// The engine loop: one goroutine per Context, the only code that touches
// the model's state and the KV cache. Everything else sends it requests
// and reads what it publishes. Each step:
//
//	plan     batch.Schedule: who contributes how many tokens, who is
//	         preempted, who starts (a pure function of the requests' state)
//	reserve  KV blocks for every token of the plan (kvcache.AppendTokens)
//	forward  one model.Forward over the flat batch
//	sample   the next token of every request whose last known token was in
//	         the batch (a constrained one's row masked by its grammar
//	         first, constrain.go); check for the end of generation
//	publish  tokens go into each request's own queue; the caller's
//	         goroutine reads them (detokenizing, stop strings, callbacks)
//
// The loop never runs user code and never waits for a caller: a queue
// grows by one small event per token, so a slow or stuck consumer delays
// nobody else.

// engine is a context's loop and everything it owns.
type engine struct {
	net     *model.Model
	state   *model.State
	kv      *kvcache.Cache
	tok     *tokenizer.Tokenizer
	ctxSize int // most tokens one sequence may hold
	budget  int // most tokens per step

	mu     sync.Mutex
	inbox  []func() // work for the loop, run between steps
	closed bool
	holds  int // Together calls under way: no step starts
	wake   chan struct{}
	done   chan struct{} // closed when the loop has ended

	steps       atomic.Int64
	preemptions atomic.Int64
	trace       *tracer // nil without OnStep

	// Owned by the loop goroutine.
	running []*request // in the order they started
	waiting []*request // in arrival order; preempted ones go first
	bySeq   map[flat.SeqID]*request
	lastUse map[flat.SeqID]int64 // step at which an idle sequence was last used
	order   int64                // start counter
	fb      flat.Batch
	logits  []float32
	itemReq []*request // (item) the request of each batch item

	// Working memory of step, kept so that a step allocates nothing.
	planner  batch.Planner
	bstate   batch.State
	reqs     []*request
	holders  []flat.SeqID
	idle     []flat.SeqID
	starting []*request
	ended    []*request
	items    []StepItem

	// Grammar constraints (constrain.go): one Masker for all the
	// constrained requests, made on first use, its mask buffer, and the
	// end-of-generation ids.
	masker *grammar.Masker
	mask   []uint64
	eogs   []int32
}

// request is one Generate, Evaluate or logits call, as the loop sees it.
type request struct {
	ctx    context.Context
	seq    flat.SeqID
	known  []int32 // what the sequence should hold: prompt, then generated tokens
	prompt int     // length of the prompt within known

	smp         *sample.Sampler // nil: evaluate only
	maxTokens   int
	ignoreEOG   bool
	copyLogits  bool        // OnLogits: send a copy of each sampled row
	everyLogits bool        // send every evaluated position's row
	con         *constraint // nil: unconstrained

	out  *stream
	stop atomic.Bool // the caller asks to end it (a stop string, OnToken)

	// Owned by the loop.
	running    bool
	started    int64 // start order
	needAttach bool  // look for its next blocks in the prefix cache
	reused     int   // tokens the sequence held already (not evaluated)
	cached     int   // tokens found in the prefix cache (not evaluated)
	evaluated  int   // tokens this request wrote to the KV cache
	generated  int
	preempted  int
	t0, tFirst time.Time
	unhook     func() bool // stops the context.AfterFunc
}

// outcome is a request's final event.
type outcome struct {
	finish     string
	err        error
	reused     int // tokens kept from the sequence's earlier content
	cached     int // tokens shared from the prefix cache
	evaluated  int
	preempted  int // times it was preempted and recomputed
	step       int64
	promptTime time.Duration
	genTime    time.Duration
}

// event is what a request's queue carries: a generated token (with its
// logits row when asked), evaluated rows, or the outcome.
type event struct {
	tok    int32
	hasTok bool
	row    []float32 // a copy; owned by the receiver
	final  *outcome
}

// stream is a request's queue: the loop appends without ever blocking,
// the caller takes everything queued at once.
type stream struct {
	mu    sync.Mutex
	q     []event
	ready chan struct{} // capacity 1: something was queued
}

func newStream() *stream { return &stream{ready: make(chan struct{}, 1)} }

func (s *stream) push(ev event) {
	s.mu.Lock()
	s.q = append(s.q, ev)
	s.mu.Unlock()
	select {
	case s.ready <- struct{}{}:
	default:
	}
}

// take waits for events and returns all of them. The loop always ends a
// request with a final event, so this never waits forever.
func (s *stream) take(buf []event) []event {
	for {
		s.mu.Lock()
		if len(s.q) > 0 {
			buf = append(buf[:0], s.q...)
			clear(s.q)
			s.q = s.q[:0]
			s.mu.Unlock()
			return buf
		}
		s.mu.Unlock()
		<-s.ready
	}
}

func newEngine(net *model.Model, st *model.State, tok *tokenizer.Tokenizer, ctxSize, budget int, tr *tracer) *engine {
	e := &engine{net: net, state: st, kv: st.KV, tok: tok, ctxSize: ctxSize, budget: budget, trace: tr,
		wake: make(chan struct{}, 1), done: make(chan struct{}),
		bySeq: map[flat.SeqID]*request{}, lastUse: map[flat.SeqID]int64{}, eogs: tok.EOGs()}
	go e.loop()
	return e
}

func (e *engine) poke() {
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// post queues f to run on the loop between steps. It fails once the
// context is closed.
func (e *engine) post(f func()) error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return ErrClosed
	}
	e.inbox = append(e.inbox, f)
	e.mu.Unlock()
	e.poke()
	return nil
}

// do runs f on the loop and waits for it.
func (e *engine) do(f func()) error {
	ran := make(chan struct{})
	if err := e.post(func() { f(); close(ran) }); err != nil {
		return err
	}
	select {
	case <-ran:
		return nil
	case <-e.done:
		select {
		case <-ran:
			return nil
		default:
			return ErrClosed
		}
	}
}

// close ends the loop: requests under way end with ErrClosed.
func (e *engine) close() {
	e.mu.Lock()
	e.closed = true
	e.mu.Unlock()
	e.poke()
	<-e.done
}

// hold keeps the loop from starting steps until the returned function is
// called (Context.Together).
func (e *engine) hold() func() {
	e.mu.Lock()
	e.holds++
	e.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			e.mu.Lock()
			e.holds--
			e.mu.Unlock()
			e.poke()
		})
	}
}

// submit hands a request to the loop.
func (e *engine) submit(r *request) error {
	r.out = newStream()
	r.t0 = time.Now()
	return e.post(func() { e.accept(r) })
}

func (e *engine) loop() {
	defer close(e.done)
	for {
		e.mu.Lock()
		work := e.inbox
		e.inbox = nil
		closed, held := e.closed, e.holds > 0
		e.mu.Unlock()
		for _, f := range work {
			f()
		}
		if closed {
			for _, r := range append(slices.Clone(e.running), e.waiting...) {
				e.finish(r, FinishError, ErrClosed)
			}
			e.trace.close()
			return
		}
		e.dropEnded()
		if held || len(e.running)+len(e.waiting) == 0 {
			<-e.wake
			continue
		}
		e.step()
	}
}

// accept takes a new request: the sequence keeps the longest prefix it
// holds of the request's tokens (always leaving the last one to compute:
// its logits choose the first new token).
func (e *engine) accept(r *request) {
	if old := e.bySeq[r.seq]; old != nil {
		e.finish(r, FinishError, fmt.Errorf("gollm: sequence %d already has a request running", r.seq+1))
		return
	}
	held := e.kv.Tokens(r.seq)
	keep := min(commonPrefix(held, r.known), len(r.known)-1)
	if r.smp == nil && !r.everyLogits && commonPrefix(held, r.known) == len(r.known) {
		keep = len(r.known) // evaluate only, and it is all there
	}
	if err := e.kv.Truncate(r.seq, keep); err != nil {
		e.finish(r, FinishError, err)
		return
	}
	r.reused = keep
	r.needAttach = true
	e.bySeq[r.seq] = r
	delete(e.lastUse, r.seq)
	if keep == len(r.known) {
		e.finish(r, "", nil)
		return
	}
	e.waiting = append(e.waiting, r)
	if r.ctx.Done() != nil {
		r.unhook = context.AfterFunc(r.ctx, e.poke)
	}
}

// dropEnded ends the requests that were cancelled or asked to stop.
func (e *engine) dropEnded() {
	e.ended = e.ended[:0]
	for _, list := range [][]*request{e.running, e.waiting} {
		for _, r := range list {
			if r.ctx.Err() != nil || r.stop.Load() {
				e.ended = append(e.ended, r)
			}
		}
	}
	for _, r := range e.ended {
		if err := r.ctx.Err(); err != nil {
			// Back to the prefix the sequence held before the call.
			e.kv.Truncate(r.seq, min(r.reused, e.kv.Len(r.seq)))
			e.finish(r, FinishCancel, err)
		} else {
			e.finish(r, FinishStop, nil)
		}
	}
}

// finish ends a request and publishes its outcome.
func (e *engine) finish(r *request, reason string, err error) {
	e.running = slices.DeleteFunc(e.running, func(x *request) bool { return x == r })
	e.waiting = slices.DeleteFunc(e.waiting, func(x *request) bool { return x == r })
	if e.bySeq[r.seq] == r {
		delete(e.bySeq, r.seq)
		e.lastUse[r.seq] = e.steps.Load()
	}
	if r.unhook != nil {
		r.unhook()
	}
	o := &outcome{finish: reason, err: err, reused: r.reused, cached: r.cached, evaluated: r.evaluated,
		preempted: r.preempted, step: e.steps.Load()}
	now := time.Now()
	if r.tFirst.IsZero() {
		o.promptTime = now.Sub(r.t0)
	} else {
		o.promptTime, o.genTime = r.tFirst.Sub(r.t0), now.Sub(r.tFirst)
	}
	r.out.push(event{final: o})
}

// forget is called when a sequence is closed: its request (if any) ends
// and its blocks go back to the pool.
func (e *engine) forget(seq flat.SeqID) {
	if r := e.bySeq[seq]; r != nil {
		e.finish(r, FinishError, ErrClosed)
	}
	delete(e.lastUse, seq)
	e.kv.Free(seq)
}

// step plans, reserves, runs one forward pass and hands out tokens.
func (e *engine) step() {
	start := time.Now()
	for _, r := range e.waiting {
		if r.needAttach {
			r.needAttach = false
			n := e.kv.Attach(r.seq, r.known)
			if r.started == 0 {
				r.cached += n // what the prompt phase saved (not what a recomputation finds again)
			}
		}
	}
	reqs := append(append(e.reqs[:0], e.running...), e.waiting...)
	e.reqs = reqs
	st := &e.bstate
	*st = batch.State{Requests: st.Requests[:0], Holders: st.Holders[:0], FreeBlocks: e.kv.FreeBlocks(),
		TotalBlocks: e.kv.NumBlocks(), BlockSize: e.kv.BlockSize(), Budget: e.budget, Step: int(e.steps.Load())}
	for _, r := range reqs {
		st.Requests = append(st.Requests, batch.Request{Running: r.running, Computed: e.kv.Len(r.seq),
			Known: len(r.known), Blocks: len(e.kv.Table(r.seq))})
	}
	// Holders: idle sequences, least recently used first, then waiting
	// requests, newest first.
	holders, idle := e.holders[:0], e.idle[:0]
	for seq := range e.lastUse {
		if e.kv.Len(seq) > 0 {
			idle = append(idle, seq)
		}
	}
	slices.SortFunc(idle, func(a, b flat.SeqID) int {
		if d := e.lastUse[a] - e.lastUse[b]; d != 0 {
			return int(d)
		}
		return int(a - b)
	})
	for _, seq := range idle {
		st.Holders = append(st.Holders, batch.Holder{Blocks: e.kv.Exclusive(seq), Req: -1})
		holders = append(holders, seq)
	}
	for i := len(reqs) - 1; i >= len(e.running); i-- {
		if n := e.kv.Exclusive(reqs[i].seq); n > 0 {
			st.Holders = append(st.Holders, batch.Holder{Blocks: n, Req: i})
			holders = append(holders, reqs[i].seq)
		}
	}
	e.holders, e.idle = holders, idle
	plan := e.planner.Schedule(*st)

	// Carry the plan out: take back, preempt, fail, then reserve.
	for _, h := range plan.Reclaim {
		e.kv.Truncate(holders[h], 0)
		if r := e.bySeq[holders[h]]; r != nil {
			r.needAttach = true
		}
	}
	var preempted []int
	if len(plan.Preempt) > 0 {
		var back []*request
		for _, i := range plan.Preempt {
			r := reqs[i]
			e.kv.Truncate(r.seq, 0)
			r.running, r.needAttach = false, true
			r.preempted++
			e.preemptions.Add(1)
			back = append(back, r)
			preempted = append(preempted, int(r.seq))
		}
		e.running = slices.DeleteFunc(e.running, func(x *request) bool { return !x.running })
		slices.SortFunc(back, func(a, b *request) int { return int(a.started - b.started) })
		e.waiting = append(back, e.waiting...)
	}
	for _, i := range plan.Fail {
		r := reqs[i]
		e.finish(r, FinishContext, fmt.Errorf("%w: sequence %d needs %d tokens of KV cache, more than the %d-token pool holds with every other request set aside",
			kvcache.ErrKVFull, r.seq+1, len(r.known), e.kv.Capacity()))
	}
	e.fb.Reset()
	e.itemReq = e.itemReq[:0]
	info := StepInfo{Step: int(e.steps.Load()) + 1, Preempted: preempted, Items: e.items[:0]}
	starting := e.starting[:0]
	for _, it := range plan.Items {
		r := reqs[it.Req]
		pos := e.kv.Len(r.seq)
		toks := r.known[pos : pos+it.Tokens]
		if _, err := e.kv.AppendTokens(r.seq, toks); err != nil {
			continue // the plan overestimated room (shared blocks): next step
		}
		if !r.running {
			starting = append(starting, r)
		}
		last := len(r.known) - 1
		for k, t := range toks {
			p := pos + k
			e.fb.Add(t, p, r.seq, r.everyLogits || (p == last && r.smp != nil))
		}
		e.itemReq = append(e.itemReq, r)
		info.Items = append(info.Items, StepItem{Seq: int(r.seq), Tokens: it.Tokens, Prompt: pos < r.prompt, FromPos: pos})
	}
	e.starting, e.items = starting, info.Items
	for _, r := range starting {
		r.running = true
		e.order++
		r.started = e.order
		e.waiting = slices.DeleteFunc(e.waiting, func(x *request) bool { return x == r })
		e.running = append(e.running, r)
	}
	if e.fb.Len() == 0 {
		return
	}
	V := e.net.Config.Vocab
	nOut := e.fb.NumOutputs()
	if need := nOut * V; cap(e.logits) < need {
		e.logits = make([]float32, need)
	}
	logits := e.logits[:nOut*V]
	if err := e.net.Forward(e.state, &e.fb, logits); err != nil {
		// A failed step fails everyone in it; their caches go back to
		// where they were before the step.
		for k, r := range e.itemReq {
			e.kv.Truncate(r.seq, info.Items[k].FromPos)
			e.finish(r, FinishError, err)
		}
		return
	}
	e.steps.Add(1)

	// Hand out logits, in batch order.
	o := 0
	for k, r := range e.itemReq {
		r.evaluated += info.Items[k].Tokens
		e.kv.Commit(r.seq) // its full blocks can now be shared
		done := e.kv.Len(r.seq) == len(r.known)
		var last []float32
		if r.everyLogits {
			for range info.Items[k].Tokens {
				last = logits[o*V : (o+1)*V]
				r.out.push(event{row: slices.Clone(last)})
				o++
			}
		} else if done && r.smp != nil {
			last = logits[o*V : (o+1)*V]
			o++
		}
		switch {
		case !done: // more prompt to go
		case r.smp == nil:
			e.finish(r, "", nil)
		default:
			e.sample(r, last)
		}
	}
	info.Tokens = e.fb.Len()
	info.Duration = time.Since(start)
	if e.trace != nil {
		e.trace.push(e.traceOf(info))
	}
}

// sample chooses a request's next token from its last row and decides
// whether it goes on.
func (e *engine) sample(r *request, row []float32) {
	var copied []float32
	if r.copyLogits {
		copied = slices.Clone(row) // the model's row, before any grammar mask
	}
	if r.con.masking() {
		if r.con.trig == nil && r.con.m.Done() { // a grammar whose only sentence is empty
			e.finish(r, FinishEOG, nil)
			return
		}
		if err := e.constrain(r, row); err != nil {
			e.finish(r, FinishError, err)
			return
		}
	}
	tok, err := r.smp.TrySample(row)
	if err != nil {
		e.finish(r, FinishError, err)
		return
	}
	if r.con != nil {
		if err := e.advance(r, tok); err != nil {
			e.finish(r, FinishError, err)
			return
		}
	}
	if r.tFirst.IsZero() {
		r.tFirst = time.Now()
	}
	if !r.ignoreEOG && e.tok.IsEOG(tok) {
		if copied != nil {
			r.out.push(event{row: copied})
		}
		e.finish(r, FinishEOG, nil)
		return
	}
	r.smp.Accept(tok)
	r.generated++
	r.known = append(r.known, tok)
	r.out.push(event{tok: tok, hasTok: true, row: copied})
	switch {
	case r.con != nil && r.con.trig == nil && r.con.m.Done():
		// The grammar is complete and nothing may follow: end here, as
		// if the model had sampled end of generation next (without the
		// step that would take).
		e.finish(r, FinishEOG, nil)
	case r.maxTokens > 0 && r.generated >= r.maxTokens:
		e.finish(r, FinishLength, nil)
	case len(r.known) > e.ctxSize:
		e.finish(r, FinishContext, fmt.Errorf("%w: sequence %d holds %d tokens, the context size is %d",
			ErrContextOverflow, r.seq+1, len(r.known)-1, e.ctxSize))
	}
}

// traceOf completes a step's description with the KV cache's state.
func (e *engine) traceOf(si StepInfo) StepTrace {
	st := e.kv.Stats()
	si.Items = slices.Clone(si.Items) // the engine reuses its copy
	tr := StepTrace{StepInfo: si, KVBlocks: map[int]int{}, KVTokens: map[int]int{},
		FreeBlocks: st.FreeBlocks, TotalBlocks: st.Blocks, BlockSize: st.BlockSize, StepDuration: si.Duration,
		CachedBlocks: st.CachedBlocks, PrefixHits: st.PrefixHits}
	for id, n := range st.PerSeq {
		tr.KVBlocks[int(id)] = n
		tr.KVTokens[int(id)] = st.Tokens[id]
	}
	return tr
}

// tracer delivers step traces to OnStep on its own goroutine, so that a
// slow OnStep never holds up the loop.
type tracer struct {
	fn        func(StepTrace)
	mu        sync.Mutex
	cond      *sync.Cond
	q         []StepTrace
	delivered int64 // steps handed to fn
	closed    bool
	done      chan struct{}
}

func newTracer(fn func(StepTrace)) *tracer {
	t := &tracer{fn: fn, done: make(chan struct{})}
	t.cond = sync.NewCond(&t.mu)
	go t.run()
	return t
}

func (t *tracer) push(st StepTrace) {
	t.mu.Lock()
	t.q = append(t.q, st)
	t.mu.Unlock()
	t.cond.Broadcast()
}

func (t *tracer) close() {
	if t == nil {
		return
	}
	t.mu.Lock()
	t.closed = true
	t.mu.Unlock()
	t.cond.Broadcast()
}

func (t *tracer) run() {
	defer close(t.done)
	for {
		t.mu.Lock()
		for len(t.q) == 0 && !t.closed {
			t.cond.Wait()
		}
		if len(t.q) == 0 {
			t.mu.Unlock()
			return
		}
		st := t.q[0]
		t.q = t.q[1:]
		t.mu.Unlock()
		t.fn(st)
		t.mu.Lock()
		t.delivered = int64(st.Step)
		t.mu.Unlock()
		t.cond.Broadcast()
	}
}

// wait returns once every step up to step has been handed to OnStep (or
// the tracer has ended), so that a caller who has a result has seen the
// steps that produced it.
func (t *tracer) wait(step int64) {
	if t == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for t.delivered < step && !(t.closed && len(t.q) == 0) {
		t.cond.Wait()
	}
}
