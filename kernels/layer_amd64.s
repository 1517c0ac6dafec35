//go:build !purego

#include "textflag.h"

// Layer kernels, AVX-512 (F and VL):
// sums of squares and softmax sums in 16 float64 lanes, Exp (Cephes'
// expf, see vec.go) on 16 floats at a time, SwiGLU, scaling. Every
// operation is the reference's, in the reference's order; lengths here
// are whole multiples of 16, the Go side does the rest.

// Exp constants as float32 bit patterns (TestLayerImpls compares ExpVec
// with Exp on every 61st float32 in the clamped range, which checks them).
DATA expConst<>+0(SB)/4, $0xc2d00000  // expLo  -104
DATA expConst<>+4(SB)/4, $0x42b20000  // expHi  89
DATA expConst<>+8(SB)/4, $0x3fb8aa3b  // expLog2e
DATA expConst<>+12(SB)/4, $0x3f318000 // expC1
DATA expConst<>+16(SB)/4, $0xb95e8083 // expC2
DATA expConst<>+20(SB)/4, $0x39506967 // expP0
DATA expConst<>+24(SB)/4, $0x3ab743ce // expP1
DATA expConst<>+28(SB)/4, $0x3c088908 // expP2
DATA expConst<>+32(SB)/4, $0x3d2aa9c1 // expP3
DATA expConst<>+36(SB)/4, $0x3e2aaaaa // expP4
DATA expConst<>+40(SB)/4, $0x3f000000 // expP5
DATA expConst<>+44(SB)/4, $0x3f800000 // 1
DATA expConst<>+48(SB)/4, $0x80000000 // sign bit
GLOBL expConst<>(SB), RODATA|NOPTR, $52

// EXPCONSTS loads the constants into Z16..Z28.
#define EXPCONSTS \
	VBROADCASTSS expConst<>+0(SB), Z16 \
	VBROADCASTSS expConst<>+4(SB), Z17 \
	VBROADCASTSS expConst<>+8(SB), Z18 \
	VBROADCASTSS expConst<>+12(SB), Z19 \
	VBROADCASTSS expConst<>+16(SB), Z20 \
	VBROADCASTSS expConst<>+20(SB), Z21 \
	VBROADCASTSS expConst<>+24(SB), Z22 \
	VBROADCASTSS expConst<>+28(SB), Z23 \
	VBROADCASTSS expConst<>+32(SB), Z24 \
	VBROADCASTSS expConst<>+36(SB), Z25 \
	VBROADCASTSS expConst<>+40(SB), Z26 \
	VBROADCASTSS expConst<>+44(SB), Z27 \
	VBROADCASTSS expConst<>+48(SB), Z28

// EXP16(x, y): y = Exp(x) for 16 lanes (x is kept; uses Z8..Z11, K2).
#define EXP16(x, y) \
	VMAXPS      Z16, x, Z8 \   // clamp to [-104, 89]
	VMINPS      Z17, Z8, Z8 \
	VMULPS      Z18, Z8, Z9 \  // x·log2e
	VRNDSCALEPS $0, Z9, Z9 \   // n: round to nearest, ties to even
	VMULPS      Z19, Z9, Z10 \
	VSUBPS      Z10, Z8, Z8 \  // r = x - n·C1
	VMULPS      Z20, Z9, Z10 \
	VSUBPS      Z10, Z8, Z8 \  // r = r - n·C2
	VMULPS      Z8, Z8, Z11 \  // z = r²
	VMULPS      Z21, Z8, Z10 \ // p = P0·r + P1
	VADDPS      Z22, Z10, Z10 \
	VMULPS      Z8, Z10, Z10 \ // p = p·r + P2
	VADDPS      Z23, Z10, Z10 \
	VMULPS      Z8, Z10, Z10 \ // p = p·r + P3
	VADDPS      Z24, Z10, Z10 \
	VMULPS      Z8, Z10, Z10 \ // p = p·r + P4
	VADDPS      Z25, Z10, Z10 \
	VMULPS      Z8, Z10, Z10 \ // p = p·r + P5
	VADDPS      Z26, Z10, Z10 \
	VMULPS      Z11, Z10, Z10 \ // (p·z + r) + 1
	VADDPS      Z8, Z10, Z10 \
	VADDPS      Z27, Z10, Z10 \
	VSCALEFPS   Z9, Z10, y \    // · 2^n, rounded once
	VCMPPS      $3, x, x, K2 \  // NaN lanes give x back
	VMOVAPS     x, K2, y

