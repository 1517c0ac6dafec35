//go:build !purego

#include "textflag.h"

// Layer kernels with AVX2: the operations of layer_amd64.s on 8 floats at
// a time, same results bit for bit. Exp has no VSCALEFPS here: 2^n is
// applied as two powers of two, y·2^n1 with n1 in [-125, 127] (y is in
// [0.7, 1.42], so the product is a normal float and exact) and then ·2^n2
// with n2 = n - n1 in [-25, 1], which rounds once, as the reference's
// Ldexp does. Constants are 8-lane vectors in memory (AVX2 has no
// broadcast operands).

DATA expA2<>+0(SB)/8, $0xc2d00000c2d00000  // expLo -104
DATA expA2<>+8(SB)/8, $0xc2d00000c2d00000
DATA expA2<>+16(SB)/8, $0xc2d00000c2d00000
DATA expA2<>+24(SB)/8, $0xc2d00000c2d00000
DATA expA2<>+32(SB)/8, $0x42b2000042b20000  // expHi 89
DATA expA2<>+40(SB)/8, $0x42b2000042b20000
DATA expA2<>+48(SB)/8, $0x42b2000042b20000
DATA expA2<>+56(SB)/8, $0x42b2000042b20000
DATA expA2<>+64(SB)/8, $0x3fb8aa3b3fb8aa3b  // expLog2e
DATA expA2<>+72(SB)/8, $0x3fb8aa3b3fb8aa3b
DATA expA2<>+80(SB)/8, $0x3fb8aa3b3fb8aa3b
DATA expA2<>+88(SB)/8, $0x3fb8aa3b3fb8aa3b
DATA expA2<>+96(SB)/8, $0x3f3180003f318000  // expC1
DATA expA2<>+104(SB)/8, $0x3f3180003f318000
DATA expA2<>+112(SB)/8, $0x3f3180003f318000
DATA expA2<>+120(SB)/8, $0x3f3180003f318000
DATA expA2<>+128(SB)/8, $0xb95e8083b95e8083  // expC2
DATA expA2<>+136(SB)/8, $0xb95e8083b95e8083
DATA expA2<>+144(SB)/8, $0xb95e8083b95e8083
DATA expA2<>+152(SB)/8, $0xb95e8083b95e8083
DATA expA2<>+160(SB)/8, $0x3950696739506967  // expP0
DATA expA2<>+168(SB)/8, $0x3950696739506967
DATA expA2<>+176(SB)/8, $0x3950696739506967
DATA expA2<>+184(SB)/8, $0x3950696739506967
DATA expA2<>+192(SB)/8, $0x3ab743ce3ab743ce  // expP1
DATA expA2<>+200(SB)/8, $0x3ab743ce3ab743ce
DATA expA2<>+208(SB)/8, $0x3ab743ce3ab743ce
DATA expA2<>+216(SB)/8, $0x3ab743ce3ab743ce
DATA expA2<>+224(SB)/8, $0x3c0889083c088908  // expP2
DATA expA2<>+232(SB)/8, $0x3c0889083c088908
DATA expA2<>+240(SB)/8, $0x3c0889083c088908
DATA expA2<>+248(SB)/8, $0x3c0889083c088908
DATA expA2<>+256(SB)/8, $0x3d2aa9c13d2aa9c1  // expP3
DATA expA2<>+264(SB)/8, $0x3d2aa9c13d2aa9c1
DATA expA2<>+272(SB)/8, $0x3d2aa9c13d2aa9c1
DATA expA2<>+280(SB)/8, $0x3d2aa9c13d2aa9c1
DATA expA2<>+288(SB)/8, $0x3e2aaaaa3e2aaaaa  // expP4
DATA expA2<>+296(SB)/8, $0x3e2aaaaa3e2aaaaa
DATA expA2<>+304(SB)/8, $0x3e2aaaaa3e2aaaaa
DATA expA2<>+312(SB)/8, $0x3e2aaaaa3e2aaaaa
DATA expA2<>+320(SB)/8, $0x3f0000003f000000  // expP5
DATA expA2<>+328(SB)/8, $0x3f0000003f000000
DATA expA2<>+336(SB)/8, $0x3f0000003f000000
DATA expA2<>+344(SB)/8, $0x3f0000003f000000
DATA expA2<>+352(SB)/8, $0x3f8000003f800000  // 1.0
DATA expA2<>+360(SB)/8, $0x3f8000003f800000
DATA expA2<>+368(SB)/8, $0x3f8000003f800000
DATA expA2<>+376(SB)/8, $0x3f8000003f800000
DATA expA2<>+384(SB)/8, $0x8000000080000000  // sign bit
DATA expA2<>+392(SB)/8, $0x8000000080000000
DATA expA2<>+400(SB)/8, $0x8000000080000000
DATA expA2<>+408(SB)/8, $0x8000000080000000
DATA expA2<>+416(SB)/8, $0xffffff83ffffff83  // -125: n1 range
DATA expA2<>+424(SB)/8, $0xffffff83ffffff83
DATA expA2<>+432(SB)/8, $0xffffff83ffffff83
DATA expA2<>+440(SB)/8, $0xffffff83ffffff83
DATA expA2<>+448(SB)/8, $0x0000007f0000007f  // 127
DATA expA2<>+456(SB)/8, $0x0000007f0000007f
DATA expA2<>+464(SB)/8, $0x0000007f0000007f
DATA expA2<>+472(SB)/8, $0x0000007f0000007f
DATA expA2<>+480(SB)/8, $0x0000007f0000007f  // exponent bias
DATA expA2<>+488(SB)/8, $0x0000007f0000007f
DATA expA2<>+496(SB)/8, $0x0000007f0000007f
DATA expA2<>+504(SB)/8, $0x0000007f0000007f
GLOBL expA2<>(SB), RODATA|NOPTR, $512

