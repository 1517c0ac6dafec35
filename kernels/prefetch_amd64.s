//go:build !purego

#include "textflag.h"

// func prefetchRows(p unsafe.Pointer, stride, rows, n int)
// PREFETCHT0 (into every cache level) each 64-byte line that holds a byte
// of [p + r·stride, p + r·stride + n), r in [0, rows). A prefetch never
// faults, so the lines may lie anywhere.
TEXT ·prefetchRows(SB), NOSPLIT, $0-32
	MOVQ p+0(FP), SI
	MOVQ stride+8(FP), R8
	MOVQ rows+16(FP), CX
	MOVQ n+24(FP), DX
	TESTQ CX, CX
	JLE  done
	TESTQ DX, DX
	JLE  done
	// The line offsets run from p's line start to the last byte's line.
	LEAQ -1(DX), DX
row:
	MOVQ SI, AX
	ANDQ $-64, AX       // line of the row's first byte
	LEAQ (SI)(DX*1), BX // the row's last byte
line:
	PREFETCHT0 (AX)
	ADDQ $64, AX
	CMPQ AX, BX
	JLE  line
	ADDQ R8, SI
	DECQ CX
	JNZ  row
done:
	RET
