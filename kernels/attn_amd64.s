//go:build !purego

#include "textflag.h"

// Attention kernels, AVX-512 (F, VL; F16C-style VCVTPH2PS on 512 bits).
//
// Scores: two query heads (A and B) against up to 16 cached key rows per
// call. For each row, each head's dot product is accumulated exactly like
// dotF32Main/dotF16F32Main: lanes 0..15 in one register and 16..31 in
// another, a multiply then an add per step (no FMA), and the first fold
// step (l += l+16) adds the two registers. The 16 remaining partial sums
// of each row are stored to a scratch area, and the other fold steps
// (+8, +4, +2, +1) are done for all 16 rows at once by a transposing
// reduction (FOLD16), which adds exactly the same pairs as the one-row
// fold but ends with the 16 rows' results side by side in one register,
// ready to be scaled and stored. Reading the key row once serves both
// heads.
//
// Values: two heads' outputs (16 columns per register) stay in registers
// while up to all rows pass: out += float32(p[j] * v[j]), row after row,
// as Axpy does.

// Permutation that puts the results of FOLD16 in row order (see there).
DATA attnFoldPerm<>+0(SB)/4, $0
DATA attnFoldPerm<>+4(SB)/4, $4
DATA attnFoldPerm<>+8(SB)/4, $8
DATA attnFoldPerm<>+12(SB)/4, $12
DATA attnFoldPerm<>+16(SB)/4, $1
DATA attnFoldPerm<>+20(SB)/4, $5
DATA attnFoldPerm<>+24(SB)/4, $9
DATA attnFoldPerm<>+28(SB)/4, $13
DATA attnFoldPerm<>+32(SB)/4, $2
DATA attnFoldPerm<>+36(SB)/4, $6
DATA attnFoldPerm<>+40(SB)/4, $10
DATA attnFoldPerm<>+44(SB)/4, $14
DATA attnFoldPerm<>+48(SB)/4, $3
DATA attnFoldPerm<>+52(SB)/4, $7
DATA attnFoldPerm<>+56(SB)/4, $11
DATA attnFoldPerm<>+60(SB)/4, $15
GLOBL attnFoldPerm<>(SB), RODATA|NOPTR, $64

// PAIR8(a, b, dst): rows a and b (16 partial sums each, in memory) →
// dst = [a0+a8 .. a7+a15, b0+b8 .. b7+b15] (fold step +8 of both).
#define PAIR8(a, b, dst) \
	VMOVUPS    a, Z16 \
	VMOVUPS    b, Z17 \
	VSHUFF32X4 $0x44, Z17, Z16, Z18 \
	VSHUFF32X4 $0xEE, Z17, Z16, Z19 \
	VADDPS     Z19, Z18, dst

// PAIR4(x, y, dst): x holds rows r, r+1 and y rows r+2, r+3 after step +8
// (8 values each) → dst 128-bit lane k = row r+k after step +4.
#define PAIR4(x, y, dst) \
	VSHUFF32X4 $0x88, y, x, Z18 \
	VSHUFF32X4 $0xDD, y, x, Z19 \
	VADDPS     Z19, Z18, dst

// FOLD16(base, dst): the 16 rows of partial sums at base (64 bytes each)
// → dst = their folded sums, row j in lane j.
//
// After step +4, register X_p (p = 0..3) holds row 4p+k in 128-bit lane k
// (4 values). Step +2 (VSHUFPS pairs elements 0,1 with 2,3 inside each
// lane) of X0,X1 gives Y0: lane k = [row k: 2 values, row 4+k: 2 values];
// of X2,X3 gives Y1 (rows 8+k, 12+k). Step +1 leaves lane k = [row k,
// row 4+k, row 8+k, row 12+k]; VPERMPS puts row j in lane j.
#define FOLD16(base, dst) \
	PAIR8(0(base), 64(base), Z20) \
	PAIR8(128(base), 192(base), Z21) \
	PAIR8(256(base), 320(base), Z22) \
	PAIR8(384(base), 448(base), Z23) \
	PAIR8(512(base), 576(base), Z24) \
	PAIR8(640(base), 704(base), Z25) \
	PAIR8(768(base), 832(base), Z26) \
	PAIR8(896(base), 960(base), Z27) \
	PAIR4(Z20, Z21, Z28) \
	PAIR4(Z22, Z23, Z29) \
	PAIR4(Z24, Z25, Z30) \
	PAIR4(Z26, Z27, Z31) \
	VSHUFPS $0x44, Z29, Z28, Z18 \
	VSHUFPS $0xEE, Z29, Z28, Z19 \
	VADDPS  Z19, Z18, Z20 \
	VSHUFPS $0x44, Z31, Z30, Z18 \
	VSHUFPS $0xEE, Z31, Z30, Z19 \
	VADDPS  Z19, Z18, Z21 \
	VSHUFPS $0x88, Z21, Z20, Z18 \
	VSHUFPS $0xDD, Z21, Z20, Z19 \
	VADDPS  Z19, Z18, Z22 \
	VPERMPS Z22, Z15, dst

