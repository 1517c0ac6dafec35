//go:build !purego

#include "textflag.h"

// Attention kernels with AVX2 (+F16C): attn_amd64.s on 256-bit registers.
// Scores: two query heads against one cached row at a time; each head's
// dot product keeps the reference's 32 lanes in four registers (lanes
// 0..7, 8..15, 16..23, 24..31), a multiply then an add per step, and is
// folded l += l+16, +8, +4, +2, +1 as FOLD32 does, then scaled.
// Values: as the AVX-512 kernel, 32 columns of both heads' outputs in
// registers while the rows pass.

#define LOADF16A2(off, reg) VCVTPH2PS off(DI), reg
#define LOADF32A2(off, reg) VMOVUPS off(DI), reg

// FOLD4(a0, a1, a2, a3): the 32 lanes in a0..a3 → X(a0) lane 0.
#define FOLD4(a0, a1, a2, a3, x0, x1) \
	VADDPS       a2, a0, a0 \
	VADDPS       a3, a1, a1 \
	VADDPS       a1, a0, a0 \
	VEXTRACTF128 $1, a0, x1 \
	VADDPS       x1, x0, x0 \
	VMOVHLPS     x0, x1, x1 \
	VADDPS       x1, x0, x0 \
	VMOVSHDUP    x0, x1 \
	VADDSS       x1, x0, x0

// SCORESA2(LOAD, ESIZE)
// func attnScores*x2AVX2(dstA, dstB *float32, qA, qB *float32, d int, k *T, kStride int, rows int, scale float32)
#define SCORESA2(LOAD, ESIZE) \
	MOVQ  dstA+0(FP), R8 \
	MOVQ  dstB+8(FP), R9 \
	MOVQ  qA+16(FP), R10 \
	MOVQ  qB+24(FP), R11 \
	MOVQ  k+40(FP), SI \
	MOVQ  kStride+48(FP), R12 \
	MOVQ  rows+56(FP), R13 \
	VBROADCASTSS scale+64(FP), Y15 \
row: \
	VXORPS Y0, Y0, Y0 \
	VXORPS Y1, Y1, Y1 \
	VXORPS Y2, Y2, Y2 \
	VXORPS Y3, Y3, Y3 \
	VXORPS Y4, Y4, Y4 \
	VXORPS Y5, Y5, Y5 \
	VXORPS Y6, Y6, Y6 \
	VXORPS Y7, Y7, Y7 \
	MOVQ   SI, DI \
	XORQ   AX, AX \
	MOVQ   d+32(FP), CX \
col: \
	LOAD(0, Y8) \
	LOAD(8*ESIZE, Y9) \
	LOAD(16*ESIZE, Y10) \
	LOAD(24*ESIZE, Y11) \
	VFMADD231PS (R10)(AX*1), Y8, Y0 \
	VFMADD231PS 32(R10)(AX*1), Y9, Y1 \
	VFMADD231PS 64(R10)(AX*1), Y10, Y2 \
	VFMADD231PS 96(R10)(AX*1), Y11, Y3 \
	VFMADD231PS (R11)(AX*1), Y8, Y4 \
	VFMADD231PS 32(R11)(AX*1), Y9, Y5 \
	VFMADD231PS 64(R11)(AX*1), Y10, Y6 \
	VFMADD231PS 96(R11)(AX*1), Y11, Y7 \
	ADDQ   $32*ESIZE, DI \
	ADDQ   $128, AX \
	SUBQ   $32, CX \
	JNZ    col \
	FOLD4(Y0, Y1, Y2, Y3, X0, X8) \
	VMULSS X15, X0, X0 \
	VMOVSS X0, (R8) \
	FOLD4(Y4, Y5, Y6, Y7, X4, X8) \
	VMULSS X15, X4, X4 \
	VMOVSS X4, (R9) \
	ADDQ   $4, R8 \
	ADDQ   $4, R9 \
	ADDQ   R12, SI \
	DECQ   R13 \
	JNZ    row \
	VZEROUPPER \
	RET

// VALUESA2(LOAD, ESIZE)
// func attnValues*x2AVX2(outA, outB *float32, d int, pA, pB *float32, v *T, vStride int, rows int)
// d is a multiple of 8; columns go 32 at a time, then 8.
#define VALUESA2(LOAD, ESIZE) \
	MOVQ outA+0(FP), R8 \
	MOVQ outB+8(FP), R9 \
	MOVQ d+16(FP), CX \
	MOVQ v+40(FP), SI \
	MOVQ vStride+48(FP), R12 \
	MOVQ rows+56(FP), R13 \
	XORQ AX, AX \
