//go:build !purego

#include "textflag.h"

// Q6_K × Q8_K dot products with AVX2 (no AVX-512): the same computation
// as q6kDotsAVX512, on 256-bit registers. With only 16 registers the block
// is handled one 128-value half at a time; each token's integer sum of the
// first half waits in a small local array (isums) until the second half is
// done, then the block's float update runs (same float operations as the
// reference). ntok is at most 8.
//
// Per half: Y0..Y3 the 128 values as bytes (32 per register, natural
// order), Y4..Y7 the scales as words (words 0..7: first group of the
// register, 8..15: second group).

DATA q6kA2Const<>+0(SB)/8, $0x0f0f0f0f0f0f0f0f
DATA q6kA2Const<>+8(SB)/8, $0x0303030303030303
GLOBL q6kA2Const<>(SB), RODATA|NOPTR, $16

// VPSHUFB masks picking scale bytes 2c (x8) and 2c+1 (x8) for chunk c = 0..7.
DATA q6kA2Shuf<>+0(SB)/8, $0x0000000000000000
DATA q6kA2Shuf<>+8(SB)/8, $0x0101010101010101
DATA q6kA2Shuf<>+16(SB)/8, $0x0202020202020202
DATA q6kA2Shuf<>+24(SB)/8, $0x0303030303030303
DATA q6kA2Shuf<>+32(SB)/8, $0x0404040404040404
DATA q6kA2Shuf<>+40(SB)/8, $0x0505050505050505
DATA q6kA2Shuf<>+48(SB)/8, $0x0606060606060606
DATA q6kA2Shuf<>+56(SB)/8, $0x0707070707070707
DATA q6kA2Shuf<>+64(SB)/8, $0x0808080808080808
DATA q6kA2Shuf<>+72(SB)/8, $0x0909090909090909
DATA q6kA2Shuf<>+80(SB)/8, $0x0a0a0a0a0a0a0a0a
DATA q6kA2Shuf<>+88(SB)/8, $0x0b0b0b0b0b0b0b0b
DATA q6kA2Shuf<>+96(SB)/8, $0x0c0c0c0c0c0c0c0c
DATA q6kA2Shuf<>+104(SB)/8, $0x0d0d0d0d0d0d0d0d
DATA q6kA2Shuf<>+112(SB)/8, $0x0e0e0e0e0e0e0e0e
DATA q6kA2Shuf<>+120(SB)/8, $0x0f0f0f0f0f0f0f0f
GLOBL q6kA2Shuf<>(SB), RODATA|NOPTR, $128

// HALF(h) unpacks half h of the block at SI into Y0..Y3 and its scales
// into Y4..Y7 (uses Y8..Y12 as scratch).
#define HALF(qloff, qhoff, shufoff) \
	VMOVDQU (qloff)(SI), Y8 \
	VMOVDQU (qloff+32)(SI), Y9 \
	VMOVDQU (qhoff)(SI), Y10 \
	VPAND   Y14, Y8, Y0 \
	VPAND   Y15, Y10, Y11 \
	VPSLLW  $4, Y11, Y11 \
	VPOR    Y11, Y0, Y0 \
	VPAND   Y14, Y9, Y1 \
	VPSRLW  $2, Y10, Y11 \
	VPAND   Y15, Y11, Y11 \
	VPSLLW  $4, Y11, Y11 \
	VPOR    Y11, Y1, Y1 \
	VPSRLW  $4, Y8, Y8 \
	VPAND   Y14, Y8, Y2 \
	VPSRLW  $4, Y10, Y11 \
	VPAND   Y15, Y11, Y11 \
	VPSLLW  $4, Y11, Y11 \
	VPOR    Y11, Y2, Y2 \
	VPSRLW  $4, Y9, Y9 \
	VPAND   Y14, Y9, Y3 \
	VPSRLW  $6, Y10, Y11 \
	VPAND   Y15, Y11, Y11 \
	VPSLLW  $4, Y11, Y11 \
	VPOR    Y11, Y3, Y3 \
	VMOVDQU 192(SI), X12 \
	VPSHUFB q6kA2Shuf<>+(shufoff)(SB), X12, X8 \
	VPMOVSXBW X8, Y4 \
	VPSHUFB q6kA2Shuf<>+(shufoff+16)(SB), X12, X8 \
	VPMOVSXBW X8, Y5 \
	VPSHUFB q6kA2Shuf<>+(shufoff+32)(SB), X12, X8 \
	VPMOVSXBW X8, Y6 \
	VPSHUFB q6kA2Shuf<>+(shufoff+48)(SB), X12, X8 \
	VPMOVSXBW X8, Y7

