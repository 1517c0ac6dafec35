package tokenizer

import (
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
)

// adversarial are strings chosen to stress the split, BPE and the special
// token partition.
var adversarial = []string{
	"",
	" ",
	strings.Repeat(" ", 1000),
	strings.Repeat("\n", 500) + "x",
	strings.Repeat("a", 5000),              // one long word: many merges
	strings.Repeat("ab", 3000),             // repeated pairs: many equal ranks
	strings.Repeat("🦙", 300),               // 4-byte characters
	strings.Repeat("<|im_start|>", 50),     // back-to-back specials
	"<|im_start<|im_start|>|>",             // a special inside a broken one
	"<think></think><think>",               // user-defined, both parse modes
	"</s></s>",                             // llama.cpp's CONTROL-by-name
	"<|im_end",                             // a prefix of a special
	"\xff\xfe\xfd",                         // invalid UTF-8
	"\xc3",                                 // a truncated 2-byte character
	"\xe2\x82",                             // a truncated 3-byte character
	"\xed\xa0\x80",                         // a surrogate (invalid in UTF-8)
	"\xc0\x80",                             // an overlong NUL
	"\xf7\xbf\xbf\xbf",                     // beyond U+10FFFF
	"a\x00b\x01c",                          // control bytes
	"\u2028\u2029\u0085\u00a0\u3000\u200b", // odd whitespace
	"e\u0301\u0301\u0301",                  // stacked combining marks
	"'s's's'S'RE're'",                      // contractions everywhere
	"１２３４５６７８９０",                           // full-width digits
	"\r\n\r\n \r \n\t\v\f",                 // every ASCII break
	"<｜User｜><｜Assistant｜><｜end▁of▁sentence｜>", // multi-byte specials
}

// randomBytes returns n bytes biased toward interesting ones: ASCII letters,
// spaces and newlines, UTF-8 lead and continuation bytes, and '<' '|' '>'.
func randomBytes(rng *rand.Rand, n int) []byte {
	pool := []byte("aZ09 \n\t'<|>_sth\xc3\xa9\xe6\x97\xa5\xf0\x9f\xa6\x99\x80\xbf\xff")
	b := make([]byte, n)
	for i := range b {
		if rng.IntN(4) == 0 {
			b[i] = byte(rng.IntN(256))
		} else {
			b[i] = pool[rng.IntN(len(pool))]
		}
	}
	return b
}

// TestRoundTrip: Decode(Encode(s)) == s for any bytes, in both parse modes,
// on every vocabulary. Byte-level BPE can spell out any byte string.
func TestRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	texts := append([]string{}, adversarial...)
	for range 300 {
		texts = append(texts, string(randomBytes(rng, rng.IntN(64))))
	}
	for _, path := range [][]string{{"vocab", "qwen3.gguf"}, {"vocab", "deepseek-r1-qwen3.gguf"}, {"models", "qwen3-tiny-mixed.gguf"}} {
		tok := load(t, path...)
		for _, s := range texts {
			for _, special := range []bool{true, false} {
				ids := tok.Encode(s, special)
				if got := tok.Decode(ids); got != s {
					t.Fatalf("%s special=%v: Decode(Encode(%q)) = %q (ids %v)", path[1], special, s, got, ids)
				}
			}
		}
	}
}

// TestStreamDecoder: what Add and Flush return, concatenated, is Decode of
// the whole sequence, and no Add result ends in an unfinished character.
func TestStreamDecoder(t *testing.T) {
	tok := load(t, "vocab", "qwen3.gguf")
	rng := rand.New(rand.NewPCG(5, 6))
	var seqs [][]int32
	// Random ids: many Qwen tokens are fragments of UTF-8 characters.
	for range 300 {
		seq := make([]int32, rng.IntN(20))
		for i := range seq {
			seq[i] = int32(rng.IntN(tok.Vocab()))
		}
		seqs = append(seqs, seq)
	}
	// Real text whose characters are split across tokens, and single bytes.
	seqs = append(seqs, tok.Encode("🦙🦙 emoji 😶‍🌫️ and CJK 我想在apple工作", true))
	for _, s := range adversarial {
		seqs = append(seqs, tok.Encode(s, true))
	}
	var bytesOnly []int32
	for _, b := range []byte("é日🦙") {
		bytesOnly = append(bytesOnly, tok.byteSymbol[b])
	}
	seqs = append(seqs, bytesOnly)

	for _, seq := range seqs {
		d := tok.NewStreamDecoder()
		var got strings.Builder
		for _, id := range seq {
			out := d.Add(id)
			if incompleteTail([]byte(out)) != 0 {
				t.Fatalf("Add emitted an unfinished character: %q", out)
			}
			got.WriteString(out)
		}
		got.WriteString(d.Flush())
		if want := tok.Decode(seq); got.String() != want {
			t.Fatalf("streamed %q, one-shot %q (ids %v)", got.String(), want, seq)
		}
	}

	// A character split over three tokens appears whole with the last one.
	d := tok.NewStreamDecoder()
	llama := []byte("🦙")
	equal(t, "", d.Add(tok.byteSymbol[llama[0]]), "first byte")
	equal(t, "", d.Add(tok.byteSymbol[llama[1]]), "second byte")
	equal(t, "", d.Add(tok.byteSymbol[llama[2]]), "third byte")
	equal(t, "🦙", d.Add(tok.byteSymbol[llama[3]]), "fourth byte")
	equal(t, "", d.Flush(), "flush")
}

func TestIncompleteTail(t *testing.T) {
	for _, c := range []struct {
		s    string
		keep int
	}{
		{"", 0}, {"a", 0}, {"é", 0}, {"\xc3", 1}, {"a\xe6\x97", 2}, {"\xf0\x9f\xa6", 3},
		{"\xf0\x9f\xa6\x99", 0}, {"\xe0\x80", 0}, {"\xff", 0}, {"\xc0", 0}, {"\x80\x80\x80", 0},
		{"\xed\xa0", 0}, // a surrogate can never complete
	} {
		equal(t, c.keep, incompleteTail([]byte(c.s)), "incompleteTail(%q)", c.s)
	}
}

// TestConcurrentEncode runs encoders in parallel (run with -race): results
// must equal the sequential ones whatever the word cache holds.
func TestConcurrentEncode(t *testing.T) {
	tok := load(t, "vocab", "qwen3.gguf")
	rng := rand.New(rand.NewPCG(7, 8))
	var texts []string
	for range 64 {
		texts = append(texts, string(randomBytes(rng, 200)))
	}
	want := make([][]int32, len(texts))
	for i, s := range texts {
		want[i] = tok.Encode(s, true)
	}
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range 4 * len(texts) {
				i := (k*7 + g) % len(texts)
				if got := tok.Encode(texts[i], true); !equalIDs(got, want[i]) {
					errs <- texts[i]
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for s := range errs {
		t.Fatalf("concurrent Encode(%q) differs", s)
	}
}

func equalIDs(a, b []int32) bool {
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

// FuzzRoundTrip: no input panics, and every input round-trips.
func FuzzRoundTrip(f *testing.F) {
	for _, s := range adversarial {
		f.Add(s, true)
	}
	tok := load(f, "vocab", "qwen3.gguf")
	f.Fuzz(func(t *testing.T, s string, special bool) {
		if got := tok.Decode(tok.Encode(s, special)); got != s {
			t.Fatalf("Decode(Encode(%q)) = %q", s, got)
		}
	})
}
