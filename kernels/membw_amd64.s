//go:build !purego

#include "textflag.h"

// func streamReadAVX2(b []byte) uint64
// Streams b (a multiple of 128 bytes) through 4 independent 256-bit
// accumulators, so that only memory bandwidth limits it.
TEXT ·streamReadAVX2(SB), NOSPLIT, $0-32
	MOVQ b_base+0(FP), SI
	MOVQ b_len+8(FP), CX
	VPXOR Y0, Y0, Y0
	VPXOR Y1, Y1, Y1
	VPXOR Y2, Y2, Y2
	VPXOR Y3, Y3, Y3
loop:
	VPADDQ (SI), Y0, Y0
	VPADDQ 32(SI), Y1, Y1
	VPADDQ 64(SI), Y2, Y2
	VPADDQ 96(SI), Y3, Y3
	ADDQ $128, SI
	SUBQ $128, CX
	JNZ  loop
	VPADDQ Y1, Y0, Y0
	VPADDQ Y3, Y2, Y2
	VPADDQ Y2, Y0, Y0
	VMOVQ  X0, AX
	VZEROUPPER
	MOVQ AX, ret+24(FP)
	RET
