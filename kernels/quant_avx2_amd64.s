//go:build !purego

#include "textflag.h"

// Q8_K activation quantizer with AVX2 (quantizeQ8KRef, bit for bit; see
// quant_amd64.s for the AVX-512 version and the steps). A block is 32
// registers of 8 floats, read from memory in three passes: the largest
// |x| (NaN skipped), the first x that has it, then the quantized bytes
// (dwords truncated to their low byte, as the reference's int8
// conversion) and the group sums of the stored bytes.

DATA q8kA2<>+0(SB)/8, $0x7fffffff7fffffff  // |x| mask
DATA q8kA2<>+8(SB)/8, $0x7fffffff7fffffff
DATA q8kA2<>+16(SB)/8, $0x7fffffff7fffffff
DATA q8kA2<>+24(SB)/8, $0x7fffffff7fffffff
DATA q8kA2<>+32(SB)/8, $0x0000007f0000007f  // 127
DATA q8kA2<>+40(SB)/8, $0x0000007f0000007f
DATA q8kA2<>+48(SB)/8, $0x0000007f0000007f
DATA q8kA2<>+56(SB)/8, $0x0000007f0000007f
DATA q8kA2<>+64(SB)/8, $0x000000ff000000ff  // low byte
DATA q8kA2<>+72(SB)/8, $0x000000ff000000ff
DATA q8kA2<>+80(SB)/8, $0x000000ff000000ff
DATA q8kA2<>+88(SB)/8, $0x000000ff000000ff
DATA q8kA2<>+96(SB)/8, $0x0000000400000000  // VPERMD: undo the packs' lane interleave
DATA q8kA2<>+104(SB)/8, $0x0000000500000001
DATA q8kA2<>+112(SB)/8, $0x0000000600000002
DATA q8kA2<>+120(SB)/8, $0x0000000700000003
DATA q8kA2<>+128(SB)/4, $0xc2fe0000         // -127.0
DATA q8kA2<>+132(SB)/4, $0x3f800000         // 1.0
GLOBL q8kA2<>(SB), RODATA|NOPTR, $136

