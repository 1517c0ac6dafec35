//go:build !purego

#include "textflag.h"

// Q4_K × Q8_K and Q5_K × Q8_K dot products, AVX-512 (BW, VL, VNNI).
//
// Same calling convention as q6kDotsAVX512 (q6k_amd64.s): one weight row,
// ntok (at most 8) activation rows, results at out + t*outStride bytes.
// Per block and token, as the reference (ref_dot.go):
//   isum = sum_g sc[g] * sum_{i in g} q_i*a_i                 (exact int32)
//   msum = sum_g m[g] * (bsum[2g] + bsum[2g+1])               (exact int32)
//   acc  = acc  + float32((da*dw)   * float32(isum))
//   accm = accm + float32((da*dmin) * float32(msum))
// and finally out = acc - accm. The two accumulators of each token live
// side by side in a local array, updated with one 2-lane multiply and add.
//
// Registers:
//   Z0..Z3   the 256 values of the block (0..15, or 0..31 for Q5_K), natural order
//   Z4..Z7   per 64-value chunk: scale of the chunk's first group in words 0..15,
//            of its second group in words 16..31
//   Y14      the minimum of group k/2 in word k (for the 16 bsums)
//   X13      [dw, dmin] as float32

DATA q45kConst<>+0(SB)/8, $0x0f0f0f0f0f0f0f0f
DATA q45kConst<>+8(SB)/8, $0x1010101010101010
GLOBL q45kConst<>(SB), RODATA|NOPTR, $16

// VPERMW indexes over [sc0..sc7, m0..m7] (16 words):
// chunk c: words 0..15 -> scale 2c, words 16..31 -> scale 2c+1; then the mins.
DATA q45kPerm<>+0(SB)/8, $0x0000000000000000
DATA q45kPerm<>+8(SB)/8, $0x0000000000000000
DATA q45kPerm<>+16(SB)/8, $0x0000000000000000
DATA q45kPerm<>+24(SB)/8, $0x0000000000000000
DATA q45kPerm<>+32(SB)/8, $0x0001000100010001
DATA q45kPerm<>+40(SB)/8, $0x0001000100010001
DATA q45kPerm<>+48(SB)/8, $0x0001000100010001
DATA q45kPerm<>+56(SB)/8, $0x0001000100010001
DATA q45kPerm<>+64(SB)/8, $0x0002000200020002
DATA q45kPerm<>+72(SB)/8, $0x0002000200020002
DATA q45kPerm<>+80(SB)/8, $0x0002000200020002
DATA q45kPerm<>+88(SB)/8, $0x0002000200020002
DATA q45kPerm<>+96(SB)/8, $0x0003000300030003
DATA q45kPerm<>+104(SB)/8, $0x0003000300030003
DATA q45kPerm<>+112(SB)/8, $0x0003000300030003
DATA q45kPerm<>+120(SB)/8, $0x0003000300030003
DATA q45kPerm<>+128(SB)/8, $0x0004000400040004
DATA q45kPerm<>+136(SB)/8, $0x0004000400040004
DATA q45kPerm<>+144(SB)/8, $0x0004000400040004
DATA q45kPerm<>+152(SB)/8, $0x0004000400040004
DATA q45kPerm<>+160(SB)/8, $0x0005000500050005
DATA q45kPerm<>+168(SB)/8, $0x0005000500050005
DATA q45kPerm<>+176(SB)/8, $0x0005000500050005
DATA q45kPerm<>+184(SB)/8, $0x0005000500050005
DATA q45kPerm<>+192(SB)/8, $0x0006000600060006
DATA q45kPerm<>+200(SB)/8, $0x0006000600060006
DATA q45kPerm<>+208(SB)/8, $0x0006000600060006
DATA q45kPerm<>+216(SB)/8, $0x0006000600060006
DATA q45kPerm<>+224(SB)/8, $0x0007000700070007
DATA q45kPerm<>+232(SB)/8, $0x0007000700070007
DATA q45kPerm<>+240(SB)/8, $0x0007000700070007
DATA q45kPerm<>+248(SB)/8, $0x0007000700070007
DATA q45kPerm<>+256(SB)/8, $0x0009000900080008
DATA q45kPerm<>+264(SB)/8, $0x000b000b000a000a
DATA q45kPerm<>+272(SB)/8, $0x000d000d000c000c
DATA q45kPerm<>+280(SB)/8, $0x000f000f000e000e
GLOBL q45kPerm<>(SB), RODATA|NOPTR, $288