// EXP8(x, y): y = Exp(x) for 8 lanes; x is kept; uses Y8..Y11.
#define EXP8(x, y) \
	VMAXPS    expA2<>+0(SB), x, Y8 \
	VMINPS    expA2<>+32(SB), Y8, Y8 \
	VMULPS    expA2<>+64(SB), Y8, Y9 \
	VROUNDPS  $0, Y9, Y9 \
	VMULPS    expA2<>+96(SB), Y9, Y10 \
	VSUBPS    Y10, Y8, Y8 \
	VMULPS    expA2<>+128(SB), Y9, Y10 \
	VSUBPS    Y10, Y8, Y8 \
	VMULPS    Y8, Y8, Y11 \
	VMULPS    expA2<>+160(SB), Y8, Y10 \
	VADDPS    expA2<>+192(SB), Y10, Y10 \
	VMULPS    Y8, Y10, Y10 \
	VADDPS    expA2<>+224(SB), Y10, Y10 \
	VMULPS    Y8, Y10, Y10 \
	VADDPS    expA2<>+256(SB), Y10, Y10 \
	VMULPS    Y8, Y10, Y10 \
	VADDPS    expA2<>+288(SB), Y10, Y10 \
	VMULPS    Y8, Y10, Y10 \
	VADDPS    expA2<>+320(SB), Y10, Y10 \
	VMULPS    Y11, Y10, Y10 \
	VADDPS    Y8, Y10, Y10 \
	VADDPS    expA2<>+352(SB), Y10, Y10 \
	VCVTPS2DQ Y9, Y9 \
	VPMAXSD   expA2<>+416(SB), Y9, Y8 \
	VPMINSD   expA2<>+448(SB), Y8, Y8 \
	VPSUBD    Y8, Y9, Y9 \
	VPADDD    expA2<>+480(SB), Y8, Y8 \
	VPSLLD    $23, Y8, Y8 \
	VPADDD    expA2<>+480(SB), Y9, Y9 \
	VPSLLD    $23, Y9, Y9 \
	VMULPS    Y8, Y10, Y10 \
	VMULPS    Y9, Y10, Y10 \
	VCMPPS    $3, x, x, Y11 \
	VBLENDVPS Y11, x, Y10, y

// FOLDPD4(a0, a1, a2, a3): 16 float64 lanes (4 per register) → X(a0) lane 0,
// folded l += l+8, +4, +2, +1.
#define FOLDPD4(a0, a1, a2, a3, x0, x1) \
	VADDPD       a2, a0, a0 \
	VADDPD       a3, a1, a1 \
	VADDPD       a1, a0, a0 \
	VEXTRACTF128 $1, a0, x1 \
	VADDPD       x1, x0, x0 \
	VUNPCKHPD    x0, x0, x1 \
	VADDSD       x1, x0, x0

