package gollm

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/gollm/gollm/flat"
	"github.com/gollm/gollm/internal/sysmem"
	"github.com/gollm/gollm/kvcache"
	"github.com/gollm/gollm/model"
	"github.com/gollm/gollm/tensor"
)

// ContextOptions configure a Context. Zero fields take the defaults given;
// every value is checked against the model and the machine.
type ContextOptions struct {
	// Sequences is how many conversations can be open at once (default
	// 1, at most MaxSequences). They share the KV cache: a sequence takes
	// blocks as it grows, and requests wait for room when it is full.
	Sequences int
	// BatchSize is the most tokens one forward step evaluates (default
	// 512; at most ContextSize). Long prompts are split into chunks of
	// at most this size.
	BatchSize int
	// ContextSize is the number of tokens the shared KV cache holds, for
	// all sequences together, and the most one sequence may hold
	// (default: the model's training context, at most 4096).
	ContextSize int
	// KVType is the KV cache element type: "f16" (default, half the
	// memory) or "f32".
	KVType string
	// BlockSize is the number of tokens per KV block (default 16, at
	// most MaxBlockSize and at most ContextSize).
	BlockSize int
	// DisablePrefixCache turns off automatic prefix caching: full KV
	// blocks are then not shared between sequences by content (see
	// package kvcache). Logits are bit-identical either way.
	DisablePrefixCache bool
	// OnStep, when set, is called after every forward step with what the
	// step contained and the KV blocks each sequence holds (for
	// tracing). It runs on a goroutine of its own, never on the engine
	// loop, in step order.
	OnStep func(StepTrace)

	everyLogits bool // logits for every evaluated token (Logits)
}

// Limits of ContextOptions.
const (
	DefaultBatchSize   = 512
	DefaultContextSize = 4096
	// MaxSequences bounds Sequences: each open sequence costs a little
	// bookkeeping, and more conversations than this at once do not fit
	// in any useful KV cache (65536 sequences of a single 16-token
	// block already take a million tokens).
	MaxSequences = 1 << 16
	// MaxContextSize bounds ContextSize, so that token positions and
	// slot numbers fit in int32 with room to spare (the memory check
	// below is what usually refuses a large value first).
	MaxContextSize = 1 << 30
	// MaxBlockSize bounds BlockSize: attention walks a sequence block by
	// block, and blocks are the unit of sharing, so huge blocks only
	// waste memory.
	MaxBlockSize = 4096
)

// StepInfo describes one forward step.
type StepInfo struct {
	Step      int // 1, 2, …
	Tokens    int // tokens in the batch
	Items     []StepItem
	Preempted []int // sequences preempted before the step (their requests wait and are recomputed)
	Duration  time.Duration
}

// StepItem is one sequence's share of a step.
type StepItem struct {
	Seq     int  // sequence id (0-based; shown 1-based to users)
	Tokens  int  // tokens it contributed
	Prompt  bool // true: prompt tokens (or tokens being recomputed); false: one generated token
	FromPos int  // position of the first
}

// StepTrace describes one forward step and the KV cache after it.
type StepTrace struct {
	StepInfo
	KVBlocks     map[int]int // blocks held per sequence
	KVTokens     map[int]int // tokens held per sequence
	FreeBlocks   int         // blocks free or evictable
	TotalBlocks  int
	BlockSize    int
	CachedBlocks int   // blocks registered in the prefix cache
	PrefixHits   int64 // tokens shared from the prefix cache so far
	StepDuration time.Duration
}

// ContextStats counts what a context has done.
type ContextStats struct {
	Steps       int64 // forward steps
	Preemptions int64 // requests preempted (and recomputed later)
	KV          kvcache.Stats
}

// Context is a KV cache shared by its sequences, and the engine loop
// that packs their work into forward steps. It is safe for concurrent
// use.
type Context struct {
	model *Model
	opts  ContextOptions
	eng   *engine
	tr    *tracer

	free      chan flat.SeqID // sequence ids not in use
	closing   chan struct{}   // closed by Close
	closeOnce sync.Once
}

