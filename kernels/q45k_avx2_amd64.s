//go:build !purego

#include "textflag.h"

// Q4_K × Q8_K and Q5_K × Q8_K dot products with AVX2: q45k_amd64.s on
// 256-bit registers. A block is handled one 128-value half at a time
// (4 registers of 32 values, one group each, and the 4 group scales as
// words); the first half's integer sum of each token waits in a local
// array (isums) until the second half is done. Per block and token, as
// the reference:
//   isum = sum_g sc[g] * sum_{i in g} q_i*a_i                 (exact int32)
//   msum = sum_g m[g] * (bsum[2g] + bsum[2g+1])               (exact int32)
//   acc  = acc  + float32((da*dw)   * float32(isum))
//   accm = accm + float32((da*dmin) * float32(msum))
// and finally out = acc - accm (accs holds the two per token).

DATA q45kA2Const<>+0(SB)/8, $0x0f0f0f0f0f0f0f0f
DATA q45kA2Const<>+8(SB)/8, $0x1010101010101010
// VPSHUFB mask: byte k ← byte 8 + k/2 of [sc0..sc7, m0..m7] (the minimum
// of group k/2 for bsum k).
DATA q45kA2Const<>+16(SB)/8, $0x0b0b0a0a09090808
DATA q45kA2Const<>+24(SB)/8, $0x0f0f0e0e0d0d0c0c
GLOBL q45kA2Const<>(SB), RODATA|NOPTR, $32

// SCALESA2(off): the 12 scale bytes at off(SI) → words [sc0..sc7, m0..m7]
// at 96(SP) (scw), the minimums spread to bsum order in Y14 (words), and
// [dw, dmin] in X13.
#define SCALESA2(off) \
	MOVL off+0(SI), R12 \
	MOVL off+4(SI), R13 \
	MOVL off+8(SI), R14 \
	MOVL R14, AX \
	SHRL $4, AX \
	ANDL $0x0f0f0f0f, AX \
	MOVL R13, BX \
	SHRL $6, BX \
	ANDL $0x03030303, BX \
	SHLL $4, BX \
	ORL  BX, AX \
	ANDL $0x3f3f3f3f, R13 \
	ANDL $0x0f0f0f0f, R14 \
	MOVL R12, BX \
	SHRL $6, BX \
	ANDL $0x03030303, BX \
	SHLL $4, BX \
	ORL  BX, R14 \
	ANDL $0x3f3f3f3f, R12 \
	SHLQ $32, R14 \
	ORQ  R12, R14 \
	SHLQ $32, AX \
	ORQ  R13, AX \
	VMOVQ R14, X8 \
	VPINSRQ $1, AX, X8, X8 \
	VPMOVZXBW X8, Y9 \
	VMOVDQU   Y9, 96(SP) \
	VPSHUFB   q45kA2Const<>+16(SB), X8, X9 \
	VPMOVZXBW X9, Y14 \
	VMOVD     0(SI), X13 \
	VCVTPH2PS X13, X13

// SCALES4(h): Y4..Y7 = the scales of groups 4h..4h+3 as words.
#define SCALES4(h) \
	VPBROADCASTW (96+8*h)(SP), Y4 \
	VPBROADCASTW (98+8*h)(SP), Y5 \
	VPBROADCASTW (100+8*h)(SP), Y6 \
	VPBROADCASTW (102+8*h)(SP), Y7

// NIBBLES(off): the 64 bytes of qs at off(SI) → Y0..Y3 (low nibbles of
// the first 32: group 0 of the half, their high nibbles: group 1, then
// the same for the next 32: groups 2, 3).
#define NIBBLES(off) \
	VMOVDQU off(SI), Y9 \
	VPAND   Y12, Y9, Y0 \
	VPSRLW  $4, Y9, Y9 \
	VPAND   Y12, Y9, Y1 \
	VMOVDQU off+32(SI), Y9 \
	VPAND   Y12, Y9, Y2 \
	VPSRLW  $4, Y9, Y9 \
	VPAND   Y12, Y9, Y3

// FIFTH(reg, g): reg |= 16 × bit g of qh (Y15), for Q5_K group g.
#define FIFTH(reg, g) \
	VPSRLW $g, Y15, Y9 \
	VPAND  Y11, Y9, Y9 \
	VPSLLW $4, Y9, Y9 \
	VPOR   Y9, reg, reg

// HALFDOT(actoff): sum_g sc[g]*sum q*a of the half for one token
// (activation block at DI) into the 8 dword lanes of Y8.
#define HALFDOT(actoff) \
	VPMADDUBSW (actoff)(DI), Y0, Y9 \
	VPMADDWD   Y4, Y9, Y8 \
	VPMADDUBSW (actoff+32)(DI), Y1, Y9 \
	VPMADDWD   Y5, Y9, Y9 \
	VPADDD     Y9, Y8, Y8 \
	VPMADDUBSW (actoff+64)(DI), Y2, Y9 \
	VPMADDWD   Y6, Y9, Y9 \
	VPADDD     Y9, Y8, Y8 \
	VPMADDUBSW (actoff+96)(DI), Y3, Y9 \
	VPMADDWD   Y7, Y9, Y9 \
	VPADDD     Y9, Y8, Y8

