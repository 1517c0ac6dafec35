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
// The integer part, per token and block of 256 values (VNNI):
//   VPDPBUSD   sums of 4 products q·a into dwords (|sum| <= 4·63·127 < 2^15),
//              one instruction per 64 values;
//   VPACKSSDW  two such vectors to 16-bit words (exact: no saturation);
//   VPDPWSSD   words × their group's scale, adjacent pairs (same group)
//              added into the dword accumulator;
//   VPMADDWD   the bsums × -32·scale (the -32 offset of Q6_K), 8 dwords.
// The accumulator's 16 lanes add up to isum.
//
// Registers:
//   Z0..Z3   the block's 256 values q (0..63) as bytes, natural order, 64 per register
//   Z4, Z5   the group scales as words in the order VPACKSSDW leaves the
//            sums of values 0..127 and 128..255 (see q6kPackPerm)
//   Y14      -32*scale[g] as 16 words (for the bsum correction)
//   X13      dw (the block's scale as float32)
//   Z16      0x0F in every byte      Z17  0x30 in every byte
//   Z18      word shift counts 4 (low 256 bits) / 2 (high)   Z19  0 / 2
//   Z20, Z21 VPERMW indexes for Z4, Z5

DATA q6kConst<>+0(SB)/8, $0x0f0f0f0f0f0f0f0f
DATA q6kConst<>+8(SB)/8, $0x3030303030303030
DATA q6kConst<>+16(SB)/8, $0x0004000400040004
DATA q6kConst<>+24(SB)/8, $0x0002000200020002
DATA q6kConst<>+32(SB)/8, $0x0000000000000000
DATA q6kConst<>+40(SB)/8, $0x0002000200020002
GLOBL q6kConst<>(SB), RODATA|NOPTR, $48


// Word indexes for VPERMW after the packing of the dword sums (see the
// token loop): in 128-bit lane L of the packed vector for values
// 128v..128v+127, words 0..3 belong to group 8v+L and words 4..7 to
// group 8v+4+L.
DATA q6kPackPerm<>+0(SB)/8, $0x0000000000000000
DATA q6kPackPerm<>+8(SB)/8, $0x0004000400040004
DATA q6kPackPerm<>+16(SB)/8, $0x0001000100010001
DATA q6kPackPerm<>+24(SB)/8, $0x0005000500050005
DATA q6kPackPerm<>+32(SB)/8, $0x0002000200020002
DATA q6kPackPerm<>+40(SB)/8, $0x0006000600060006
DATA q6kPackPerm<>+48(SB)/8, $0x0003000300030003
DATA q6kPackPerm<>+56(SB)/8, $0x0007000700070007
DATA q6kPackPerm<>+64(SB)/8, $0x0008000800080008
DATA q6kPackPerm<>+72(SB)/8, $0x000c000c000c000c
DATA q6kPackPerm<>+80(SB)/8, $0x0009000900090009
DATA q6kPackPerm<>+88(SB)/8, $0x000d000d000d000d
DATA q6kPackPerm<>+96(SB)/8, $0x000a000a000a000a
DATA q6kPackPerm<>+104(SB)/8, $0x000e000e000e000e
DATA q6kPackPerm<>+112(SB)/8, $0x000b000b000b000b
DATA q6kPackPerm<>+120(SB)/8, $0x000f000f000f000f
GLOBL q6kPackPerm<>(SB), RODATA|NOPTR, $128

// Q6KCONSTS loads the constants (Z15..Z21).
#define Q6KCONSTS \
	VPBROADCASTQ q6kConst<>+0(SB), Z16 \
	VPBROADCASTQ q6kConst<>+8(SB), Z17 \
	VPBROADCASTQ q6kConst<>+16(SB), Y18 \
	VPBROADCASTQ q6kConst<>+24(SB), Y9 \
	VINSERTI64X4 $1, Y9, Z18, Z18 \
	VPBROADCASTQ q6kConst<>+32(SB), Y19 \
	VPBROADCASTQ q6kConst<>+40(SB), Y9 \
	VINSERTI64X4 $1, Y9, Z19, Z19 \
	VMOVDQU64 q6kPackPerm<>+0(SB), Z20 \
	VMOVDQU64 q6kPackPerm<>+64(SB), Z21 \
	VPXORD Z15, Z15, Z15

