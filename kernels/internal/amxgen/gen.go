// Package amxgen generates kernels/amx_amd64.s, the Q6_K × Q8_K matrix
// product on AMX-INT8 tiles. The Go assembler has no AMX mnemonics, so
// the tile instructions are written as BYTE directives (encode.go), each
// with its Intel syntax in a comment; the rest is ordinary Go assembly,
// kept here as text, with the regular parts (constant tables, the
// unrolled transpose and loads, the tile loop) written out by loops.
//
// Regenerate the file with
//
//	go generate ./kernels
//
// (the //go:generate line is in kernels/doc.go; it runs
// kernels/internal/amxgen/cmd/amxgen). TestAMXGenerated in package
// kernels checks that the committed file is exactly Source().
package amxgen

import (
	"bytes"
	"fmt"
)

// Source returns the whole text of kernels/amx_amd64.s.
func Source() []byte {
	var g gen
	g.text(preamble)
	g.scalePerm()
	g.text(constsAndMacros)
	g.transpose16()
	g.text(load16Head)
	g.load16()
	g.text(packAndQ6KHead)
	g.line(ldtilecfg.String())
	g.text(q6kUnpack)
	g.tileProducts()
	g.text(q6kAccumulate)
	g.line(tilerelease.String())
	g.text("\tVZEROUPPER\n\tRET\n")
	return g.buf.Bytes()
}

// gen accumulates the output.
type gen struct{ buf bytes.Buffer }

// text writes s as it is.
func (g *gen) text(s string) { g.buf.WriteString(s) }

// line writes s and a newline.
func (g *gen) line(s string) { g.buf.WriteString(s + "\n") }

// linef writes a formatted line.
func (g *gen) linef(format string, args ...any) {
	fmt.Fprintf(&g.buf, format+"\n", args...)
}

// scalePerm writes amxScalePerm, the VPERMW indexes: 8 vectors of 32
// words, vector c (values 32c..32c+31 of a block) taking word 2c (the
// scale of values 32c..32c+15) for its first 16 words and 2c+1 for the
// last 16. Each DATA line holds 4 words.
func (g *gen) scalePerm() {
	for c := range 8 {
		for q := range 8 {
			var val uint64
			for i := range 4 {
				word := 2 * c
				if q*4+i >= 16 {
					word++
				}
				val |= uint64(word) << (16 * i)
			}
			g.linef("DATA amxScalePerm<>+%d(SB)/8, $0x%016x", c*64+q*8, val)
		}
	}
	g.line("GLOBL amxScalePerm<>(SB), RODATA|NOPTR, $512")
}

// transpose16 writes the body of the TRANSPOSE16(base) macro (its comment
// in constsAndMacros explains the three stages).
func (g *gen) transpose16() {
	// Stage 1: rows 2i and 2i+1, dwords interleaved, into Z16+2i, Z17+2i.
	for i := range 8 {
		g.linef("\tVPUNPCKLDQ Z%d, Z%d, Z%d \\", 2*i+1, 2*i, 16+2*i)
		g.linef("\tVPUNPCKHDQ Z%d, Z%d, Z%d \\", 2*i+1, 2*i, 17+2*i)
	}
	// Stage 2: qwords of those, rows 4a..4a+3 into Z4a..Z4a+3.
	for a := range 4 {
		t, u := 16+4*a, 4*a
		g.linef("\tVPUNPCKLQDQ Z%d, Z%d, Z%d \\", t+2, t, u)
		g.linef("\tVPUNPCKHQDQ Z%d, Z%d, Z%d \\", t+2, t, u+1)
		g.linef("\tVPUNPCKLQDQ Z%d, Z%d, Z%d \\", t+3, t+1, u+2)
		g.linef("\tVPUNPCKHQDQ Z%d, Z%d, Z%d \\", t+3, t+1, u+3)
	}
	// Stage 3: column c's four 128-bit lanes gathered, columns c, 4+c,
	// 8+c and 12+c stored.
	for c := range 4 {
		g.linef("\tVSHUFI32X4 $0x44, Z%d, Z%d, Z16 \\", 4+c, c)
		g.linef("\tVSHUFI32X4 $0xEE, Z%d, Z%d, Z17 \\", 4+c, c)
		g.linef("\tVSHUFI32X4 $0x44, Z%d, Z%d, Z18 \\", 12+c, 8+c)
		g.linef("\tVSHUFI32X4 $0xEE, Z%d, Z%d, Z19 \\", 12+c, 8+c)
		g.line("\tVSHUFI32X4 $0x88, Z18, Z16, Z20 \\")
		g.line("\tVSHUFI32X4 $0xDD, Z18, Z16, Z21 \\")
		g.line("\tVSHUFI32X4 $0x88, Z19, Z17, Z22 \\")
		g.line("\tVSHUFI32X4 $0xDD, Z19, Z17, Z23 \\")
		g.linef("\tVMOVDQU32 Z20, %d(base) \\", 64*c)
		g.linef("\tVMOVDQU32 Z21, %d(base) \\", 64*(4+c))
		g.linef("\tVMOVDQU32 Z22, %d(base) \\", 64*(8+c))
		g.linef("\tVMOVDQU32 Z23, %d(base)%s", 64*(12+c), continued(c < 3))
	}
}

