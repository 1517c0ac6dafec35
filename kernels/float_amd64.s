//go:build !purego

#include "textflag.h"

// Float dot products and element-wise kernels, AVX-512.
//
// The dot products follow the reference order exactly (ref_dot.go): 32
// lanes, lane l takes the elements i with i mod 32 == l, each step
// lane = lane + float32(x*y) (a multiply, then an add: no FMA), then the
// lanes are folded l += l+16, +8, +4, +2, +1. Z0 holds lanes 0..15 and Z1
// lanes 16..31. n is a multiple of 32; the Go wrappers add the tail.

// FOLD32 folds Z0 (lanes 0..15) and Z1 (lanes 16..31) into X0 lane 0.
#define FOLD32 \
	VADDPS        Z1, Z0, Z0 \ // l += l+16
	VEXTRACTF64X4 $1, Z0, Y1 \
	VADDPS        Y1, Y0, Y0 \ // l += l+8
	VEXTRACTF128  $1, Y0, X1 \
	VADDPS        X1, X0, X0 \ // l += l+4
	VMOVHLPS      X0, X1, X1 \
	VADDPS        X1, X0, X0 \ // l += l+2
	VMOVSHDUP     X0, X1     \
	VADDSS        X1, X0, X0   // l += l+1

// func dotF32Main(x, y *float32, n int) float32
TEXT ·dotF32Main(SB), NOSPLIT, $0-28
	MOVQ x+0(FP), SI
	MOVQ y+8(FP), DI
	MOVQ n+16(FP), CX
	VXORPS Z0, Z0, Z0
	VXORPS Z1, Z1, Z1
loop:
	VMOVUPS (SI), Z2
	VMULPS  (DI), Z2, Z2
	VADDPS  Z2, Z0, Z0
	VMOVUPS 64(SI), Z3
	VMULPS  64(DI), Z3, Z3
	VADDPS  Z3, Z1, Z1
	ADDQ    $128, SI
	ADDQ    $128, DI
	SUBQ    $32, CX
	JNZ     loop
	FOLD32
	VMOVSS X0, ret+24(FP)
	VZEROUPPER
	RET

// func dotF16F32Main(x *float32, h *uint16, n int) float32
TEXT ·dotF16F32Main(SB), NOSPLIT, $0-28
	MOVQ x+0(FP), SI
	MOVQ h+8(FP), DI
	MOVQ n+16(FP), CX
	VXORPS Z0, Z0, Z0
	VXORPS Z1, Z1, Z1
loop:
	VCVTPH2PS (DI), Z2
	VMULPS    (SI), Z2, Z2
	VADDPS    Z2, Z0, Z0
	VCVTPH2PS 32(DI), Z3
	VMULPS    64(SI), Z3, Z3
	VADDPS    Z3, Z1, Z1
	ADDQ      $128, SI
	ADDQ      $64, DI
	SUBQ      $32, CX
	JNZ       loop
	FOLD32
	VMOVSS X0, ret+24(FP)
	VZEROUPPER
	RET

// func dotF16F16Main(w, a *uint16, n int) float32
// Products of two halves are exact in float32, so multiply-then-add here
// equals the reference's sum of exact products.
TEXT ·dotF16F16Main(SB), NOSPLIT, $0-28
	MOVQ w+0(FP), SI
	MOVQ a+8(FP), DI
	MOVQ n+16(FP), CX
	VXORPS Z0, Z0, Z0
	VXORPS Z1, Z1, Z1
loop:
	VCVTPH2PS (SI), Z2
	VCVTPH2PS (DI), Z4
	VMULPS    Z4, Z2, Z2
	VADDPS    Z2, Z0, Z0
	VCVTPH2PS 32(SI), Z3
	VCVTPH2PS 32(DI), Z5
	VMULPS    Z5, Z3, Z3
	VADDPS    Z3, Z1, Z1
	ADDQ      $64, SI
	ADDQ      $64, DI
	SUBQ      $32, CX
	JNZ       loop
	FOLD32
	VMOVSS X0, ret+24(FP)
	VZEROUPPER
	RET

// BF16 to float32: zero-extend each 16-bit value to 32 bits, shift left 16.
// func dotBF16BF16Main(w, a *uint16, n int) float32
TEXT ·dotBF16BF16Main(SB), NOSPLIT, $0-28
	MOVQ w+0(FP), SI
	MOVQ a+8(FP), DI
	MOVQ n+16(FP), CX
	VXORPS Z0, Z0, Z0
	VXORPS Z1, Z1, Z1
