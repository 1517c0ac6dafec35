package tokenizer

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/gollm/gollm/gguf"
)

// Special tokens.
//
// GGUF stores a handful of ids (tokenizer.ggml.bos_token_id, ...) and a type
// per token. llama.cpp then fixes the types up at load time, recognising
// special tokens by their text because converters often forget to mark them.
// This file repeats those fixes, since they change tokenization: for example
// "</s>" (id 128247 in Qwen's vocabulary, an ordinary merge result) is on
// llama.cpp's end-of-generation list, so it is turned into a CONTROL token,
// and with special parsing on the text "</s>" becomes that one id.

// idKey is a metadata key holding one special token id.
type idKey struct {
	key string
	dst *int32
}

// Texts llama.cpp recognises, in the order this package searches them.
// llama.cpp walks its hash map of the whole vocabulary and takes whichever
// match it meets first, an unspecified order; taking the first text of the
// list that exists is deterministic and agrees with llama.cpp on every
// vocabulary we have goldens for (Qwen3 has both <|im_end|> and
// <|endoftext|>; EOT is <|im_end|>).
var (
	eotTexts = []string{"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>",
		"<|end_of_text|>", "<EOT>", "_<EOT>", "[EOT]", "<｜end▁of▁sentence｜>", "<end_of_utterance>"}
	eomTexts    = []string{"<|eom_id|>"}
	fimPreTexts = []string{"<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>", "<｜fim▁begin｜>", "<PRE>", "▁<PRE>", "<|code_prefix|>", "<|prefix|>"}
	fimSufTexts = []string{"<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>", "<｜fim▁hole｜>", "<SUF>", "▁<SUF>", "<|code_suffix|>", "<|suffix|>"}
	fimMidTexts = []string{"<|fim_middle|>", "<fim-middle>", "<fim_middle>", "<｜fim▁end｜>", "<MID>", "▁<MID>", "<|code_middle|>", "<|middle|>"}
	fimPadTexts = []string{"<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]"}
	fimRepTexts = []string{"<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>"}
	fimSepTexts = []string{"<|file_sep|>"}

	// eogTexts end generation wherever they appear in a vocabulary.
	eogTexts = []string{"<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<|flush|>",
		"<|calls|>", "<end_of_turn>", "<|endoftext|>", "</s>", "<|eom_id|>", "<EOT>", "_<EOT>", "[EOT]",
		"[EOS]", "<|end_of_text|>", "<end_of_utterance>", "<eos>", "<turn|>", "<|tool_response>",
		"<｜end▁of▁sentence｜>", "[e~["}

	// alwaysRendered are forced to USER_DEFINED (a gpt-oss fix in llama.cpp).
	alwaysRendered = []string{"<|channel|>", "<|message|>", "<|start|>", "<|constrain|>"}
)

