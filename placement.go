package gollm

import (
	"context"
	"fmt"

	"github.com/gollm/gollm/backend"
	"github.com/gollm/gollm/backend/cpu"
	"github.com/gollm/gollm/backend/cuda"
	"github.com/gollm/gollm/gguf"
	"github.com/gollm/gollm/model"
	"github.com/gollm/gollm/tensor"
)

// GPU choices for ModelOptions.GPU and ContextOptions.GPU.
const (
	GPUAuto = "auto" // a CUDA GPU when one is usable, else the CPU (with a notice)
	GPUCUDA = "cuda" // a CUDA GPU, or an error saying why not
	GPUNone = "none" // the CPU only
)

// placement is where a model's layers run.
type placement struct {
	net       *model.Model
	backends  []backend.Backend // to close, CPU first
	gpuLayers int
	fallback  error  // under GPUAuto: why no GPU is used (nil: one is, or none was tried)
	split     string // a model split between GPU and CPU: how, for the user
}

func (p *placement) close() {
	for _, be := range p.backends {
		be.Close()
	}
}

// gpuOpen is cuda.New, replaceable in tests.
var gpuOpen = func() (gpuBackend, error) { return cuda.New(cuda.Options{}) }

// gpuBackend is what placement needs of the CUDA backend.
type gpuBackend interface {
	backend.Backend
	MemInfo() (free, total int64, err error)
}

// place loads the model onto the CPU, a GPU or both, following
// o.GPU and o.GPULayers.
func place(ctx context.Context, f *gguf.File, o ModelOptions) (*placement, error) {
	mode := o.GPU
	if mode == "" {
		mode = GPUAuto
	}
	if mode != GPUAuto && mode != GPUCUDA && mode != GPUNone {
		return nil, fmt.Errorf("gollm: GPU option %q (use auto, cuda or none)", o.GPU)
	}
	if o.GPULayers < 0 {
		return nil, fmt.Errorf("gollm: GPULayers %d must not be negative", o.GPULayers)
	}
	cpuBE := cpu.New(cpu.Options{Threads: o.Threads, Exact: o.Exact})
	p := &placement{backends: []backend.Backend{cpuBE}}
	progress := monotone(o.OnProgress)
	onCPU := func(fallback error) (*placement, error) {
		net, err := model.LoadContext(ctx, f, cpuBE, model.Options{RopeScaling: o.RopeScaling, OnProgress: progress})
		if err != nil {
			p.close()
			return nil, err
		}
		p.net, p.fallback = net, fallback
		return p, nil
	}
	if mode == GPUNone {
		return onCPU(nil)
	}
	fail := func(err error) (*placement, error) {
		if mode == GPUCUDA || ctx.Err() != nil {
			p.close()
			return nil, err
		}
		return onCPU(err)
	}
	if o.Exact {
		return fail(fmt.Errorf("the exact float32 mode runs on the CPU only"))
	}
	cfg, err := model.ReadConfig(f)
	if err != nil {
		p.close()
		return nil, err
	}
	gpu, err := gpuOpen()
	if err != nil {
		return fail(err)
	}
	if cfg.Experts > 0 {
		// The CUDA backend has no mixture-of-experts kernels yet, and
		// would refuse the first step (backend/cuda: Scatter).
		gpu.Close()
		return fail(fmt.Errorf("the mixture-of-experts FFN of %s runs on the CPU only so far", cfg.Arch))
	}
	p.backends = append(p.backends, gpu)
	n, err := gpuLayers(f, cfg, gpu, o.GPULayers)
	if err != nil {
		gpu.Close()
		p.backends = p.backends[:1]
		return fail(err)
	}
	net, err := model.LoadContext(ctx, f, cpuBE, model.Options{RopeScaling: o.RopeScaling, Offload: gpu, OffloadLayers: n, OnProgress: progress})
	if err != nil {
		gpu.Close()
		p.backends = p.backends[:1]
		return fail(err)
	}
	p.net, p.gpuLayers = net, n
	if n < cfg.Layers {
		p.split = fmt.Sprintf("%d of %d layers on %s, the rest on the CPU", n, cfg.Layers, gpu.Name())
	}
	return p, nil
}

// monotone wraps a progress callback so that done never goes down: a
// load that falls back to the CPU after a failed GPU upload checks the
// weights a second time, and that second pass (0 to total again) must
// not move a progress bar back. Its calls stay silent until they pass
// the furthest point reported.
func monotone(f func(done, total int64)) func(done, total int64) {
	if f == nil {
		return nil
	}
	furthest := int64(-1)
	return func(done, total int64) {
		if done > furthest { // calls come one at a time (model.Options.OnProgress)
			furthest = done
			f(done, total)
		}
	}
}

// gpuLayers decides how many of the last layers go to the GPU: all of
// them (and the embedding table) when the model fits with a default-size
// KV cache and scratch, else as many as fit; or exactly want when set.
func gpuLayers(f *gguf.File, cfg model.Config, gpu gpuBackend, want int) (int, error) {
	free, total, err := gpu.MemInfo()
	if err != nil {
		return 0, err
	}
	// The weights as the GPU holds them. A type the GPU cannot hold
	// counts at its file size: it may stay on the CPU in a split, and
	// if it lands on the GPU, loading says so.
	sizes, err := model.WeightBytes(f, func(dt tensor.DType, rows, cols int) int64 {
		if b, err := cuda.WeightBytes(dt, rows, cols); err == nil {
			return b
		}
		b, _ := tensor.RowBytes(dt, int64(cols))
		return b * int64(rows)
	})
	if err != nil {
		return 0, err
	}
	// A default context: 4096 tokens of F16 KV for the offloaded layers,
	// and the scratch of a 512-token step.
	kvPerLayer := cuda.KVBytes(tensor.F16, 1, cfg.KVDim, 16, DefaultContextSize/16)
	scratch := cuda.ScratchBytes(cuda.Shape{Embd: cfg.Embd, QDim: cfg.QDim, KVDim: cfg.KVDim, FF: cfg.FF, Vocab: vocabRows(f, cfg)}, DefaultBatchSize)
	need := func(n int) cuda.Need {
		return cuda.Need{Weights: sizes.Offload(n), KV: int64(n) * kvPerLayer, Scratch: scratch}
	}
	if want > 0 {
		n := min(want, cfg.Layers)
		if err := cuda.Plan(need(n), free, total); err != nil {
			return 0, fmt.Errorf("%d layers on the GPU: %w", n, err)
		}
		return n, nil
	}
	for n := cfg.Layers; n > 0; n-- {
		if cuda.Plan(need(n), free, total) == nil {
			return n, nil
		}
	}
	return 0, cuda.Plan(need(1), free, total) // not even one layer: say why
}

// vocabRows is the number of logits per token: the rows of the embedding
// table. ReadConfig leaves Config.Vocab at 0 (Load sets it from the
// table), and the logits are the largest part of the scratch: 151,936 ×
// 512 tokens × 4 bytes = 297 MiB for Qwen3, which a plan without them
// would not leave room for.
func vocabRows(f *gguf.File, cfg model.Config) int {
	if cfg.Vocab > 0 {
		return cfg.Vocab
	}
	for _, ti := range f.Tensors() {
		if ti.Name == "token_embd.weight" && len(ti.Shape) == 2 && ti.Shape[1] > 0 && ti.Shape[1] <= 1<<24 {
			return int(ti.Shape[1])
		}
	}
	return 0
}
