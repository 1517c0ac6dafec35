package tokenizer

// The qwen2 pre-tokenizer cuts text into words before any merge runs; BPE
// then works inside each word and never across two. Hugging Face writes the
// rule as one regex, tried alternative by alternative at each position:
//
//	(?i:'s|'t|'re|'ve|'m|'ll|'d)      1. an English contraction
//	|[^\r\n\p{L}\p{N}]?\p{L}+         2. letters, with one optional leading non-letter
//	|\p{N}                            3. ONE digit (so "2024" is four words)
//	| ?[^\s\p{L}\p{N}]+[\r\n]*        4. punctuation/symbols, optional leading space, trailing newlines
//	|\s*[\r\n]+                       5. whitespace up to and including the last line break
//	|\s+(?!\S)                        6. whitespace not followed by a non-space ...
//	|\s+                              7. ... or any whitespace
//
// Go's regexp has no look-ahead (the (?!\S) of rule 6), so this file is a
// hand-written scanner with the same result. llama.cpp gets the same words
// (it runs the regex through std::regex on a text where every non-ASCII code
// point is collapsed to a byte standing for its class). What the rules mean
// in practice:
//
//   - Rule 2 takes its optional first character whatever it is (a space, a
//     tab, a quote, U+3000...) as long as it is no line break and no digit:
//     " world", "\tfoo" and "(abc" are each one word.
//   - Rule 6 is the look-ahead: a run of whitespace followed by something
//     gives its last character to that something, so "a   b" is "a", "  ",
//     " b"; at the end of the text the run stays whole: "a   " is "a", "   ".
//   - Rule 5 ends a whitespace run after its last line break, so spaces that
//     indent the next line start a new word.
//
// Special tokens are cut out before this runs; each piece of text between
// them is split on its own, and its end counts as the end of the text.
//
// Llama 3's pre-tokenizer (GGUF pre = "llama-bpe") is the same regex but
// for rule 3, which takes digits in runs of up to three, \p{N}{1,3}:
// "2024" is the words "202", "4" there, and "2", "0", "2", "4" here. So one
// scanner serves both, told the longest digit run (splitDigits).

// codePoint is one decoded code point of the text being split.
type codePoint struct {
	off int32     // byte offset in the text
	r   rune      // code point (U+FFFD for a byte that starts no sequence)
	cls charClass // letter, number, whitespace or other
}

// decodeCodePoints fills cps with the code points of text, plus a sentinel
// entry whose off is len(text).
func decodeCodePoints(text string, cps []codePoint) []codePoint {
	cps = cps[:0]
	for i := 0; i < len(text); {
		b := text[i]
		if b < 0x80 {
			cps = append(cps, codePoint{int32(i), rune(b), asciiClass[b]})
			i++
			continue
		}
		r, size := decodeLenient(text[i:])
		cps = append(cps, codePoint{int32(i), r, classOf(r)})
		i += size
	}
	return append(cps, codePoint{off: int32(len(text))})
}

// asciiClass is classOf for the 128 ASCII code points.
var asciiClass = func() (t [128]charClass) {
	for r := range rune(128) {
		t[r] = computeClass(r)
	}
	return t
}()

// splitQwen2 appends to ends the byte offset at which each word of text ends
// (the last one is len(text)). cps is scratch space, returned for reuse.
func splitQwen2(text string, cps []codePoint, ends []int32) ([]codePoint, []int32) {
	return splitDigits(text, cps, ends, 1)
}

// splitLlama3 is splitQwen2 for the llama-bpe pre-tokenizer: digits in
// runs of up to 3.
func splitLlama3(text string, cps []codePoint, ends []int32) ([]codePoint, []int32) {
	return splitDigits(text, cps, ends, 3)
}

// splitDigits is the scanner of both: rule 3 takes 1 to maxDigits digits.
func splitDigits(text string, cps []codePoint, ends []int32, maxDigits int) ([]codePoint, []int32) {
	cps = decodeCodePoints(text, cps)
	n := len(cps) - 1 // code points, not counting the sentinel

	// Helpers that treat every position outside the text as "nothing there":
	// no class matches, no character matches.
	is := func(i int, c charClass) bool { return i < n && cps[i].cls == c }
	rAt := func(i int) rune {
		if i < n {
			return cps[i].r
		}
		return -1
	}
	lower := func(r rune) rune { // ASCII-only, as in the regex's [sS]
		if 'A' <= r && r <= 'Z' {
			return r + 'a' - 'A'
		}
		return r
	}
	isLineBreak := func(i int) bool { r := rAt(i); return r == '\r' || r == '\n' }

	for i := 0; i < n; {
		var end int // the word is cps[i:end]; every rule sets end
		r := cps[i].r
		switch {
		// 1. 's 't 're 've 'm 'll 'd, either case.
		case r == '\'' && i+1 < n && isShortContraction(lower(rAt(i+1))):
			end = i + 2
		case r == '\'' && i+2 < n && isLongContraction(lower(rAt(i+1)), lower(rAt(i+2))):
			end = i + 3

		// 2. [^\r\n\p{L}\p{N}]?\p{L}+
		case r != '\r' && r != '\n' && !is(i, classNumber) && (is(i, classLetter) || is(i+1, classLetter)):
			end = i + 1 // the optional leading character, or the first letter
			for is(end, classLetter) {
				end++
			}

		// 3. \p{N}{1,maxDigits}: one digit (qwen2), up to three (llama-bpe).
		case is(i, classNumber):
			end = i + 1
			for end-i < maxDigits && is(end, classNumber) {
				end++
			}

		// 4.  ?[^\s\p{L}\p{N}]+[\r\n]*
		case is(i, classOther) || (r == ' ' && is(i+1, classOther)):
			end = i + 1 // the first symbol, or the optional space
			for is(end, classOther) {
				end++
			}
			for isLineBreak(end) {
				end++
			}

		// 5, 6, 7: a whitespace run cps[i:run].
		default:
			run, lastBreak := i, -1
			for is(run, classSpace) {
				if isLineBreak(run) {
					lastBreak = run
				}
				run++
			}
			switch {
			case lastBreak >= 0: // 5. \s*[\r\n]+
				end = lastBreak + 1
			case run == n: // 6/7 at the end of the text: the whole run
				end = run
			case run-i > 1: // 6. \s+(?!\S): leave the last one for the next word
				end = run - 1
			default: // 7. a single whitespace character before a non-space
				end = i + 1
			}
		}
		ends = append(ends, cps[end].off)
		i = end
	}
	return cps, ends
}

func isShortContraction(c rune) bool { return c == 's' || c == 't' || c == 'm' || c == 'd' }

func isLongContraction(c1, c2 rune) bool {
	return (c1 == 'r' && c2 == 'e') || (c1 == 'v' && c2 == 'e') || (c1 == 'l' && c2 == 'l')
}
