// Package tokenizer turns text into token ids and back, exactly as llama.cpp
// does for the byte-level BPE vocabularies of Qwen2/Qwen3 and
// DeepSeek-R1-Qwen3 models (GGUF tokenizer.ggml.model = "gpt2", pre =
// "qwen2") and of Llama 3 (pre = "llama-bpe").
//
// Encoding has three stages:
//
//  1. Special tokens (<|im_start|>, <think>, ...) are cut out of the text
//     first (special.go), so they become single ids and never take part in
//     BPE.
//  2. Each stretch of ordinary text is split into words by the qwen2 or
//     llama-bpe pre-tokenizer (pretokenize.go).
//  3. Each word is encoded by byte-pair merges over its bytes (bpe.go);
//     llama-bpe first takes a word that is itself a vocabulary entry whole
//     (llama.cpp's ignore_merges).
//
// Decoding maps each id back to the bytes it stands for (bytes.go). Byte-level
// BPE can represent any byte string, so Decode(Encode(s)) == s for every s,
// valid UTF-8 or not.
//
// One deliberate difference from llama.cpp: given invalid UTF-8, llama.cpp
// replaces each byte that starts no valid sequence by U+FFFD (the bytes EF
// BF BD) before merging, so its ids decode to different bytes. This package
// keeps the raw bytes; only the pre-tokenizer reads such a byte as U+FFFD
// (a symbol), so the word boundaries are llama.cpp's. For valid UTF-8, which
// is all text a model is normally given, the ids are identical.
//
// A Tokenizer is immutable after Load and safe for concurrent use.
package tokenizer

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/gollm/gollm/gguf"
)

// Sentinel errors; Load wraps one of these (or a gguf error) with detail.
var (
	// ErrUnsupported: the file asks for a tokenizer model or pre-tokenizer
	// this package does not implement.
	ErrUnsupported = errors.New("tokenizer: unsupported tokenizer")
	// ErrInvalidVocab: the tokenizer metadata is inconsistent (duplicate
	// tokens, arrays of different lengths, ids out of range, ...).
	ErrInvalidVocab = errors.New("tokenizer: invalid vocabulary")
)

// Supported values of tokenizer.ggml.model and tokenizer.ggml.pre.
var (
	SupportedModels        = []string{"gpt2"}
	SupportedPreTokenizers = []string{"qwen2", "deepseek-r1-qwen", "llama-bpe", "llama3", "llama-v3"}
)

// preTokenizers are the word splitters of the supported pre-tokenizers,
// whether each takes a word that is a vocabulary entry whole, and whether
// BOS is added when the file has no tokenizer.ggml.add_bos_token: llama.cpp
// sets both for its LLAMA3 pre-tokenizer (names llama-bpe, llama3,
// llama-v3), neither for qwen2.
var preTokenizers = map[string]struct {
	split        func(text string, cps []codePoint, ends []int32) ([]codePoint, []int32)
	ignoreMerges bool
	addBOS       bool
}{
	"qwen2":            {splitQwen2, false, false},
	"deepseek-r1-qwen": {splitQwen2, false, false}, // the same split
	"llama-bpe":        {splitLlama3, true, true},
	"llama3":           {splitLlama3, true, true},
	"llama-v3":         {splitLlama3, true, true},
}

// TokenType is a vocabulary entry's type, as stored in
// tokenizer.ggml.token_type (llama.cpp's llama_token_type numbering).
type TokenType int32

const (
	TypeUndefined   TokenType = 0
	TypeNormal      TokenType = 1 // an ordinary BPE token
	TypeUnknown     TokenType = 2
	TypeControl     TokenType = 3 // <|im_start|>, <|endoftext|>: matched only with special parsing on
	TypeUserDefined TokenType = 4 // <think>, <tool_call>: always matched in text
	TypeUnused      TokenType = 5 // padding entries such as [PAD151700]
	TypeByte        TokenType = 6 // <0xAB> byte tokens (SentencePiece style)
)

func (t TokenType) String() string {
	switch t {
	case TypeNormal:
		return "normal"
	case TypeUnknown:
		return "unknown"
	case TypeControl:
		return "control"
	case TypeUserDefined:
		return "user-defined"
	case TypeUnused:
		return "unused"
	case TypeByte:
		return "byte"
	}
	return "undefined"
}

