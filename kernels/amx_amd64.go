//go:build !purego

package kernels

import (
	"sync"

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
// below it, unpacking each weight block into tiles costs more than the
// AVX-512 kernel's per-token work.
const amxMinTokens = 16

//go:noescape
func amxQ6K(w *byte, wrb, nb int, act *byte, arb, n int, tail *byte, dst *float32, dstStride int, scratch *byte)

// amxScratchBytes is the room amxQ6K needs for its tiles and the
// accumulators of n tokens (see amx_amd64.s).
func amxScratchBytes(n int) int { return 12352 + 64*n }

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

// amxBufs recycles scratch buffers: tiles, and a zero-padded copy of the
// last tokens when their count is not a multiple of 32.
var amxBufs sync.Pool

func matQ6KAMX(dst []float32, dstStride int, w, act []byte, n, cols, r0, r1 int) {
	if n < amxMinTokens || r1-r0 < 16 {
		matQ6KAVX512(dst, dstStride, w, act, n, cols, r0, r1)
		return
	}
	wrb, arb := rowBytes(tensor.Q6_K, cols), rowBytes(tensor.Q8_K, cols)
	rem := n % 32
	tiles := amxScratchBytes(n)
	need := tiles
	if rem != 0 {
		need += 32 * arb
	}
	bp, _ := amxBufs.Get().(*[]byte)
	if bp == nil || cap(*bp) < need {
		b := make([]byte, need)
		bp = &b
	}
	buf := (*bp)[:need]
	var tail *byte
	if rem != 0 {
		t := buf[tiles:]
		copy(t, act[(n-rem)*arb:n*arb])
		clear(t[rem*arb:])
		tail = &t[0]
	}
	r := r0
	for ; r+16 <= r1; r += 16 {
		amxQ6K(&w[r*wrb], wrb, cols/256, &act[0], arb, n, tail, &dst[r], dstStride, &buf[0])
	}
	amxBufs.Put(bp)
	if r < r1 {
		matQ6KAVX512(dst, dstStride, w, act, n, cols, r, r1)
	}
}