// FOLDPD(a, b): the 16 float64 lanes a (0..7) and b (8..15) → X0 lane 0,
// folded l += l+8, +4, +2, +1. a must be Z0.
#define FOLDPD(b) \
	VADDPD        b, Z0, Z0 \
	VEXTRACTF64X4 $1, Z0, Y1 \
	VADDPD        Y1, Y0, Y0 \
	VEXTRACTF128  $1, Y0, X1 \
	VADDPD        X1, X0, X0 \
	VUNPCKHPD     X0, X0, X1 \
	VADDSD        X1, X0, X0

// func sumSquaresMain(x *float32, n int) float64
TEXT ·sumSquaresMain(SB), NOSPLIT, $0-24
	MOVQ   x+0(FP), SI
	MOVQ   n+8(FP), CX
	VXORPD Z0, Z0, Z0
	VXORPD Z2, Z2, Z2
loop:
	VMOVUPS       (SI), Z4
	VMULPS        Z4, Z4, Z4      // squares, rounded to float32
	VCVTPS2PD     Y4, Z5          // lanes 0..7
	VEXTRACTF64X4 $1, Z4, Y6
	VCVTPS2PD     Y6, Z6          // lanes 8..15
	VADDPD        Z5, Z0, Z0
	VADDPD        Z6, Z2, Z2
	ADDQ          $64, SI
	SUBQ          $16, CX
	JNZ           loop
	FOLDPD(Z2)
	VMOVSD        X0, ret+16(FP)
	VZEROUPPER
	RET

// func rmsApplyMain(dst, x, w *float32, scale float32, n int)
// dst = x*scale*w.
TEXT ·rmsApplyMain(SB), NOSPLIT, $0-40
	MOVQ         dst+0(FP), DI
	MOVQ         x+8(FP), SI
	MOVQ         w+16(FP), DX
	VBROADCASTSS scale+24(FP), Z1
	MOVQ         n+32(FP), CX
loop:
	VMULPS  (SI), Z1, Z2
	VMULPS  (DX), Z2, Z2
	VMOVUPS Z2, (DI)
	ADDQ    $64, SI
	ADDQ    $64, DX
	ADDQ    $64, DI
	SUBQ    $16, CX
	JNZ     loop
	VZEROUPPER
	RET

// func maxMain(x *float32, n int) (m float32, nan bool)
// The largest value, and whether any value is NaN.
TEXT ·maxMain(SB), NOSPLIT, $0-21
	MOVQ         x+0(FP), SI
	MOVQ         n+8(FP), CX
	VBROADCASTSS (SI), Z0
	KXORW        K1, K1, K1
loop:
	VMOVUPS (SI), Z2
	VMAXPS  Z2, Z0, Z0
	VCMPPS  $3, Z2, Z2, K2
	KORW    K2, K1, K1
	ADDQ    $64, SI
	SUBQ    $16, CX
	JNZ     loop
	VEXTRACTF64X4 $1, Z0, Y1
	VMAXPS        Y1, Y0, Y0
	VEXTRACTF128  $1, Y0, X1
	VMAXPS        X1, X0, X0
	VMOVHLPS      X0, X1, X1
	VMAXPS        X1, X0, X0
	VMOVSHDUP     X0, X1
	VMAXSS        X1, X0, X0
	VMOVSS        X0, m+16(FP)
	KMOVW         K1, AX
	TESTL         AX, AX
	SETNE         nan+20(FP)
	VZEROUPPER
	RET

// func expSumMain(x *float32, n int, m float32) float64
// x[i] = Exp(x[i] - m); returns the 16-lane float64 sum of the new x.
TEXT ·expSumMain(SB), NOSPLIT, $0-32
	MOVQ         x+0(FP), SI
	MOVQ         n+8(FP), CX
	VBROADCASTSS m+16(FP), Z29
	EXPCONSTS
	VXORPD       Z0, Z0, Z0
	VXORPD       Z2, Z2, Z2