// Tokenizer is a loaded vocabulary. Create it with Load.
type Tokenizer struct {
	model, pre string

	// The pre-tokenizer (see preTokenizers).
	split        func(text string, cps []codePoint, ends []int32) ([]codePoint, []int32)
	ignoreMerges bool

	tokens   []string         // (token) text as stored in the file
	types    []TokenType      // (token) type after llama.cpp's load-time fixes
	textToID map[string]int32 // token text -> id

	// pieceBytes[pieceOff[i]:pieceOff[i+1]] is what token i decodes to: the
	// bytes of a normal token, the text of a special one, nothing for an
	// unused entry. (token+1) offsets into one buffer.
	pieceBytes []byte
	pieceOff   []int32

	// BPE tables (bpe.go).
	byteSymbol   [256]int32       // symbol id of each single byte
	merges       map[uint64]merge // (left symbol, right symbol) -> merge
	extraSymbols []string         // texts of symbols id >= len(tokens)

	// Special tokens (special.go): ids of CONTROL, USER_DEFINED and UNKNOWN
	// tokens, longest text first.
	special []int32

	bos, eos, eot, eom, pad, unk, sep int32 // -1 when absent
	addBOS, addEOS                    bool
	eog                               map[int32]bool // end-of-generation ids

	cache wordCache
}

// Metadata keys read by Load.
const (
	keyModel    = "tokenizer.ggml.model"
	keyPre      = "tokenizer.ggml.pre"
	keyTokens   = "tokenizer.ggml.tokens"
	keyTypes    = "tokenizer.ggml.token_type"
	keyMerges   = "tokenizer.ggml.merges"
	keyAddBOS   = "tokenizer.ggml.add_bos_token"
	keyAddEOS   = "tokenizer.ggml.add_eos_token"
	maxVocab    = 1 << 24 // far beyond any real vocabulary; keeps ids small
	maxTokenLen = 1 << 16
)

// Load builds the tokenizer described by a GGUF file's tokenizer.* metadata.
// It follows llama.cpp's llama_vocab::load, including its load-time fixes
// to token types (see special.go).
func Load(f *gguf.File) (*Tokenizer, error) {
	model, err := f.String(keyModel)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	if model != "gpt2" {
		return nil, fmt.Errorf("%w: model %q (supported: %s)", ErrUnsupported, model, strings.Join(SupportedModels, ", "))
	}
	pre, err := f.String(keyPre)
	if err != nil {
		return nil, fmt.Errorf("%w: no pre-tokenizer (%w); supported: %s", ErrUnsupported, err, strings.Join(SupportedPreTokenizers, ", "))
	}
	pt, ok := preTokenizers[pre]
	if !ok {
		return nil, fmt.Errorf("%w: pre-tokenizer %q (supported: %s)", ErrUnsupported, pre, strings.Join(SupportedPreTokenizers, ", "))
	}

	tokens, err := f.Strings(keyTokens)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	n := len(tokens)
	if n == 0 || n > maxVocab {
		return nil, fmt.Errorf("%w: %d tokens", ErrInvalidVocab, n)
	}
	t := &Tokenizer{
		model:        model,
		pre:          pre,
		split:        pt.split,
		ignoreMerges: pt.ignoreMerges,
		addBOS:       pt.addBOS, // unless tokenizer.ggml.add_bos_token says otherwise
		tokens:       make([]string, n),
		types:        make([]TokenType, n),
		textToID:     make(map[string]int32, n),
	}
	if err := t.loadTokens(f, tokens); err != nil {
		return nil, err
	}
	merges, err := f.Strings(keyMerges)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	t.loadMerges(merges)
	if err := t.loadSpecial(f); err != nil {
		return nil, err
	}
	t.buildPieces()
	bmpClassesOnce.Do(buildBMPClasses)
	return t, nil
}

// loadTokens fills tokens, types and textToID.
func (t *Tokenizer) loadTokens(f *gguf.File, tokens []string) error {
	var types []int64
	if f.Has(keyTypes) {
		var err error
		if types, err = f.Ints(keyTypes); err != nil {
			return fmt.Errorf("tokenizer: %w", err)
		}
		if len(types) < len(tokens) {
			return fmt.Errorf("%w: %d token types for %d tokens", ErrInvalidVocab, len(types), len(tokens))
		}
	}
	for i, text := range tokens {
		if text == "" {
			text = fmt.Sprintf("[EMPTY_%d]", i) // llama.cpp's name for an empty entry
		}
		if len(text) > maxTokenLen {
			return fmt.Errorf("%w: token %d is %d bytes long", ErrInvalidVocab, i, len(text))
		}
		t.textToID[text] = int32(i)
		if len(t.textToID) != i+1 { // one map access: a repeat does not grow the map
			prev := slices.Index(t.tokens[:i], text)
			return fmt.Errorf("%w: token %q has ids %d and %d", ErrInvalidVocab, text, prev, i)
		}
		t.tokens[i] = text
		t.types[i] = TypeNormal
		if types != nil {
			switch typ := TokenType(types[i]); typ {
			case TypeNormal, TypeUnknown, TypeControl, TypeUserDefined, TypeUnused, TypeByte:
				t.types[i] = typ
			default:
				t.types[i] = TypeUndefined
			}
		}
	}
	return nil
}