// load16 writes the body of the LOAD16(base, stride) macro after its
// first line: 16 rows into Z0..Z15.
func (g *gen) load16() {
	for i := range 16 {
		g.linef("\tVMOVDQU32 (R8), Z%d \\", i)
		g.linef("\tADDQ stride, R8%s", continued(i < 15))
	}
}

// continued is the line continuation of a macro body: " \" on every line
// but the last.
func continued(more bool) string {
	if more {
		return ` \`
	}
	return ""
}

// tileProducts writes the tile part of amxQ6K's pair loop: C tiles 0..3
// zeroed, then for each of a block's 4 k-steps the A tiles (lo in tmm4,
// hi in tmm5, from the scratch at BX) and the two token tiles' B tiles
// (tmm6 from SI, tmm7 from DI) loaded, 64 bytes a row (CX), and the four
// products accumulated; the C tiles are then stored to the scratch at
// 8320 (lo, hi of the first token tile, lo, hi of the second).
func (g *gen) tileProducts() {
	for t := range 4 {
		g.line(tilezero(t).String())
	}
	for k := range 4 {
		g.line(tileloadd(4, "BX", "CX", 1024*k).String())
		g.line(tileloadd(5, "BX", "CX", 4096+1024*k).String())
		g.line(tileloadd(6, "SI", "CX", 1024*k).String())
		g.line(tileloadd(7, "DI", "CX", 1024*k).String())
		g.line(tdp("BUSD", 0, 4, 6).String()) // Clo, first tile
		g.line(tdp("BSSD", 1, 5, 6).String()) // Chi, first tile
		g.line(tdp("BUSD", 2, 4, 7).String()) // Clo, second tile
		g.line(tdp("BSSD", 3, 5, 7).String()) // Chi, second tile
	}
	for t := range 4 {
		g.line(tilestored(t, "BX", "CX", 8320+1024*t).String())
	}
}

// The fixed text, in the order Source writes it.

// preamble: the generated-code header (https://go.dev/s/generatedcode:
// a line matching ^// Code generated .* DO NOT EDIT\.$ before the first
// non-comment text), build tag, the explanation of the kernel, the tile
// configuration, and the comment of amxScalePerm.
const preamble = `// Code generated by kernels/internal/amxgen; DO NOT EDIT.
// Edit the generator, then run: go generate ./kernels

//go:build !purego

#include "textflag.h"

// Q6_K × Q8_K matrix products with AMX-INT8 (Intel's tile unit: TDPB*D
// multiplies a 16×64 tile of bytes by a 64×16 one and adds the 16×16
// int32 products to a third tile). Generated by kernels/internal/amxgen
// (go generate ./kernels); the AMX instructions are written as bytes,
// each with its Intel syntax alongside.
//
// Tiles:
//
//   - A (16 weight rows × 64 values): for each 256-value block of the 16
//     rows, the weights are unpacked and multiplied by their group
//     scales, w = (q - 32)·scale (q 0..63, scale -128..127, so |w| <= 4096:
//     16 bits), and split into bytes w = 256·hi + lo (lo 0..255 unsigned,
//     hi -16..16 signed). Each run of 64 values (a "k-step", 4 per block)
//     of lo and of hi is an A tile, rows as they come.
//   - B (64 values × 16 tokens): the tokens' Q8_K values, rearranged once
//     per product by amxPackQ8K so that B[r][4t+j] = a_t[64k + 4r + j]
//     (4 consecutive values of a token side by side, tokens across: the
//     layout TDPB*D reads its second operand in), a 16×16 transpose of
//     32-bit words per k-step. The 16 tokens' block scales da follow.
//   - C (16 rows × 16 tokens, int32): over the 4 k-steps of a block,
//        Clo += Alo·B (TDPBUSD: unsigned × signed)
//        Chi += Ahi·B (TDPBSSD: signed × signed)
//     so that isum = 256·Chi + Clo = sum (q-32)·scale·a for the block,
//     exactly the reference's integer (ref_dot.go).
//
// Then per (row, token): acc += float32(float32(da·dw) · float32(isum)),
// the reference's float operations in the reference's order (blocks one
// after the other). Tokens go two tiles (32 tokens) at a time: 4 C tiles,
// 2 A tiles and 2 B tiles fill the 8 tile registers.

// Tile configuration: palette 1, tiles 0..7 all 16 rows × 64 bytes.
DATA amxCfg<>+0(SB)/8, $1
DATA amxCfg<>+8(SB)/8, $0
DATA amxCfg<>+16(SB)/8, $0x0040004000400040
DATA amxCfg<>+24(SB)/8, $0x0040004000400040
DATA amxCfg<>+32(SB)/8, $0
DATA amxCfg<>+40(SB)/8, $0
DATA amxCfg<>+48(SB)/8, $0x1010101010101010
DATA amxCfg<>+56(SB)/8, $0
GLOBL amxCfg<>(SB), RODATA|NOPTR, $64

// VPERMW indexes: vector c (values 32c..32c+31) takes scale 2c for its
// first 16 words and 2c+1 for the last 16.

`

// constsAndMacros: amxConst and the UNPACK, WCHUNK macros, and the head
// of TRANSPOSE16.
const constsAndMacros = `
DATA amxConst<>+0(SB)/8, $0x0f0f0f0f0f0f0f0f
DATA amxConst<>+8(SB)/8, $0x3030303030303030
DATA amxConst<>+16(SB)/8, $0x0004000400040004
DATA amxConst<>+24(SB)/8, $0x0002000200020002
DATA amxConst<>+32(SB)/8, $0x0000000000000000
DATA amxConst<>+40(SB)/8, $0x0002000200020002
DATA amxConst<>+48(SB)/8, $0x0020002000200020
GLOBL amxConst<>(SB), RODATA|NOPTR, $56

// UNPACK: the 256 values q of the Q6_K block at SI as bytes in Z0..Z3
// (values 0..63, 64..127, 128..191, 192..255), as in q6k_amd64.s.
#define UNPACK \
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
	VPTERNLOGD      $0xD8, Z16, Z9, Z3

// WCHUNK(src, perm, off): 32 values (bytes in src, a Y register) →
// w = (q-32)·scale as words → lo bytes to off(DI), hi bytes to
// 4096+off(DI).
#define WCHUNK(src, perm, off) \
	VPMOVZXBW src, Z4 \
	VPSUBW    Z15, Z4, Z4 \
	VPERMW    Z8, perm, Z5 \
	VPMULLW   Z5, Z4, Z4 \
	VPMOVWB   Z4, off(DI) \
	VPSRAW    $8, Z4, Z4 \
	VPMOVWB   Z4, 4096+off(DI)

// TRANSPOSE16(base): Z0..Z15 hold 16 rows of 16 dwords; row j of the
// transpose (dword j of every row) is stored at base + 64·j. Stage 1
// interleaves dwords of row pairs, stage 2 qwords of those, so that
// register 4a+c holds, in 128-bit lane L, column 4L+c of rows 4a..4a+3;
// stage 3 gathers the four lanes of each column.
#define TRANSPOSE16(base) \
`

// load16Head: the head of LOAD16.
const load16Head = `
// LOAD16(base, stride): Z0..Z15 = the 64 bytes at base + i·stride.
#define LOAD16(base, stride) \
	MOVQ base, R8 \
`

// packAndQ6KHead: amxPackQ8K, and amxQ6K up to its LDTILECFG.
const packAndQ6KHead = `
// func amxPackQ8K(src *byte, arb, nb int, dst *byte)
// Packs 16 tokens' Q8_K rows (src, arb bytes apart) into B tiles: for
// block b, dst + 4160·b holds the 4 k-steps' tiles (1024 bytes each) and
// then the 16 tokens' da (float32).
TEXT ·amxPackQ8K(SB), NOSPLIT, $0-32
	MOVQ src+0(FP), SI
	MOVQ arb+8(FP), R11
	MOVQ nb+16(FP), R9
	MOVQ dst+24(FP), DI
	LEAQ 4(SI), AX             // block 0's values
pblock:
	MOVQ  $4, CX
	MOVQ  DI, DX
pstep:
	LOAD16(AX, R11)
	TRANSPOSE16(DX)
	ADDQ  $64, AX
	ADDQ  $1024, DX
	DECQ  CX
	JNZ   pstep
	// the 16 tokens' da: at offset -260 from the block's last k-step's end
	LEAQ  -260(AX), R8
	XORQ  CX, CX
pda:
	MOVL  (R8), R10
	MOVL  R10, 4096(DI)(CX*4)
	ADDQ  R11, R8
	INCQ  CX
	CMPQ  CX, $16
	JLT   pda
	ADDQ  $36, AX              // to the next block's values (292 - 256)
	ADDQ  $4160, DI
	DECQ  R9
	JNZ   pblock
	VZEROUPPER
	RET

// func amxQ6K(w *byte, wrb, nb int, packed *byte, ntiles int, dst *float32, dstStride, n int, scratch *byte)
// 16 weight rows (w, wrb bytes apart, nb blocks) × the n tokens packed by
// amxPackQ8K into ntiles (even) tiles of 16 tokens, (tile, block) at
// packed + 4160·(tile·nb + block). Row m, token t goes to dst + 4·(t·dstStride + m).
//
// Scratch (amxScratchBytes): A tiles at 0 (lo k-steps 0..3, hi at 4096),
// the rows' dw as float32 at 8192 and as halves at 8256, the stored C
// tiles at 8320 (tile pair: lo, hi, lo, hi, 1 KiB each), and from 12416
// the accumulators acc[m][t] (16 rows of 16·ntiles float32).
TEXT ·amxQ6K(SB), NOSPLIT, $0-72
	LEAQ amxCfg<>(SB), AX
`

// q6kUnpack: amxQ6K from LDTILECFG to the tile products: the
// accumulators zeroed, and a block's weights unpacked into A tiles.
const q6kUnpack = `	MOVQ scratch+64(FP), BX
	MOVQ ntiles+32(FP), R12
	SHLQ $6, R12               // bytes of one accumulator row (16 tokens × 4 bytes per tile)

	// acc = 0
	VPXORD Z0, Z0, Z0
	LEAQ   12416(BX), DI
	MOVQ   R12, CX
	SHLQ   $4, CX
	SHRQ   $6, CX              // 16 rows × ntiles tiles of 64 bytes
zero:
	VMOVDQU32 Z0, (DI)
	ADDQ      $64, DI
	DECQ      CX
	JNZ       zero

	XORQ R9, R9                // b: block
block:
	// 1. Unpack, scale and split the 16 rows' block b into the A tiles.
	VPBROADCASTQ    amxConst<>+0(SB), Z16
	VPBROADCASTQ    amxConst<>+8(SB), Z17
	VPBROADCASTQ    amxConst<>+16(SB), Y18
	VPBROADCASTQ    amxConst<>+24(SB), Y9
	VINSERTI64X4    $1, Y9, Z18, Z18
	VPBROADCASTQ    amxConst<>+32(SB), Y19
	VPBROADCASTQ    amxConst<>+40(SB), Y9
	VINSERTI64X4    $1, Y9, Z19, Z19
	VPBROADCASTQ    amxConst<>+48(SB), Z15
	VMOVDQU64       amxScalePerm<>+0(SB), Z24
	VMOVDQU64       amxScalePerm<>+64(SB), Z25
	VMOVDQU64       amxScalePerm<>+128(SB), Z26
	VMOVDQU64       amxScalePerm<>+192(SB), Z27
	VMOVDQU64       amxScalePerm<>+256(SB), Z28
	VMOVDQU64       amxScalePerm<>+320(SB), Z29
	VMOVDQU64       amxScalePerm<>+384(SB), Z30
	VMOVDQU64       amxScalePerm<>+448(SB), Z31
	MOVQ  R9, SI
	IMULQ $210, SI
	ADDQ  w+0(FP), SI          // row 0's block b
	MOVQ  BX, DI               // row m's 64 bytes in each A tile
	XORQ  CX, CX               // m
row:
	UNPACK
	VPMOVSXBW 192(SI), Y8      // the 16 group scales as words
	MOVWLZX   208(SI), AX
	MOVW      AX, 8256(BX)(CX*2)
	WCHUNK(Y0, Z24, 0)
	VEXTRACTI64X4 $1, Z0, Y6
	WCHUNK(Y6, Z25, 32)
	WCHUNK(Y1, Z26, 1024)
	VEXTRACTI64X4 $1, Z1, Y6
	WCHUNK(Y6, Z27, 1056)
	WCHUNK(Y2, Z28, 2048)
	VEXTRACTI64X4 $1, Z2, Y6
	WCHUNK(Y6, Z29, 2080)
	WCHUNK(Y3, Z30, 3072)
	VEXTRACTI64X4 $1, Z3, Y6
	WCHUNK(Y6, Z31, 3104)
	ADDQ wrb+8(FP), SI
	ADDQ $64, DI
	INCQ CX
	CMPQ CX, $16
	JLT  row
	VCVTPH2PS 8256(BX), Z0
	VMOVUPS   Z0, 8192(BX)     // dw of the 16 rows as float32

	// 2. Token tiles, two at a time.
	MOVQ  R9, SI
	IMULQ $4160, SI
	ADDQ  packed+24(FP), SI    // tile 0's block b
	MOVQ  nb+16(FP), R10
	IMULQ $4160, R10           // from one token tile to the next
	LEAQ  12416(BX), R13       // the pair's accumulators (row 0)
	MOVQ  ntiles+32(FP), R14
pair:
	LEAQ (SI)(R10*1), DI       // the second tile
	MOVQ $64, CX               // tile row stride

`

// q6kAccumulate: amxQ6K after the tile products: the C tiles into the
// float accumulators, and those transposed into dst.
const q6kAccumulate = `
	// 3. acc[m][t] += float32(float32(da·dw) · float32(256·Chi + Clo)).
	VMOVUPS 4096(SI), Z28      // da of the first tile's tokens
	VMOVUPS 4096(DI), Z29      // and of the second's
	LEAQ    8320(BX), AX       // row m of the stored C tiles
	LEAQ    8192(BX), DX       // dw of row m
	MOVQ    R13, R8            // acc row m, this pair
	MOVQ    $16, CX
post:
	VBROADCASTSS (DX), Z4      // dw
	VMOVDQU32    1024(AX), Z1
	VPSLLD       $8, Z1, Z1
	VPADDD       (AX), Z1, Z1
	VCVTDQ2PS    Z1, Z1
	VMULPS       Z4, Z28, Z2   // da·dw
	VMULPS       Z1, Z2, Z2
	VADDPS       (R8), Z2, Z2
	VMOVUPS      Z2, (R8)
	VMOVDQU32    3072(AX), Z1
	VPSLLD       $8, Z1, Z1
	VPADDD       2048(AX), Z1, Z1
	VCVTDQ2PS    Z1, Z1
	VMULPS       Z4, Z29, Z2
	VMULPS       Z1, Z2, Z2
	VADDPS       64(R8), Z2, Z2
	VMOVUPS      Z2, 64(R8)
	ADDQ         $64, AX
	ADDQ         $4, DX
	ADDQ         R12, R8
	DECQ         CX
	JNZ          post
	LEAQ (SI)(R10*2), SI       // the next pair
	ADDQ $128, R13
	SUBQ $2, R14
	JNZ  pair

	INCQ R9
	CMPQ R9, nb+16(FP)
	JLT  block

	// 4. acc (rows × tokens) to dst (tokens × rows), a 16×16 transpose per tile.
	LEAQ 12416(BX), R13        // acc, this tile
	MOVQ dst+40(FP), R14       // dst row of the tile's first token
	MOVQ dstStride+48(FP), R11
	SHLQ $2, R11
	MOVQ n+56(FP), R9          // tokens left
out:
	LOAD16(R13, R12)
	LEAQ 8320(BX), DX
	TRANSPOSE16(DX)
	MOVQ R9, CX
	CMPQ CX, $16
	JLE  outrows
	MOVQ $16, CX
outrows:
	VMOVDQU32 (DX), Z0
	VMOVUPS   Z0, (R14)
	ADDQ      $64, DX
	ADDQ      R11, R14
	DECQ      R9
	DECQ      CX
	JNZ       outrows
	ADDQ $64, R13
	TESTQ R9, R9
	JG   out
`
