package cuda

import (
	"fmt"

	"github.com/gollm/gollm/tensor"
)

// The kernels the backend launches, with the kind of each parameter in
// order, and how many threads each launch gets. The constants mirror the
// #defines of kernels.cu; TestPTXEntries checks every descriptor against
// the parameter list of its .entry in the PTX.

// argKind is the C type of a kernel parameter.
type argKind uint8

const (
	argPtr argKind = iota // a device pointer (8 bytes)
	argI32                // int
	argI64                // long
	argF32                // float
)

func (k argKind) String() string {
	return [...]string{"ptr", "int", "long", "float"}[k]
}

// kernel is one __global__ entry point of kernels.cu.
type kernel struct {
	name   string
	params []argKind
}

// Geometry constants, as in kernels.cu.
const (
	mmvWarps    = 4   // MMV_WARPS: weight rows (one warp each) per block
	mmvTokens   = 8   // MMV_TOKENS: tokens a warp carries at once
	mmvBlockTok = 64  // MMV_BLOCK_TOKENS: tokens per block (grid.y tiles the rest)
	mmqRows     = 64  // MMQ_ROWS
	mmqTokens   = 64  // MMQ_TOKENS
	mmqThreads  = 256 // MMQ_THREADS
	attChunk    = 64  // ATT_CHUNK
	attMaxGroup = 8   // ATT_MAXG: query heads per attention block
	elemThreads = 256 // ELEM_THREADS
	maxGridY    = 65535
	maxGridX    = 1<<31 - 1
	maxThreads  = 1024
)

var (
	// Products. mmv: a warp per weight row, up to 64 tokens per block;
	// mmq: 64 rows × 64 tokens per block. The quantized ones take
	// (dst, dstStride, W, aq, ad, bsum, rows, cols, n).
	quantMatArgs = []argKind{argPtr, argI32, argPtr, argPtr, argPtr, argPtr, argI32, argI32, argI32}
	kMMVQ6K      = &kernel{"mmv_q6_k", quantMatArgs}
	kMMVQ4K      = &kernel{"mmv_q4_k", quantMatArgs}
	kMMVQ5K      = &kernel{"mmv_q5_k", quantMatArgs}
	kMMVQ80      = &kernel{"mmv_q8_0", quantMatArgs}
	kMMQQ6K      = &kernel{"mmq_q6_k", quantMatArgs}
	kMMQQ4K      = &kernel{"mmq_q4_k", quantMatArgs}
	kMMQQ5K      = &kernel{"mmq_q5_k", quantMatArgs}
	kMMQQ80      = &kernel{"mmq_q8_0", quantMatArgs}
	// Float weights: (dst, dstStride, W, x, rows, cols, n).
	floatMatArgs = []argKind{argPtr, argI32, argPtr, argPtr, argI32, argI32, argI32}
	kMMVF16      = &kernel{"mmv_f16", floatMatArgs}
	kMMVF32      = &kernel{"mmv_f32", floatMatArgs}

	// Activation quantizers: (qs, d, bsum, x, n, cols) and (qs, d, x, n, cols).
	kQuantQ8K = &kernel{"quantize_q8k", []argKind{argPtr, argPtr, argPtr, argPtr, argI32, argI32}}
	kQuantQ80 = &kernel{"quantize_q8_0", []argKind{argPtr, argPtr, argPtr, argI32, argI32}}

	// (dst, W, ids, n, cols, rowBytes, type)
	kEmbed = &kernel{"embed", []argKind{argPtr, argPtr, argPtr, argI32, argI32, argI64, argI32}}
	// (dst, x, w, eps, n, cols)
	kRMSNorm = &kernel{"rmsnorm", []argKind{argPtr, argPtr, argPtr, argF32, argI32, argI32}}
	// (x, w, eps, hd, chunks)
	kRMSNormHeads = &kernel{"rmsnorm_heads", []argKind{argPtr, argPtr, argF32, argI32, argI64}}
	// (x, pos, tab, n, cols, dims)
	kRoPE = &kernel{"rope", []argKind{argPtr, argPtr, argPtr, argI32, argI32, argI32}}
	// (dst, gate, up, count)
	kSwiGLU = &kernel{"swiglu", []argKind{argPtr, argPtr, argPtr, argI64}}
	// (dst, x, count)
	kAdd = &kernel{"add", []argKind{argPtr, argPtr, argI64}}
	// (dst, x, rows, n, cols)
	kGather = &kernel{"gather", []argKind{argPtr, argPtr, argPtr, argI32, argI32}}
	// (K, V, k, v, slots, n, kvDim, f16)
	kStoreKV = &kernel{"store_kv", []argKind{argPtr, argPtr, argPtr, argPtr, argPtr, argI32, argI32, argI32}}
	// (K, V, perLayer, blockUnits, layers, dstBlock, srcBlock)
	kCopyKVBlock = &kernel{"copy_kv_block", []argKind{argPtr, argPtr, argI64, argI64, argI32, argI32, argI32}}
	// (out, q, K, V, f16, pos, tabOff, tables, bs, kvDim, qDim, hd, group, gpb, scale)
	kAttention = &kernel{"attention", []argKind{argPtr, argPtr, argPtr, argPtr, argI32, argPtr, argPtr, argPtr,
		argI32, argI32, argI32, argI32, argI32, argI32, argF32}}
)

