package tokenizer

// Byte-level BPE (GPT-2's scheme) never sees raw bytes. Every byte 0..255 is
// first replaced by one printable Unicode character, so that a vocabulary
// entry is always a printable string: the printable ASCII and Latin-1 bytes
// stand for themselves ('A' is "A"), and the 68 others (control bytes, space,
// DEL, NBSP, soft hyphen, ...) are moved to U+0100 and up, in byte order.
// That is why a space shows up as "Ġ" (U+0120) and a newline as "Ċ" (U+010A)
// in the vocabulary.
//
// The mapping is a bijection between the 256 bytes and 256 characters, so a
// token's text can be turned back into the exact bytes it stands for.

// byteToRune[b] is the character that stands for byte b.
var byteToRune [256]rune

// runeToByte[r] is the byte that character r stands for, or -1. Every mapped
// character is below 0x100+68 = 0x144.
var runeToByte [0x144]int16

func init() {
	for i := range runeToByte {
		runeToByte[i] = -1
	}
	printable := func(b int) bool {
		return ('!' <= b && b <= '~') || (0xA1 <= b && b <= 0xAC) || (0xAE <= b && b <= 0xFF)
	}
	next := rune(0x100)
	for b := 0; b < 256; b++ {
		r := rune(b)
		if !printable(b) {
			r = next
			next++
		}
		byteToRune[b] = r
		runeToByte[r] = int16(b)
	}
}

// byteLevelDecode turns a vocabulary string of mapped characters back into
// the bytes it stands for. ok is false when the string holds a character
// outside the mapping (added tokens such as "<｜User｜>" are stored as plain
// text and are not byte-level strings).
func byteLevelDecode(dst []byte, s string) (out []byte, ok bool) {
	for _, r := range s {
		if r < 0 || int(r) >= len(runeToByte) || runeToByte[r] < 0 {
			return dst, false
		}
		dst = append(dst, byte(runeToByte[r]))
	}
	return dst, true
}