// symbolID returns the symbol id of a byte-level string: its token id, or an
// id past the vocabulary allocated for it.
func (t *Tokenizer) symbolID(text string, extra map[string]int32) int32 {
	if id, ok := t.textToID[text]; ok {
		return id
	}
	if id, ok := extra[text]; ok {
		return id
	}
	id := int32(len(t.tokens) + len(t.extraSymbols))
	t.extraSymbols = append(t.extraSymbols, text)
	extra[text] = id
	return id
}

// loadMerges builds the merge table. Each entry of tokenizer.ggml.merges is
// "A B": the two parts, split at the first space after the first byte (a
// part may itself start with the byte-level space "Ġ", never with ' ').
func (t *Tokenizer) loadMerges(merges []string) {
	extra := map[string]int32{}
	for b := range 256 {
		t.byteSymbol[b] = t.symbolID(string(byteToRune[b]), extra)
	}

	t.merges = make(map[uint64]merge, len(merges))
	var joined []byte
	for rank, m := range merges {
		a, b, ok := splitMerge(m)
		if !ok || rank > math.MaxInt32 {
			continue // not "A B": llama.cpp stores ("", ""), which never matches
		}
		left, right := t.symbolID(a, extra), t.symbolID(b, extra)
		key := mergeKey(left, right)
		n := len(t.merges)
		t.merges[key] = merge{rank: int32(rank)}
		if len(t.merges) == n {
			continue // a repeated pair: the first (best) rank was stored already
		}
		// In GPT-2-style vocabularies merge k creates token 256+k; checking
		// that first saves a map lookup per merge.
		joined = append(append(joined[:0], a...), b...)
		var result int32
		if id := 256 + rank; id < len(t.tokens) && t.tokens[id] == string(joined) {
			result = int32(id)
		} else {
			result = t.symbolID(string(joined), extra)
		}
		t.merges[key] = merge{rank: int32(rank), result: result}
	}
}

// splitMerge splits a merge entry "A B" at the first space after its first
// byte, as llama.cpp does.
func splitMerge(m string) (a, b string, ok bool) {
	if len(m) < 3 {
		return "", "", false
	}
	sp := strings.IndexByte(m[1:], ' ') + 1
	if sp <= 0 || sp == len(m)-1 {
		return "", "", false
	}
	return m[:sp], m[sp+1:], true
}

// buildPieces decodes every token to the bytes it produces in text.
func (t *Tokenizer) buildPieces() {
	t.pieceOff = make([]int32, len(t.tokens)+1)
	buf := make([]byte, 0, 8*len(t.tokens))
	for i, text := range t.tokens {
		switch t.types[i] {
		case TypeControl, TypeUserDefined, TypeUnknown:
			buf = append(buf, text...) // special tokens read as their text
		case TypeNormal:
			var ok bool
			mark := len(buf)
			if buf, ok = byteLevelDecode(buf, text); !ok {
				// Not a byte-level string (llama.cpp prints an [UNK_BYTE_..]
				// marker here); keep the text as it is.
				buf = append(buf[:mark], text...)
			}
		case TypeByte:
			if b, ok := parseByteToken(text); ok {
				buf = append(buf, b)
			}
		}
		// Unused and undefined entries decode to nothing, as in llama.cpp.
		t.pieceOff[i+1] = int32(len(buf))
	}
	t.pieceBytes = buf
}

// parseByteToken reads a "<0xAB>" byte token.
func parseByteToken(text string) (byte, bool) {
	if len(text) != 6 || text[:3] != "<0x" || text[5] != '>' {
		return 0, false
	}
	var b byte
	for _, c := range []byte(text[3:5]) {
		switch {
		case '0' <= c && c <= '9':
			b = b<<4 | (c - '0')
		case 'A' <= c && c <= 'F':
			b = b<<4 | (c - 'A' + 10)
		case 'a' <= c && c <= 'f':
			b = b<<4 | (c - 'a' + 10)
		default:
			return 0, false
		}
	}
	return b, true
}

// Encode tokenizes text without adding BOS/EOS. With parseSpecial, the text
// of CONTROL tokens (such as "<|im_start|>") becomes those tokens; without
// it they are spelled out as ordinary text. USER_DEFINED tokens ("<think>",
// "<tool_call>") are matched either way, as in llama.cpp and Hugging Face.
func (t *Tokenizer) Encode(text string, parseSpecial bool) []int32 {
	return t.Tokenize(text, false, parseSpecial)
}