// allKernels lists every entry point; the device resolves them all at start.
var allKernels = []*kernel{
	kMMVQ6K, kMMVQ4K, kMMVQ5K, kMMVQ80, kMMQQ6K, kMMQQ4K, kMMQQ5K, kMMQQ80, kMMVF16, kMMVF32,
	kQuantQ8K, kQuantQ80, kEmbed, kRMSNorm, kRMSNormHeads, kRoPE, kSwiGLU, kAdd, kGather,
	kStoreKV, kCopyKVBlock, kAttention,
}

// dims is a launch shape: grid and block sizes in x, y, z.
type dims struct {
	grid, block [3]uint32
	shared      uint32 // dynamic shared memory in bytes
}

func ceilDiv(a, b int) int { return (a + b - 1) / b }

// actFormat is the activation format a weight type is multiplied with.
type actFormat int

const (
	actFloat actFormat = iota // F16/F32 weights read the float activations
	actQ8K                    // K-quants: Q8_K (256-value blocks with sums of 16)
	actQ80                    // Q8_0: 32-value blocks
)

// matKernels gives the product kernels of a weight type (mmq nil when
// there is no tiled kernel) and the activation format they read.
func matKernels(t tensor.DType) (mmv, mmq *kernel, act actFormat, ok bool) {
	switch t {
	case tensor.Q6_K:
		return kMMVQ6K, kMMQQ6K, actQ8K, true
	case tensor.Q4_K:
		return kMMVQ4K, kMMQQ4K, actQ8K, true
	case tensor.Q5_K:
		return kMMVQ5K, kMMQQ5K, actQ8K, true
	case tensor.Q8_0:
		return kMMVQ80, kMMQQ80, actQ80, true
	case tensor.F16:
		return kMMVF16, nil, actFloat, true
	case tensor.F32:
		return kMMVF32, nil, actFloat, true
	}
	return nil, nil, 0, false
}

// defaultTiledMinTokens is the batch size from which quantized products
// use the tiled kernel (mmq) instead of the warp-per-row one (mmv). Up to
// 64 tokens mmv reads the weights from memory once too (a warp re-reads
// its row from L1 for each 8 tokens), and it spreads a matrix over
// rows/4 blocks where mmq has rows/64: at a decode step of 64 sequences
// a 1024-row projection would give mmq 16 blocks for 132 multiprocessors.
const defaultTiledMinTokens = mmvBlockTok + 1

