package kernels

import "encoding/binary"

// streamReadGo touches every byte of b, 8 bytes at a time into 4
// independent sums, and returns a checksum.
func streamReadGo(b []byte) uint64 {
	var s [4]uint64
	i := 0
	for ; i+32 <= len(b); i += 32 {
		s[0] += binary.LittleEndian.Uint64(b[i:])
		s[1] += binary.LittleEndian.Uint64(b[i+8:])
		s[2] += binary.LittleEndian.Uint64(b[i+16:])
		s[3] += binary.LittleEndian.Uint64(b[i+24:])
	}
	for ; i < len(b); i++ {
		s[0] += uint64(b[i])
	}
	return s[0] + s[1] + s[2] + s[3]
}
