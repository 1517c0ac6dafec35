//go:build !purego

package kernels

import (
	"github.com/gollm/gollm/tensor"
	"golang.org/x/sys/cpu"
)

// AMX (Advanced Matrix Extensions, Intel Sapphire Rapids and later): a
// tile unit that multiplies 16×64-byte tiles of int8 values into 16×16
// int32 sums in one instruction. The "amx" implementation is the
// AVX-512 one with the Q6_K × Q8_K matrix product done on tiles whenever
// at least amxMinTokens tokens and 16 rows come together (prompts,
// batches); fewer tokens go through the AVX-512 kernel, which computes
// the same values (see amx_amd64.s: the integer sum of each block is
// exact either way, and the float operations are the reference's).
//
// Linux only hands the tile registers to a process that asks for them
// (arch_prctl ARCH_REQ_XCOMP_PERM, see amxperm_linux.go); where that is
// refused, or on other systems, the implementation is not offered.
//
// Go never preempts a goroutine inside an assembly function, so a whole
// amxQ6K call (tile configuration to tile release) runs on one thread;
// the kernel saves and restores the tile registers across thread
// switches.

// amxMinTokens is the fewest tokens for which the tile kernel is used:
// below it, preparing each weight block's tiles (a fixed cost per 16
// rows) costs more than the AVX-512 kernel's per-token work. Measured on
// 3072×1024, one thread: tiles ~420-460 µs for 4..16 tokens; AVX-512
// 347 µs for 8 tokens, 543 µs for 12.
const amxMinTokens = 12

//go:noescape
func amxPackQ8K(src *byte, arb, nb int, dst *byte)

//go:noescape
func amxQ6K(w *byte, wrb, nb int, packed *byte, ntiles int, dst *float32, dstStride, n int, scratch *byte)

// Sizes (see amx_amd64.s): a packed token tile holds 4160 bytes per block
// (4 B tiles and the 16 tokens' da); amxQ6K's scratch holds the A tiles,
// the C tiles and the accumulators of 16 rows × ntiles·16 tokens.
const amxPackedBlock = 4160

func amxScratchBytes(ntiles int) int { return 12416 + 16*64*ntiles }

// hasAMX reports whether the CPU has AMX-INT8 (besides what the AVX-512
// implementation needs) and the OS lets this process use the tiles.
func hasAMX() bool {
	return cpu.X86.HasAMXTile && cpu.X86.HasAMXInt8 && hasAVX512VNNI() && requestAMX() == nil
}

// newAMX derives the amx implementation from the AVX-512 one.
func newAMX(avx512 *Impl) *Impl {
	im := derive(avx512, "amx")
	im.mats[dotKey{tensor.Q6_K, tensor.Q8_K}] = matQ6KAMX
	return im
}

// amxBufs recycles the buffers of matQ6KAMX.
var amxBufs scratchList[amxBuf]

type amxBuf struct {
	packed  []byte // (tile, block) B tiles and da, see amxPackQ8K
	scratch []byte
	pad     []byte // 16 token rows: the last partial tile, zero-padded
}

func grow(b []byte, n int) []byte {
	if cap(b) < n {
		return make([]byte, n)
	}
	return b[:n]
}

// matQ6KAMX: the activations are packed into B tiles once (16 tokens a
// tile, an even number of tiles, missing tokens zero), then each group of
// 16 rows runs through amxQ6K; rows left over (fewer than 16) take the
// AVX-512 kernel.
func matQ6KAMX(dst []float32, dstStride int, w, act []byte, n, cols, r0, r1 int) {
	if n < amxMinTokens || r1-r0 < 16 {
		matQ6KAVX512(dst, dstStride, w, act, n, cols, r0, r1)
		return
	}
	wrb, arb, nb := rowBytes(tensor.Q6_K, cols), rowBytes(tensor.Q8_K, cols), cols/256
	ntiles := (n + 15) / 16
	ntiles += ntiles % 2
	b := amxBufs.get()
	b.packed = grow(b.packed, ntiles*nb*amxPackedBlock)
	b.scratch = grow(b.scratch, amxScratchBytes(ntiles))
	b.pad = grow(b.pad, 16*arb)
	for t := 0; t < ntiles; t++ {
		src := act[min(16*t, n)*arb:]
		if 16*t+16 > n { // a partial or empty tile: pad with zero rows
			clear(b.pad)
			copy(b.pad, src[:max(0, n-16*t)*arb])
			src = b.pad
		}
		amxPackQ8K(&src[0], arb, nb, &b.packed[t*nb*amxPackedBlock])
	}
	r := r0
	for ; r+16 <= r1; r += 16 {
		amxQ6K(&w[r*wrb], wrb, nb, &b.packed[0], ntiles, &dst[r], dstStride, n, &b.scratch[0])
	}
	amxBufs.put(b)
	if r < r1 {
		matQ6KAVX512(dst, dstStride, w, act, n, cols, r, r1)
	}
}
