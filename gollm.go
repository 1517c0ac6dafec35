// Package gollm runs Llama 3.x, Mistral, Qwen2.5, Qwen3 and Qwen3-MoE GGUF models in
// pure Go, several conversations at once.
//
// The API follows node-llama-cpp: load a Model, make a Context (a shared
// KV cache plus a scheduler) with room for some number of Sequences, take
// a Sequence for each conversation, and put a ChatSession on it. Prompts
// on different sessions may run concurrently from different goroutines:
// their tokens are packed into the same forward passes, so two answers
// cost about what one costs.
//
//	m, _ := gollm.LoadModel("model.gguf", gollm.ModelOptions{})
//	ctx, _ := m.NewContext(gollm.ContextOptions{Sequences: 2, BatchSize: 1024})
//	s1, _ := ctx.Sequence()
//	s2, _ := ctx.Sequence()
//	c1, c2 := gollm.NewChatSession(s1, gollm.ChatOptions{}), gollm.NewChatSession(s2, gollm.ChatOptions{})
//	var g errgroup.Group
//	g.Go(func() error { a1, err = c1.Prompt(bg, "Hi there, how are you?", gollm.PromptOptions{}); return err })
//	g.Go(func() error { a2, err = c2.Prompt(bg, "How much is 6+6?", gollm.PromptOptions{}); return err })
//	g.Wait()
//
// Inside, one goroutine per Context (package batch) owns the forward pass
// of the model (package model) and packs the pending tokens of every
// sequence into one flat batch per step; the sequences share one paged KV
// cache (package kvcache). ARCHITECTURE.md traces a token through it all.
package gollm

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"

	"github.com/gollm/gollm/chat"
	"github.com/gollm/gollm/gguf"
	"github.com/gollm/gollm/grammar"
	"github.com/gollm/gollm/model"
	"github.com/gollm/gollm/tokenizer"
)

// Errors of the public API. Errors from the layers below (gguf, model,
// kvcache …) are wrapped and can be tested with errors.Is as well.
var (
	// ErrNoSequences: every sequence of the context is taken.
	ErrNoSequences = errors.New("gollm: no free sequence in this context")
	// ErrContextOverflow: a sequence would hold more tokens than the context size.
	ErrContextOverflow = errors.New("gollm: context overflow")
	// ErrClosed: the model, context, sequence or session was closed.
	ErrClosed = errors.New("gollm: closed")
	// ErrNoTemplate: the model file has no chat template.
	ErrNoTemplate = errors.New("gollm: model has no chat template")
)

// ModelOptions configure LoadModel.
type ModelOptions struct {
	// Threads is the number of CPU worker threads (0: runtime.GOMAXPROCS(0),
	// one per CPU the process may use, which respects a container's CPU
	// limit; see kernels.DefaultThreads).
	Threads int
	// Exact computes every product in float32 instead of rounding the
	// activations to 8 bits first as llama.cpp does. Slower; for study.
	Exact bool
	// RopeScaling overrides the file's rotary scaling (for example YaRN
	// with a factor and original context, like llama.cpp's
	// --rope-scaling yarn --rope-scale 4 --yarn-orig-ctx 32768).
	RopeScaling *model.RopeScaling
	// GPU chooses the device: GPUAuto (the default: a CUDA GPU when one
	// is usable, else the CPU), GPUCUDA (a GPU or an error saying why
	// not: no driver, no device, too little memory, with the numbers) or
	// GPUNone (the CPU only). The CUDA driver is loaded at run time, so
	// the same cgo-free binary runs everywhere.
	GPU string
	// GPULayers puts only the last GPULayers layers (and the LM head) on
	// the GPU, the rest on the CPU, for models that do not fit (like
	// llama.cpp's --n-gpu-layers). 0: as many as fit — all of them when
	// the model fits.
	GPULayers int
	// Logger receives the notices of loading (nil: none are written; the
	// library does not log to slog.Default on its own). The levels:
	//
	//   - Info: something the caller may want to act on. The fallback to
	//     the CPU when GPU was set to GPUAuto explicitly (the caller hoped
	//     for a GPU), and a model split between the GPU and the CPU
	//     because it did not fit.
	//   - Debug: the same fallback when GPU was left empty, since running
	//     on the CPU is the normal case on a machine without a GPU; and a
	//     line per loaded model (path, backend).
	//
	// So a logger at the usual Info level stays quiet on a CPU-only
	// machine, and one at Debug shows why no GPU was used.
	Logger *slog.Logger
	// OnProgress, when set, is told how far loading has come: done of
	// total bytes of weights checked (the load-time check that no weight
	// is NaN or infinite reads every page of the weights, so on a file
	// not yet in the page cache these are the bytes paged in; see
	// model.Options.OnProgress). It is called first with done = 0, then
	// about once per MiB, with done never going down; a load that
	// succeeds ends with done = total. Calls come one at a time, from
	// the loading goroutines: keep it short.
	OnProgress func(done, total int64)
}

// Model is a loaded GGUF model: weights (mapped from the file), tokenizer
// and chat template. It is safe for concurrent use; contexts share it.
type Model struct {
	path  string
	file  *gguf.File
	net   *model.Model
	place *placement
	tok   *tokenizer.Tokenizer
	tmpl  *chat.Template // nil when the file has none
	opts  ModelOptions
	tmplE error

	mu     sync.Mutex
	ctxs   map[*Context]struct{} // open contexts, closed by Close
	closed bool

	trieOnce sync.Once
	trie     *grammar.TokenTrie // the vocabulary for grammar masks, built on first use (constrain.go)
	pieces   [][]byte           // its tokens' bytes
}