// Q5_K fifth-bit masks: which bit of qh[l] belongs to each byte of the
// low-nibble (L) and high-nibble (H) vectors of each 128-value half.
DATA q5kBits<>+0(SB)/8, $0x0101010101010101
DATA q5kBits<>+8(SB)/8, $0x0404040404040404
DATA q5kBits<>+16(SB)/8, $0x0202020202020202
DATA q5kBits<>+24(SB)/8, $0x0808080808080808
DATA q5kBits<>+32(SB)/8, $0x1010101010101010
DATA q5kBits<>+40(SB)/8, $0x4040404040404040
DATA q5kBits<>+48(SB)/8, $0x2020202020202020
DATA q5kBits<>+56(SB)/8, $0x8080808080808080
GLOBL q5kBits<>(SB), RODATA|NOPTR, $64

// SETUP loads the constants and zeroes the accumulator pairs.
#define SETUP \
	MOVQ w+0(FP), SI \
	MOVQ nb+8(FP), CX \
	MOVQ act+16(FP), DX \
	MOVQ actStride+24(FP), R8 \
	MOVQ ntok+32(FP), R9 \
	MOVQ out+40(FP), R10 \
	MOVQ outStride+48(FP), R11 \
	VPBROADCASTQ q45kConst<>+0(SB), Z16 \
	VPBROADCASTQ q45kConst<>+8(SB), Z17 \
	VMOVDQU64 q45kPerm<>+0(SB), Z20 \
	VMOVDQU64 q45kPerm<>+64(SB), Z21 \
	VMOVDQU64 q45kPerm<>+128(SB), Z22 \
	VMOVDQU64 q45kPerm<>+192(SB), Z23 \
	VMOVDQU64 q45kPerm<>+256(SB), Y24 \
	LEAQ accs-64(SP), R12 \
	VPXORD Z9, Z9, Z9 \
	VMOVDQU64 Z9, (R12)

// SCALES decodes the 12 scale bytes at off(SI) into Y8 = [sc0..sc7, m0..m7]
// as words (ggml's get_scale_min_k4, done four groups at a time), then
// spreads them into Z4..Z7 and Y14.
#define SCALES(off) \
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
	VPMOVZXBW X8, Y8 \
	VPERMW Z8, Z20, Z4 \
	VPERMW Z8, Z21, Z5 \
	VPERMW Z8, Z22, Z6 \
	VPERMW Z8, Z23, Z7 \
	VPERMW Y8, Y24, Y14 \
	VMOVD 0(SI), X13 \
	VCVTPH2PS X13, X13

// TOKENS runs the token loop for the current block and advances to the
// next block (wbytes: weight block size).
#define TOKENS(wbytes, label) \
	MOVQ DX, DI \
	LEAQ accs-64(SP), AX \
	MOVQ R9, BX \
label: \
	VPMADDWD   260(DI), Y14, Y11 \
	VPMADDUBSW 4(DI), Z0, Z9 \
	VPMADDWD   Z4, Z9, Z12 \
	VPMADDUBSW 68(DI), Z1, Z10 \
	VPDPWSSD   Z5, Z10, Z12 \
	VPMADDUBSW 132(DI), Z2, Z9 \
	VPDPWSSD   Z6, Z9, Z12 \
	VPMADDUBSW 196(DI), Z3, Z10 \
	VPDPWSSD   Z7, Z10, Z12 \
	VEXTRACTI64X4 $1, Z12, Y9 \
	VPADDD        Y9, Y12, Y12 \
	VEXTRACTI128  $1, Y12, X9 \
	VPADDD        X9, X12, X12 \
	VEXTRACTI128  $1, Y11, X9 \
	VPADDD        X9, X11, X11 \
	VPHADDD       X11, X12, X12 \
	VPHADDD       X12, X12, X12 \
	VCVTDQ2PS     X12, X12 \
	VBROADCASTSS  (DI), X10 \
	VMULPS        X13, X10, X10 \
	VMULPS        X10, X12, X12 \
	VMOVSD        (AX), X11 \
	VADDPS        X12, X11, X11 \
	VMOVSD        X11, (AX) \
	ADDQ R8, DI \
	ADDQ $8, AX \
	DECQ BX \
	JNZ  label \
	ADDQ $wbytes, SI \
	ADDQ $292, DX \
	DECQ CX

// FINISH writes out[t] = acc - accm for every token.
#define FINISH \
	LEAQ accs-64(SP), AX \
	MOVQ R9, BX \