// matGeometry picks the product kernel for a (rows, cols) weight of type t
// times n tokens and its launch shape. Both kernels compute bit-identical
// results (exact integer block sums, the same float chain per (row,
// token)), so choosing by n does not break batch invariance; the GPU tests
// check that they agree bit for bit.
func matGeometry(t tensor.DType, rows, cols, n, tiledMin int) (*kernel, dims, error) {
	mmv, mmq, _, ok := matKernels(t)
	if !ok {
		return nil, dims{}, fmt.Errorf("%w: no product kernel for %s weights", ErrUnsupported, t)
	}
	if mmq != nil && n >= tiledMin && cols%256 == 0 {
		if ceilDiv(n, mmqTokens) > maxGridY {
			return nil, dims{}, fmt.Errorf("%w: %d tokens in one product", ErrUnsupported, n)
		}
		return mmq, dims{grid: [3]uint32{uint32(ceilDiv(rows, mmqRows)), uint32(ceilDiv(n, mmqTokens)), 1},
			block: [3]uint32{mmqThreads, 1, 1}}, nil
	}
	if ceilDiv(n, mmvBlockTok) > maxGridY {
		return nil, dims{}, fmt.Errorf("%w: %d tokens in one product", ErrUnsupported, n)
	}
	return mmv, dims{grid: [3]uint32{uint32(ceilDiv(rows, mmvWarps)), uint32(ceilDiv(n, mmvBlockTok)), 1},
		block: [3]uint32{32 * mmvWarps, 1, 1}}, nil
}

// elemGeometry covers count elements with one thread each.
func elemGeometry(count int) dims {
	return dims{grid: [3]uint32{uint32(max(1, ceilDiv(count, elemThreads))), 1, 1}, block: [3]uint32{elemThreads, 1, 1}}
}

// warpGeometry covers count warps' worth of work, 4 warps per block
// (the quantizers: a warp per block of values; rmsnorm: a warp per row;
// rmsnorm_heads: a warp per head).
func warpGeometry(count int) dims {
	return dims{grid: [3]uint32{uint32(max(1, ceilDiv(count, 4))), 1, 1}, block: [3]uint32{128, 1, 1}}
}

// attnGeometry shapes the attention launch: a block per (KV head, token,
// slice of the query-head group) with a thread per (query head, element);
// gpb query heads per block.
func attnGeometry(heads, kvHeads, hd, n int) (d dims, gpb int, err error) {
	if kvHeads < 1 || heads%kvHeads != 0 || hd < 1 {
		return dims{}, 0, fmt.Errorf("%w: attention with %d heads, %d KV heads, head size %d", ErrUnsupported, heads, kvHeads, hd)
	}
	if hd > maxThreads || hd < 16 {
		// The softmax sum takes 16 threads per head (kernels.cu, attention).
		return dims{}, 0, fmt.Errorf("%w: head size %d (16 to %d)", ErrUnsupported, hd, maxThreads)
	}
	if n > maxGridY {
		return dims{}, 0, fmt.Errorf("%w: %d tokens in one attention call (at most %d)", ErrUnsupported, n, maxGridY)
	}
	group := heads / kvHeads
	gpb = min(group, attMaxGroup, maxThreads/hd)
	// Whole warps: the kernel's shuffles involve all 32 lanes; threads
	// past gpb*hd take part in them but own no output.
	d = dims{
		grid:   [3]uint32{uint32(kvHeads), uint32(n), uint32(ceilDiv(group, gpb))},
		block:  [3]uint32{uint32(ceilDiv(gpb*hd, 32) * 32), 1, 1},
		shared: uint32((gpb*hd + gpb*attChunk) * 4),
	}
	return d, gpb, nil
}

// threads is the number of threads a launch starts.
func (d dims) threads() int {
	return int(d.grid[0]) * int(d.grid[1]) * int(d.grid[2]) * int(d.block[0]) * int(d.block[1]) * int(d.block[2])
}