// Q6KBLOCK: the weight block at SI → Z0..Z3 (values), Z4, Z5 (scales),
// Y14 (-32·scales), X13 (dw, in all 4 lanes).
//
// It first asks for the weights about 10 blocks ahead into L1 and 40
// blocks ahead into L2 (rows are contiguous, so this runs on into the
// next rows): more memory requests in flight than the hardware
// prefetchers alone keep for this access pattern. With the L2 requests a
// matrix-vector product streams from memory as fast as StreamRead does
// (BenchmarkMatVecModel vs BenchmarkMemBandwidth; without them it reached
// about 80% on 2 threads, without any prefetch about 67%).
//
// Unpacking: half 0 is ql[0:64] at 0 with qh[0:32] at 128, half 1 is
// ql[64:128] at 64 with qh[32:64] at 160; Z0 = ql&0x0F | H, Z1 = ql>>4 | H.
#define Q6KBLOCK \
	PREFETCHT0 2048(SI) \
	PREFETCHT0 2112(SI) \
	PREFETCHT0 2176(SI) \
	PREFETCHT0 2240(SI) \
	PREFETCHT1 8192(SI) \
	PREFETCHT1 8256(SI) \
	PREFETCHT1 8320(SI) \
	PREFETCHT1 8384(SI) \
	VMOVDQU64       0(SI), Z9 \
	VBROADCASTI64X4 128(SI), Z10 \
	VPSLLVW         Z18, Z10, Z0 \
	VPANDD          Z17, Z0, Z0 \
	VPTERNLOGD      $0xD8, Z16, Z9, Z0 \
	VPSRLVW         Z19, Z10, Z1 \
	VPANDD          Z17, Z1, Z1 \
	VPSRLW          $4, Z9, Z9 \
	VPTERNLOGD      $0xD8, Z16, Z9, Z1 \
	VMOVDQU64       64(SI), Z9 \
	VBROADCASTI64X4 160(SI), Z10 \
	VPSLLVW         Z18, Z10, Z2 \
	VPANDD          Z17, Z2, Z2 \
	VPTERNLOGD      $0xD8, Z16, Z9, Z2 \
	VPSRLVW         Z19, Z10, Z3 \
	VPANDD          Z17, Z3, Z3 \
	VPSRLW          $4, Z9, Z9 \
	VPTERNLOGD      $0xD8, Z16, Z9, Z3 \
	VPMOVSXBW 192(SI), Y8 \
	VPERMW    Z8, Z20, Z4 \
	VPERMW    Z8, Z21, Z5 \
	VPSLLW    $5, Y8, Y14 \
	VPSUBW    Y14, Y15, Y14 \
	VPBROADCASTW 208(SI), X13 \
	VCVTPH2PS X13, X13

// Q6KTOKEN(base, accy, acc, ta, tb): one token's block product into acc
// (16 int32 lanes that add up to the token's isum; accy names acc's low
// 256 bits), base at the token's Q8_K block, ta and tb two scratch
// registers. The VPMADDWD (VEX/EVEX on 256 bits) clears the upper half of
// acc.
#define Q6KTOKEN(base, accy, acc, ta, tb) \
	VPMADDWD   260(base), Y14, accy \
	VPXORD     ta, ta, ta \
	VPDPBUSD   4(base), Z0, ta \
	VPXORD     tb, tb, tb \
	VPDPBUSD   68(base), Z1, tb \
	VPACKSSDW  tb, ta, ta \
	VPDPWSSD   Z4, ta, acc \
	VPXORD     ta, ta, ta \
	VPDPBUSD   132(base), Z2, ta \
	VPXORD     tb, tb, tb \
	VPDPBUSD   196(base), Z3, tb \
	VPACKSSDW  tb, ta, ta \
	VPDPWSSD   Z5, ta, acc

// Token order of the sums left by the grouped reductions below: token L
// at dword 4L, token L+4 at dword 4L+2.
DATA q6kSumPerm<>+0(SB)/4, $0
DATA q6kSumPerm<>+4(SB)/4, $4
DATA q6kSumPerm<>+8(SB)/4, $8
DATA q6kSumPerm<>+12(SB)/4, $12
DATA q6kSumPerm<>+16(SB)/4, $2
DATA q6kSumPerm<>+20(SB)/4, $6
DATA q6kSumPerm<>+24(SB)/4, $10
DATA q6kSumPerm<>+28(SB)/4, $14
GLOBL q6kSumPerm<>(SB), RODATA|NOPTR, $32

