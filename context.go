package gollm

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/gollm/gollm/batch"
	"github.com/gollm/gollm/kvcache"
	"github.com/gollm/gollm/model"
	"github.com/gollm/gollm/tensor"
)

// ContextOptions configure a Context. Zero fields take the defaults given.
type ContextOptions struct {
	// Sequences is how many conversations can run at once (default 1).
	Sequences int
	// BatchSize is the most tokens one forward step evaluates (default
	// 512). Long prompts are split into chunks of at most this size.
	BatchSize int
	// ContextSize is the number of tokens the shared KV cache holds, for
	// all sequences together (default: the model's training context,
	// at most 4096). A single sequence may use all of it.
	ContextSize int
	// Threads, when set, gives this context its own pool of CPU workers
	// (default: the model's).
	Threads int
	// GPU, when set, chooses this context's device independently of the
	// model's (see ModelOptions.GPU): GPUNone runs it on the CPU even if
	// the model was put on a GPU; GPUCUDA or GPUAuto put a CPU model's
	// weights on a GPU for this context. Empty: as the model.
	GPU string
	// KVType is the KV cache element type: "f16" (default, half the
	// memory) or "f32".
	KVType string
	// BlockSize is the number of tokens per KV cache block (default 16).
	BlockSize int
	// OnStep, when set, is called after every forward step with what the
	// step contained and the KV blocks each sequence holds (for tracing;
	// it runs on the scheduler goroutine and must be quick).
	OnStep func(StepTrace)

	everyLogits bool // logits for every evaluated token (Logits)
}

// StepTrace describes one forward step.
type StepTrace struct {
	batch.StepInfo
	KVBlocks     map[int]int // blocks held per sequence
	KVTokens     map[int]int // tokens held per sequence
	FreeBlocks   int
	TotalBlocks  int
	BlockSize    int
	StepDuration time.Duration
}

// Context is a KV cache shared by its sequences, and the scheduler that
// packs their work into forward steps. It is safe for concurrent use.
type Context struct {
	model *Model
	net   *model.Model
	own   *placement // this context's own placement (Threads or GPU given)
	state *model.State
	sched *batch.Scheduler
	opts  ContextOptions

	mu     sync.Mutex
	free   []int // sequence ids not in use
	closed bool
}

// Defaults of ContextOptions.
const (
	DefaultBatchSize   = 512
	DefaultContextSize = 4096
)

// NewContext creates a context with its KV cache and scheduler goroutine.
func (m *Model) NewContext(o ContextOptions) (*Context, error) {
	if o.Sequences == 0 {
		o.Sequences = 1
	}
	if o.BatchSize == 0 {
		o.BatchSize = DefaultBatchSize
	}
	if o.ContextSize == 0 {
		o.ContextSize = min(m.net.Config.Context, DefaultContextSize)
	}
	if o.Sequences < 1 || o.BatchSize < 1 || o.ContextSize < 1 || o.Threads < 0 {
		return nil, fmt.Errorf("gollm: invalid context options: %d sequences, batch size %d, context size %d, %d threads",
			o.Sequences, o.BatchSize, o.ContextSize, o.Threads)
	}
	kvType := tensor.F16
	switch o.KVType {
	case "", "f16":
	case "f32":
		kvType = tensor.F32
	default:
		return nil, fmt.Errorf("gollm: KV type %q (use f16 or f32)", o.KVType)
	}
	c := &Context{model: m, net: m.net, opts: o}
	onGPU := m.place.gpuLayers > 0
	wantGPU := onGPU
	switch o.GPU {
	case "":
	case GPUNone:
		wantGPU = false
	case GPUCUDA, GPUAuto:
		wantGPU = true
	default:
		return nil, fmt.Errorf("gollm: GPU option %q (use auto, cuda or none)", o.GPU)
	}
	if wantGPU != onGPU || (o.Threads > 0 && o.Threads != m.opts.Threads) {
		// Weights on the CPU are views into the mapping, so a second CPU
		// backend costs only its worker goroutines; a GPU gets its own
		// copy of the weights.
		mo := m.opts
		mo.Threads = o.Threads
		mo.GPU = o.GPU
		if !wantGPU {
			mo.GPU = GPUNone
		}
		p, err := place(m.file, mo)
		if err != nil {
			return nil, err
		}
		if p.note != "" && mo.Logf != nil {
			mo.Logf("%s", p.note)
		}
		c.own, c.net = p, p.net
	}
	// Only the last token of each generating sequence needs logits (the
	// Logits tool asks for every position, hence everyLogits).
	maxOut := o.Sequences
	if o.everyLogits {
		maxOut = o.BatchSize
	}
	st, err := c.net.NewState(model.StateOptions{Capacity: o.ContextSize, BlockSize: o.BlockSize, KVType: kvType,
		MaxBatch: o.BatchSize, MaxOutputs: maxOut})
	if err != nil {
		c.closeBackend()
		return nil, err
	}
	c.state = st
	for i := o.Sequences - 1; i >= 0; i-- {
		c.free = append(c.free, i)
	}
	var trace func(batch.StepInfo)
	if o.OnStep != nil {
		trace = func(si batch.StepInfo) { o.OnStep(c.trace(si)) }
	}
	c.sched = batch.New(&forwarder{c: c}, batch.Options{BatchSize: o.BatchSize, Trace: trace})
	return c, nil
}

