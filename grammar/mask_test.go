package grammar

import (
	"errors"
	"math/bits"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/gollm/gollm/gguf"
	"github.com/gollm/gollm/internal/testdata"
	"github.com/gollm/gollm/tokenizer"
)

// bruteMask feeds every token to its own clone of m.
func bruteMask(m *Matcher, pieces [][]byte) []uint64 {
	mask := make([]uint64, (len(pieces)+63)/64)
	for id, p := range pieces {
		if len(p) == 0 {
			continue
		}
		c := m.Clone()
		if _, err := c.Accept(p); err == nil {
			mask[id/64] |= 1 << (id % 64)
		}
	}
	return mask
}

func popcount(mask []uint64) int {
	n := 0
	for _, w := range mask {
		n += bits.OnesCount64(w)
	}
	return n
}

// checkMasks compares FillMask with bruteMask at every prefix of doc.
func checkMasks(t *testing.T, g *Grammar, pieces [][]byte, doc string, every int) {
	t.Helper()
	trie := NewTokenTrie(pieces)
	k := NewMasker(trie)
	mask := make([]uint64, trie.MaskWords())
	m := g.NewMatcher()
	for i := 0; i <= len(doc); i++ {
		if i%every == 0 {
			if err := k.FillMask(m, mask); err != nil {
				t.Fatal(err)
			}
			want := bruteMask(m, pieces)
			for w := range want {
				if want[w] != mask[w] {
					t.Fatalf("after %q: mask word %d is %064b, want %064b", doc[:i], w, mask[w], want[w])
				}
			}
		}
		if i < len(doc) {
			if err := m.AcceptByte(doc[i]); err != nil {
				t.Fatalf("at %d: %v", i, err)
			}
		}
	}
}