wide: \
	CMPQ CX, $32 \
	JLT  narrow \
	VMOVUPS (R8)(AX*1), Y0 \
	VMOVUPS 32(R8)(AX*1), Y1 \
	VMOVUPS 64(R8)(AX*1), Y2 \
	VMOVUPS 96(R8)(AX*1), Y3 \
	VMOVUPS (R9)(AX*1), Y4 \
	VMOVUPS 32(R9)(AX*1), Y5 \
	VMOVUPS 64(R9)(AX*1), Y6 \
	VMOVUPS 96(R9)(AX*1), Y7 \
	MOVQ pA+24(FP), R10 \
	MOVQ pB+32(FP), R11 \
	MOVQ SI, DI \
	MOVQ R13, R14 \
wrow: \
	VBROADCASTSS (R10), Y14 \
	VBROADCASTSS (R11), Y15 \
	LOAD(0, Y8) \
	LOAD(8*ESIZE, Y9) \
	LOAD(16*ESIZE, Y10) \
	LOAD(24*ESIZE, Y11) \
	VFMADD231PS Y14, Y8, Y0 \
	VFMADD231PS Y14, Y9, Y1 \
	VFMADD231PS Y14, Y10, Y2 \
	VFMADD231PS Y14, Y11, Y3 \
	VFMADD231PS Y15, Y8, Y4 \
	VFMADD231PS Y15, Y9, Y5 \
	VFMADD231PS Y15, Y10, Y6 \
	VFMADD231PS Y15, Y11, Y7 \
	ADDQ $4, R10 \
	ADDQ $4, R11 \
	ADDQ R12, DI \
	DECQ R14 \
	JNZ  wrow \
	VMOVUPS Y0, (R8)(AX*1) \
	VMOVUPS Y1, 32(R8)(AX*1) \
	VMOVUPS Y2, 64(R8)(AX*1) \
	VMOVUPS Y3, 96(R8)(AX*1) \
	VMOVUPS Y4, (R9)(AX*1) \
	VMOVUPS Y5, 32(R9)(AX*1) \
	VMOVUPS Y6, 64(R9)(AX*1) \
	VMOVUPS Y7, 96(R9)(AX*1) \
	ADDQ $128, AX \
	ADDQ $32*ESIZE, SI \
	SUBQ $32, CX \
	JMP  wide \
narrow: \
	TESTQ CX, CX \
	JZ    done \
	VMOVUPS (R8)(AX*1), Y0 \
	VMOVUPS (R9)(AX*1), Y4 \
	MOVQ pA+24(FP), R10 \
	MOVQ pB+32(FP), R11 \
	MOVQ SI, DI \
	MOVQ R13, R14 \
nrow: \
	VBROADCASTSS (R10), Y14 \
	VBROADCASTSS (R11), Y15 \
	LOAD(0, Y8) \
	VFMADD231PS Y14, Y8, Y0 \
	VFMADD231PS Y15, Y8, Y4 \
	ADDQ $4, R10 \
	ADDQ $4, R11 \
	ADDQ R12, DI \
	DECQ R14 \
	JNZ  nrow \
	VMOVUPS Y0, (R8)(AX*1) \
	VMOVUPS Y4, (R9)(AX*1) \
	ADDQ $32, AX \
	ADDQ $8*ESIZE, SI \
	SUBQ $8, CX \
	JMP  narrow \
done: \
	VZEROUPPER \
	RET

// func attnScoresF16x2AVX2(dstA, dstB *float32, qA, qB *float32, d int, k *uint16, kStride int, rows int, scale float32)
TEXT ·attnScoresF16x2AVX2(SB), NOSPLIT, $0-68
	SCORESA2(LOADF16A2, 2)

// func attnScoresF32x2AVX2(dstA, dstB *float32, qA, qB *float32, d int, k *float32, kStride int, rows int, scale float32)
TEXT ·attnScoresF32x2AVX2(SB), NOSPLIT, $0-68
	SCORESA2(LOADF32A2, 4)

// func attnValuesF16x2AVX2(outA, outB *float32, d int, pA, pB *float32, v *uint16, vStride int, rows int)
TEXT ·attnValuesF16x2AVX2(SB), NOSPLIT, $0-64
	VALUESA2(LOADF16A2, 2)

// func attnValuesF32x2AVX2(outA, outB *float32, d int, pA, pB *float32, v *float32, vStride int, rows int)
TEXT ·attnValuesF32x2AVX2(SB), NOSPLIT, $0-64
	VALUESA2(LOADF32A2, 4)