loop:
	VPMOVZXWD (SI), Z2
	VPSLLD    $16, Z2, Z2
	VPMOVZXWD (DI), Z4
	VPSLLD    $16, Z4, Z4
	VMULPS    Z4, Z2, Z2
	VADDPS    Z2, Z0, Z0
	VPMOVZXWD 32(SI), Z3
	VPSLLD    $16, Z3, Z3
	VPMOVZXWD 32(DI), Z5
	VPSLLD    $16, Z5, Z5
	VMULPS    Z5, Z3, Z3
	VADDPS    Z3, Z1, Z1
	ADDQ      $64, SI
	ADDQ      $64, DI
	SUBQ      $32, CX
	JNZ       loop
	FOLD32
	VMOVSS X0, ret+24(FP)
	VZEROUPPER
	RET

// func dotBF16F32Main(w *uint16, a *float32, n int) float32
TEXT ·dotBF16F32Main(SB), NOSPLIT, $0-28
	MOVQ w+0(FP), SI
	MOVQ a+8(FP), DI
	MOVQ n+16(FP), CX
	VXORPS Z0, Z0, Z0
	VXORPS Z1, Z1, Z1
loop:
	VPMOVZXWD (SI), Z2
	VPSLLD    $16, Z2, Z2
	VMULPS    (DI), Z2, Z2
	VADDPS    Z2, Z0, Z0
	VPMOVZXWD 32(SI), Z3
	VPSLLD    $16, Z3, Z3
	VMULPS    64(DI), Z3, Z3
	VADDPS    Z3, Z1, Z1
	ADDQ      $64, SI
	ADDQ      $128, DI
	SUBQ      $32, CX
	JNZ       loop
	FOLD32
	VMOVSS X0, ret+24(FP)
	VZEROUPPER
	RET

// func axpyMain(dst *float32, alpha float32, x *float32, n int)
// dst[i] = dst[i] + float32(alpha*x[i]), n a multiple of 16.
TEXT ·axpyMain(SB), NOSPLIT, $0-32
	MOVQ         dst+0(FP), DI
	VBROADCASTSS alpha+8(FP), Z1
	MOVQ         x+16(FP), SI
	MOVQ         n+24(FP), CX
loop:
	VMULPS  (SI), Z1, Z2
	VADDPS  (DI), Z2, Z2
	VMOVUPS Z2, (DI)
	ADDQ    $64, SI
	ADDQ    $64, DI
	SUBQ    $16, CX
	JNZ     loop
	VZEROUPPER
	RET

// func axpyF16Main(dst *float32, alpha float32, h *uint16, n int)
TEXT ·axpyF16Main(SB), NOSPLIT, $0-32
	MOVQ         dst+0(FP), DI
	VBROADCASTSS alpha+8(FP), Z1
	MOVQ         h+16(FP), SI
	MOVQ         n+24(FP), CX
loop:
	VCVTPH2PS (SI), Z2
	VMULPS    Z2, Z1, Z2
	VADDPS    (DI), Z2, Z2
	VMOVUPS   Z2, (DI)
	ADDQ      $32, SI
	ADDQ      $64, DI
	SUBQ      $16, CX
	JNZ       loop
	VZEROUPPER
	RET

// func f16ToF32Main(dst *float32, h *uint16, n int)
TEXT ·f16ToF32Main(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ h+8(FP), SI
	MOVQ n+16(FP), CX
loop:
	VCVTPH2PS (SI), Z2
	VMOVUPS   Z2, (DI)
	ADDQ      $32, SI
	ADDQ      $64, DI
	SUBQ      $16, CX
	JNZ       loop
	VZEROUPPER
	RET

// func f32ToF16Main(dst *uint16, x *float32, n int)
// VCVTPS2PH with imm8 = 0: round to nearest even.
TEXT ·f32ToF16Main(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ x+8(FP), SI
	MOVQ n+16(FP), CX
loop:
	VMOVUPS   (SI), Z2
	VCVTPS2PH $0, Z2, Y3
	VMOVDQU   Y3, (DI)
	ADDQ      $64, SI
	ADDQ      $32, DI
	SUBQ      $16, CX
	JNZ       loop
	VZEROUPPER
	RET
