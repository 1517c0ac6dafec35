package tokenizer

import (
	"math/rand/v2"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/gollm/gollm/gguf"
)

func splitWords(text string) []string {
	bmpClassesOnce.Do(buildBMPClasses)
	_, ends := splitQwen2(text, nil, nil)
	var words []string
	start := 0
	for _, e := range ends {
		words = append(words, text[start:e])
		start = int(e)
	}
	return words
}

// TestSplitRules spells out each rule of the qwen2 split on small cases.
func TestSplitRules(t *testing.T) {
	for _, c := range []struct {
		text  string
		words []string
	}{
		{"", nil},
		{"Hello world", []string{"Hello", " world"}},
		{"I've 'told he's", []string{"I", "'ve", " '", "told", " he", "'s"}},
		{"WE'VE 'Re", []string{"WE", "'VE", " '", "Re"}},
		{"'x", []string{"'x"}},
		{"2024", []string{"2", "0", "2", "4"}},
		{"a1b", []string{"a", "1", "b"}},
		{"a   b", []string{"a", "  ", " b"}},
		{"a   ", []string{"a", "   "}},
		{"a \n  b", []string{"a", " \n", " ", " b"}},
		{"\t\tfoo", []string{"\t", "\tfoo"}},
		{"(abc) ...!!\n\nx", []string{"(abc", ")", " ...!!\n\n", "x"}},
		{"x\r\n\r\ny", []string{"x", "\r\n\r\n", "y"}},
		{"e\u0301 é", []string{"e", "\u0301", " é"}},           // a combining mark is not a letter
		{"a\u2028b", []string{"a", "\u2028b"}},                 // U+2028 is whitespace, but no line break
		{"x\u00a0y\u00a0", []string{"x", "\u00a0y", "\u00a0"}}, // no-break space is whitespace
		{"zero\u200bwidth", []string{"zero", "\u200bwidth"}},   // U+200B is not whitespace
		{"\x1c\x1d", []string{"\x1c\x1d"}},                     // ASCII separators are not whitespace
		{"x²½", []string{"x", "²", "½"}},                       // \p{N} includes No
		{"\u3000\u3000日本", []string{"\u3000", "\u3000日本"}},
		{"\xff\xfeab", []string{"\xff\xfe", "ab"}}, // invalid bytes read as U+FFFD, a symbol
		{"a\x80", []string{"a", "\x80"}},
		{"\U0002EBF0\U0002EBF1", []string{"\U0002EBF0\U0002EBF1"}}, // Unicode 15.1 CJK Ext I are letters
	} {
		equal(t, c.words, splitWords(c.text), "split %q", c.text)
	}
}

// The rules of the qwen2 split as Go regexps, for referenceSplit.
var (
	refWS     = `\t\n\v\f\r \x{85}\x{A0}\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000}`
	refLetter = `\p{L}\x{2EBF0}-\x{2EE5D}`
	refRules  = []*regexp.Regexp{
		regexp.MustCompile(`\A(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])`),
		regexp.MustCompile(`\A[^\r\n` + refLetter + `\p{N}]?[` + refLetter + `]+`),
		regexp.MustCompile(`\A\p{N}`),
		regexp.MustCompile(`\A ?[^` + refWS + refLetter + `\p{N}]+[\r\n]*`),
		regexp.MustCompile(`\A[` + refWS + `]*[\r\n]+`),
	}
	refSpace = regexp.MustCompile(`\A[` + refWS + `]+`)
)

// referenceSplit splits with Go regexps, one anchored regexp per rule,
// tried in order; rule 6's look-ahead is emulated by hand. It is a second,
// independent reading of the rule list (valid UTF-8 only).
func referenceSplit(text string) []string {
	rules, space := refRules, refSpace
	var words []string
	for len(text) > 0 {
		n := 0
		for _, re := range rules {
			if m := re.FindStringIndex(text); m != nil {
				n = m[1]
				break
			}
		}
		if n == 0 {
			m := space.FindStringIndex(text)
			n = m[1]
			_, last := utf8.DecodeLastRuneInString(text[:n])
			if n < len(text) && n > last {
				n -= last // rule 6: give the last whitespace to what follows
			}
		}
		words = append(words, text[:n])
		text = text[n:]
	}
	return words
}