// HSUM(y, x): the 8 dword lanes of y summed into the low dword of x (uses X9).
#define HSUM(y, x) \
	VEXTRACTI128 $1, y, X9 \
	VPADDD       X9, x, x \
	VPSHUFD      $0x4e, x, X9 \
	VPADDD       X9, x, x \
	VPSHUFD      $0xb1, x, X9 \
	VPADDD       X9, x, x

#define START \
	MOVQ w+0(FP), SI \
	MOVQ nb+8(FP), CX \
	MOVQ act+16(FP), DX \
	MOVQ actStride+24(FP), R8 \
	MOVQ ntok+32(FP), R9 \
	MOVQ out+40(FP), R10 \
	MOVQ outStride+48(FP), R11 \
	VPBROADCASTQ q45kA2Const<>+0(SB), Y12 \
	VPXOR   Y9, Y9, Y9 \
	VMOVDQU Y9, 32(SP) \
	VMOVDQU Y9, 64(SP)

// FIRST: the first half's sums of every token into isums.
#define FIRST \
	MOVQ DX, DI \
	XORQ BX, BX \
first: \
	HALFDOT(4) \
	HSUM(Y8, X8) \
	VMOVD X8, 0(SP)(BX*4) \
	ADDQ R8, DI \
	INCQ BX \
	CMPQ BX, R9 \
	JLT  first

// SECOND: the second half, msum, and the float update of every token.
#define SECOND \
	MOVQ DX, DI \
	XORQ BX, BX \
second: \
	HALFDOT(132) \
	HSUM(Y8, X8) \
	VMOVD        0(SP)(BX*4), X10 \
	VPADDD       X10, X8, X8 \
	VPMADDWD     260(DI), Y14, Y10 \
	HSUM(Y10, X10) \
	VPUNPCKLDQ   X10, X8, X8 \
	VCVTDQ2PS    X8, X8 \
	VBROADCASTSS (DI), X10 \
	VMULPS       X13, X10, X10 \
	VMULPS       X10, X8, X8 \
	VMOVSD       32(SP)(BX*8), X10 \
	VADDPS       X8, X10, X10 \
	VMOVSD       X10, 32(SP)(BX*8) \
	ADDQ R8, DI \
	INCQ BX \
	CMPQ BX, R9 \
	JLT  second

// FINISHA2 writes out[t] = acc - accm for every token.
#define FINISHA2 \
	XORQ BX, BX \
fin: \
	VMOVSS 32(SP)(BX*8), X0 \
	VSUBSS 36(SP)(BX*8), X0, X0 \
	VMOVSS X0, (R10) \
	ADDQ R11, R10 \
	INCQ BX \
	CMPQ BX, R9 \
	JLT  fin \
	VZEROUPPER \
	RET

// Frame (hardware SP): isums (int32 per token) at 0, accs ([acc, accm]
// per token) at 32, scw ([sc0..sc7, m0..m7] as words) at 96.

// func q4kDotsAVX2(w *byte, nb int, act *byte, actStride int, ntok int, out *float32, outStride int)
TEXT ·q4kDotsAVX2(SB), $128-56
	START
block4:
	PREFETCHT0 2048(SI)
	PREFETCHT0 2112(SI)
	PREFETCHT0 2176(SI)
	PREFETCHT1 8192(SI)
	PREFETCHT1 8256(SI)
	PREFETCHT1 8320(SI)
	SCALESA2(4)
	NIBBLES(16)
	SCALES4(0)
	FIRST
	NIBBLES(80)
	SCALES4(1)
	SECOND
	ADDQ $144, SI
	ADDQ $292, DX
	DECQ CX
	JNZ  block4
	FINISHA2

// func q5kDotsAVX2(w *byte, nb int, act *byte, actStride int, ntok int, out *float32, outStride int)
TEXT ·q5kDotsAVX2(SB), $128-56
	START
	MOVQ         $0x0101010101010101, AX
	MOVQ         AX, X11
	VPBROADCASTQ X11, Y11
block5:
	PREFETCHT0 2048(SI)
	PREFETCHT0 2112(SI)
	PREFETCHT0 2176(SI)
	PREFETCHT1 8192(SI)
	PREFETCHT1 8256(SI)
	PREFETCHT1 8320(SI)
	SCALESA2(4)
	VMOVDQU 16(SI), Y15 // qh
	NIBBLES(48)
	FIFTH(Y0, 0)
	FIFTH(Y1, 1)
	FIFTH(Y2, 2)
	FIFTH(Y3, 3)
	SCALES4(0)
	FIRST
	NIBBLES(112)
	FIFTH(Y0, 4)
	FIFTH(Y1, 5)
	FIFTH(Y2, 6)
	FIFTH(Y3, 7)
	SCALES4(1)
	SECOND
	ADDQ $176, SI
	ADDQ $292, DX
	DECQ CX
	JNZ  block5
	FINISHA2