// GROUPSTART(ntok): shared start of the grouped kernels: arguments, the
// gather offsets t·actStride of the tokens' da at 0(SP) (8 of them, 0 for
// lanes past ntok), constants, and the float results (Y12) cleared.
#define GROUPSTART(ntok) \
	MOVQ w+0(FP), SI \
	MOVQ nb+8(FP), CX \
	MOVQ act+16(FP), DX \
	MOVQ actStride+24(FP), R8 \
	VPXORD    Y9, Y9, Y9 \
	VMOVDQU32 Y9, 0(SP) \ // unused lanes gather token 0's da
	XORQ AX, AX \
	XORQ BX, BX \
gidx: \
	MOVL AX, 0(SP)(BX*4) \
	ADDQ R8, AX \
	INCQ BX \
	CMPQ BX, $ntok \
	JLT  gidx \
	Q6KCONSTS \
	VXORPS Y12, Y12, Y12

// GROUPFLOAT(ntok): Y9 holds the tokens' isums (token order); the float
// steps acc = acc + float32(float32(da·dw) · float32(isum)) for all of
// them at once, one token per lane. The da come in with one gather.
#define GROUPFLOAT \
	VCVTDQ2PS    Y9, Y9 \
	VBROADCASTSS X13, Y13 \
	VMOVDQU32    0(SP), Y10 \
	KXNORW       K1, K1, K1 \
	VGATHERDPS   (DX)(Y10*1), K1, Y11 \
	VMULPS       Y13, Y11, Y11 \
	VMULPS       Y9, Y11, Y11 \
	VADDPS       Y11, Y12, Y12

// GROUPEND(ntok): out[t·outStride] = result of token t.
#define GROUPEND(ntok) \
	VMOVUPS Y12, 32(SP) \
	MOVQ    out+32(FP), R10 \
	MOVQ    outStride+40(FP), R11 \
	XORQ    BX, BX \
store: \
	MOVL 32(SP)(BX*4), AX \
	MOVL AX, (R10) \
	ADDQ R11, R10 \
	INCQ BX \
	CMPQ BX, $ntok \
	JLT  store \
	VZEROUPPER \
	RET

// func q6kDotsAVX512(w *byte, nb int, act *byte, actStride int, ntok int, out *float32, outStride int)
// Any number of tokens, one after the other. Token t's result goes to
// out + t*outStride bytes.
TEXT ·q6kDotsAVX512(SB), NOSPLIT, $0-56
	MOVQ w+0(FP), SI
	MOVQ nb+8(FP), CX
	MOVQ act+16(FP), DX
	MOVQ actStride+24(FP), R8
	MOVQ ntok+32(FP), R9
	MOVQ out+40(FP), R10
	MOVQ outStride+48(FP), R11
	Q6KCONSTS

	// out[t*outStride] = 0 for every token
	MOVQ R10, AX
	MOVQ R9, BX
zero:
	MOVL $0, (AX)
	ADDQ R11, AX
	DECQ BX
	JNZ  zero

block:
	Q6KBLOCK
	MOVQ DX, DI   // activation block of token 0
	MOVQ R10, AX  // its result
	MOVQ R9, BX   // tokens left
token:
	Q6KTOKEN(DI, Y12, Z12, Z9, Z10)
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

// func q6kRowsAVX512(w *byte, wrb, nrows, nb int, act *byte, actStride int, ntok int, out *float32, outStride int)
// q6kDotsAVX512 for nrows consecutive rows (wrb bytes apart) in one call,
// row r's results at out + 4r: the constants are loaded once, and there is
// one call per group of rows instead of one per row.
TEXT ·q6kRowsAVX512(SB), NOSPLIT, $0-72
	MOVQ actStride+40(FP), R8
	MOVQ ntok+48(FP), R9
	MOVQ outStride+64(FP), R11
	Q6KCONSTS
	MOVQ w+0(FP), R13          // this row
	MOVQ out+56(FP), R14       // its token 0 result
	MOVQ nrows+16(FP), R12
nextrow:
	MOVQ R13, SI
	MOVQ nb+24(FP), CX
	MOVQ act+32(FP), DX
	MOVQ R14, R10

	// out[t*outStride] = 0 for every token
	MOVQ R10, AX
	MOVQ R9, BX
rzero:
	MOVL $0, (AX)
	ADDQ R11, AX
	DECQ BX
	JNZ  rzero

rblock:
	Q6KBLOCK
	MOVQ DX, DI   // activation block of token 0
	MOVQ R10, AX  // its result
	MOVQ R9, BX   // tokens left
rtoken:
	Q6KTOKEN(DI, Y12, Z12, Z9, Z10)
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
	JNZ  rtoken

	ADDQ $210, SI
	ADDQ $292, DX
	DECQ CX
	JNZ  rblock

	ADDQ wrb+8(FP), R13
	ADDQ $4, R14
	DECQ R12
	JNZ  nextrow
	VZEROUPPER
	RET

