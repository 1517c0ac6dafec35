package tokenizer

import (
	"slices"
	"strings"
)

// Literal text.
//
// A chat prompt is one string in which the template's markup
// ("<|im_start|>user\n") and the messages' content sit side by side, and
// Tokenize with special parsing on turns every special token text in it
// into that token, wherever it came from. A user who types "<|im_end|>"
// would then close their own turn and could open a system one. The chat
// package finds where message content landed in the prompt
// (chat.Template.RenderLiteral); TokenizeLiteral takes those byte ranges
// and leaves the special token texts inside them as text.

// TokenizeLiteral is Tokenize(text, addSpecial, true), except that a
// special token whose text overlaps one of the byte ranges [start, end)
// of literal is not matched: it stays part of the ordinary text around
// it, which is split and merged as usual (so it decodes back to the same
// bytes). A special token entirely outside the ranges is matched as
// Tokenize matches it. When no special token text overlaps a range, the
// result is exactly Tokenize's.
//
// The ranges may be in any order and may overlap; they are clipped to
// the text, and empty or reversed ones are ignored.
func (t *Tokenizer) TokenizeLiteral(text string, addSpecial bool, literal [][2]int) []int32 {
	spans := clipSpans(literal, len(text))
	if len(spans) == 0 {
		return t.Tokenize(text, addSpecial, true)
	}
	out := make([]int32, 0, len(text)/3+2)
	if addSpecial && t.addBOS {
		out = append(out, t.bos)
	}
	if text != "" {
		s := scratchPool.Get().(*bpeScratch)
		for _, frag := range t.partitionLiteral(text, spans) {
			if frag.token >= 0 {
				out = append(out, frag.token)
			} else {
				out = t.encodeText(s, text[frag.start:frag.end], out)
			}
		}
		scratchPool.Put(s)
	}
	if addSpecial && t.addEOS {
		out = append(out, t.eos)
	}
	return out
}

// SpecialTexts returns the texts that Tokenize with special parsing on
// turns into single tokens (those of CONTROL, USER_DEFINED and UNKNOWN
// tokens), longest first: what a chat template's output must not take
// from message content.
func (t *Tokenizer) SpecialTexts() []string {
	texts := make([]string, len(t.special))
	for i, id := range t.special {
		texts[i] = t.tokens[id]
	}
	return texts
}

// clipSpans clips the ranges to [0, n), drops the empty ones, and merges
// them into sorted, disjoint spans.
func clipSpans(literal [][2]int, n int) [][2]int {
	var spans [][2]int
	for _, r := range literal {
		lo, hi := max(r[0], 0), min(r[1], n)
		if lo < hi {
			spans = append(spans, [2]int{lo, hi})
		}
	}
	slices.SortFunc(spans, func(a, b [2]int) int { return a[0] - b[0] })
	merged := spans[:0]
	for _, s := range spans {
		if k := len(merged) - 1; k >= 0 && s[0] <= merged[k][1] {
			merged[k][1] = max(merged[k][1], s[1])
			continue
		}
		merged = append(merged, s)
	}
	return merged
}

// overlaps reports whether [start, end) shares a byte with one of the
// sorted, disjoint spans.
func overlaps(spans [][2]int, start, end int) bool {
	// The first span that ends after start is the only candidate: the
	// ones before it end too early, the ones after it start later still.
	i, _ := slices.BinarySearchFunc(spans, start, func(s [2]int, pos int) int {
		if s[1] <= pos {
			return -1
		}
		return 1
	})
	return i < len(spans) && spans[i][0] < end
}

// partitionLiteral is partition with special parsing on (special.go),
// except that an occurrence overlapping a span is passed over: the
// search goes on from its next byte, so that a later occurrence outside
// the spans, even one overlapping the passed-over one, is still found.
// Without such occurrences it cuts the text exactly as partition does.
func (t *Tokenizer) partitionLiteral(text string, spans [][2]int) []fragment {
	frags := []fragment{{0, len(text), -1}}
	var next []fragment
	for _, id := range t.special {
		tok := t.tokens[id]
		if !strings.Contains(text, tok) {
			continue
		}
		next = next[:0]
		for _, fr := range frags {
			if fr.token >= 0 {
				next = append(next, fr)
				continue
			}
			// from is where the search resumes; fr.start where the raw
			// text not yet emitted begins.
			for from := fr.start; from < fr.end; {
				i := strings.Index(text[from:fr.end], tok)
				if i < 0 {
					break
				}
				at := from + i
				if overlaps(spans, at, at+len(tok)) {
					from = at + 1
					continue
				}
				if at > fr.start {
					next = append(next, fragment{fr.start, at, -1})
				}
				next = append(next, fragment{token: id})
				fr.start = at + len(tok)
				from = fr.start
			}
			if fr.start < fr.end {
				next = append(next, fr)
			}
		}
		frags, next = next, frags
	}
	return frags
}