// NewContext checks the options, allocates the KV cache and scratch
// buffers, and starts the context's engine loop.
func (m *Model) NewContext(o ContextOptions) (*Context, error) {
	if err := m.checkOpen(); err != nil {
		return nil, err
	}
	o, kvType, err := m.checkContextOptions(o)
	if err != nil {
		return nil, err
	}
	// Only the last token of each generating sequence needs logits (the
	// Logits tool asks for every position, hence everyLogits), and a
	// step never has more outputs than tokens.
	maxOut := min(o.Sequences, o.BatchSize)
	if o.everyLogits {
		maxOut = o.BatchSize
	}
	st, err := m.net.NewState(model.StateOptions{Capacity: o.ContextSize, BlockSize: o.BlockSize, KVType: kvType,
		MaxBatch: o.BatchSize, MaxOutputs: maxOut, PrefixCache: !o.DisablePrefixCache})
	if err != nil {
		return nil, err
	}
	c := &Context{model: m, opts: o, free: make(chan flat.SeqID, o.Sequences), closing: make(chan struct{})}
	for i := range o.Sequences {
		c.free <- flat.SeqID(i)
	}
	if o.OnStep != nil {
		c.tr = newTracer(o.OnStep)
	}
	c.eng = newEngine(m.net, st, m.tok, o.ContextSize, o.BatchSize, c.tr)
	if err := m.track(c); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// checkContextOptions fills in defaults and checks every option against
// the model and this machine's memory.
func (m *Model) checkContextOptions(o ContextOptions) (ContextOptions, tensor.DType, error) {
	cfg := m.net.Config
	bad := func(format string, args ...any) (ContextOptions, tensor.DType, error) {
		return o, 0, fmt.Errorf("gollm: context options: "+format, args...)
	}
	if o.ContextSize == 0 {
		o.ContextSize = min(cfg.Context, DefaultContextSize)
	}
	if o.Sequences == 0 {
		o.Sequences = 1
	}
	if o.BatchSize == 0 {
		o.BatchSize = DefaultBatchSize
	}
	if o.BlockSize == 0 {
		o.BlockSize = max(min(kvcache.DefaultBlockSize, o.ContextSize), 1)
	}
	switch {
	case o.ContextSize < 1 || o.ContextSize > MaxContextSize:
		return bad("ContextSize %d must be between 1 and %d", o.ContextSize, MaxContextSize)
	case o.Sequences < 1 || o.Sequences > MaxSequences:
		return bad("Sequences %d must be between 1 and %d", o.Sequences, MaxSequences)
	case o.BatchSize < 1:
		return bad("BatchSize %d must be at least 1", o.BatchSize)
	case o.BlockSize < 1 || o.BlockSize > MaxBlockSize:
		return bad("BlockSize %d must be between 1 and %d", o.BlockSize, MaxBlockSize)
	}
	// A step cannot carry more tokens than the pool holds, nor a block
	// be bigger than the pool.
	o.BatchSize = min(o.BatchSize, o.ContextSize)
	if o.BlockSize > o.ContextSize {
		return bad("BlockSize %d is larger than ContextSize %d", o.BlockSize, o.ContextSize)
	}
	kvType := tensor.F16
	switch o.KVType {
	case "", "f16":
		o.KVType = "f16"
	case "f32":
		kvType = tensor.F32
	default:
		return bad("KVType %q (use f16 or f32)", o.KVType)
	}
	// Memory: the KV pool, plus the scratch of one step (one row per
	// batch token of every activation, and a logits row per output). In
	// float64: the products of absurd values must not wrap around.
	perToken := float64(2*cfg.Layers*cfg.KVDim) * float64(kvType.BlockBytes())
	blocks := float64((o.ContextSize + o.BlockSize - 1) / o.BlockSize)
	kvBytes := blocks * float64(o.BlockSize) * perToken
	outs := float64(min(o.Sequences, o.BatchSize))
	if o.everyLogits {
		outs = float64(o.BatchSize)
	}
	// The feed-forward rows: gate and up; for a mixture of experts those
	// of one expert at a time, plus the router logits, an expert's
	// gathered input and output, and a token's k expert outputs.
	ffn := float64(2 * cfg.FF)
	if cfg.Experts > 0 {
		ffn = float64(2*cfg.ExpertFF + cfg.Experts + (2+cfg.ExpertsUsed)*cfg.Embd)
	}
	scratch := 4 * (float64(o.BatchSize)*(float64(2*cfg.Embd+2*cfg.QDim+2*cfg.KVDim)+ffn) + outs*float64(cfg.Embd+2*cfg.Vocab))
	if total, ok := sysmem.Total(); ok && kvBytes+scratch > float64(total) {
		return bad("a %d-token KV cache (%s at %.0f bytes per token) and the scratch of a %d-token step (%s) need %s; this machine has %s of memory",
			o.ContextSize, bytesText(kvBytes), perToken, o.BatchSize, bytesText(scratch), bytesText(kvBytes+scratch), bytesText(float64(total)))
	}
	return o, kvType, nil
}

// bytesText writes a byte count the way people read them (1.5 GiB).
func bytesText(n float64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"}
	f, u := n, 0
	for f >= 1024 && u < len(units)-1 {
		f /= 1024
		u++
	}
	if u == 0 {
		return fmt.Sprintf("%.0f B", n)
	}
	return fmt.Sprintf("%.1f %s", f, units[u])
}

// Close stops the engine loop: requests under way end with ErrClosed,
// and the KV cache is freed. It is idempotent and may be called from any
// goroutine, callbacks included.
func (c *Context) Close() error {
	c.closeOnce.Do(func() {
		close(c.closing)
		c.eng.close()
		c.model.untrack(c)
	})
	return nil
}

// Model is the context's model.
func (c *Context) Model() *Model { return c.model }

// Options returns the options in effect (defaults filled in).
func (c *Context) Options() ContextOptions { return c.opts }

// Together runs f and lets every request submitted while it runs start
// in the same forward step (like node-llama-cpp, where the prompts of
// one Promise.all start together). The engine starts no step until f
// returns. Submit with ChatSession.Start or Sequence.Start inside f; a
// blocking Prompt inside f would wait for a step that cannot start.
func (c *Context) Together(f func()) {
	release := c.eng.hold()
	defer release()
	f()
}

// Steps is the number of forward steps run so far.
func (c *Context) Steps() int { return int(c.eng.steps.Load()) }

// KVStats is a snapshot of the shared cache.
func (c *Context) KVStats() kvcache.Stats { return c.eng.kv.Stats() }

// Stats is a snapshot of what the context has done.
func (c *Context) Stats() ContextStats {
	return ContextStats{Steps: c.eng.steps.Load(), Preemptions: c.eng.preemptions.Load(), KV: c.eng.kv.Stats()}
}

// Sequence takes a free sequence, or returns ErrNoSequences.
func (c *Context) Sequence() (*Sequence, error) {
	select {
	case <-c.closing:
		return nil, ErrClosed
	default:
	}
	select {
	case id := <-c.free:
		return c.open(id)
	default:
		return nil, fmt.Errorf("%w (it has %d)", ErrNoSequences, c.opts.Sequences)
	}
}

// WaitSequence takes a free sequence, waiting for one to be closed if
// all are in use, until ctx ends or the context is closed.
func (c *Context) WaitSequence(ctx context.Context) (*Sequence, error) {
	select {
	case <-c.closing:
		return nil, ErrClosed
	default:
	}
	select {
	case id := <-c.free:
		return c.open(id)
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-c.closing:
		return nil, ErrClosed
	}
}

func (c *Context) open(id flat.SeqID) (*Sequence, error) {
	var err error
	if e := c.eng.do(func() { err = c.eng.kv.AddSeq(id) }); e != nil {
		return nil, e
	}
	if err != nil {
		c.free <- id
		return nil, err
	}
	return &Sequence{ctx: c, id: id, turn: make(chan struct{}, 1)}, nil
}

// fork takes a free sequence holding a copy of src's tokens.
func (c *Context) fork(src flat.SeqID) (*Sequence, error) {
	var id flat.SeqID
	select {
	case <-c.closing:
		return nil, ErrClosed
	case id = <-c.free:
	default:
		return nil, fmt.Errorf("%w (it has %d)", ErrNoSequences, c.opts.Sequences)
	}
	var err error
	if e := c.eng.do(func() { err = c.eng.kv.Fork(id, src, -1) }); e != nil {
		err = e
	}
	if err != nil {
		c.free <- id
		return nil, err
	}
	return &Sequence{ctx: c, id: id, turn: make(chan struct{}, 1)}, nil
}

// release gives a sequence back (Sequence.Close): its request, if any,
// ends with ErrClosed and its blocks go back to the pool.
func (c *Context) release(id flat.SeqID) {
	c.eng.do(func() { c.eng.forget(id) })
	c.free <- id
}