// SCORES(LOAD, ESIZE): the body of the two score kernels; LOAD(off, reg)
// loads 16 keys at byte offset off of DI as float32, ESIZE is the bytes of
// one key value.
//
// func attnScores*x2(dstA, dstB *float32, qA, qB *float32, d int, k *T, kStride int, rows int, scale float32, tmp *float32)
// kStride is in bytes; rows is 1..16; tmp has room for 2×16×16 float32.
#define SCORES(LOAD, ESIZE) \
	MOVQ  dstA+0(FP), R8 \
	MOVQ  dstB+8(FP), R9 \
	MOVQ  qA+16(FP), R10 \
	MOVQ  qB+24(FP), R11 \
	MOVQ  k+40(FP), SI \
	MOVQ  kStride+48(FP), R12 \
	MOVQ  rows+56(FP), R13 \
	MOVQ  tmp+72(FP), BX \
	MOVQ  BX, DX \ // DX: this row's partial sums (head A; head B at +1024)
	MOVQ  R13, R14 \
row: \
	VXORPS Z0, Z0, Z0 \ // head A, lanes 0..15
	VXORPS Z1, Z1, Z1 \ // head A, lanes 16..31
	VXORPS Z2, Z2, Z2 \ // head B, lanes 0..15
	VXORPS Z3, Z3, Z3 \ // head B, lanes 16..31
	MOVQ   SI, DI \
	XORQ   AX, AX \ // byte offset into q
	MOVQ   d+32(FP), CX \
col: \
	LOAD(0, Z4) \
	LOAD(16*ESIZE, Z5) \
	VFMADD231PS (R10)(AX*1), Z4, Z0 \
	VFMADD231PS 64(R10)(AX*1), Z5, Z1 \
	VFMADD231PS (R11)(AX*1), Z4, Z2 \
	VFMADD231PS 64(R11)(AX*1), Z5, Z3 \
	ADDQ   $32*ESIZE, DI \
	ADDQ   $128, AX \
	SUBQ   $32, CX \
	JNZ    col \
	VADDPS  Z1, Z0, Z0 \ // fold step l += l+16
	VADDPS  Z3, Z2, Z2 \
	VMOVUPS Z0, (DX) \
	VMOVUPS Z2, 1024(DX) \
	ADDQ    R12, SI \
	ADDQ    $64, DX \
	DECQ    R14 \
	JNZ     row \
	\
	VMOVDQU32    attnFoldPerm<>(SB), Z15 \
	VBROADCASTSS scale+64(FP), Z14 \
	MOVL         $1, AX \
	MOVQ         R13, CX \
	SHLL         CX, AX \
	DECL         AX \
	KMOVW        AX, K1 \ // K1: the rows that exist
	FOLD16(BX, Z10) \
	VMULPS       Z14, Z10, Z10 \
	VMOVUPS      Z10, K1, (R8) \
	ADDQ         $1024, BX \
	FOLD16(BX, Z11) \
	VMULPS       Z14, Z11, Z11 \
	VMOVUPS      Z11, K1, (R9) \
	VZEROUPPER \
	RET

// VALUES(LOAD, ESIZE): the body of the two value kernels.
//
// func attnValues*x2(outA, outB *float32, d int, pA, pB *float32, v *T, vStride int, rows int)
// d is a multiple of 16, vStride in bytes, rows >= 1. Columns are taken 64
// at a time (8 independent sums in flight), then 16 at a time.
#define VALUES(LOAD, ESIZE) \
	MOVQ outA+0(FP), R8 \
	MOVQ outB+8(FP), R9 \
	MOVQ d+16(FP), CX \
	MOVQ v+40(FP), SI \
	MOVQ vStride+48(FP), R12 \
	MOVQ rows+56(FP), R13 \
	XORQ AX, AX \ // byte offset of the column chunk in out