// func q6kRows2AVX512(w *byte, wrb, nrows, nb int, act *byte, actStride int, out *float32, outStride int)
// q6kRowsAVX512 for exactly 2 tokens (two sequences decoding together),
// with the per-token work after the integer products shared: the two
// tokens' 16-lane partial sums are reduced together (one set of shuffles
// instead of two), and the two float steps run in lanes 0 and 2 of one
// vector with the result kept in a register rather than in memory. Each
// lane sees the reference's operations: acc = acc + float32((da·dw) ·
// float32(isum)). In cache this makes a 2-token pass over a 3072×1024
// matrix 10% cheaper (115 → 104 µs, one thread).
//
// Registers besides those of Q6KBLOCK: DX and DI the two tokens' Q8_K
// blocks, Z24 and Z25 their integer accumulators, Z26 and Z27 token 1's
// scratch (token 0 uses Z9, Z10), X12 the float results (token 0 in lane
// 0, token 1 in lane 2).
TEXT ·q6kRows2AVX512(SB), NOSPLIT, $0-64
	MOVQ actStride+40(FP), R8
	MOVQ outStride+56(FP), R11
	Q6KCONSTS
	MOVQ w+0(FP), R13          // this row
	MOVQ out+48(FP), R14       // its token 0 result
	MOVQ nrows+16(FP), R12
row2:
	MOVQ R13, SI
	MOVQ nb+24(FP), CX
	MOVQ act+32(FP), DX
	LEAQ (DX)(R8*1), DI
	VXORPS X12, X12, X12
block2:
	Q6KBLOCK
	Q6KTOKEN(DX, Y24, Z24, Z9, Z10)
	Q6KTOKEN(DI, Y25, Z25, Z26, Z27)

	// Both tokens' 16 lanes at once: 256-bit halves added (token 0 in
	// the low half of Z9, token 1 in the high half), then the high half
	// set beside the low one and 64-bit pairs added, then 128-bit halves,
	// then adjacent dwords: X9 = [isum0, isum0, isum1, isum1].
	VSHUFI32X4    $0x44, Z25, Z24, Z9
	VSHUFI32X4    $0xEE, Z25, Z24, Z10
	VPADDD        Z10, Z9, Z9
	VEXTRACTI64X4 $1, Z9, Y10
	VPUNPCKLQDQ   Y10, Y9, Y11
	VPUNPCKHQDQ   Y10, Y9, Y10
	VPADDD        Y10, Y11, Y11
	VEXTRACTI128  $1, Y11, X10
	VPADDD        X10, X11, X11
	VPSHUFD       $0xB1, X11, X9
	VPADDD        X9, X11, X9
	VCVTDQ2PS     X9, X9

	VMOVSS    (DX), X10              // da of token 0
	VINSERTPS $0x20, (DI), X10, X10  // [da0, 0, da1, 0]
	VMULPS    X13, X10, X10          // d = da*dw
	VMULPS    X9, X10, X10           // d*float(isum)
	VADDPS    X10, X12, X12

	ADDQ $210, SI
	ADDQ $292, DX
	ADDQ $292, DI
	DECQ CX
	JNZ  block2

	VMOVSS     X12, (R14)
	VEXTRACTPS $2, X12, (R14)(R11*1)
	ADDQ wrb+8(FP), R13
	ADDQ $4, R14
	DECQ R12
	JNZ  row2
	VZEROUPPER
	RET

// func q6kDots8AVX512(w *byte, nb int, act *byte, actStride int, out *float32, outStride int)
// q6kDotsAVX512 for exactly 8 tokens, with the per-token work after the
// integer products done for the 8 tokens together: the 8 vectors of 16
// partial sums are added up by a transposing reduction (integer sums are
// exact in any order) into one vector of 8 isums, and the float steps run
// in 8 lanes, one per token, each lane seeing the reference's sequence of
// operations.
TEXT ·q6kDots8AVX512(SB), $64-48
	GROUPSTART(8)
