package tokenizer

import "unicode/utf8"

// StreamDecoder turns tokens into text one token at a time, as they are
// generated. A token's bytes can end in the middle of a UTF-8 character (an
// emoji is often two or three tokens), so printing each piece as it comes
// would show broken characters. StreamDecoder holds back an unfinished
// character until the token that completes it arrives.
//
// Concatenating everything Add and Flush return gives exactly
// Decode(all ids). Bytes that can never start or continue a valid character
// are passed through as they are, so nothing is lost.
//
// A StreamDecoder belongs to one sequence; it is not safe for concurrent use.
type StreamDecoder struct {
	t       *Tokenizer
	pending []byte // the start of a character whose remaining bytes have not arrived
}

// NewStreamDecoder returns a decoder with nothing pending.
func (t *Tokenizer) NewStreamDecoder() *StreamDecoder { return &StreamDecoder{t: t} }

// Add appends token id and returns the text that is now complete.
func (d *StreamDecoder) Add(id int32) string {
	buf := append(d.pending, d.t.TokenPiece(id)...)
	keep := incompleteTail(buf)
	out := string(buf[:len(buf)-keep])
	d.pending = append(d.pending[:0], buf[len(buf)-keep:]...)
	return out
}

// Flush returns whatever is still held back (an unfinished character, as
// raw bytes) and resets the decoder.
func (d *StreamDecoder) Flush() string {
	out := string(d.pending)
	d.pending = d.pending[:0]
	return out
}

// incompleteTail returns how many bytes at the end of b are the beginning of
// a UTF-8 character that more bytes could still complete (0 to 3).
func incompleteTail(b []byte) int {
	// A character is at most 4 bytes, so an unfinished one starts within
	// the last 3 bytes. Look for its lead byte.
	for k := 1; k <= 3 && k <= len(b); k++ {
		c := b[len(b)-k]
		if c&0xC0 == 0x80 {
			continue // a continuation byte: the lead byte is further back
		}
		need := 0
		switch {
		case c >= 0xF0 && c <= 0xF4:
			need = 4
		case c >= 0xE0 && c <= 0xEF:
			need = 3
		case c >= 0xC2 && c <= 0xDF:
			need = 2
		}
		if need <= k {
			return 0 // ASCII, an invalid lead byte, or a complete character
		}
		// Hold back only what could still become valid: check the bytes
		// present against a completion with the smallest valid tail.
		if utf8.FullRune(b[len(b)-k:]) {
			return 0 // already decides as invalid; waiting will not help
		}
		return k
	}
	return 0
}