wide: \
	CMPQ CX, $64 \
	JLT  narrow \
	VMOVUPS (R8)(AX*1), Z0 \
	VMOVUPS 64(R8)(AX*1), Z1 \
	VMOVUPS 128(R8)(AX*1), Z2 \
	VMOVUPS 192(R8)(AX*1), Z3 \
	VMOVUPS (R9)(AX*1), Z4 \
	VMOVUPS 64(R9)(AX*1), Z5 \
	VMOVUPS 128(R9)(AX*1), Z6 \
	VMOVUPS 192(R9)(AX*1), Z7 \
	MOVQ pA+24(FP), R10 \
	MOVQ pB+32(FP), R11 \
	MOVQ SI, DI \
	MOVQ R13, R14 \
wrow: \
	VBROADCASTSS (R10), Z20 \
	VBROADCASTSS (R11), Z21 \
	LOAD(0, Z8) \
	LOAD(16*ESIZE, Z9) \
	LOAD(32*ESIZE, Z10) \
	LOAD(48*ESIZE, Z11) \
	VFMADD231PS Z20, Z8, Z0 \
	VFMADD231PS Z20, Z9, Z1 \
	VFMADD231PS Z20, Z10, Z2 \
	VFMADD231PS Z20, Z11, Z3 \
	VFMADD231PS Z21, Z8, Z4 \
	VFMADD231PS Z21, Z9, Z5 \
	VFMADD231PS Z21, Z10, Z6 \
	VFMADD231PS Z21, Z11, Z7 \
	ADDQ $4, R10 \
	ADDQ $4, R11 \
	ADDQ R12, DI \
	DECQ R14 \
	JNZ  wrow \
	VMOVUPS Z0, (R8)(AX*1) \
	VMOVUPS Z1, 64(R8)(AX*1) \
	VMOVUPS Z2, 128(R8)(AX*1) \
	VMOVUPS Z3, 192(R8)(AX*1) \
	VMOVUPS Z4, (R9)(AX*1) \
	VMOVUPS Z5, 64(R9)(AX*1) \
	VMOVUPS Z6, 128(R9)(AX*1) \
	VMOVUPS Z7, 192(R9)(AX*1) \
	ADDQ $256, AX \
	ADDQ $64*ESIZE, SI \
	SUBQ $64, CX \
	JMP  wide \
narrow: \
	TESTQ CX, CX \
	JZ    done \
	VMOVUPS (R8)(AX*1), Z0 \
	VMOVUPS (R9)(AX*1), Z4 \
	MOVQ pA+24(FP), R10 \
	MOVQ pB+32(FP), R11 \
	MOVQ SI, DI \
	MOVQ R13, R14 \
nrow: \
	VBROADCASTSS (R10), Z20 \
	VBROADCASTSS (R11), Z21 \
	LOAD(0, Z8) \
	VFMADD231PS Z20, Z8, Z0 \
	VFMADD231PS Z21, Z8, Z4 \
	ADDQ $4, R10 \
	ADDQ $4, R11 \
	ADDQ R12, DI \
	DECQ R14 \
	JNZ  nrow \
	VMOVUPS Z0, (R8)(AX*1) \
	VMOVUPS Z4, (R9)(AX*1) \
	ADDQ $64, AX \
	ADDQ $16*ESIZE, SI \
	SUBQ $16, CX \
	JMP  narrow \
done: \
	VZEROUPPER \
	RET

#define LOADF16(off, reg) VCVTPH2PS off(DI), reg
#define LOADF32(off, reg) VMOVUPS off(DI), reg

// func attnScoresF16x2(dstA, dstB *float32, qA, qB *float32, d int, k *uint16, kStride int, rows int, scale float32, tmp *float32)
TEXT ·attnScoresF16x2(SB), NOSPLIT, $0-80
	SCORES(LOADF16, 2)

// func attnScoresF32x2(dstA, dstB *float32, qA, qB *float32, d int, k *float32, kStride int, rows int, scale float32, tmp *float32)
TEXT ·attnScoresF32x2(SB), NOSPLIT, $0-80
	SCORES(LOADF32, 4)

// func attnValuesF16x2(outA, outB *float32, d int, pA, pB *float32, v *uint16, vStride int, rows int)
TEXT ·attnValuesF16x2(SB), NOSPLIT, $0-64
	VALUES(LOADF16, 2)

// func attnValuesF32x2(outA, outB *float32, d int, pA, pB *float32, v *float32, vStride int, rows int)
TEXT ·attnValuesF32x2(SB), NOSPLIT, $0-64
	VALUES(LOADF32, 4)
