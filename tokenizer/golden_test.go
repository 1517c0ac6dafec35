package tokenizer

import (
	"encoding/hex"
	"encoding/json"
	"os"
	"sync"
	"testing"

	"github.com/gollm/gollm/gguf"
	"github.com/gollm/gollm/internal/testdata"
)

// Vocabularies under test, each loaded once for the whole test binary.
var (
	loadedMu sync.Mutex
	loaded   = map[string]*Tokenizer{}
)

// load returns the tokenizer of a testdata GGUF file, e.g. load(t, "vocab", "qwen3.gguf").
func load(tb testing.TB, path ...string) *Tokenizer {
	tb.Helper()
	p := testdata.Path(path...)
	loadedMu.Lock()
	defer loadedMu.Unlock()
	if tok, ok := loaded[p]; ok {
		return tok
	}
	f, err := gguf.Open(p)
	check(tb, err)
	defer f.Close()
	tok, err := Load(f)
	check(tb, err)
	loaded[p] = tok
	return tok
}

// tokenizeGolden is the layout of the tokenize.json files (see SHARED-README).
type tokenizeGolden struct {
	NVocab int   `json:"n_vocab"`
	BOS    int32 `json:"bos"`
	EOS    int32 `json:"eos"`
	EOT    int32 `json:"eot"`
	AddBOS bool  `json:"add_bos"`
	Cases  []struct {
		Text       string   `json:"text"`
		Special    []int32  `json:"ids_parse_special"`
		NoSpecial  []int32  `json:"ids_no_parse_special"`
		AddSpecial []int32  `json:"ids_add_special_parse_special"`
		PiecesHex  []string `json:"pieces_hex_parse_special"`
	} `json:"cases"`
}

func readJSON(tb testing.TB, v any, path ...string) {
	tb.Helper()
	data, err := os.ReadFile(testdata.Path(path...))
	check(tb, err)
	check(tb, json.Unmarshal(data, v))
}

// TestGoldenTokenize checks every llama.cpp tokenization: both vocab-only
// files and both small models, both parse modes, add_special, and pieces.
func TestGoldenTokenize(t *testing.T) {
	for _, c := range []struct{ gguf, golden []string }{
		{[]string{"vocab", "qwen3.gguf"}, []string{"vocab", "qwen3.tokenize.json"}},
		{[]string{"vocab", "deepseek-r1-qwen3.gguf"}, []string{"vocab", "deepseek-r1-qwen3.tokenize.json"}},
		{[]string{"models", "qwen3-tiny-q6k.gguf"}, []string{"qwen3-tiny-q6k", "tokenize.json"}},
		{[]string{"models", "qwen3-tiny-mixed.gguf"}, []string{"qwen3-tiny-mixed", "tokenize.json"}},
		{[]string{"models", "qwen2-tiny-q6k.gguf"}, []string{"qwen2-tiny", "tokenize.json"}},
		{[]string{"models", "qwen3moe-tiny-q6k.gguf"}, []string{"qwen3moe-tiny", "tokenize.json"}},
		{[]string{"vocab", "llama3.gguf"}, []string{"vocab", "llama3.tokenize.json"}},
		{[]string{"models", "llama-tiny-q6k.gguf"}, []string{"llama-tiny", "tokenize.json"}},
	} {
		t.Run(c.gguf[1], func(t *testing.T) {
			tok := load(t, c.gguf...)
			var g tokenizeGolden
			readJSON(t, &g, c.golden...)
			equal(t, g.NVocab, tok.Vocab(), "n_vocab")
			equal(t, g.BOS, tok.BOS(), "bos")
			equal(t, g.EOS, tok.EOS(), "eos")
			equal(t, g.EOT, tok.EOT(), "eot")
			equal(t, g.AddBOS, tok.AddBOS(), "add_bos")
			if len(g.Cases) == 0 {
				t.Fatal("no cases")
			}
			for _, tc := range g.Cases {
				equal(t, nonNil(tc.Special), nonNil(tok.Encode(tc.Text, true)), "parse_special %q", tc.Text)
				equal(t, nonNil(tc.NoSpecial), nonNil(tok.Encode(tc.Text, false)), "no parse_special %q", tc.Text)
				equal(t, nonNil(tc.AddSpecial), nonNil(tok.Tokenize(tc.Text, true, true)), "add_special %q", tc.Text)
				equal(t, len(tc.Special), len(tc.PiecesHex), "pieces of %q", tc.Text)
				for i, id := range tc.Special {
					equal(t, tc.PiecesHex[i], hex.EncodeToString(tok.TokenPiece(id)), "piece %d of %q", i, tc.Text)
				}
				equal(t, tc.Text, tok.Decode(tc.Special), "decode %q", tc.Text)
			}
		})
	}
}