fin: \
	VMOVSS (AX), X0 \
	VSUBSS 4(AX), X0, X0 \
	VMOVSS X0, (R10) \
	ADDQ $8, AX \
	ADDQ R11, R10 \
	DECQ BX \
	JNZ  fin \
	VZEROUPPER \
	RET

// func q4kDotsAVX512(w *byte, nb int, act *byte, actStride int, ntok int, out *float32, outStride int)
TEXT ·q4kDotsAVX512(SB), NOSPLIT, $64-56
	SETUP
block4:
	PREFETCHT0 2048(SI) // weights ~12 blocks ahead (see q6k_amd64.s)
	PREFETCHT0 2112(SI)
	PREFETCHT0 2176(SI)
	PREFETCHT1 8192(SI) // and ~50 blocks ahead into L2
	PREFETCHT1 8256(SI)
	PREFETCHT1 8320(SI)
	SCALES(4)
	// qs[0:64] at 16: low nibbles are values 0..31 and 64..95, high
	// nibbles 32..63 and 96..127; regroup into natural 64-value chunks.
	VMOVDQU64  16(SI), Z9
	VPANDD     Z16, Z9, Z10
	VPSRLW     $4, Z9, Z9
	VPANDD     Z16, Z9, Z9
	VSHUFI64X2 $0x44, Z9, Z10, Z0
	VSHUFI64X2 $0xee, Z9, Z10, Z1
	VMOVDQU64  80(SI), Z9
	VPANDD     Z16, Z9, Z10
	VPSRLW     $4, Z9, Z9
	VPANDD     Z16, Z9, Z9
	VSHUFI64X2 $0x44, Z9, Z10, Z2
	VSHUFI64X2 $0xee, Z9, Z10, Z3
	TOKENS(144, tok4)
	JNZ block4
	FINISH

// func q5kDotsAVX512(w *byte, nb int, act *byte, actStride int, ntok int, out *float32, outStride int)
TEXT ·q5kDotsAVX512(SB), NOSPLIT, $64-56
	SETUP
	VPBROADCASTQ q5kBits<>+0(SB), Y25
	VPBROADCASTQ q5kBits<>+8(SB), Y9
	VINSERTI64X4 $1, Y9, Z25, Z25
	VPBROADCASTQ q5kBits<>+16(SB), Y26
	VPBROADCASTQ q5kBits<>+24(SB), Y9
	VINSERTI64X4 $1, Y9, Z26, Z26
	VPBROADCASTQ q5kBits<>+32(SB), Y27
	VPBROADCASTQ q5kBits<>+40(SB), Y9
	VINSERTI64X4 $1, Y9, Z27, Z27
	VPBROADCASTQ q5kBits<>+48(SB), Y28
	VPBROADCASTQ q5kBits<>+56(SB), Y9
	VINSERTI64X4 $1, Y9, Z28, Z28
block5:
	PREFETCHT0 2048(SI) // weights ~12 blocks ahead (see q6k_amd64.s)
	PREFETCHT0 2112(SI)
	PREFETCHT0 2176(SI)
	PREFETCHT1 8192(SI) // and ~50 blocks ahead into L2
	PREFETCHT1 8256(SI)
	PREFETCHT1 8320(SI)
	SCALES(4)
	VBROADCASTI64X4 16(SI), Z11 // qh[0:32] in both halves
	// Half 0: qs[0:64] at 48.
	VMOVDQU64  48(SI), Z9
	VPANDD     Z16, Z9, Z10
	VPSRLW     $4, Z9, Z9
	VPANDD     Z16, Z9, Z9
	VPTESTMB   Z25, Z11, K1
	VPADDB     Z17, Z10, K1, Z10
	VPTESTMB   Z26, Z11, K2
	VPADDB     Z17, Z9, K2, Z9
	VSHUFI64X2 $0x44, Z9, Z10, Z0
	VSHUFI64X2 $0xee, Z9, Z10, Z1
	// Half 1: qs[64:128] at 112.
	VMOVDQU64  112(SI), Z9
	VPANDD     Z16, Z9, Z10
	VPSRLW     $4, Z9, Z9
	VPANDD     Z16, Z9, Z9
	VPTESTMB   Z27, Z11, K1
	VPADDB     Z17, Z10, K1, Z10
	VPTESTMB   Z28, Z11, K2
	VPADDB     Z17, Z9, K2, Z9
	VSHUFI64X2 $0x44, Z9, Z10, Z2
	VSHUFI64X2 $0xee, Z9, Z10, Z3
	TOKENS(176, tok5)
	JNZ block5
	FINISH