// LoadModel maps a GGUF file and prepares the model on the CPU or a GPU
// (see ModelOptions.GPU). It is LoadModelContext with a context that is
// never cancelled.
func LoadModel(path string, opts ModelOptions) (*Model, error) {
	return LoadModelContext(context.Background(), path, opts)
}

// LoadModelContext is LoadModel, stopping with ctx.Err() when ctx is done
// before the model is ready. Most of a load is the check of the weights,
// which reads all of them (seconds for a model of several GB on a file
// not in the page cache); ctx is looked at between pieces of about 1 MiB
// of it and between tensors uploaded to a GPU, so a cancelled load
// returns within a few MiB of work per CPU, with nothing left open.
func LoadModelContext(ctx context.Context, path string, opts ModelOptions) (*Model, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f, err := gguf.Open(path)
	if err != nil {
		return nil, err
	}
	m, err := newModel(ctx, path, f, opts)
	if err != nil {
		f.Close()
		return nil, err
	}
	return m, nil
}

// discardLogger is the logger of a model loaded without one.
var discardLogger = slog.New(slog.DiscardHandler)

func newModel(ctx context.Context, path string, f *gguf.File, opts ModelOptions) (*Model, error) {
	log := opts.Logger
	if log == nil {
		log = discardLogger
	}
	tok, err := tokenizer.Load(f)
	if err != nil {
		return nil, err
	}
	p, err := place(ctx, f, opts)
	if err != nil {
		return nil, err
	}
	switch {
	case p.fallback != nil:
		// GPU left empty means "whatever is there": the CPU is no news.
		level := slog.LevelDebug
		if opts.GPU == GPUAuto {
			level = slog.LevelInfo
		}
		log.Log(ctx, level, "no GPU used; running on the CPU", "reason", p.fallback.Error())
	case p.split != "":
		log.Info(p.split)
	}
	net := p.net
	if net.Config.Vocab < tok.Vocab() {
		p.close()
		return nil, fmt.Errorf("gollm: %s: the tokenizer has %d tokens but the embedding only %d rows", path, tok.Vocab(), net.Config.Vocab)
	}
	m := &Model{path: path, file: f, net: net, place: p, tok: tok, opts: opts}
	m.tmpl, m.tmplE = chat.FromGGUF(f)
	log.Debug("model loaded", "path", path, "backend", m.Backend())
	return m, nil
}

// Close closes the model's contexts (requests under way end with
// ErrClosed), then releases the backend and the file mapping. It is
// idempotent.
func (m *Model) Close() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	ctxs := make([]*Context, 0, len(m.ctxs))
	for c := range m.ctxs {
		ctxs = append(ctxs, c)
	}
	m.mu.Unlock()
	for _, c := range ctxs {
		c.Close()
	}
	m.place.close()
	return m.file.Close()
}

func (m *Model) checkOpen() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	return nil
}

// track registers an open context, so that Close can close it first.
func (m *Model) track(c *Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	if m.ctxs == nil {
		m.ctxs = map[*Context]struct{}{}
	}
	m.ctxs[c] = struct{}{}
	return nil
}

func (m *Model) untrack(c *Context) {
	m.mu.Lock()
	delete(m.ctxs, c)
	m.mu.Unlock()
}

// Path is the file the model was loaded from.
func (m *Model) Path() string { return m.path }

// Config returns the model's hyperparameters.
func (m *Model) Config() model.Config { return m.net.Config }

// Tokenizer returns the model's tokenizer.
func (m *Model) Tokenizer() *tokenizer.Tokenizer { return m.tok }

// Template returns the chat template: ErrNoTemplate when the file has
// none, and the template's error when it has one that does not parse
// (the model still loads: raw prompts, logits and tokenizing work).
func (m *Model) Template() (*chat.Template, error) {
	switch {
	case m.tmpl != nil:
		return m.tmpl, nil
	case m.tmplE == nil || errors.Is(m.tmplE, chat.ErrNoTemplate):
		return nil, ErrNoTemplate
	}
	return nil, fmt.Errorf("gollm: the model's chat template cannot be used: %w", m.tmplE)
}

// Backend describes where the model runs.
func (m *Model) Backend() string {
	bes, layers := m.net.Backends()
	if len(bes) == 1 {
		return bes[0].Name()
	}
	s := ""
	for i, be := range bes {
		if i > 0 {
			s += " + "
		}
		s += fmt.Sprintf("%s (%d layers)", be.Name(), layers[i])
	}
	return s
}

// GPULayers is the number of layers running on a GPU (0: CPU only).
func (m *Model) GPULayers() int { return m.place.gpuLayers }

// WeightBytesPerToken is the weight bytes one forward step reads.
func (m *Model) WeightBytesPerToken() int64 { return m.net.WeightBytesPerToken() }

// Tokenize turns text into token ids, matching special-token text (such
// as <|im_start|>) when special is true.
func (m *Model) Tokenize(text string, special bool) []int32 {
	return m.tok.Tokenize(text, special, special)
}

// Detokenize turns token ids back into text.
func (m *Model) Detokenize(ids []int32) string { return m.tok.Decode(ids) }

// FileSize is the size of the model file in bytes.
func (m *Model) FileSize() int64 {
	if st, err := os.Stat(m.path); err == nil {
		return st.Size()
	}
	return m.file.Bytes()
}