// loadSpecial reads the special token ids and flags, applies llama.cpp's
// load-time fixes, and builds the list used to cut special tokens out of text.
func (t *Tokenizer) loadSpecial(f *gguf.File) error {
	n := int32(len(t.tokens))
	// llama.cpp's defaults for a "gpt2" vocabulary: BOS = EOS = 11, the rest
	// absent. A default beyond the vocabulary is dropped.
	t.bos, t.eos, t.eot, t.eom, t.pad, t.unk, t.sep = 11, 11, -1, -1, -1, -1, -1
	if 11 >= n {
		t.bos, t.eos = -1, -1
	}
	fimPre, fimSuf, fimMid, fimPad, fimRep, fimSep := int32(-1), int32(-1), int32(-1), int32(-1), int32(-1), int32(-1)
	keys := []idKey{
		{"tokenizer.ggml.bos_token_id", &t.bos},
		{"tokenizer.ggml.eos_token_id", &t.eos},
		{"tokenizer.ggml.eot_token_id", &t.eot},
		{"tokenizer.ggml.eom_token_id", &t.eom},
		{"tokenizer.ggml.unknown_token_id", &t.unk},
		{"tokenizer.ggml.seperator_token_id", &t.sep}, // sic: llama.cpp's spelling
		{"tokenizer.ggml.padding_token_id", &t.pad},
		{"tokenizer.ggml.fim_pre_token_id", &fimPre},
		{"tokenizer.ggml.fim_suf_token_id", &fimSuf},
		{"tokenizer.ggml.fim_mid_token_id", &fimMid},
		{"tokenizer.ggml.fim_pad_token_id", &fimPad},
		{"tokenizer.ggml.fim_rep_token_id", &fimRep},
		{"tokenizer.ggml.fim_sep_token_id", &fimSep},
		{"tokenizer.ggml.prefix_token_id", &fimPre}, // deprecated names
		{"tokenizer.ggml.suffix_token_id", &fimSuf},
		{"tokenizer.ggml.middle_token_id", &fimMid},
	}
	for _, k := range keys {
		id, err := f.Uint(k.key)
		switch {
		case errors.Is(err, gguf.ErrKeyNotFound):
			continue
		case err != nil:
			return fmt.Errorf("%w: %w", ErrInvalidVocab, err)
		case id >= uint64(n):
			continue // llama.cpp warns and keeps the default
		}
		*k.dst = int32(id)
	}

	// add_bos / add_eos: the qwen2 pre-tokenizer defaults both to false.
	for _, k := range []struct {
		key string
		dst *bool
	}{{keyAddBOS, &t.addBOS}, {keyAddEOS, &t.addEOS}} {
		v, err := f.Bool(k.key)
		switch {
		case errors.Is(err, gguf.ErrKeyNotFound):
		case err != nil:
			return fmt.Errorf("%w: %w", ErrInvalidVocab, err)
		default:
			*k.dst = v
		}
	}
	if t.addBOS && t.bos < 0 {
		return fmt.Errorf("%w: %s is true but there is no BOS token", ErrInvalidVocab, keyAddBOS)
	}
	if t.addEOS && t.eos < 0 {
		return fmt.Errorf("%w: %s is true but there is no EOS token", ErrInvalidVocab, keyAddEOS)
	}

	// Recognise EOT, EOM and the fill-in-the-middle tokens by their text when
	// the file did not name them, and make each a CONTROL token.
	for _, d := range []struct {
		id    *int32
		texts []string
	}{{&t.eot, eotTexts}, {&t.eom, eomTexts}, {&fimPre, fimPreTexts}, {&fimSuf, fimSufTexts},
		{&fimMid, fimMidTexts}, {&fimPad, fimPadTexts}, {&fimRep, fimRepTexts}, {&fimSep, fimSepTexts}} {
		if *d.id >= 0 {
			continue
		}
		for _, text := range d.texts {
			if id, ok := t.textToID[text]; ok {
				*d.id = id
				t.types[id] = TypeControl
				break
			}
		}
	}

	// End-of-generation tokens: FIM pad/repo/file-separator, every token on
	// the EOG list (made CONTROL), EOS, EOT and EOM.
	t.eog = map[int32]bool{}
	for _, id := range []int32{fimPad, fimRep, fimSep} {
		if id >= 0 {
			t.eog[id] = true
		}
	}
	for _, text := range eogTexts {
		if id, ok := t.textToID[text]; ok {
			t.eog[id] = true
			t.types[id] = TypeControl
		}
	}
	for _, text := range alwaysRendered {
		if id, ok := t.textToID[text]; ok {
			t.types[id] = TypeUserDefined
		}
	}
	for _, id := range []int32{t.eos, t.eot, t.eom} {
		if id >= 0 {
			t.eog[id] = true
		}
	}
	// Two llama.cpp exceptions for chat formats that reuse these texts:
	// with <|return|> and <|call|> (or <|calls|> and <|flush|>), <|end|> does
	// not end generation; with <|tool_response>, </s> is ordinary text.
	has := func(text string) (int32, bool) {
		id, ok := t.textToID[text]
		return id, ok && t.eog[id]
	}
	_, ret := has("<|return|>")
	_, call := has("<|call|>")
	_, calls := has("<|calls|>")
	_, flush := has("<|flush|>")
	if end, ok := has("<|end|>"); ok && ((ret && call) || (calls && flush)) {
		delete(t.eog, end)
		t.types[end] = TypeUserDefined
	}
	if _, ok := has("<|tool_response>"); ok {
		if s, ok := has("</s>"); ok {
			delete(t.eog, s)
			t.types[s] = TypeNormal
		}
	}

	// The tokens matched in raw text, longest first so that a token whose
	// text contains another's wins. (llama.cpp sorts by length only; equal
	// lengths are ordered by id here to be deterministic.)
	for id, typ := range t.types {
		if typ == TypeControl || typ == TypeUserDefined || typ == TypeUnknown {
			t.special = append(t.special, int32(id))
		}
	}
	slices.SortFunc(t.special, func(a, b int32) int {
		if c := cmp.Compare(len(t.tokens[b]), len(t.tokens[a])); c != 0 {
			return c
		}
		return cmp.Compare(a, b)
	})
	return nil
}

// fragment is a piece of the input text: either a special token (token >= 0)
// or the raw text text[start:end] (token == -1).
type fragment struct {
	start, end int
	token      int32
}

// partition cuts the special tokens out of text, as llama.cpp's
// tokenizer_st_partition does: for each special token in turn (longest
// first), every occurrence inside the remaining raw fragments becomes a token
// fragment. CONTROL and UNKNOWN tokens are only looked for when parseSpecial
// is set; USER_DEFINED tokens always are.
func (t *Tokenizer) partition(text string, parseSpecial bool) []fragment {
	frags := []fragment{{0, len(text), -1}}
	var next []fragment
	for _, id := range t.special {
		if !parseSpecial && t.types[id] != TypeUserDefined {
			continue
		}
		tok := t.tokens[id]
		if !strings.Contains(text, tok) {
			continue // the common case: one scan, no rebuilding
		}
		next = next[:0]
		for _, fr := range frags {
			if fr.token >= 0 {
				next = append(next, fr)
				continue
			}
			for fr.start < fr.end {
				i := strings.Index(text[fr.start:fr.end], tok)
				if i < 0 {
					break
				}
				if i > 0 {
					next = append(next, fragment{fr.start, fr.start + i, -1})
				}
				next = append(next, fragment{token: id})
				fr.start += i + len(tok)
			}
			if fr.start < fr.end {
				next = append(next, fr)
			}
		}
		frags, next = next, frags
	}
	return frags
}