// ACC16PD(y0, x0, y1, x1): the 16 floats in y0 (lanes 0..7), y1 (8..15) added as
// float64 to Y0..Y3 (lanes 0..3, 4..7, 8..11, 12..15); uses Y4..Y7.
#define ACC16PD(y0, x0, y1, x1) \
	VCVTPS2PD    x0, Y4 \
	VEXTRACTF128 $1, y0, X5 \
	VCVTPS2PD    X5, Y5 \
	VCVTPS2PD    x1, Y6 \
	VEXTRACTF128 $1, y1, X7 \
	VCVTPS2PD    X7, Y7 \
	VADDPD       Y4, Y0, Y0 \
	VADDPD       Y5, Y1, Y1 \
	VADDPD       Y6, Y2, Y2 \
	VADDPD       Y7, Y3, Y3

// func sumSquaresAVX2(x *float32, n int) float64
// n is a multiple of 16.
TEXT ·sumSquaresAVX2(SB), NOSPLIT, $0-24
	MOVQ   x+0(FP), SI
	MOVQ   n+8(FP), CX
	VXORPD Y0, Y0, Y0
	VXORPD Y1, Y1, Y1
	VXORPD Y2, Y2, Y2
	VXORPD Y3, Y3, Y3
loop:
	VMOVUPS (SI), Y12
	VMULPS  Y12, Y12, Y12
	VMOVUPS 32(SI), Y13
	VMULPS  Y13, Y13, Y13
	VCVTPS2PD    X12, Y4
	VEXTRACTF128 $1, Y12, X5
	VCVTPS2PD    X5, Y5
	VCVTPS2PD    X13, Y6
	VEXTRACTF128 $1, Y13, X7
	VCVTPS2PD    X7, Y7
	VADDPD       Y4, Y0, Y0
	VADDPD       Y5, Y1, Y1
	VADDPD       Y6, Y2, Y2
	VADDPD       Y7, Y3, Y3
	ADDQ    $64, SI
	SUBQ    $16, CX
	JNZ     loop
	FOLDPD4(Y0, Y1, Y2, Y3, X0, X4)
	VMOVSD  X0, ret+16(FP)
	VZEROUPPER
	RET

// func rmsApplyAVX2(dst, x, w *float32, scale float32, n int)
// dst = x*scale*w; n is a multiple of 8.
TEXT ·rmsApplyAVX2(SB), NOSPLIT, $0-40
	MOVQ         dst+0(FP), DI
	MOVQ         x+8(FP), SI
	MOVQ         w+16(FP), DX
	VBROADCASTSS scale+24(FP), Y1
	MOVQ         n+32(FP), CX
loop:
	VMULPS  (SI), Y1, Y2
	VMULPS  (DX), Y2, Y2
	VMOVUPS Y2, (DI)
	ADDQ    $32, SI
	ADDQ    $32, DX
	ADDQ    $32, DI
	SUBQ    $8, CX
	JNZ     loop
	VZEROUPPER
	RET

// func maxAVX2(x *float32, n int) (m float32, nan bool)
// n is a multiple of 8.
TEXT ·maxAVX2(SB), NOSPLIT, $0-21
	MOVQ         x+0(FP), SI
	MOVQ         n+8(FP), CX
	VBROADCASTSS (SI), Y0
	VXORPS       Y3, Y3, Y3    // NaN lanes seen
loop:
	VMOVUPS (SI), Y2
	VMAXPS  Y2, Y0, Y0
	VCMPPS  $3, Y2, Y2, Y4
	VORPS   Y4, Y3, Y3
	ADDQ    $32, SI
	SUBQ    $8, CX
	JNZ     loop
	VEXTRACTF128 $1, Y0, X1
	VMAXPS       X1, X0, X0
	VMOVHLPS     X0, X1, X1
	VMAXPS       X1, X0, X0
	VMOVSHDUP    X0, X1
	VMAXSS       X1, X0, X0
	VMOVSS       X0, m+16(FP)
	VMOVMSKPS    Y3, AX
	TESTL        AX, AX
	SETNE        nan+20(FP)
	VZEROUPPER
	RET

// func expSumAVX2(x *float32, n int, m float32) float64
// x[i] = Exp(x[i] - m); returns the 16-lane float64 sum. n is a multiple of 16.
TEXT ·expSumAVX2(SB), NOSPLIT, $0-32
	MOVQ         x+0(FP), SI
	MOVQ         n+8(FP), CX
	VBROADCASTSS m+16(FP), Y15
	VXORPD       Y0, Y0, Y0
	VXORPD       Y1, Y1, Y1
	VXORPD       Y2, Y2, Y2
	VXORPD       Y3, Y3, Y3
