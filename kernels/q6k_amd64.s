//go:build !purego

#include "textflag.h"

// Q6_K × Q8_K dot products, AVX-512 (BW, VL, VNNI).
//
// One call multiplies one Q6_K weight row (nb blocks) with ntok Q8_K
// activation rows (actStride bytes apart) and writes ntok float32 results.
// Each weight block is unpacked once and used for every token, so with
// several tokens the unpacking is shared.
//
// Per block and token the arithmetic is the reference's (ref_dot.go):
//   isum = sum_g sc[g] * (sum_{i in g} q_i*a_i)  -  32 * sum_g sc[g]*bsum[g]   (exact int32)
//   acc  = acc + float32((da*dw) * float32(isum))
// with separate multiply and add instructions (no FMA), so the results are
// bit-identical to the reference.
//
// Registers:
//   Z0..Z3   the block's 256 values q (0..63) as bytes, natural order, 64 per register
//   Z4..Z7   per chunk: each group's scale as 16-bit words, one group per 128-bit lane
//   Y14      -32*scale[g] as 16 words (for the bsum correction)
//   X13      dw (the block's scale as float32)
//   Z16      0x0F in every byte      Z17  0x30 in every byte
//   Z18      word shift counts 4 (low 256 bits) / 2 (high)   Z19  0 / 2
//   Z20..Z23 VPERMW indexes that spread scale g to its chunk lane

DATA q6kConst<>+0(SB)/8, $0x0f0f0f0f0f0f0f0f
DATA q6kConst<>+8(SB)/8, $0x3030303030303030
DATA q6kConst<>+16(SB)/8, $0x0004000400040004
DATA q6kConst<>+24(SB)/8, $0x0002000200020002
DATA q6kConst<>+32(SB)/8, $0x0000000000000000
DATA q6kConst<>+40(SB)/8, $0x0002000200020002
GLOBL q6kConst<>(SB), RODATA|NOPTR, $48

// Word indexes for VPERMW: chunk c, 128-bit lane k -> scale 4c+k.
DATA q6kPerm<>+0(SB)/8, $0x0000000000000000
DATA q6kPerm<>+8(SB)/8, $0x0000000000000000
DATA q6kPerm<>+16(SB)/8, $0x0001000100010001
DATA q6kPerm<>+24(SB)/8, $0x0001000100010001
DATA q6kPerm<>+32(SB)/8, $0x0002000200020002
DATA q6kPerm<>+40(SB)/8, $0x0002000200020002
DATA q6kPerm<>+48(SB)/8, $0x0003000300030003
DATA q6kPerm<>+56(SB)/8, $0x0003000300030003
DATA q6kPerm<>+64(SB)/8, $0x0004000400040004
DATA q6kPerm<>+72(SB)/8, $0x0004000400040004
DATA q6kPerm<>+80(SB)/8, $0x0005000500050005
DATA q6kPerm<>+88(SB)/8, $0x0005000500050005
DATA q6kPerm<>+96(SB)/8, $0x0006000600060006
DATA q6kPerm<>+104(SB)/8, $0x0006000600060006
DATA q6kPerm<>+112(SB)/8, $0x0007000700070007
DATA q6kPerm<>+120(SB)/8, $0x0007000700070007
DATA q6kPerm<>+128(SB)/8, $0x0008000800080008
DATA q6kPerm<>+136(SB)/8, $0x0008000800080008
DATA q6kPerm<>+144(SB)/8, $0x0009000900090009
DATA q6kPerm<>+152(SB)/8, $0x0009000900090009
DATA q6kPerm<>+160(SB)/8, $0x000a000a000a000a
DATA q6kPerm<>+168(SB)/8, $0x000a000a000a000a
DATA q6kPerm<>+176(SB)/8, $0x000b000b000b000b
DATA q6kPerm<>+184(SB)/8, $0x000b000b000b000b
DATA q6kPerm<>+192(SB)/8, $0x000c000c000c000c
DATA q6kPerm<>+200(SB)/8, $0x000c000c000c000c
DATA q6kPerm<>+208(SB)/8, $0x000d000d000d000d
DATA q6kPerm<>+216(SB)/8, $0x000d000d000d000d
DATA q6kPerm<>+224(SB)/8, $0x000e000e000e000e
DATA q6kPerm<>+232(SB)/8, $0x000e000e000e000e
DATA q6kPerm<>+240(SB)/8, $0x000f000f000f000f
DATA q6kPerm<>+248(SB)/8, $0x000f000f000f000f
GLOBL q6kPerm<>(SB), RODATA|NOPTR, $256