// TestFillMaskSynthetic uses every single byte and random pieces that cut
// UTF-8 sequences anywhere, duplicates and the empty piece included.
func TestFillMaskSynthetic(t *testing.T) {
	var pieces [][]byte
	for b := range 256 {
		pieces = append(pieces, []byte{byte(b)})
	}
	pieces = append(pieces, nil, []byte{}) // never in a mask
	alphabet := []byte(`{}[]":, 0123456789.-eE truefalsnl"\` + "\n日本😀é")
	rng := rand.New(rand.NewPCG(1, 2))
	for range 3000 {
		p := make([]byte, 1+rng.IntN(6))
		for i := range p {
			p[i] = alphabet[rng.IntN(len(alphabet))]
		}
		pieces = append(pieces, p)
	}
	pieces = append(pieces, pieces[300], pieces[301]) // duplicates
	g := mustParse(t, jsonGBNF)
	checkMasks(t, g, pieces, `{"name": "日本 😀", "list": [1, -2.5e3, true, null], "o": {}}`, 1)
}

var (
	qwenOnce   sync.Once
	qwenPieces [][]byte
	qwenTok    *tokenizer.Tokenizer
	qwenErr    error
)

// qwen3Pieces returns the bytes of every ordinary token of the real Qwen3
// vocabulary (special tokens get none).
func qwen3Pieces(tb testing.TB) [][]byte {
	qwenOnce.Do(func() {
		f, err := gguf.Open(testdata.Path("vocab", "qwen3.gguf"))
		if err != nil {
			qwenErr = err
			return
		}
		defer f.Close()
		tok, err := tokenizer.Load(f)
		if err != nil {
			qwenErr = err
			return
		}
		qwenTok = tok
		qwenPieces = make([][]byte, tok.Vocab())
		for id := range qwenPieces {
			if !tok.IsSpecial(int32(id)) {
				qwenPieces[id] = append([]byte(nil), tok.TokenPiece(int32(id))...)
			}
		}
	})
	if qwenErr != nil {
		tb.Fatalf("the Qwen3 vocabulary: %v", qwenErr)
	}
	return qwenPieces
}

// TestFillMaskQwen3 compares the trie walk with token-by-token matching on
// the real 151k vocabulary, at a few places of a schema's output.
func TestFillMaskQwen3(t *testing.T) {
	if testing.Short() {
		t.Skip("151k tokens matched one by one")
	}
	pieces := qwen3Pieces(t)
	g, err := JSONSchema([]byte(nestedSchema))
	if err != nil {
		t.Fatal(err)
	}
	checkMasks(t, g, pieces, `{"id": 12, "status": "ac`, 6)
	// Inside strings, where masks go by class (mask_class.go): a bounded
	// string at several counts, its last place, and an unbounded one.
	trie := NewTokenTrie(pieces)
	k := NewMasker(trie)
	obj := mustParse(t, JSONObject)
	for _, c := range []struct {
		g      *Grammar
		prefix string
	}{
		{g, `{"id": 12, "status": "active", "profile": {"name": "`},
		{g, `{"id": 12, "status": "active", "profile": {"name": "Jo`},
		{g, `{"id": 12, "status": "active", "profile": {"name": "` + strings.Repeat("日", 19)},
		{g, `{"id": 12, "status": "active", "profile": {"name": "` + strings.Repeat("é", 20)},
		{obj, `{"key": "some text`},
		{obj, `{"key": "日本é`},
		{obj, `{"`},
	} {
		m := c.g.NewMatcher()
		if _, err := m.AcceptString(c.prefix); err != nil {
			t.Fatalf("%s: %v", c.prefix, err)
		}
		mask := make([]uint64, trie.MaskWords())
		if err := k.FillMask(m, mask); err != nil {
			t.Fatal(err)
		}
		want := bruteMask(m, pieces)
		for w := range want {
			if want[w] != mask[w] {
				t.Fatalf("after %s: mask word %d is %064b, want %064b", c.prefix, w, mask[w], want[w])
			}
		}
	}
	// All but the bounded string's last place, where only its closing
	// quote may follow.
	if k.byClass != 6 {
		t.Fatalf("%d of 7 masks went by class, want 6", k.byClass)
	}
}

// maskPlaces are matcher states for the benchmark: the nested schema's
// output cut at different places.
var maskPlaces = []struct{ name, prefix string }{
	{"start", ``},
	{"key", `{"id": 12, `},
	{"enum", `{"id": 12, "status": "`},
	{"string", `{"id": 12, "status": "active", "profile": {"name": "Jo`},
	{"number", `{"id": 12, "status": "active", "profile": {"name": "x"}, "scores": [1.`},
}

func BenchmarkFillMask(b *testing.B) {
	pieces := qwen3Pieces(b)
	trie := NewTokenTrie(pieces)
	g, err := JSONSchema([]byte(nestedSchema))
	if err != nil {
		b.Fatal(err)
	}
	for _, place := range maskPlaces {
		b.Run(place.name, func(b *testing.B) {
			m := g.NewMatcher()
			if _, err := m.AcceptString(place.prefix); err != nil {
				b.Fatal(err)
			}
			k := NewMasker(trie)
			// Every mask computed: the cost of a state met for the first
			// time (the class sort of mask_class.go, made at the first
			// call, stays).
			k.SetCacheSize(0)
			mask := make([]uint64, trie.MaskWords())
			for b.Loop() {
				if err := k.FillMask(m, mask); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(popcount(mask)), "allowed")
			b.ReportMetric(float64(k.lastStates), "states")
		})
	}
}

func BenchmarkTokenTrie(b *testing.B) {
	pieces := qwen3Pieces(b)
	for b.Loop() {
		NewTokenTrie(pieces)
	}
	trie := NewTokenTrie(pieces)
	b.ReportMetric(float64(trie.Nodes()), "nodes")
}

// BenchmarkFillMaskCached asks again for the mask of a state met before
// (a sequence still inside the same string): the mask is copied.
func BenchmarkFillMaskCached(b *testing.B) {
	pieces := qwen3Pieces(b)
	trie := NewTokenTrie(pieces)
	g, err := JSONSchema([]byte(nestedSchema))
	if err != nil {
		b.Fatal(err)
	}
	m := g.NewMatcher()
	if _, err := m.AcceptString(maskPlaces[3].prefix); err != nil {
		b.Fatal(err)
	}
	k := NewMasker(trie)
	mask := make([]uint64, trie.MaskWords())
	for b.Loop() {
		if err := k.FillMask(m.Clone(), mask); err != nil {
			b.Fatal(err)
		}
	}
}

// TestMaskCache checks that a cached mask is the one computed afresh, for
// equal states reached by different inputs.
func TestMaskCache(t *testing.T) {
	g := mustParse(t, `root ::= "\"" [a-z]* "\""`)
	var pieces [][]byte
	for _, p := range []string{"a", "ab", "\"", "a\"", "Z", "é"} {
		pieces = append(pieces, []byte(p))
	}
	trie := NewTokenTrie(pieces)
	k := NewMasker(trie)
	m1, m2 := g.NewMatcher(), g.NewMatcher()
	m1.AcceptString(`"a`)
	m2.AcceptString(`"bcd`)
	mask1, mask2 := make([]uint64, 1), make([]uint64, 1)
	if err := k.FillMask(m1, mask1); err != nil {
		t.Fatal(err)
	}
	if err := k.FillMask(m2, mask2); err != nil { // a hit: the same state
		t.Fatal(err)
	}
	if mask1[0] != 0b1111 || mask2[0] != mask1[0] {
		t.Fatalf("masks %b and %b, want 1111 for both", mask1[0], mask2[0])
	}
	m3 := g.NewMatcher()
	m3.AcceptString(`"a"`)
	if err := k.FillMask(m3, mask1); err != nil || mask1[0] != 0 {
		t.Fatalf("after the closing quote: mask %b (%v), want none", mask1[0], err)
	}
}

// FuzzFillMask compares the trie walk with token-by-token matching for any
// grammar, vocabulary (pieces separated by NUL) and place (after input).
func FuzzFillMask(f *testing.F) {
	f.Add(jsonGBNF, "{\x00\"\x00\"a\x00日\x00\xe6\x00\x97\xa5\x00 \x00}", `{"k": "`)
	f.Add(`root ::= [a-c]* "x" | "é"+`, "a\x00ab\x00x\x00\xc3\x00\xa9\x00\xc3\xa9\xc3", "a")
	f.Add(arithmeticGBNF, "1\x00+\x00 \x00(\x00)\x00x =\x00\n", "(1")
	f.Fuzz(func(t *testing.T, src, vocab, input string) {
		g, err := ParseWithLimits(src, Limits{MaxElements: 1 << 12, MaxStacks: 32, MaxDepth: 32})
		if err != nil {
			return
		}
		m := g.NewMatcher()
		if _, err := m.AcceptString(input); err != nil {
			return
		}
		var pieces [][]byte
		for _, p := range strings.Split(vocab, "\x00") {
			pieces = append(pieces, []byte(p))
		}
		trie := NewTokenTrie(pieces)
		mask := make([]uint64, trie.MaskWords())
		if err := NewMasker(trie).FillMask(m, mask); err != nil {
			return // a limit met on the way
		}
		want := bruteMask(m, pieces)
		for w := range want {
			if want[w] != mask[w] {
				t.Fatalf("mask word %d is %b, want %b", w, mask[w], want[w])
			}
		}
	})
}

// TestMaskCacheKnowsTheGrammar asks one Masker for two grammars whose
// states look alike (the same positions).
func TestMaskCacheKnowsTheGrammar(t *testing.T) {
	g1 := mustParse(t, `root ::= "a"`)
	g2 := mustParse(t, `root ::= "b"`)
	trie := NewTokenTrie([][]byte{[]byte("a"), []byte("b")})
	k := NewMasker(trie)
	mask := make([]uint64, 1)
	for _, c := range []struct {
		g    *Grammar
		want uint64
	}{{g1, 1}, {g2, 2}, {g1, 1}} {
		if err := k.FillMask(c.g.NewMatcher(), mask); err != nil || mask[0] != c.want {
			t.Fatalf("mask %b (%v), want %b", mask[0], err, c.want)
		}
	}
}

// BenchmarkFillMaskDocument generates a document of the nested schema as a
// sampler would, token by token (the Qwen3 tokenization of the text): a
// mask before every token, then the token accepted. "first": a fresh
// Masker each time, so every state is met for the first time; "again":
// one Masker for all, as for a sequence that generates the same shape of
// document again (its masks come from the cache).
func BenchmarkFillMaskDocument(b *testing.B) {
	pieces := qwen3Pieces(b)
	trie := NewTokenTrie(pieces)
	g, err := JSONSchema([]byte(nestedSchema))
	if err != nil {
		b.Fatal(err)
	}
	doc := `{"id": 4711, "status": "inactive", "profile": {"name": "Ada Lovelace", "tags": ["a", "c"]}, "scores": [0.25, 17, -3.5]}`
	ids := qwenTok.Encode(doc, false)
	mask := make([]uint64, trie.MaskWords())
	for _, fresh := range []bool{true, false} {
		name := map[bool]string{true: "first", false: "again"}[fresh]
		b.Run(name, func(b *testing.B) {
			k := NewMasker(trie)
			for b.Loop() {
				if fresh {
					k = NewMasker(trie)
				}
				m := g.NewMatcher()
				for _, id := range ids {
					if err := k.FillMask(m, mask); err != nil {
						b.Fatal(err)
					}
					if mask[id/64]&(1<<(id%64)) == 0 {
						b.Fatalf("token %q not in its mask", pieces[id])
					}
					if _, err := m.Accept(pieces[id]); err != nil {
						b.Fatal(err)
					}
				}
				if !m.CanEnd() {
					b.Fatal("the document is not complete")
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(ids)), "ns/token")
			b.ReportMetric(float64(len(ids)), "tokens")
		})
	}
}

// BenchmarkAcceptDocument is the grammar's advance alone: the document's
// tokens accepted one by one.
func BenchmarkAcceptDocument(b *testing.B) {
	pieces := qwen3Pieces(b)
	g, err := JSONSchema([]byte(nestedSchema))
	if err != nil {
		b.Fatal(err)
	}
	doc := `{"id": 4711, "status": "inactive", "profile": {"name": "Ada Lovelace", "tags": ["a", "c"]}, "scores": [0.25, 17, -3.5]}`
	ids := qwenTok.Encode(doc, false)
	for b.Loop() {
		m := g.NewMatcher()
		for _, id := range ids {
			if _, err := m.Accept(pieces[id]); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(ids)), "ns/token")
}

// TestMaskWorkLimit masks the vocabulary for a state with more than 64
// stacks, where characters are not memoized: a *LimitError, not a long
// wait.
func TestMaskWorkLimit(t *testing.T) {
	g := mustParse(t, "root ::= e\ne ::= \"a\" e [b-c] | \"a\" e [d-e] | [^a]")
	m := g.NewMatcher()
	if _, err := m.AcceptString("aaaaaaa"); err != nil {
		t.Fatal(err)
	}
	if m.Stacks() <= 64 {
		t.Fatalf("%d stacks, want more than 64", m.Stacks())
	}
	var pieces [][]byte
	for r := rune(0x100); r < 0x100+1000; r++ {
		pieces = append(pieces, []byte(string(r)))
	}
	k := NewMasker(NewTokenTrie(pieces))
	k.maxAdvances = 500
	err := k.FillMask(m, make([]uint64, (len(pieces)+63)/64))
	var le *LimitError
	if !errors.As(err, &le) || le.What != "mask work" && le.What != "mask states" {
		t.Fatalf("error %v, want the mask work limit", err)
	}
}

// BenchmarkClassPrecompute sorts the Qwen3 vocabulary by the class of a
// JSON string's characters, once per class and Masker.
func BenchmarkClassPrecompute(b *testing.B) {
	trie := NewTokenTrie(qwen3Pieces(b))
	c := class{{0, 0x1F}, {'"', '"'}, {'\\', '\\'}, {0x7F, 0x7F}}.complement()
	var pre *classPre
	for b.Loop() {
		pre = trie.precompute(c)
	}
	b.ReportMetric(float64(len(pre.full)), "in-class")
	b.ReportMetric(float64(len(pre.exits)), "exits")
}

// TestMaskersShareATrie runs Maskers on one trie from several goroutines
// (the class sorts are shared): each gets the mask one Masker alone gets.
func TestMaskersShareATrie(t *testing.T) {
	var pieces [][]byte
	for r := rune(' '); r < 0x3000; r += 7 {
		pieces = append(pieces, []byte(string(r)), []byte("a"+string(r)+"\""))
	}
	trie := NewTokenTrie(pieces)
	g := mustParse(t, JSONObject)
	prefixes := []string{`{"`, `{"k": "x`, `{"k": "日`, `{"k": 1, "`}
	want := make([][]uint64, len(prefixes))
	for i, p := range prefixes {
		m := g.NewMatcher()
		m.AcceptString(p)
		want[i] = bruteMask(m, pieces)
	}
	var wg sync.WaitGroup
	errs := make(chan string, 4*len(prefixes))
	for range 4 {
		wg.Go(func() {
			k := NewMasker(trie)
			for i, p := range prefixes {
				m := g.NewMatcher()
				m.AcceptString(p)
				mask := make([]uint64, trie.MaskWords())
				if err := k.FillMask(m, mask); err != nil {
					errs <- err.Error()
					return
				}
				if !slices.Equal(mask, want[i]) {
					errs <- "mask differs after " + p
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

// TestAmbiguousGrammarBounded: a grammar whose states hold ~150 stacks
// (each of 50 optional letters may be any of three) used to cost 0.3 s
// per mask over the Qwen3 vocabulary, on the engine loop, slowing every
// sequence; its work is now counted per stack advanced and the mask stops
// with a *LimitError at maxWalkAdvances.
func TestAmbiguousGrammarBounded(t *testing.T) {
	g := mustParse(t, `root ::= a{0,50} "!"`+"\n"+`a ::= [a-z]? [a-z]? [a-z]?`)
	m := g.NewMatcher()
	if _, err := m.AcceptString("ab"); err != nil {
		t.Fatal(err)
	}
	k := NewMasker(NewTokenTrie(qwen3Pieces(t)))
	err := k.FillMask(m, make([]uint64, k.trie.MaskWords()))
	var le *LimitError
	if !errors.As(err, &le) || le.What != "mask work" {
		t.Fatalf("%d stacks: error %v, want the mask work limit", m.Stacks(), err)
	}
	t.Logf("%d stacks: %v", m.Stacks(), err)
}