func nonNil(ids []int32) []int32 {
	if ids == nil {
		return []int32{}
	}
	return ids
}

// promptGolden is one entry of <model>/prompts.json.
type promptGolden struct {
	Name         string           `json:"name"`
	Kind         string           `json:"kind"`
	Text         string           `json:"text"`
	IDs          []int32          `json:"ids"`
	IDsFullVocab []int32          `json:"ids_full_vocab"`
	StandIn      map[string]int32 `json:"stand_in_ids"`
}

// TestGoldenPrompts checks the prompts of the logits tests: text prompts
// against the model's own vocabulary, chat prompts against the full
// vocabulary (ids_full_vocab), and the stand-in construction of chat ids
// (specials cut out with the full vocabulary, the text between them encoded
// with the small one).
func TestGoldenPrompts(t *testing.T) {
	for _, c := range []struct{ model, file, full string }{
		{"qwen3-tiny-q6k", "qwen3-tiny-q6k", "qwen3.gguf"},
		{"qwen3-tiny-mixed", "qwen3-tiny-mixed", "deepseek-r1-qwen3.gguf"},
		{"qwen2-tiny", "qwen2-tiny-q6k", "qwen3.gguf"},
		{"qwen3moe-tiny", "qwen3moe-tiny-q6k", "qwen3.gguf"},
		{"llama-tiny", "llama-tiny-q6k", "llama3.gguf"},
	} {
		t.Run(c.model, func(t *testing.T) {
			small := load(t, "models", c.file+".gguf")
			full := load(t, "vocab", c.full)
			var prompts []promptGolden
			readJSON(t, &prompts, c.model, "prompts.json")
			for _, p := range prompts {
				switch p.Kind {
				case "text":
					// With BOS where the vocabulary asks for it (llama-tiny).
					equal(t, p.IDs, small.Tokenize(p.Text, true, true), "%s", p.Name)
				case "chat":
					equal(t, p.IDsFullVocab, full.Encode(p.Text, true), "%s", p.Name)
					var ids []int32
					s := new(bpeScratch)
					for _, fr := range full.partition(p.Text, true) {
						if fr.token >= 0 {
							standIn, ok := p.StandIn[full.TokenText(fr.token)]
							if !ok {
								t.Fatalf("no stand-in for %q", full.TokenText(fr.token))
							}
							ids = append(ids, standIn)
						} else {
							ids = small.encodeText(s, p.Text[fr.start:fr.end], ids)
						}
					}
					equal(t, p.IDs, ids, "%s", p.Name)
				default:
					t.Fatalf("unknown prompt kind %q", p.Kind)
				}
			}
		})
	}
}

