package tokenizer

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/gollm/gollm/gguf"
)

// synthVocab describes a small hand-made vocabulary: the 256 byte tokens,
// then extra tokens, with a merge list.
type synthVocab struct {
	model, pre string
	extra      []string
	extraTypes []int32
	merges     []string
	kvs        map[string]gguf.Value
	drop       map[string]bool // keys to leave out
}

func (v synthVocab) build(tb testing.TB) (*Tokenizer, error) {
	tb.Helper()
	var tokens []string
	var types []int32
	for b := range 256 {
		tokens = append(tokens, string(byteToRune[b]))
		types = append(types, int32(TypeNormal))
	}
	tokens = append(tokens, v.extra...)
	types = append(types, v.extraTypes...)
	w := gguf.NewWriter()
	set := func(key string, val gguf.Value) {
		if v.drop[key] {
			return
		}
		if override, ok := v.kvs[key]; ok {
			val = override
		}
		check(tb, w.Set(key, val))
	}
	set(keyModel, gguf.String(v.model))
	set(keyPre, gguf.String(v.pre))
	set(keyTokens, gguf.ArrayOf(tokens))
	set(keyTypes, gguf.ArrayOf(types))
	set(keyMerges, gguf.ArrayOf(append([]string{}, v.merges...)))
	for k, val := range v.kvs {
		if k != keyModel && k != keyPre && k != keyTokens && k != keyTypes && k != keyMerges {
			check(tb, w.Set(k, val))
		}
	}
	var buf bytes.Buffer
	_, err := w.WriteTo(&buf)
	check(tb, err)
	f, err := gguf.Parse(buf.Bytes())
	check(tb, err)
	return Load(f)
}

func goodVocab() synthVocab {
	return synthVocab{
		model: "gpt2", pre: "qwen2",
		// 256: "ab", 257: "abc", 258: "xyz", 259: <|im_end|>, 260: <x>
		extra:      []string{"ab", "abc", "xyz", "<|im_end|>", "<x>"},
		extraTypes: []int32{1, 1, 1, 3, 4},
		// "x y" makes "xy", which is not a token: an intermediate symbol.
		merges: []string{"a b", "ab c", "x y", "xy z"},
		kvs:    map[string]gguf.Value{"tokenizer.ggml.eos_token_id": gguf.Uint32(259)},
	}
}

func TestSynthVocab(t *testing.T) {
	tok, err := goodVocab().build(t)
	check(t, err)
	id := func(s string) int32 { i, _ := tok.TokenID(s); return i }
	equal(t, []int32{257}, tok.Encode("abc", true), "abc")
	equal(t, []int32{256, id("d")}, tok.Encode("abd", true), "abd")
	equal(t, []int32{258}, tok.Encode("xyz", true), "xyz through the intermediate xy")
	equal(t, []int32{id("x"), id("y")}, tok.Encode("xy", true), "xy falls back to its bytes")
	equal(t, []int32{259, 260}, tok.Encode("<|im_end|><x>", true), "specials")
	equal(t, []int32{id("<"), id("|"), id("i"), id("m"), id("_"), id("e"), id("n"), id("d"), id("|"), id(">"), 260},
		tok.Encode("<|im_end|><x>", false), "CONTROL spelled out, USER_DEFINED kept")
	equal(t, int32(11), tok.BOS(), "llama.cpp's default BOS for gpt2 vocabularies")
	equal(t, int32(259), tok.EOT(), "EOT found by its text")
	equal(t, true, tok.IsEOG(259), "EOG")
	equal(t, "abc<x>", tok.Decode([]int32{257, 260}), "decode")
}

func TestLoadErrors(t *testing.T) {
	mod := func(f func(v *synthVocab)) synthVocab { v := goodVocab(); f(&v); return v }
	for _, c := range []struct {
		name string
		v    synthVocab
		want error
		msg  string
	}{
		{"model", mod(func(v *synthVocab) { v.model = "llama" }), ErrUnsupported, "gpt2"},
		{"pre", mod(func(v *synthVocab) { v.pre = "gpt-4o" }), ErrUnsupported, "qwen2, deepseek-r1-qwen, llama-bpe"},
		{"no pre", mod(func(v *synthVocab) { v.drop = map[string]bool{keyPre: true} }), ErrUnsupported, "qwen2"},
		{"no tokens", mod(func(v *synthVocab) { v.drop = map[string]bool{keyTokens: true} }), gguf.ErrKeyNotFound, keyTokens},
		{"no merges", mod(func(v *synthVocab) { v.drop = map[string]bool{keyMerges: true} }), gguf.ErrKeyNotFound, keyMerges},
		{"duplicate", mod(func(v *synthVocab) { v.extra[1] = "ab" }), ErrInvalidVocab, "ids 256 and 257"},
		{"short types", mod(func(v *synthVocab) { v.extraTypes = v.extraTypes[:2] }), ErrInvalidVocab, "token types"},
		{"tokens not strings", mod(func(v *synthVocab) { v.kvs[keyTokens] = gguf.ArrayOf([]int32{1, 2}) }), gguf.ErrWrongType, keyTokens},
		{"bos is a string", mod(func(v *synthVocab) { v.kvs["tokenizer.ggml.bos_token_id"] = gguf.String("1") }), ErrInvalidVocab, "bos_token_id"},
		{"add_eos without eos", mod(func(v *synthVocab) {
			v.kvs = map[string]gguf.Value{keyAddEOS: gguf.Bool(true), keyTokens: gguf.ArrayOf([]string{"a", "b"}), keyTypes: gguf.ArrayOf([]int32{1, 1})}
			v.extra, v.extraTypes = nil, nil
		}), ErrInvalidVocab, "no EOS"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := c.v.build(t)
			if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.msg) {
				t.Fatalf("got %v, want %v mentioning %q", err, c.want, c.msg)
			}
		})
	}
}
