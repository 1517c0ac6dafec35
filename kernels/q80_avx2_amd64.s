//go:build !purego

#include "textflag.h"

// Q8_0 × Q8_0 and Q4_0 × Q8_0 dot products with AVX2 (no AVX-512, no
// VNNI): as q80_amd64.s, one 32-value block per register, the signed ×
// signed products done as VPMADDUBSW on |w| and sign(w)·a (pairs of
// products, |pair| <= 2·127·127 < 2^15: no saturation), then VPMADDWD
// by ones to dwords. Per block and token, as the reference:
//   isum = sum_i w_i*a_i (exact), acc = acc + float32((dw*da) * float32(isum))

DATA q80A2Const<>+0(SB)/8, $0x0f0f0f0f0f0f0f0f
DATA q80A2Const<>+8(SB)/8, $0x0808080808080808
DATA q80A2Const<>+16(SB)/8, $0x0001000100010001
GLOBL q80A2Const<>(SB), RODATA|NOPTR, $24

// TOKENS80A2: the block in Y0 (signed weights), Y1 = |Y0|, X13 = dw, times
// every token (Y15: 16 words of 1), then advance (wbytes: weight block size).
#define TOKENS80A2(wbytes, label) \
	MOVQ DX, DI \
	MOVQ R10, AX \
	MOVQ R9, BX \
label: \
	VMOVDQU    2(DI), Y2 \
	VPSIGNB    Y0, Y2, Y2 \
	VPMADDUBSW Y2, Y1, Y3 \
	VPMADDWD   Y15, Y3, Y3 \
	VEXTRACTI128 $1, Y3, X4 \
	VPADDD     X4, X3, X3 \
	VPSHUFD    $0x4e, X3, X4 \
	VPADDD     X4, X3, X3 \
	VPSHUFD    $0xb1, X3, X4 \
	VPADDD     X4, X3, X3 \
	VCVTDQ2PS  X3, X3 \
	MOVWLZX    (DI), R12 \
	VMOVD      R12, X10 \
	VCVTPH2PS  X10, X10 \
	VMULSS     X10, X13, X10 \
	VMULSS     X10, X3, X3 \
	VMOVSS     (AX), X11 \
	VADDSS     X3, X11, X11 \
	VMOVSS     X11, (AX) \
	ADDQ R8, DI \
	ADDQ R11, AX \
	DECQ BX \
	JNZ  label \
	ADDQ $wbytes, SI \
	ADDQ $34, DX \
	DECQ CX

#define SETUP80A2 \
	MOVQ w+0(FP), SI \
	MOVQ nb+8(FP), CX \
	MOVQ act+16(FP), DX \
	MOVQ actStride+24(FP), R8 \
	MOVQ ntok+32(FP), R9 \
	MOVQ out+40(FP), R10 \
	MOVQ outStride+48(FP), R11 \
	VPBROADCASTQ q80A2Const<>+16(SB), Y15 \
	MOVQ R10, AX \
	MOVQ R9, BX \
zero: \
	MOVL $0, (AX) \
	ADDQ R11, AX \
	DECQ BX \
	JNZ  zero

// func q80DotsAVX2(w *byte, nb int, act *byte, actStride int, ntok int, out *float32, outStride int)
TEXT ·q80DotsAVX2(SB), NOSPLIT, $0-56
	SETUP80A2
block:
	PREFETCHT0 1024(SI)
	PREFETCHT1 4096(SI)
	VMOVDQU   2(SI), Y0
	VPABSB    Y0, Y1
	MOVWLZX   (SI), R12
	VMOVD     R12, X13
	VCVTPH2PS X13, X13
	TOKENS80A2(34, tok)
	JNZ block
	VZEROUPPER
	RET

// func q40DotsAVX2(w *byte, nb int, act *byte, actStride int, ntok int, out *float32, outStride int)
TEXT ·q40DotsAVX2(SB), NOSPLIT, $0-56
	SETUP80A2
	VPBROADCASTQ q80A2Const<>+0(SB), Y14
	VPBROADCASTQ q80A2Const<>+8(SB), Y12
block:
	PREFETCHT0 1024(SI)
	PREFETCHT1 4096(SI)
	VMOVDQU     2(SI), X0      // 16 bytes: values 0..15 low nibbles, 16..31 high
	VPSRLW      $4, X0, X1
	VINSERTI128 $1, X1, Y0, Y0
	VPAND       Y14, Y0, Y0
	VPSUBB      Y12, Y0, Y0    // q - 8
	VPABSB      Y0, Y1
	MOVWLZX     (SI), R13
	VMOVD       R13, X13
	VCVTPH2PS   X13, X13
	TOKENS80A2(18, tok)
	JNZ block
	VZEROUPPER
	RET
