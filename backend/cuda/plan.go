package cuda

import (
	"fmt"
	"strings"

	"github.com/gollm/gollm/tensor"
)

// Memory planning: will a model fit before anything is uploaded?
//
// The GPU must hold the weights (WeightBytes per matrix; the embedding
// table too, since the embedding lookup runs on the GPU), the KV cache
// (KVBytes) and the scratch of one forward step (ScratchBytes). The
// driver itself, the loaded kernels and allocation rounding take some
// more, kept back as Reserve.

// Need is what a model and its contexts take on the GPU, in bytes.
type Need struct {
	Weights int64 // every matrix of the model on the GPU (WeightBytes), norms included
	KV      int64 // the KV cache pools (KVBytes)
	Scratch int64 // activation buffers of the forward steps (ScratchBytes)
}

// Total is the sum of the parts.
func (n Need) Total() int64 { return n.Weights + n.KV + n.Scratch }

// Reserve is the memory Plan keeps free beyond Need: the kernels' module,
// the upload arena, allocation rounding and the driver's own use of the
// context (256 MiB plus 1% of the GPU's memory).
func Reserve(total int64) int64 { return 256<<20 + total/100 }

// Plan checks a Need against the free and total memory of a GPU (from
// MemInfo, or Probe's TotalMemory before a context exists). It returns nil
// when the need fits, and otherwise an error wrapping ErrOutOfMemory with
// the numbers, e.g.
//
//	cuda: out of device memory: the model needs 6.9 GiB of weights + 576.0 MiB KV
//	+ 120.0 MiB scratch (+ 1.6 GiB reserve), the GPU has 5.2 GiB free of 8.0 GiB
func Plan(need Need, free, total int64) error {
	reserve := Reserve(total)
	if need.Total()+reserve <= free {
		return nil
	}
	return fmt.Errorf("%w: the model needs %s, the GPU has %s free of %s", ErrOutOfMemory, need.describe(reserve), gib(free), gib(total))
}

// describe lists the non-zero parts: "6.9 GiB of weights + 576.0 MiB KV + …".
func (n Need) describe(reserve int64) string {
	var parts []string
	parts = append(parts, gib(n.Weights)+" of weights")
	if n.KV > 0 {
		parts = append(parts, gib(n.KV)+" KV")
	}
	if n.Scratch > 0 {
		parts = append(parts, gib(n.Scratch)+" scratch")
	}
	s := strings.Join(parts, " + ")
	if reserve > 0 {
		s += " (+ " + gib(reserve) + " reserve)"
	}
	return s
}

// KVBytes is the device memory of a KV pool (NewKV): K and V matrices of
// (layer, slot, kvDim) with blockSize×numBlocks slots.
func KVBytes(dt tensor.DType, layers, kvDim, blockSize, numBlocks int) int64 {
	return 2 * int64(layers) * int64(blockSize) * int64(numBlocks) * int64(kvDim) * int64(dt.BlockBytes())
}

// Shape is what ScratchBytes needs to know of a model (model.Config's
// fields of the same names).
type Shape struct {
	Embd, QDim, KVDim, FF, Vocab int
}

// ScratchBytes is the device memory one model.State's buffers take for
// maxBatch tokens (x, xn, q, k, v, att, gate, up, xo, logits as float32),
// plus this backend's quantized-activation scratch for the widest product
// input (int8 values, block scales and group sums, for both formats).
func ScratchBytes(s Shape, maxBatch int) int64 {
	n := int64(maxBatch)
	floats := n * int64(3*s.Embd+2*s.QDim+2*s.KVDim+2*s.FF+s.Vocab)
	widest := int64(max(s.Embd, s.QDim, s.FF))
	return 4*floats + 2*actScratchBytes(n*widest)
}

// actScratchBytes is the size of a quantized-activation buffer for
// values values: int8 values, a float per 32 values, an int per 16 (each
// part 256-byte aligned).
func actScratchBytes(values int64) int64 {
	return align256(values) + align256(4*ceilDiv64(values, 32)) + align256(4*ceilDiv64(values, 16))
}

func align256(b int64) int64     { return (b + 255) &^ 255 }
func ceilDiv64(a, b int64) int64 { return (a + b - 1) / b }
