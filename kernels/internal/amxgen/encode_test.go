package amxgen

import "testing"

// The encodings below were worked out by hand from the Intel SDM (the
// first is the worked example in encode.go) and agree with GNU objdump's
// disassembly of the bytes.
func TestEncodings(t *testing.T) {
	for _, c := range []struct {
		in   inst
		want string
	}{
		{tileloadd(4, "BX", "CX", 1024), "\tBYTE $0xc4; BYTE $0xe2; BYTE $0x7b; BYTE $0x4b; BYTE $0xa4; BYTE $0x0b; BYTE $0x00; BYTE $0x04; BYTE $0x00; BYTE $0x00\t// TILELOADD tmm4, [BX + CX*1 + 1024]"},
		// no displacement: mod 00
		{tileloadd(6, "SI", "CX", 0), "\tBYTE $0xc4; BYTE $0xe2; BYTE $0x7b; BYTE $0x4b; BYTE $0x34; BYTE $0x0e\t// TILELOADD tmm6, [SI + CX*1 + 0]"},
		// an 8-bit displacement (mod 01), negative; index R9 clears X̄
		{tileloadd(1, "DI", "R9", -64), "\tBYTE $0xc4; BYTE $0xa2; BYTE $0x7b; BYTE $0x4b; BYTE $0x4c; BYTE $0x0f; BYTE $0xc0\t// TILELOADD tmm1, [DI + R9*1 + -64]"},
		// base R8 clears B̄; F3 (pp 10) for the store
		{tilestored(3, "R8", "CX", 11392), "\tBYTE $0xc4; BYTE $0xc2; BYTE $0x7a; BYTE $0x4b; BYTE $0x9c; BYTE $0x08; BYTE $0x80; BYTE $0x2c; BYTE $0x00; BYTE $0x00\t// TILESTORED [R8 + CX*1 + 11392], tmm3"},
		{tilezero(2), "\tBYTE $0xc4; BYTE $0xe2; BYTE $0x7b; BYTE $0x49; BYTE $0xd0\t// TILEZERO tmm2"},
		// vvvv = ~6 = 1001, pp 01 (66): 0 1001 0 01 = 0x49
		{tdp("BUSD", 0, 4, 6), "\tBYTE $0xc4; BYTE $0xe2; BYTE $0x49; BYTE $0x5e; BYTE $0xc4\t// TDPBUSD tmm0, tmm4, tmm6"},
		{tdp("BSSD", 3, 5, 7), "\tBYTE $0xc4; BYTE $0xe2; BYTE $0x43; BYTE $0x5e; BYTE $0xdd\t// TDPBSSD tmm3, tmm5, tmm7"},
		{ldtilecfg, "\tBYTE $0xc4; BYTE $0xe2; BYTE $0x78; BYTE $0x49; BYTE $0x00\t// LDTILECFG [AX]"},
		{tilerelease, "\tBYTE $0xc4; BYTE $0xe2; BYTE $0x78; BYTE $0x49; BYTE $0xc0\t// TILERELEASE"},
	} {
		if got := c.in.String(); got != c.want {
			t.Errorf("%s:\n got %q\nwant %q", c.in.intel, got, c.want)
		}
	}
}
