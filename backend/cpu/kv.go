package cpu

import (
	"fmt"

	"github.com/gollm/gollm/kvcache"
	"github.com/gollm/gollm/tensor"
)

// HostStorage is the CPU backend's KV pool (what NewKV returns), kept in
// Go memory. Package kvcache decides which slot holds which position;
// this type holds the bytes of those slots, in the layout the attention
// kernels read. For each layer there is one K and one V matrix of (slot,
// kvDim) where slot = block*BlockSize + offset and kvDim =
// kvHeads*headDim; a block is a run of BlockSize consecutive slots.
// Elements are F16 (half bit patterns, the default: half the memory) or
// F32.
type HostStorage struct {
	DType     tensor.DType
	Layers    int
	KVDim     int // kvHeads * headDim
	BlockSize int

	K16, V16 [][]uint16  // (layer) → (slot, kvDim), when DType is F16
	K32, V32 [][]float32 // (layer) → (slot, kvDim), when DType is F32
}

// NewHostStorage allocates room for numBlocks blocks. A bad element type
// or size is an error wrapping kvcache.ErrBadConfig, as the GPU
// backend's pool gives.
func NewHostStorage(dt tensor.DType, layers, kvDim, blockSize, numBlocks int) (*HostStorage, error) {
	if dt != tensor.F16 && dt != tensor.F32 {
		return nil, fmt.Errorf("%w: KV element type %s (use f16 or f32)", kvcache.ErrBadConfig, dt)
	}
	if layers < 0 || kvDim < 1 || blockSize < 1 || numBlocks < 1 {
		return nil, fmt.Errorf("%w: layers %d, kvDim %d, block size %d, blocks %d", kvcache.ErrBadConfig, layers, kvDim, blockSize, numBlocks)
	}
	h := &HostStorage{DType: dt, Layers: layers, KVDim: kvDim, BlockSize: blockSize}
	slots := blockSize * numBlocks
	for l := 0; l < layers; l++ {
		if dt == tensor.F16 {
			h.K16 = append(h.K16, make([]uint16, slots*kvDim))
			h.V16 = append(h.V16, make([]uint16, slots*kvDim))
		} else {
			h.K32 = append(h.K32, make([]float32, slots*kvDim))
			h.V32 = append(h.V32, make([]float32, slots*kvDim))
		}
	}
	return h, nil
}

// CopyBlock copies block src to block dst in every layer.
func (h *HostStorage) CopyBlock(dst, src int) {
	n := h.BlockSize * h.KVDim
	d, s := dst*n, src*n
	for l := 0; l < h.Layers; l++ {
		if h.DType == tensor.F16 {
			copy(h.K16[l][d:d+n], h.K16[l][s:s+n])
			copy(h.V16[l][d:d+n], h.V16[l][s:s+n])
		} else {
			copy(h.K32[l][d:d+n], h.K32[l][s:s+n])
			copy(h.V32[l][d:d+n], h.V32[l][s:s+n])
		}
	}
}