loop:
	VMOVUPS       (SI), Z4
	VSUBPS        Z29, Z4, Z4
	EXP16(Z4, Z5)
	VMOVUPS       Z5, (SI)
	VCVTPS2PD     Y5, Z6
	VEXTRACTF64X4 $1, Z5, Y7
	VCVTPS2PD     Y7, Z7
	VADDPD        Z6, Z0, Z0
	VADDPD        Z7, Z2, Z2
	ADDQ          $64, SI
	SUBQ          $16, CX
	JNZ           loop
	FOLDPD(Z2)
	VMOVSD        X0, ret+24(FP)
	VZEROUPPER
	RET

// func scaleMain(x *float32, s float32, n int)
// x *= s.
TEXT ·scaleMain(SB), NOSPLIT, $0-24
	MOVQ         x+0(FP), SI
	VBROADCASTSS s+8(FP), Z1
	MOVQ         n+16(FP), CX
loop:
	VMULPS  (SI), Z1, Z2
	VMOVUPS Z2, (SI)
	ADDQ    $64, SI
	SUBQ    $16, CX
	JNZ     loop
	VZEROUPPER
	RET

// func swiGLUMain(dst, gate, up *float32, n int)
// dst = gate / (1 + Exp(-gate)) * up.
TEXT ·swiGLUMain(SB), NOSPLIT, $0-32
	MOVQ dst+0(FP), DI
	MOVQ gate+8(FP), SI
	MOVQ up+16(FP), DX
	MOVQ n+24(FP), CX
	EXPCONSTS
loop:
	VMOVUPS (SI), Z2
	VXORPS  Z28, Z2, Z3     // -gate
	EXP16(Z3, Z4)
	VADDPS  Z27, Z4, Z4     // 1 + e
	VDIVPS  Z4, Z2, Z5      // gate / (1 + e)
	VMULPS  (DX), Z5, Z5    // · up
	VMOVUPS Z5, (DI)
	ADDQ    $64, SI
	ADDQ    $64, DX
	ADDQ    $64, DI
	SUBQ    $16, CX
	JNZ     loop
	VZEROUPPER
	RET

// func expMain(dst, x *float32, n int)
// dst = Exp(x).
TEXT ·expMain(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ x+8(FP), SI
	MOVQ n+16(FP), CX
	EXPCONSTS
loop:
	VMOVUPS (SI), Z2
	EXP16(Z2, Z3)
	VMOVUPS Z3, (DI)
	ADDQ    $64, SI
	ADDQ    $64, DI
	SUBQ    $16, CX
	JNZ     loop
	VZEROUPPER
	RET

// func ropeMain(x *float32, heads, half int, cos, sin *float32)
// half is a multiple of 16: each head's first half at x, second at x+4·half.
TEXT ·ropeMain(SB), NOSPLIT, $0-40
	MOVQ x+0(FP), DI
	MOVQ heads+8(FP), BX
	MOVQ half+16(FP), R8
	SHLQ $2, R8             // half in bytes
head:
	MOVQ cos+24(FP), SI
	MOVQ sin+32(FP), DX
	MOVQ DI, AX
	MOVQ R8, CX
pair:
	VMOVUPS (AX), Z0        // x0
	VMOVUPS (AX)(R8*1), Z1  // x1
	VMOVUPS (SI), Z2        // cos
	VMOVUPS (DX), Z3        // sin
	VMULPS  Z2, Z0, Z4      // x0·cos
	VMULPS  Z3, Z1, Z5      // x1·sin
	VSUBPS  Z5, Z4, Z4
	VMULPS  Z3, Z0, Z6      // x0·sin
	VMULPS  Z2, Z1, Z7      // x1·cos
	VADDPS  Z7, Z6, Z6
	VMOVUPS Z4, (AX)
	VMOVUPS Z6, (AX)(R8*1)
	ADDQ    $64, AX
	ADDQ    $64, SI
	ADDQ    $64, DX
	SUBQ    $64, CX
	JNZ     pair
	LEAQ    (DI)(R8*2), DI  // next head
	DECQ    BX
	JNZ     head
	VZEROUPPER
	RET

// func addMain(dst, x *float32, n int)
// dst += x.
TEXT ·addMain(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ x+8(FP), SI
	MOVQ n+16(FP), CX
loop:
	VMOVUPS (DI), Z0
	VADDPS  (SI), Z0, Z0
	VMOVUPS Z0, (DI)
	ADDQ    $64, SI
	ADDQ    $64, DI
	SUBQ    $16, CX
	JNZ     loop
	VZEROUPPER
	RET