// HALFDOT(actoff) adds sum_g sc[g]*sum q*a of this half for one token
// (activation block at DI) into the 8 dword lanes of Y8.
#define HALFDOT(actoff) \
	VPMADDUBSW (actoff)(DI), Y0, Y9 \
	VPMADDWD   Y4, Y9, Y9 \
	VPADDD     Y9, Y8, Y8 \
	VPMADDUBSW (actoff+32)(DI), Y1, Y9 \
	VPMADDWD   Y5, Y9, Y9 \
	VPADDD     Y9, Y8, Y8 \
	VPMADDUBSW (actoff+64)(DI), Y2, Y9 \
	VPMADDWD   Y6, Y9, Y9 \
	VPADDD     Y9, Y8, Y8 \
	VPMADDUBSW (actoff+96)(DI), Y3, Y9 \
	VPMADDWD   Y7, Y9, Y9 \
	VPADDD     Y9, Y8, Y8

// HSUM8 sums the 8 dword lanes of Y8 into the low dword of X8.
#define HSUM8 \
	VEXTRACTI128 $1, Y8, X9 \
	VPADDD       X9, X8, X8 \
	VPSHUFD      $0x4e, X8, X9 \
	VPADDD       X9, X8, X8 \
	VPSHUFD      $0xb1, X8, X9 \
	VPADDD       X9, X8, X8

// func q6kDotsAVX2(w *byte, nb int, act *byte, actStride int, ntok int, out *float32, outStride int)
TEXT ·q6kDotsAVX2(SB), NOSPLIT, $32-56
	MOVQ w+0(FP), SI
	MOVQ nb+8(FP), CX
	MOVQ act+16(FP), DX
	MOVQ actStride+24(FP), R8
	MOVQ ntok+32(FP), R9
	MOVQ out+40(FP), R10
	MOVQ outStride+48(FP), R11
	VPBROADCASTQ q6kA2Const<>+0(SB), Y14
	VPBROADCASTQ q6kA2Const<>+8(SB), Y15
	LEAQ isums-32(SP), R12

	MOVQ R10, AX
	MOVQ R9, BX
zero:
	MOVL $0, (AX)
	ADDQ R11, AX
	DECQ BX
	JNZ  zero

block:
	PREFETCHT0 2048(SI) // weights ~10 blocks ahead (see q6k_amd64.s)
	PREFETCHT0 2112(SI)
	PREFETCHT0 2176(SI)
	PREFETCHT0 2240(SI)
	PREFETCHT1 8192(SI) // and ~40 blocks ahead into L2
	PREFETCHT1 8256(SI)
	PREFETCHT1 8320(SI)
	PREFETCHT1 8384(SI)
	// First half, plus the -32*sum sc*bsum correction of the whole block.
	HALF(0, 128, 0)
	VPMOVSXBW 192(SI), Y13
	VPSLLW    $5, Y13, Y13     // 32*scale (subtracted below)
	MOVQ DX, DI
	XORQ BX, BX
tok0:
	VPMADDWD 260(DI), Y13, Y10 // 32*sum sc*bsum, 8 lanes
	VPXOR    Y8, Y8, Y8
	VPSUBD   Y10, Y8, Y8
	HALFDOT(4)
	HSUM8
	VMOVD X8, (R12)(BX*4)
	ADDQ R8, DI
	INCQ BX
	CMPQ BX, R9
	JLT  tok0

	// Second half and the float update.
	HALF(64, 160, 64)
	MOVWLZX   208(SI), AX
	VMOVD     AX, X13
	VCVTPH2PS X13, X13         // dw
	MOVQ DX, DI
	MOVQ R10, AX
	XORQ BX, BX
tok1:
	VPXOR Y8, Y8, Y8
	HALFDOT(132)
	HSUM8
	VMOVD     (R12)(BX*4), X9
	VPADDD    X9, X8, X8
	VCVTDQ2PS X8, X8
	VMOVSS    (DI), X10
	VMULSS    X13, X10, X10    // d = da*dw
	VMULSS    X10, X8, X8
	VMOVSS    (AX), X11
	VADDSS    X8, X11, X11
	VMOVSS    X11, (AX)
	ADDQ R8, DI
	ADDQ R11, AX
	INCQ BX
	CMPQ BX, R9
	JLT  tok1

	ADDQ $210, SI
	ADDQ $292, DX
	DECQ CX
	JNZ  block
	VZEROUPPER
	RET