// func quantQ8KAVX2(dst *byte, x *float32, nb int)
TEXT ·quantQ8KAVX2(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ x+8(FP), SI
	MOVQ nb+16(FP), R9
	VMOVUPS q8kA2<>+0(SB), Y15     // |x| mask
	VXORPS  Y14, Y14, Y14          // zero
block:
	// 1. amax: max(|x|, 0) (0 for NaN), four running maxima.
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	MOVQ   SI, AX
	MOVQ   $8, CX
amax:
	VANDPS 0(AX), Y15, Y4
	VMAXPS Y14, Y4, Y4 // NaN → 0
	VMAXPS Y4, Y0, Y0
	VANDPS 32(AX), Y15, Y4
	VMAXPS Y14, Y4, Y4 // NaN → 0
	VMAXPS Y4, Y1, Y1
	VANDPS 64(AX), Y15, Y4
	VMAXPS Y14, Y4, Y4 // NaN → 0
	VMAXPS Y4, Y2, Y2
	VANDPS 96(AX), Y15, Y4
	VMAXPS Y14, Y4, Y4 // NaN → 0
	VMAXPS Y4, Y3, Y3
	ADDQ   $128, AX
	DECQ   CX
	JNZ    amax
	VMAXPS Y1, Y0, Y0
	VMAXPS Y3, Y2, Y2
	VMAXPS Y2, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VMAXPS       X1, X0, X0
	VMOVHLPS     X0, X1, X1
	VMAXPS       X1, X0, X0
	VMOVSHDUP    X0, X1
	VMAXSS       X1, X0, X0   // amax
	VUCOMISS     X14, X0
	JEQ          zeroblock
	VBROADCASTSS X0, Y0

	// 2. The first x with |x| == amax.
	MOVQ SI, AX
	XORQ DX, DX
search:
	VANDPS    (AX), Y15, Y4
	VCMPPS    $0, Y0, Y4, Y4
	VMOVMSKPS Y4, BX
	TESTL     BX, BX
	JNZ       found
	ADDQ      $32, AX
	ADDQ      $8, DX
	CMPQ      DX, $256
	JLT       search
	JMP       zeroblock // unreachable
found:
	TZCNTL BX, BX
	ADDQ   DX, BX
	VMOVSS (SI)(BX*4), X1          // maxv
	VMOVSS q8kA2<>+128(SB), X2
	VDIVSS X1, X2, X2              // iscale = -127/maxv
	VMOVSS q8kA2<>+132(SB), X3
	VDIVSS X2, X3, X3              // D = 1/iscale
	VMOVSS X3, (DI)
	VBROADCASTSS X2, Y13
	VMOVUPS q8kA2<>+32(SB), Y12    // 127
	VMOVUPS q8kA2<>+64(SB), Y11    // 0xff
	VMOVUPS q8kA2<>+96(SB), Y10    // lane order

	// 3. q = int8(min(127, round(iscale·x))), 32 values per step.
	MOVQ SI, AX
	LEAQ 4(DI), R8
	MOVQ $8, CX
quant:
	VMULPS    0(AX), Y13, Y0
	VCVTPS2DQ Y0, Y0
	VPMINSD   Y12, Y0, Y0
	VPAND     Y11, Y0, Y0 // the low byte, as int8() keeps
	VMULPS    32(AX), Y13, Y1
	VCVTPS2DQ Y1, Y1
	VPMINSD   Y12, Y1, Y1
	VPAND     Y11, Y1, Y1 // the low byte, as int8() keeps
	VMULPS    64(AX), Y13, Y2
	VCVTPS2DQ Y2, Y2
	VPMINSD   Y12, Y2, Y2
	VPAND     Y11, Y2, Y2 // the low byte, as int8() keeps
	VMULPS    96(AX), Y13, Y3
	VCVTPS2DQ Y3, Y3
	VPMINSD   Y12, Y3, Y3
	VPAND     Y11, Y3, Y3 // the low byte, as int8() keeps
	VPACKUSDW Y1, Y0, Y0
	VPACKUSDW Y3, Y2, Y2
	VPACKUSWB Y2, Y0, Y0
	VPERMD    Y0, Y10, Y0
	VMOVDQU   Y0, (R8)
	ADDQ      $128, AX
	ADDQ      $32, R8
	DECQ      CX
	JNZ       quant

	// 4. bsums: each group's 16 stored bytes, sign-extended and added.
	LEAQ 4(DI), R8
	XORQ CX, CX
bsum:
	VPMOVSXBD    (R8), Y0
	VPMOVSXBD    8(R8), Y1
	VPADDD       Y1, Y0, Y0
	VEXTRACTI128 $1, Y0, X1
	VPADDD       X1, X0, X0
	VPSHUFD      $0x4e, X0, X1
	VPADDD       X1, X0, X0
	VPSHUFD      $0xb1, X0, X1
	VPADDD       X1, X0, X0
	VMOVD        X0, AX
	MOVW         AX, 260(DI)(CX*2)
	ADDQ         $16, R8
	INCQ         CX
	CMPQ         CX, $16
	JLT          bsum
	JMP          next

zeroblock:
	VXORPS  Y0, Y0, Y0
	VMOVDQU Y0, 0(DI)
	VMOVDQU Y0, 32(DI)
	VMOVDQU Y0, 64(DI)
	VMOVDQU Y0, 96(DI)
	VMOVDQU Y0, 128(DI)
	VMOVDQU Y0, 160(DI)
	VMOVDQU Y0, 192(DI)
	VMOVDQU Y0, 224(DI)
	VMOVDQU Y0, 256(DI)
	MOVL    $0, 288(DI)
next:
	ADDQ $1024, SI
	ADDQ $292, DI
	DECQ R9
	JNZ  block
	VZEROUPPER
	RET
