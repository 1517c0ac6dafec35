package tokenizer

import (
	"sync"
	"unicode"
)

// The pre-tokenizer asks one question about each code point: is it a letter
// (\p{L}), a number (\p{N}), whitespace (\s), or something else? The answers
// must be llama.cpp's, not those of some regex engine, because the
// vocabulary's goldens come from llama.cpp. llama.cpp answers from its own
// table (src/unicode-data.cpp, generated from Python's `regex` module):
//
//   - letter: Unicode general category L* (Lu, Ll, Lt, Lm, Lo). Combining
//     marks (M*) are NOT letters, so "e\u0301" splits between 'e' and the
//     accent.
//   - number: category N* (Nd, Nl, No): '²', '½', Roman numerals count.
//   - whitespace: the Unicode White_Space property: \t \n \v \f \r, space,
//     U+0085, U+00A0 (no-break space), U+1680, U+2000..U+200A, U+2028 (line
//     separator), U+2029, U+202F, U+205F, U+3000. Not U+001C..U+001F, and not
//     the zero-width characters U+200B..U+200D (category Cf, so "other").
//
// Go's unicode package has the same categories and the same White_Space
// list. llama.cpp's table is Unicode 15.1 and Go's is 15.0; the only 15.1
// addition that changes an answer is CJK Unified Ideographs Extension I
// (U+2EBF0..U+2EE5D, letters), patched in below.

// charClass is a code point's class for the qwen2 split.
type charClass uint8

const (
	classOther  charClass = iota // punctuation, symbols, marks, controls, unassigned
	classLetter                  // \p{L}
	classNumber                  // \p{N}
	classSpace                   // \s (White_Space)
)

// bmpClasses caches the class of every code point below U+10000 (64 KiB),
// built on first use; code points above are classified on the fly.
var (
	bmpClasses     [0x10000]charClass
	bmpClassesOnce sync.Once
)

func buildBMPClasses() {
	for r := range rune(0x10000) {
		bmpClasses[r] = computeClass(r)
	}
}

// computeClass classifies one code point the way llama.cpp's flag table does.
func computeClass(r rune) charClass {
	switch {
	case r < 0 || r > unicode.MaxRune:
		return classOther // llama.cpp: UNDEFINED flags
	case unicode.Is(unicode.White_Space, r):
		return classSpace
	case unicode.IsLetter(r), 0x2EBF0 <= r && r <= 0x2EE5D:
		return classLetter
	case unicode.IsNumber(r):
		return classNumber
	}
	return classOther
}

// classOf returns the class of code point r. buildBMPClasses must have run.
func classOf(r rune) charClass {
	if uint32(r) < 0x10000 {
		return bmpClasses[r]
	}
	return computeClass(r)
}

// decodeLenient reads one code point from s the way llama.cpp's
// unicode_cpt_from_utf8 does. It is more permissive than Go's UTF-8 decoder:
// it only checks the lead byte and that enough continuation bytes follow, so
// overlong forms and surrogates decode to their (odd) code points. A byte that
// starts no valid sequence is one code point U+FFFD of size 1, exactly as
// llama.cpp substitutes it. The bytes themselves are never changed: the
// tokenizer keeps the raw bytes and only uses r to classify them.
func decodeLenient(s string) (r rune, size int) {
	b0 := s[0]
	switch {
	case b0 < 0x80:
		return rune(b0), 1
	case b0&0x40 == 0: // a lone continuation byte
		return 0xFFFD, 1
	case b0&0x20 == 0: // 110xxxxx
		if len(s) < 2 || s[1]&0xC0 != 0x80 {
			return 0xFFFD, 1
		}
		return rune(b0&0x1F)<<6 | rune(s[1]&0x3F), 2
	case b0&0x10 == 0: // 1110xxxx
		if len(s) < 3 || s[1]&0xC0 != 0x80 || s[2]&0xC0 != 0x80 {
			return 0xFFFD, 1
		}
		return rune(b0&0x0F)<<12 | rune(s[1]&0x3F)<<6 | rune(s[2]&0x3F), 3
	case b0&0x08 == 0: // 11110xxx
		if len(s) < 4 || s[1]&0xC0 != 0x80 || s[2]&0xC0 != 0x80 || s[3]&0xC0 != 0x80 {
			return 0xFFFD, 1
		}
		return rune(b0&0x07)<<18 | rune(s[1]&0x3F)<<12 | rune(s[2]&0x3F)<<6 | rune(s[3]&0x3F), 4
	}
	return 0xFFFD, 1 // 11111xxx
}
