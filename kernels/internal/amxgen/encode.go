package amxgen

import (
	"fmt"
	"strings"
)

// This file encodes the AMX instructions the kernel uses. The Go
// assembler has no AMX mnemonics, so each one is written as BYTE
// directives with its Intel syntax in a comment.
//
// Every AMX instruction is VEX-encoded (Intel SDM vol. 2, 2.3), in the
// form VEX.128.pp.0F38.W0 opcode ModRM [SIB] [displacement]:
//
//	C4           the escape byte of the 3-byte VEX prefix
//	R̄X̄B̄mmmmm     bit 7: R̄, the complement of the 4th bit of ModRM.reg
//	             bit 6: X̄, the complement of the 4th bit of SIB.index
//	             bit 5: B̄, the complement of the 4th bit of ModRM.rm or SIB.base
//	             bits 4..0: the opcode map, 00010 = 0F38
//	Wv̄v̄v̄v̄Lpp     bit 7: W = 0
//	             bits 6..3: the complement of an extra register operand
//	             (1111 where there is none)
//	             bit 2: L = 0 (128-bit form)
//	             bits 1..0: pp, the implied legacy prefix (none, 66, F3, F2)
//	opcode       49 (LDTILECFG, TILERELEASE, TILEZERO), 4B (TILELOADD,
//	             TILESTORED), 5E (TDPB*D)
//	ModRM        mod (2 bits) reg (3) rm (3): mod 11 means rm is a register;
//	             otherwise rm 100 means a SIB byte follows, and mod 00, 01, 10
//	             mean no displacement, 8 bits or 32 bits after it
//	SIB          scale (2 bits: ×1, ×2, ×4, ×8) index (3) base (3)
//	displacement little-endian, signed
//
// A worked example, TILELOADD tmm4, [BX + CX*1 + 1024]
// (VEX.128.F2.0F38.W0 4B /r):
//
//	C4  3-byte VEX
//	E2  1110 0010: R̄ = 1 (tmm4 < 8), X̄ = 1 (CX < 8), B̄ = 1 (BX < 8), map 0F38
//	7B  0111 1011: W = 0, v̄v̄v̄v̄ = 1111 (no extra operand), L = 0, pp = 11 (F2)
//	4B  the opcode
//	A4  10 100 100: mod 10 (32-bit displacement), reg = 4 (tmm4), rm = 100 (SIB)
//	0B  00 001 011: scale ×1, index = 1 (CX), base = 3 (BX)
//	00 04 00 00  the displacement 1024 = 0x400, little-endian
//
// which the kernel writes as
//
//	BYTE $0xc4; BYTE $0xe2; BYTE $0x7b; BYTE $0x4b; BYTE $0xa4; BYTE $0x0b; BYTE $0x00; BYTE $0x04; BYTE $0x00; BYTE $0x00	// TILELOADD tmm4, [BX + CX*1 + 1024]

// gpr numbers the general-purpose registers, by their Go assembler names,
// as the x86 encoding does: the low 3 bits go into ModRM or SIB, the 4th
// into VEX's R̄, X̄ or B̄.
var gpr = map[string]int{
	"AX": 0, "CX": 1, "DX": 2, "BX": 3, "SP": 4, "BP": 5, "SI": 6, "DI": 7,
	"R8": 8, "R9": 9, "R10": 10, "R11": 11, "R12": 12, "R13": 13, "R14": 14,
}

// The implied legacy prefixes, VEX.pp.
const (
	ppNone = 0 // NP
	pp66   = 1
	ppF3   = 2
	ppF2   = 3
)

// map0F38 is VEX.mmmmm for the 0F38 opcode map, where the AMX
// instructions are.
const map0F38 = 0b00010

// vex returns the 3-byte VEX prefix of an instruction in map 0F38 with
// W = 0 and L = 0. index and base are the register numbers whose 4th bit
// goes into X̄ and B̄ (the SIB index and base, or for a register-only form
// ModRM.rm and 0); ModRM.reg is always a tile register (0..7), so R̄ = 1.
// vvvv is the extra register operand, 0 where there is none (encoded as
// its complement, 1111).
func vex(index, base, vvvv, pp int) []byte {
	p0 := 1<<7 | map0F38 // R̄ = 1
	if index < 8 {
		p0 |= 1 << 6 // X̄ = 1: index register below R8
	}
	if base < 8 {
		p0 |= 1 << 5 // B̄ = 1: base register below R8
	}
	p1 := (^vvvv&0xF)<<3 | pp // W = 0, L = 0
	return []byte{0xC4, byte(p0), byte(p1)}
}

// modrm packs a ModRM byte.
func modrm(mod, reg, rm int) byte {
	return byte(mod<<6 | (reg&7)<<3 | rm&7)
}

// sib packs a SIB byte; scale is log2 of the index's multiplier.
func sib(scale, index, base int) byte {
	return byte(scale<<6 | (index&7)<<3 | base&7)
}