// TestSpecialTokens pins the load-time decisions llama.cpp makes.
func TestSpecialTokens(t *testing.T) {
	q := load(t, "vocab", "qwen3.gguf")
	equal(t, TypeControl, q.Type(128247), "</s> becomes CONTROL")
	equal(t, TypeUserDefined, q.Type(151667), "<think>")
	equal(t, TypeControl, q.Type(151644), "<|im_start|>")
	equal(t, TypeUnused, q.Type(151700), "[PAD151700]")
	equal(t, int32(151643), q.Pad(), "pad")
	equal(t, []int32{128247, 151643, 151645, 151662, 151663, 151664}, q.EOGs(), "qwen3 EOG ids")
	equal(t, true, q.IsEOG(151645), "IsEOG(<|im_end|>)")
	equal(t, false, q.IsEOG(151644), "IsEOG(<|im_start|>)")
	id, ok := q.TokenID("<think>")
	equal(t, true, ok, "TokenID(<think>) found")
	equal(t, int32(151667), id, "TokenID(<think>)")
	equal(t, "<think>", string(q.TokenPiece(151667)), "piece of <think>")
	equal(t, 0, len(q.TokenPiece(151700)), "unused entries decode to nothing")
	equal(t, 0, len(q.TokenPiece(-1)), "piece of -1")
	equal(t, 0, len(q.TokenPiece(1<<30)), "piece of 1<<30")

	d := load(t, "vocab", "deepseek-r1-qwen3.gguf")
	equal(t, []int32{128247, 151645, 151662, 151663, 151664}, d.EOGs(), "deepseek EOG ids")
	equal(t, int32(151645), d.Pad(), "pad")
	equal(t, false, d.AddEOS(), "add_eos")

	m := load(t, "models", "qwen3-tiny-q6k.gguf")
	equal(t, []int32{190}, m.EOGs(), "tiny EOG ids")
	equal(t, int32(-1), m.EOT(), "tiny eot")

	// Llama 3: BOS added, generation stops at <|end_of_text|> and
	// <|eot_id|> (found by name, as llama.cpp does). This is the Llama
	// 3.0 vocabulary, where id 128008 is still a reserved token; Llama
	// 3.1's <|eom_id|> is checked on a synthetic vocabulary below.
	l := load(t, "vocab", "llama3.gguf")
	equal(t, true, l.AddBOS(), "llama3 add_bos")
	equal(t, int32(128000), l.BOS(), "llama3 bos")
	equal(t, int32(128009), l.EOT(), "llama3 eot")
	equal(t, int32(-1), l.EOM(), "llama3.0 eom")
	equal(t, "<|reserved_special_token_4|>", l.TokenText(128008), "llama3.0 id 128008")
	equal(t, []int32{128001, 128009}, l.EOGs(), "llama3 EOG ids")
	for _, name := range []string{"<|end_of_text|>", "<|eot_id|>"} {
		id, ok := l.TokenID(name)
		equal(t, true, ok && l.IsEOG(id), "IsEOG(%s)", name)
	}
	for _, name := range []string{"<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>"} {
		id, _ := l.TokenID(name)
		equal(t, false, l.IsEOG(id), "IsEOG(%s)", name)
	}
	equal(t, TypeControl, l.Type(128006), "<|start_header_id|> is CONTROL")

	// Llama 3.1 adds <|eom_id|> (end of a message that calls a tool): it
	// ends generation too, found by name like <|eot_id|>.
	ctl := int32(TypeControl)
	l31, err := synthVocab{model: "gpt2", pre: "llama-bpe",
		extra:      []string{"<|begin_of_text|>", "<|end_of_text|>", "<|eom_id|>", "<|eot_id|>"},
		extraTypes: []int32{ctl, ctl, ctl, ctl},
		kvs:        map[string]gguf.Value{"tokenizer.ggml.bos_token_id": gguf.Uint32(256), "tokenizer.ggml.eos_token_id": gguf.Uint32(257), keyAddBOS: gguf.Bool(true)},
	}.build(t)
	if err != nil {
		t.Fatal(err)
	}
	equal(t, int32(258), l31.EOM(), "llama3.1 eom")
	equal(t, int32(259), l31.EOT(), "llama3.1 eot")
	equal(t, []int32{257, 258, 259}, l31.EOGs(), "llama3.1 EOG ids")
	equal(t, []int32{256, 'h', 'i', 259}, l31.Tokenize("hi<|eot_id|>", true, true), "llama3.1 BOS and specials")
}