// Tokenize is llama_tokenize: Encode, plus BOS in front and EOS at the end
// when addSpecial is set and the vocabulary asks for them
// (tokenizer.ggml.add_bos_token / add_eos_token; Qwen3 asks for neither).
func (t *Tokenizer) Tokenize(text string, addSpecial, parseSpecial bool) []int32 {
	out := make([]int32, 0, len(text)/3+2)
	if addSpecial && t.addBOS {
		out = append(out, t.bos)
	}
	if text != "" {
		s := scratchPool.Get().(*bpeScratch)
		for _, frag := range t.partition(text, parseSpecial) {
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

// TokenPiece returns the bytes token id stands for in text: the decoded
// bytes of an ordinary token (possibly part of a UTF-8 character), the text
// of a special token, nothing for an unused entry or an id out of range.
// The slice is shared; do not modify it.
func (t *Tokenizer) TokenPiece(id int32) []byte {
	if id < 0 || int(id) >= len(t.tokens) {
		return nil
	}
	return t.pieceBytes[t.pieceOff[id]:t.pieceOff[id+1]:t.pieceOff[id+1]]
}

// AppendPiece appends TokenPiece(id) to dst.
func (t *Tokenizer) AppendPiece(dst []byte, id int32) []byte { return append(dst, t.TokenPiece(id)...) }

// Decode returns the text of a token sequence: the concatenated pieces, with
// special tokens written as their text. The result is a byte string; it may
// hold invalid UTF-8 (for example when the ids end in the middle of a
// character), which is kept as it is.
func (t *Tokenizer) Decode(ids []int32) string {
	n := 0
	for _, id := range ids {
		n += len(t.TokenPiece(id))
	}
	var b strings.Builder
	b.Grow(n) // one allocation, and no copy at the end
	for _, id := range ids {
		b.Write(t.TokenPiece(id))
	}
	return b.String()
}

// TokenText returns the text of vocabulary entry id as stored in the file
// (byte-level characters for an ordinary token, e.g. "Ġworld"), or "".
func (t *Tokenizer) TokenText(id int32) string {
	if id < 0 || int(id) >= len(t.tokens) {
		return ""
	}
	return t.tokens[id]
}

// TokenID looks up a vocabulary entry by its stored text, e.g. "<think>" or
// "Ġworld".
func (t *Tokenizer) TokenID(text string) (int32, bool) {
	id, ok := t.textToID[text]
	return id, ok
}

// Type returns a token's type (after llama.cpp's load-time fixes, e.g.
// "</s>" is CONTROL), or TypeUndefined for an id out of range.
func (t *Tokenizer) Type(id int32) TokenType {
	if id < 0 || int(id) >= len(t.types) {
		return TypeUndefined
	}
	return t.types[id]
}

// IsSpecial reports whether id is a CONTROL, USER_DEFINED or UNKNOWN token:
// one that is written as its literal text rather than byte-level merged.
func (t *Tokenizer) IsSpecial(id int32) bool {
	switch t.Type(id) {
	case TypeControl, TypeUserDefined, TypeUnknown:
		return true
	}
	return false
}

// IsEOG reports whether generating id ends generation: EOS, EOT and the other
// end-of-generation tokens llama.cpp recognises (for Qwen3: <|im_end|>,
// <|endoftext|>, <|fim_pad|>, <|repo_name|>, <|file_sep|> and </s>).
func (t *Tokenizer) IsEOG(id int32) bool { return t.eog[id] }

// EOGs returns the end-of-generation ids in increasing order.
func (t *Tokenizer) EOGs() []int32 {
	ids := make([]int32, 0, len(t.eog))
	for id := range t.eog {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// Vocab returns the number of vocabulary entries (the model's n_vocab).
func (t *Tokenizer) Vocab() int { return len(t.tokens) }

// BOS, EOS, EOT, EOM, Pad, Unknown and Sep return those special token ids,
// or -1 when the vocabulary has none.
func (t *Tokenizer) BOS() int32     { return t.bos }
func (t *Tokenizer) EOS() int32     { return t.eos }
func (t *Tokenizer) EOT() int32     { return t.eot }
func (t *Tokenizer) EOM() int32     { return t.eom }
func (t *Tokenizer) Pad() int32     { return t.pad }
func (t *Tokenizer) Unknown() int32 { return t.unk }
func (t *Tokenizer) Sep() int32     { return t.sep }

// AddBOS and AddEOS report whether Tokenize with addSpecial adds BOS / EOS.
func (t *Tokenizer) AddBOS() bool { return t.addBOS }
func (t *Tokenizer) AddEOS() bool { return t.addEOS }

// Model and PreTokenizer return tokenizer.ggml.model and tokenizer.ggml.pre.
func (t *Tokenizer) Model() string        { return t.model }
func (t *Tokenizer) PreTokenizer() string { return t.pre }
