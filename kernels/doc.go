// Package kernels holds gollm's numerical inner loops: the weight-matrix
// products (quantized weights times quantized activations, as llama.cpp's
// CPU backend computes them), the activation quantizers, the element-wise
// vector operations of a transformer layer, and a pool of persistent worker
// goroutines to spread the matrix products over the cores.
//
// # Reference first
//
// Every kernel has a plain-Go reference in an always-compiled file
// (ref_*.go, vec.go). Faster versions written in Go assembly sit beside it
// (*_amd64.go / *_amd64.s, built unless the purego tag is set) and are
// registered in one table (impl.go). One of them is chosen at start-up from
// the CPU's feature flags (golang.org/x/sys/cpu); Implementations lists all
// the ones this machine can run so that tests run one test body over each.
//
// # Numerics
//
// gollm computes like llama.cpp's CPU backend (commit 34af94cd, x86-64):
// before a weight-matrix product the activation row is quantized once into
// the format that pairs with the weight type (ActType): Q8_K for the
// K-quants, Q8_0 for Q8_0/Q4_0/Q5_0, Q8_1 for Q4_1/Q5_1, F16 for F16 and
// BF16 for BF16 weights. Each weight block is then multiplied with the
// matching activation block in integers and the integer result is scaled by
// the two block scales in float32.
//
// The activation quantizers are bit-exact with what that llama.cpp build
// produced (see quant.go for the sources of each rounding rule). The integer
// part of every dot product is exact. The float part follows one fixed
// order, written once in the reference and obeyed by every implementation,
// so that all implementations agree bit for bit:
//
//   - quantized types: per block, acc = acc + float32(d_block * float32(isum)),
//     blocks in order, where d_block = d_act * d_weight (float32), and for
//     Q4_K/Q5_K a second accumulator for the minimums subtracted at the end.
//     llama.cpp instead keeps 8 SIMD lanes of partial sums and uses fused
//     multiply-adds; the two orders differ by a few units in the last place.
//   - float types (F32, F16, BF16): 32 lane accumulators (element i goes to
//     lane i mod 32), each step lane = lane + float32(x*y) (no fused
//     multiply-add), the lanes folded pairwise (lane l += lane l+16, then
//     +8, +4, +2, +1), then the elements past the last multiple of 32 added
//     one by one.
//   - attention (attn.go): the same 32 lanes with fused multiply-adds
//     (FMA32, one rounding per step), and fused updates of the outputs.
//   - RMSNorm and Softmax sum in float64 over 16 folded lanes; e^x is Exp,
//     a fixed float32 polynomial (vec.go).
//
// # Threads
//
// Pool splits loops over persistent worker goroutines. Its workers poll
// for work for a while (yielding the core between polls) before they
// sleep, because waking a sleeping goroutine costs more than the
// operations of a forward step take (pool.go).
//
// # Implementations
//
//   - generic: the plain-Go reference, every type, always available (and
//     the only one with the purego build tag or off amd64).
//   - avx2 (AVX2 + FMA + F16C): Q6_K, Q4_K, Q5_K ×Q8_K, Q8_0 and Q4_0
//     ×Q8_0, the Q8_K quantizer, the attention kernels, RMSNorm, Softmax,
//     SwiGLU, RoPE, Scale, Add and ExpVec in AVX2 assembly (256-bit); the
//     rest generic.
//   - avx512vnni (AVX-512 F/BW/VL/VNNI + F16C): Q6_K, Q4_K, Q5_K ×Q8_K,
//     Q8_0 and Q4_0 ×Q8_0, the F32/F16/BF16 dot products (both modes), Dot,
//     DotF16, Axpy, AxpyF16, the F16 conversions, the attention kernels
//     (attn.go), RMSNorm, SwiGLU, Softmax, RoPE, Scale and ExpVec.
//   - amx (avx512vnni plus AMX-INT8, where the OS grants the tiles): the
//     Q6_K × Q8_K product on tiles for 16 rows × 16 or more tokens at a
//     time (amx_amd64.s explains how the block scales are folded into the
//     tiles so that every block's integer sum is exact); fewer tokens go
//     through the avx512vnni kernel.
//
// The quantized kernels work on one weight row and up to 8 tokens per
// call: each weight block is unpacked once into bytes (in registers) and
// multiplied with the 8 tokens' activation blocks (VPMADDUBSW or, for
// Q6_K, VPDPBUSD for the 8×8-bit products, VPDPWSSD to apply the 16-bit
// group scales, the Q6_K offset of 32 and the K-quant minimums through
// the Q8_K block sums), so the unpacking cost is shared by the tokens and
// the weights stream from memory once per group of 8 tokens (rows are
// taken in chunks that stay in cache while all token groups pass). For
// Q6_K, groups of exactly 2, 4 or 8 tokens also share the rest of the
// per-block work: their integer sums are reduced together and their
// float steps run one token per vector lane.
//
// Because every (weight row, token) pair goes through the same sequence of
// float operations whatever else is in the batch, MatMul is batch-invariant:
// a token's result does not depend on how many other tokens share the call,
// on its position among them, or on how the rows are split over threads.
package kernels