loop:
	VMOVUPS (SI), Y12
	VSUBPS  Y15, Y12, Y12
	EXP8(Y12, Y13)
	VMOVUPS Y13, (SI)
	VMOVUPS 32(SI), Y12
	VSUBPS  Y15, Y12, Y12
	EXP8(Y12, Y14)
	VMOVUPS Y14, 32(SI)
	ACC16PD(Y13, X13, Y14, X14)
	ADDQ    $64, SI
	SUBQ    $16, CX
	JNZ     loop
	FOLDPD4(Y0, Y1, Y2, Y3, X0, X4)
	VMOVSD  X0, ret+24(FP)
	VZEROUPPER
	RET

// func scaleAVX2(x *float32, s float32, n int)
TEXT ·scaleAVX2(SB), NOSPLIT, $0-24
	MOVQ         x+0(FP), SI
	VBROADCASTSS s+8(FP), Y1
	MOVQ         n+16(FP), CX
loop:
	VMULPS  (SI), Y1, Y2
	VMOVUPS Y2, (SI)
	ADDQ    $32, SI
	SUBQ    $8, CX
	JNZ     loop
	VZEROUPPER
	RET

// func addAVX2(dst, x *float32, n int)
TEXT ·addAVX2(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ x+8(FP), SI
	MOVQ n+16(FP), CX
loop:
	VMOVUPS (DI), Y0
	VADDPS  (SI), Y0, Y0
	VMOVUPS Y0, (DI)
	ADDQ    $32, SI
	ADDQ    $32, DI
	SUBQ    $8, CX
	JNZ     loop
	VZEROUPPER
	RET

// func expAVX2(dst, x *float32, n int)
TEXT ·expAVX2(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ x+8(FP), SI
	MOVQ n+16(FP), CX
loop:
	VMOVUPS (SI), Y12
	EXP8(Y12, Y13)
	VMOVUPS Y13, (DI)
	ADDQ    $32, SI
	ADDQ    $32, DI
	SUBQ    $8, CX
	JNZ     loop
	VZEROUPPER
	RET

// func swiGLUAVX2(dst, gate, up *float32, n int)
// dst = gate / (1 + Exp(-gate)) * up.
TEXT ·swiGLUAVX2(SB), NOSPLIT, $0-32
	MOVQ dst+0(FP), DI
	MOVQ gate+8(FP), SI
	MOVQ up+16(FP), DX
	MOVQ n+24(FP), CX
loop:
	VMOVUPS (SI), Y12
	VXORPS  expA2<>+384(SB), Y12, Y13   // -gate
	EXP8(Y13, Y14)
	VADDPS  expA2<>+352(SB), Y14, Y14     // 1 + e
	VDIVPS  Y14, Y12, Y14          // gate / (1 + e)
	VMULPS  (DX), Y14, Y14         // · up
	VMOVUPS Y14, (DI)
	ADDQ    $32, SI
	ADDQ    $32, DX
	ADDQ    $32, DI
	SUBQ    $8, CX
	JNZ     loop
	VZEROUPPER
	RET

// func ropeAVX2(x *float32, heads, half int, cos, sin *float32)
// half is a multiple of 8.
TEXT ·ropeAVX2(SB), NOSPLIT, $0-40
	MOVQ x+0(FP), DI
	MOVQ heads+8(FP), BX
	MOVQ half+16(FP), R8
	SHLQ $2, R8
head:
	MOVQ cos+24(FP), SI
	MOVQ sin+32(FP), DX
	MOVQ DI, AX
	MOVQ R8, CX
pair:
	VMOVUPS (AX), Y0
	VMOVUPS (AX)(R8*1), Y1
	VMOVUPS (SI), Y2
	VMOVUPS (DX), Y3
	VMULPS  Y2, Y0, Y4
	VMULPS  Y3, Y1, Y5
	VSUBPS  Y5, Y4, Y4
	VMULPS  Y3, Y0, Y6
	VMULPS  Y2, Y1, Y7
	VADDPS  Y7, Y6, Y6
	VMOVUPS Y4, (AX)
	VMOVUPS Y6, (AX)(R8*1)
	ADDQ    $32, AX
	ADDQ    $32, SI
	ADDQ    $32, DX
	SUBQ    $32, CX
	JNZ     pair
	LEAQ    (DI)(R8*2), DI
	DECQ    BX
	JNZ     head
	VZEROUPPER
	RET