// func q6kDotsAVX512(w *byte, nb int, act *byte, actStride int, ntok int, out *float32, outStride int)
// Token t's result goes to out + t*outStride bytes.
TEXT ·q6kDotsAVX512(SB), NOSPLIT, $0-56
	MOVQ w+0(FP), SI
	MOVQ nb+8(FP), CX
	MOVQ act+16(FP), DX
	MOVQ actStride+24(FP), R8
	MOVQ ntok+32(FP), R9
	MOVQ out+40(FP), R10
	MOVQ outStride+48(FP), R11

	VPBROADCASTQ q6kConst<>+0(SB), Z16
	VPBROADCASTQ q6kConst<>+8(SB), Z17
	VPBROADCASTQ q6kConst<>+16(SB), Y18
	VPBROADCASTQ q6kConst<>+24(SB), Y9
	VINSERTI64X4 $1, Y9, Z18, Z18
	VPBROADCASTQ q6kConst<>+32(SB), Y19
	VPBROADCASTQ q6kConst<>+40(SB), Y9
	VINSERTI64X4 $1, Y9, Z19, Z19
	VMOVDQU64 q6kPerm<>+0(SB), Z20
	VMOVDQU64 q6kPerm<>+64(SB), Z21
	VMOVDQU64 q6kPerm<>+128(SB), Z22
	VMOVDQU64 q6kPerm<>+192(SB), Z23
	VPXORD Z15, Z15, Z15

	// out[t*outStride] = 0 for every token
	MOVQ R10, AX
	MOVQ R9, BX
zero:
	MOVL $0, (AX)
	ADDQ R11, AX
	DECQ BX
	JNZ  zero

block:
	// Ask for the weights about 10 blocks ahead into L1 and 40 blocks
	// ahead into L2 (rows are contiguous, so this runs on into the next
	// rows): more memory requests in flight than the hardware prefetchers
	// alone keep for this access pattern. With the L2 requests a matrix-
	// vector product streams from memory as fast as StreamRead does
	// (BenchmarkMatVecModel vs BenchmarkMemBandwidth; without them it
	// reached about 80% on 2 threads, without any prefetch about 67%).
	PREFETCHT0 2048(SI)
	PREFETCHT0 2112(SI)
	PREFETCHT0 2176(SI)
	PREFETCHT0 2240(SI)
	PREFETCHT1 8192(SI)
	PREFETCHT1 8256(SI)
	PREFETCHT1 8320(SI)
	PREFETCHT1 8384(SI)
	// Unpack the 256 values. Half 0: ql[0:64] at 0, qh[0:32] at 128.
	VMOVDQU64       0(SI), Z9
	VBROADCASTI64X4 128(SI), Z10
	VPSLLVW         Z18, Z10, Z0
	VPANDD          Z17, Z0, Z0
	VPTERNLOGD      $0xD8, Z16, Z9, Z0 // Z0 = ql&0x0F | H
	VPSRLVW         Z19, Z10, Z1
	VPANDD          Z17, Z1, Z1
	VPSRLW          $4, Z9, Z9
	VPTERNLOGD      $0xD8, Z16, Z9, Z1 // Z1 = ql>>4 | H
	// Half 1: ql[64:128] at 64, qh[32:64] at 160.
	VMOVDQU64       64(SI), Z9
	VBROADCASTI64X4 160(SI), Z10
	VPSLLVW         Z18, Z10, Z2
	VPANDD          Z17, Z2, Z2
	VPTERNLOGD      $0xD8, Z16, Z9, Z2
	VPSRLVW         Z19, Z10, Z3
	VPANDD          Z17, Z3, Z3
	VPSRLW          $4, Z9, Z9
	VPTERNLOGD      $0xD8, Z16, Z9, Z3

	// Scales: 16 signed bytes at 192 -> words.
	VPMOVSXBW 192(SI), Y8
	VPERMW    Z8, Z20, Z4
	VPERMW    Z8, Z21, Z5
	VPERMW    Z8, Z22, Z6
	VPERMW    Z8, Z23, Z7
	VPSLLW    $5, Y8, Y14
	VPSUBW    Y14, Y15, Y14 // -32*scale

	// dw = half at 208 -> float32
	MOVWLZX   208(SI), AX
	VMOVD     AX, X13
	VCVTPH2PS X13, X13

	MOVQ DX, DI   // activation block of token 0
	MOVQ R10, AX  // its result
	MOVQ R9, BX   // tokens left
token:
	VPMADDWD   260(DI), Y14, Y12 // -32*sum sc*bsum (8 dword lanes; clears the upper half)
	VPMADDUBSW 4(DI), Z0, Z9
	VPDPWSSD   Z4, Z9, Z12
	VPMADDUBSW 68(DI), Z1, Z10
	VPDPWSSD   Z5, Z10, Z12
	VPMADDUBSW 132(DI), Z2, Z9
	VPDPWSSD   Z6, Z9, Z12
	VPMADDUBSW 196(DI), Z3, Z10
	VPDPWSSD   Z7, Z10, Z12

	// Horizontal sum of the 16 lanes.
	VEXTRACTI64X4 $1, Z12, Y9
	VPADDD        Y9, Y12, Y12
	VEXTRACTI128  $1, Y12, X9
	VPADDD        X9, X12, X12
	VPSHUFD       $0x4e, X12, X9
	VPADDD        X9, X12, X12
	VPSHUFD       $0xb1, X12, X9
	VPADDD        X9, X12, X12
	VCVTDQ2PS     X12, X12

	VMOVSS (DI), X10        // da
	VMULSS X13, X10, X10    // d = da*dw
	VMULSS X10, X12, X12    // d*float(isum)
	VMOVSS (AX), X11
	VADDSS X12, X11, X11
	VMOVSS X11, (AX)

	ADDQ R8, DI
	ADDQ R11, AX
	DECQ BX
	JNZ  token

	ADDQ $210, SI
	ADDQ $292, DX
	DECQ CX
	JNZ  block

	VZEROUPPER
	RET