// TestSplitMatchesRegex compares the scanner with referenceSplit on random
// strings over an alphabet chosen to hit every rule and class boundary.
func TestSplitMatchesRegex(t *testing.T) {
	alphabet := []string{"a", "Z", "é", "e\u0301", "日", "한", "ß", "1", "²", "٣", " ", "  ", "\t", "\n", "\r",
		"\v", "\u00a0", "\u2028", "\u3000", "\u200b", "'", "'s", "'S", "'re", "'LL", "'ve", "'d", ".", "!!",
		"-", "(", "😀", "\u0301", "\x1c", "$", "\U0002EBF0", "\u0085", "\uFFFD"}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 20000 {
		var b strings.Builder
		for range rng.IntN(12) {
			b.WriteString(alphabet[rng.IntN(len(alphabet))])
		}
		text := b.String()
		got, want := splitWords(text), referenceSplit(text)
		if i < 10 || !equalStrings(got, want) {
			equal(t, want, got, "split %q", text)
		}
	}
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestLlama3Split: llama-bpe differs from qwen2 only in taking digits in
// runs of up to three.
func TestLlama3Split(t *testing.T) {
	cases := []struct {
		text         string
		qwen2, llama []string
	}{
		{"2024", []string{"2", "0", "2", "4"}, []string{"202", "4"}},
		{"a 1234567!", []string{"a", " ", "1", "2", "3", "4", "5", "6", "7", "!"}, []string{"a", " ", "123", "456", "7", "!"}},
		{"x12y", []string{"x", "1", "2", "y"}, []string{"x", "12", "y"}},
		{"٣٤٥٦", []string{"٣", "٤", "٥", "٦"}, []string{"٣٤٥", "٦"}}, // \p{N} beyond ASCII
		{"I'M here", []string{"I", "'M", " here"}, []string{"I", "'M", " here"}},
	}
	words := func(split func(string, []codePoint, []int32) ([]codePoint, []int32), text string) []string {
		bmpClassesOnce.Do(buildBMPClasses)
		_, ends := split(text, nil, nil)
		var out []string
		start := 0
		for _, e := range ends {
			out = append(out, text[start:e])
			start = int(e)
		}
		return out
	}
	for _, c := range cases {
		if got := words(splitQwen2, c.text); !slices.Equal(got, c.qwen2) {
			t.Errorf("qwen2 %q: %q, want %q", c.text, got, c.qwen2)
		}
		if got := words(splitLlama3, c.text); !slices.Equal(got, c.llama) {
			t.Errorf("llama-bpe %q: %q, want %q", c.text, got, c.llama)
		}
	}
}

// TestIgnoreMerges: llama-bpe takes a word that is a vocabulary entry
// whole, even where the merges cannot build it; qwen2 runs the merges.
// The vocabulary has "abc" but only the merge a+b, so BPE gives "ab", "c"
// (this vocabulary lists the byte tokens in byte order: "c" is id 99).
func TestIgnoreMerges(t *testing.T) {
	for _, c := range []struct {
		pre  string
		want []int32
	}{{"qwen2", []int32{257, 'c'}}, {"llama-bpe", []int32{256}}} {
		tok, err := synthVocab{model: "gpt2", pre: c.pre, extra: []string{"abc", "ab"},
			extraTypes: []int32{int32(TypeNormal), int32(TypeNormal)}, merges: []string{"a b"}}.build(t)
		if err != nil {
			t.Fatal(err)
		}
		if got := tok.Encode("abc", false); !slices.Equal(got, c.want) {
			t.Errorf("%s: %v, want %v", c.pre, got, c.want)
		}
	}
}

// TestLlama3AddBOSDefault: without tokenizer.ggml.add_bos_token, a
// llama-bpe vocabulary adds BOS (llama.cpp's default for its LLAMA3
// pre-tokenizer, whose older names llama3 and llama-v3 are accepted too)
// and a qwen2 one does not; the key, when present, decides.
func TestLlama3AddBOSDefault(t *testing.T) {
	for _, c := range []struct {
		pre  string
		key  *bool
		want bool
	}{
		{"llama-bpe", nil, true}, {"llama3", nil, true}, {"llama-v3", nil, true}, {"qwen2", nil, false},
		{"llama-bpe", new(false), false}, {"qwen2", new(true), true},
	} {
		kvs := map[string]gguf.Value{"tokenizer.ggml.bos_token_id": gguf.Uint32(65)}
		if c.key != nil {
			kvs[keyAddBOS] = gguf.Bool(*c.key)
		}
		tok, err := synthVocab{model: "gpt2", pre: c.pre, kvs: kvs}.build(t)
		if err != nil {
			t.Fatal(err)
		}
		if tok.AddBOS() != c.want || (c.want && !slices.Equal(tok.Tokenize("x", true, true), []int32{65, 'x'})) {
			t.Errorf("%s, add_bos_token %v: AddBOS %v, want %v", c.pre, c.key, tok.AddBOS(), c.want)
		}
	}
}