block8:
	Q6KBLOCK
	MOVQ DX, DI
	Q6KTOKEN(DI, Y24, Z24, Z9, Z10)
	ADDQ R8, DI
	Q6KTOKEN(DI, Y25, Z25, Z9, Z10)
	ADDQ R8, DI
	Q6KTOKEN(DI, Y26, Z26, Z9, Z10)
	ADDQ R8, DI
	Q6KTOKEN(DI, Y27, Z27, Z9, Z10)
	ADDQ R8, DI
	Q6KTOKEN(DI, Y28, Z28, Z9, Z10)
	ADDQ R8, DI
	Q6KTOKEN(DI, Y29, Z29, Z9, Z10)
	ADDQ R8, DI
	Q6KTOKEN(DI, Y30, Z30, Z9, Z10)
	ADDQ R8, DI
	Q6KTOKEN(DI, Y31, Z31, Z9, Z10)

	// Sum each token's 16 lanes, 8 tokens at once. Step 1: pairs of
	// tokens, 256-bit halves added (8 lanes each, token 2i in the low half).
	VSHUFI32X4 $0x44, Z25, Z24, Z9
	VSHUFI32X4 $0xEE, Z25, Z24, Z10
	VPADDD     Z10, Z9, Z24
	VSHUFI32X4 $0x44, Z27, Z26, Z9
	VSHUFI32X4 $0xEE, Z27, Z26, Z10
	VPADDD     Z10, Z9, Z26
	VSHUFI32X4 $0x44, Z29, Z28, Z9
	VSHUFI32X4 $0xEE, Z29, Z28, Z10
	VPADDD     Z10, Z9, Z28
	VSHUFI32X4 $0x44, Z31, Z30, Z9
	VSHUFI32X4 $0xEE, Z31, Z30, Z10
	VPADDD     Z10, Z9, Z30
	// Step 2: 128-bit quarters; 128-bit lane L then holds token L (Z24)
	// and token L+4 (Z28), 4 lanes each.
	VSHUFI32X4 $0x88, Z26, Z24, Z9
	VSHUFI32X4 $0xDD, Z26, Z24, Z10
	VPADDD     Z10, Z9, Z24
	VSHUFI32X4 $0x88, Z30, Z28, Z9
	VSHUFI32X4 $0xDD, Z30, Z28, Z10
	VPADDD     Z10, Z9, Z28
	// Step 3: inside each 128-bit lane: [L, L, L+4, L+4] after two adds.
	VPUNPCKLQDQ Z28, Z24, Z9
	VPUNPCKHQDQ Z28, Z24, Z10
	VPADDD      Z10, Z9, Z9
	VPSHUFD     $0xB1, Z9, Z10
	VPADDD      Z10, Z9, Z9
	VMOVDQU32   q6kSumPerm<>(SB), Y10
	VPERMD      Z9, Z10, Z9      // the 8 isums in token order
	GROUPFLOAT

	ADDQ $210, SI
	ADDQ $292, DX
	DECQ CX
	JNZ  block8
	GROUPEND(8)

// func q6kDots4AVX512(w *byte, nb int, act *byte, actStride int, out *float32, outStride int)
// The same for exactly 4 tokens.
TEXT ·q6kDots4AVX512(SB), $64-48
	GROUPSTART(4)
block4:
	Q6KBLOCK
	MOVQ DX, DI
	Q6KTOKEN(DI, Y24, Z24, Z9, Z10)
	ADDQ R8, DI
	Q6KTOKEN(DI, Y25, Z25, Z9, Z10)
	ADDQ R8, DI
	Q6KTOKEN(DI, Y26, Z26, Z9, Z10)
	ADDQ R8, DI
	Q6KTOKEN(DI, Y27, Z27, Z9, Z10)

	// Steps 1 and 2 of the 8-token reduction; then 128-bit lane L holds
	// token L's 4 partial sums.
	VSHUFI32X4 $0x44, Z25, Z24, Z9
	VSHUFI32X4 $0xEE, Z25, Z24, Z10
	VPADDD     Z10, Z9, Z24
	VSHUFI32X4 $0x44, Z27, Z26, Z9
	VSHUFI32X4 $0xEE, Z27, Z26, Z10
	VPADDD     Z10, Z9, Z26
	VSHUFI32X4 $0x88, Z26, Z24, Z9
	VSHUFI32X4 $0xDD, Z26, Z24, Z10
	VPADDD     Z10, Z9, Z9
	// Step 3 inside each lane: token L's sum lands in dword 4L.
	VPSHUFD    $0x4E, Z9, Z10
	VPADDD     Z10, Z9, Z9
	VPSHUFD    $0xB1, Z9, Z10
	VPADDD     Z10, Z9, Z9
	VMOVDQU32  q6kSumPerm<>(SB), Y10
	VPERMD     Z9, Z10, Z9       // lanes 0..3: the 4 isums in token order
	GROUPFLOAT

	ADDQ $210, SI
	ADDQ $292, DX
	DECQ CX
	JNZ  block4
	GROUPEND(4)
