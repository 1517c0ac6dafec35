//go:build !purego

#include "textflag.h"

// Q8_0 × Q8_0 and Q4_0 × Q8_0 dot products, AVX-512VL + VNNI on 256-bit
// registers (one 32-value block per register). Same calling convention as
// q6kDotsAVX512. Per block and token, as the reference:
//   isum = sum_i w_i*a_i (exact), acc = acc + float32((dw*da) * float32(isum))
// The signed×signed products use VPDPBUSD on |w| and sign(w)*a.

DATA q40Const<>+0(SB)/8, $0x0f0f0f0f0f0f0f0f
DATA q40Const<>+8(SB)/8, $0x0808080808080808
GLOBL q40Const<>(SB), RODATA|NOPTR, $16

// TOKENS80 multiplies the block in Y0 (signed weights), Y1 = |Y0|, X13 = dw
// with every token, then advances (wbytes: weight block size).
#define TOKENS80(wbytes, label) \
	MOVQ DX, DI \
	MOVQ R10, AX \
	MOVQ R9, BX \
label: \
	VMOVDQU   2(DI), Y2 \
	VPSIGNB   Y0, Y2, Y2 \
	VPXOR     Y3, Y3, Y3 \
	VPDPBUSD  Y2, Y1, Y3 \
	VEXTRACTI128 $1, Y3, X4 \
	VPADDD    X4, X3, X3 \
	VPSHUFD   $0x4e, X3, X4 \
	VPADDD    X4, X3, X3 \
	VPSHUFD   $0xb1, X3, X4 \
	VPADDD    X4, X3, X3 \
	VCVTDQ2PS X3, X3 \
	MOVWLZX   (DI), R12 \
	VMOVD     R12, X10 \
	VCVTPH2PS X10, X10 \
	VMULSS    X10, X13, X10 \
	VMULSS    X10, X3, X3 \
	VMOVSS    (AX), X11 \
	VADDSS    X3, X11, X11 \
	VMOVSS    X11, (AX) \
	ADDQ R8, DI \
	ADDQ R11, AX \
	DECQ BX \
	JNZ  label \
	ADDQ $wbytes, SI \
	ADDQ $34, DX \
	DECQ CX

#define SETUP80 \
	MOVQ w+0(FP), SI \
	MOVQ nb+8(FP), CX \
	MOVQ act+16(FP), DX \
	MOVQ actStride+24(FP), R8 \
	MOVQ ntok+32(FP), R9 \
	MOVQ out+40(FP), R10 \
	MOVQ outStride+48(FP), R11 \
	MOVQ R10, AX \
	MOVQ R9, BX \
zero: \
	MOVL $0, (AX) \
	ADDQ R11, AX \
	DECQ BX \
	JNZ  zero

// func q80DotsAVX512(w *byte, nb int, act *byte, actStride int, ntok int, out *float32, outStride int)
TEXT ·q80DotsAVX512(SB), NOSPLIT, $0-56
	SETUP80
block:
	VMOVDQU   2(SI), Y0
	VPABSB    Y0, Y1
	MOVWLZX   (SI), R12
	VMOVD     R12, X13
	VCVTPH2PS X13, X13
	TOKENS80(34, tok)
	JNZ block
	VZEROUPPER
	RET

// func q40DotsAVX512(w *byte, nb int, act *byte, actStride int, ntok int, out *float32, outStride int)
TEXT ·q40DotsAVX512(SB), NOSPLIT, $0-56
	SETUP80
	VPBROADCASTQ q40Const<>+0(SB), Y14
	VPBROADCASTQ q40Const<>+8(SB), Y15
block:
	VMOVDQU     2(SI), X0      // 16 bytes: values 0..15 low nibbles, 16..31 high
	VPSRLW      $4, X0, X1
	VINSERTI128 $1, X1, Y0, Y0
	VPAND       Y14, Y0, Y0
	VPSUBB      Y15, Y0, Y0    // q - 8
	VPABSB      Y0, Y1
	MOVWLZX     (SI), R12
	VMOVD       R12, X13
	VCVTPH2PS   X13, X13
	TOKENS80(18, tok)
	JNZ block
	VZEROUPPER
	RET