func (c *Context) closeBackend() {
	if c.own != nil {
		c.own.close()
	}
}

// Close stops the scheduler (running requests end with an error) and
// frees the cache.
func (c *Context) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	c.mu.Unlock()
	c.sched.Close()
	c.closeBackend()
	return nil
}

// Model is the context's model.
func (c *Context) Model() *Model { return c.model }

// Options returns the options in effect (defaults filled in).
func (c *Context) Options() ContextOptions { return c.opts }

// Pause holds the context's scheduler before its next step; prompts
// submitted meanwhile wait. Resume releases them, so that they all start
// in the same forward step (like node-llama-cpp's "nextCycle" dispatch,
// which lets the prompts of one Promise.all start together).
func (c *Context) Pause() { c.sched.Pause() }

// Resume lets a paused context run again.
func (c *Context) Resume() { c.sched.Resume() }

// Running is the number of prompts or evaluations submitted to the
// scheduler and not yet finished.
func (c *Context) Running() int { return c.sched.Running() }

// Steps is the number of forward steps run so far.
func (c *Context) Steps() int { return c.sched.Steps() }

// KVStats is a snapshot of the shared cache.
func (c *Context) KVStats() kvcache.Stats { return c.state.KV.Stats() }

// Sequence takes a free sequence, or returns ErrNoSequences.
func (c *Context) Sequence() (*Sequence, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, ErrClosed
	}
	if len(c.free) == 0 {
		return nil, fmt.Errorf("%w (it has %d)", ErrNoSequences, c.opts.Sequences)
	}
	id := c.free[len(c.free)-1]
	c.free = c.free[:len(c.free)-1]
	if err := c.state.KV.AddSeq(kvcache.SeqID(id)); err != nil {
		c.free = append(c.free, id)
		return nil, err
	}
	return &Sequence{ctx: c, id: id}, nil
}

// release gives a sequence id back (Sequence.Close).
func (c *Context) release(id int) {
	c.state.KV.Free(kvcache.SeqID(id))
	c.mu.Lock()
	c.free = append(c.free, id)
	c.mu.Unlock()
}

func (c *Context) trace(si batch.StepInfo) StepTrace {
	st := c.state.KV.Stats()
	tr := StepTrace{StepInfo: si, KVBlocks: map[int]int{}, KVTokens: map[int]int{},
		FreeBlocks: st.FreeBlocks, TotalBlocks: st.Blocks, BlockSize: st.BlockSize, StepDuration: si.Duration}
	for id, n := range st.PerSeq {
		tr.KVBlocks[int(id)] = n
		tr.KVTokens[int(id)] = st.Tokens[id]
	}
	return tr
}

// forwarder adapts the model and its state to the scheduler.
type forwarder struct {
	c *Context
	b model.Batch
}

func (f *forwarder) Vocab() int { return f.c.net.Config.Vocab }

func (f *forwarder) Reserve(seq, n int) (int, error) {
	kv := f.c.state.KV
	have := kv.Len(kvcache.SeqID(seq))
	if limit := f.c.opts.ContextSize; have+n > limit {
		return 0, fmt.Errorf("%w: sequence %d holds %d tokens and needs %d more, the context size is %d",
			ErrContextOverflow, seq, have, n, limit)
	}
	start, err := kv.Append(kvcache.SeqID(seq), n)
	if errors.Is(err, kvcache.ErrKVFull) {
		return 0, fmt.Errorf("%w (the %d-token cache is shared by %d sequences)", err, f.c.opts.ContextSize, f.c.opts.Sequences)
	}
	return start, err
}

func (f *forwarder) Truncate(seq, n int) error { return f.c.state.KV.Truncate(kvcache.SeqID(seq), n) }

func (f *forwarder) Forward(tokens, pos, seq []int32, output []bool, logits []float32) error {
	b := &f.b
	b.Reset()
	for i := range tokens {
		b.Add(tokens[i], int(pos[i]), kvcache.SeqID(seq[i]), output[i])
	}
	return f.c.net.Forward(f.c.state, b, logits)
}