// memSIB returns ModRM, SIB and displacement for the operand
// [base + index*1 + disp] with tile register t in ModRM.reg: mod 00
// without a displacement, 01 with one that fits in a signed byte, 10
// with 32 bits. The generator uses only the forms it needs: base BP or
// R13 (whose low bits 101 under mod 00 mean "no base") and index SP or
// R12 (low bits 100: "no index" unless X̄ says otherwise) are refused.
func memSIB(t int, base, index string, disp int) []byte {
	b, i := gpr[base], gpr[index]
	if b&7 == 5 || i&7 == 4 {
		panic(fmt.Sprintf("amxgen: [%s + %s*1] is not encoded here", base, index))
	}
	const rmSIB = 0b100 // ModRM.rm: a SIB byte follows
	switch {
	case disp == 0:
		return []byte{modrm(0b00, t, rmSIB), sib(0, i, b)}
	case -128 <= disp && disp < 128:
		return []byte{modrm(0b01, t, rmSIB), sib(0, i, b), byte(disp)}
	default:
		d := uint32(int32(disp))
		return []byte{modrm(0b10, t, rmSIB), sib(0, i, b),
			byte(d), byte(d >> 8), byte(d >> 16), byte(d >> 24)}
	}
}

// inst is one instruction as bytes, with its Intel syntax.
type inst struct {
	code  []byte
	intel string
}

// String is the instruction as a line of Go assembly (without the
// newline): a tab, the BYTE directives, a tab and the Intel syntax.
func (in inst) String() string {
	var s strings.Builder
	s.WriteString("\t")
	for i, c := range in.code {
		if i > 0 {
			s.WriteString("; ")
		}
		fmt.Fprintf(&s, "BYTE $0x%02x", c)
	}
	s.WriteString("\t// " + in.intel)
	return s.String()
}

func cat(parts ...[]byte) []byte {
	var c []byte
	for _, p := range parts {
		c = append(c, p...)
	}
	return c
}

// tileloadd loads tile t, 16 rows of 64 bytes, row r from
// base + disp + r·index: TILELOADD tmm, sibmem = VEX.128.F2.0F38.W0 4B /r.
func tileloadd(t int, base, index string, disp int) inst {
	return inst{
		cat(vex(gpr[index], gpr[base], 0, ppF2), []byte{0x4B}, memSIB(t, base, index, disp)),
		fmt.Sprintf("TILELOADD tmm%d, [%s + %s*1 + %d]", t, base, index, disp),
	}
}

// tilestored stores tile t the same way: TILESTORED sibmem, tmm =
// VEX.128.F3.0F38.W0 4B /r.
func tilestored(t int, base, index string, disp int) inst {
	return inst{
		cat(vex(gpr[index], gpr[base], 0, ppF3), []byte{0x4B}, memSIB(t, base, index, disp)),
		fmt.Sprintf("TILESTORED [%s + %s*1 + %d], tmm%d", base, index, disp, t),
	}
}

// tilezero sets tile t to zero: TILEZERO tmm = VEX.128.F2.0F38.W0 49
// 11:rrr:000.
func tilezero(t int) inst {
	return inst{
		cat(vex(0, 0, 0, ppF2), []byte{0x49, modrm(0b11, t, 0)}),
		fmt.Sprintf("TILEZERO tmm%d", t),
	}
}

// tdp is TDPB<kind>D d, a, b: d += a·b, a's bytes and b's signed (S) or
// unsigned (U) as kind says (BSSD, BSUD, BUSD, BUUD), summed in groups of
// 4 into int32. VEX.128.pp.0F38.W0 5E 11:rrr:bbb, with d in ModRM.reg, a
// in ModRM.rm and b in VEX.vvvv; pp tells the kinds apart (F2, F3, 66,
// none).
func tdp(kind string, d, a, b int) inst {
	pp := map[string]int{"BSSD": ppF2, "BSUD": ppF3, "BUSD": pp66, "BUUD": ppNone}[kind]
	return inst{
		cat(vex(0, a, b, pp), []byte{0x5E, modrm(0b11, d, a)}),
		fmt.Sprintf("TDP%s tmm%d, tmm%d, tmm%d", kind, d, a, b),
	}
}

// ldtilecfg loads the tile configuration (64 bytes) at [AX]: LDTILECFG
// m512 = VEX.128.NP.0F38.W0 49 /0, here mod 00, reg 000, rm 000 (AX).
var ldtilecfg = inst{
	cat(vex(0, gpr["AX"], 0, ppNone), []byte{0x49, modrm(0b00, 0, gpr["AX"])}),
	"LDTILECFG [AX]",
}

// tilerelease returns the tile registers to their initial state:
// TILERELEASE = VEX.128.NP.0F38.W0 49 C0.
var tilerelease = inst{
	cat(vex(0, 0, 0, ppNone), []byte{0x49, 0xC0}),
	"TILERELEASE",
}
