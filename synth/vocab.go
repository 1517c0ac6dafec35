package synth

import (
	"fmt"
	"strings"

	"github.com/gollm/gollm/gguf"
)

// The built-in vocabulary, used when Write gets no vocabulary file.
//
// It is the smallest tokenizer that makes the file a complete, loadable
// Qwen3 model: a byte-level BPE ("gpt2" model, "qwen2" pre-tokenizer) with
// no merges, so every byte of text becomes one token.
//
//	ids 0..255   the 256 byte tokens, in GPT-2's byte-to-unicode order,
//	             exactly Qwen3's ids 0..255 (0 = "!", 188 = "Ā" = byte 0x00,
//	             198 = "Ċ" = "\n", 220 = "Ġ" = " ")
//	256          <|endoftext|>  CONTROL (bos and pad, like Qwen3's 151643)
//	257          <|im_start|>   CONTROL
//	258          <|im_end|>     CONTROL (eos, like Qwen3's 151645)
//	259, 260     <think>, </think>  USER_DEFINED
//	261..        [PAD<id>]      UNUSED, up to the configured vocabulary size
//
// The chat template is plain ChatML, which is what Qwen3's template renders
// for a conversation without tools or thinking.
const (
	builtinEndOfText = 256
	builtinImStart   = 257
	builtinImEnd     = 258
	// MinBuiltinVocab is the smallest vocabulary the built-in tokenizer fits in.
	MinBuiltinVocab = 261
)

// Token types (llama.cpp's llama_token_type / gguf-py's TokenType).
const (
	tokenNormal      = 1
	tokenControl     = 3
	tokenUserDefined = 4
	tokenUnused      = 5
)

// builtinChatTemplate is ChatML.
const builtinChatTemplate = `{%- for message in messages %}{{- '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}{%- endfor %}{%- if add_generation_prompt %}{{- '<|im_start|>assistant\n' }}{%- endif %}`

// ByteTokens returns the 256 byte-level token strings in GPT-2's
// byte-to-unicode order (the order of ids 0..255 in GPT-2, Qwen2 and Qwen3
// vocabularies), and for each byte value its token id.
//
// GPT-2 maps every byte to a printable character so that BPE never sees
// whitespace or control bytes: the 188 bytes that are printable Latin-1
// ('!'..'~', '¡'..'¬', '®'..'ÿ') map to themselves and come first, in byte
// order; the other 68 bytes (0x00..0x20, 0x7f..0xa0, 0xad) map to
// U+0100, U+0101, … in byte order and come after them.
func ByteTokens() (tokens [256]string, idOfByte [256]int) {
	printable := func(b int) bool {
		return ('!' <= b && b <= '~') || (0xa1 <= b && b <= 0xac) || (0xae <= b && b <= 0xff)
	}
	id := 0
	for b := 0; b < 256; b++ {
		if printable(b) {
			tokens[id], idOfByte[b] = string(rune(b)), id
			id++
		}
	}
	next := rune(0x100)
	for b := 0; b < 256; b++ {
		if !printable(b) {
			tokens[id], idOfByte[b] = string(next), id
			next++
			id++
		}
	}
	return tokens, idOfByte
}

// builtinTokenizer returns the tokenizer.* metadata of the built-in
// vocabulary with vocab tokens.
func builtinTokenizer(vocab int) ([]gguf.KV, error) {
	if vocab < MinBuiltinVocab {
		return nil, fmt.Errorf("%w: vocab %d is smaller than the built-in tokenizer's %d tokens (give a vocabulary file or a larger vocab)", ErrConfig, vocab, MinBuiltinVocab)
	}
	tokens := make([]string, vocab)
	types := make([]int32, vocab)
	bytes, _ := ByteTokens()
	for i, t := range bytes {
		tokens[i], types[i] = t, tokenNormal
	}
	special := []struct {
		text string
		typ  int32
	}{
		{"<|endoftext|>", tokenControl},
		{"<|im_start|>", tokenControl},
		{"<|im_end|>", tokenControl},
		{"<think>", tokenUserDefined},
		{"</think>", tokenUserDefined},
	}
	for i, s := range special {
		tokens[256+i], types[256+i] = s.text, s.typ
	}
	for i := MinBuiltinVocab; i < vocab; i++ {
		tokens[i], types[i] = fmt.Sprintf("[PAD%d]", i), tokenUnused
	}
	return []gguf.KV{
		{Key: "tokenizer.ggml.model", Value: gguf.String("gpt2")},
		{Key: "tokenizer.ggml.pre", Value: gguf.String("qwen2")},
		{Key: "tokenizer.ggml.tokens", Value: gguf.ArrayOf(tokens)},
		{Key: "tokenizer.ggml.token_type", Value: gguf.ArrayOf(types)},
		{Key: "tokenizer.ggml.merges", Value: gguf.ArrayOf([]string{})},
		{Key: "tokenizer.ggml.bos_token_id", Value: gguf.Uint32(builtinEndOfText)},
		{Key: "tokenizer.ggml.eos_token_id", Value: gguf.Uint32(builtinImEnd)},
		{Key: "tokenizer.ggml.padding_token_id", Value: gguf.Uint32(builtinEndOfText)},
		{Key: "tokenizer.ggml.add_bos_token", Value: gguf.Bool(false)},
		{Key: "tokenizer.chat_template", Value: gguf.String(builtinChatTemplate)},
	}, nil
}

// copiedTokenizer returns every tokenizer.* key of f, in file order, and
// the vocabulary size (the number of token strings).
func copiedTokenizer(f *gguf.File) ([]gguf.KV, int, error) {
	tokens, err := f.Strings("tokenizer.ggml.tokens")
	if err != nil {
		return nil, 0, fmt.Errorf("%w: vocabulary file: %w", ErrConfig, err)
	}
	var kvs []gguf.KV
	for _, kv := range f.KVs() {
		if strings.HasPrefix(kv.Key, "tokenizer.") {
			kvs = append(kvs, kv)
		}
	}
	return kvs, len(tokens), nil
}
