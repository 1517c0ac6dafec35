package chat

import (
	"encoding/json"
	"errors"
	"os"
	"reflect"
	"testing"

	"github.com/gollm/gollm/gguf"
	"github.com/gollm/gollm/internal/testdata"
	"github.com/gollm/gollm/tokenizer"
)

// goldenFile is the layout of testdata/chat/*.json (see its README).
type goldenFile struct {
	TemplateFile string            `json:"template_file"`
	BOS          string            `json:"bos_token"`
	EOS          string            `json:"eos_token"`
	Cases        []json.RawMessage `json:"cases"`
}

type goldenCase struct {
	Name     string  `json:"name"`
	Expected *string `json:"expected"`
	Error    *string `json:"error"`
}

// TestGoldenRenders renders every case of both template files and compares
// byte for byte; an error case must fail.
func TestGoldenRenders(t *testing.T) {
	for _, file := range []string{"qwen3.json", "deepseek-r1-qwen3.json", "llama3.json", "llama3_1.json"} {
		t.Run(file, func(t *testing.T) {
			var g goldenFile
			data, err := os.ReadFile(testdata.Path("chat", file))
			check(t, err)
			check(t, json.Unmarshal(data, &g))
			source, err := os.ReadFile(testdata.Path(g.TemplateFile))
			check(t, err)
			tpl, err := NewTemplate(string(source), g.BOS, g.EOS)
			check(t, err)
			if len(g.Cases) == 0 {
				t.Fatal("no cases")
			}
			for _, raw := range g.Cases {
				var c goldenCase
				check(t, json.Unmarshal(raw, &c))
				req, err := ParseRequest(raw)
				check(t, err)
				got, err := tpl.Render(req.Messages, req.Options)
				switch {
				case c.Error != nil:
					if err == nil {
						t.Errorf("%s: rendered %q, want an error like %q", c.Name, got, *c.Error)
					} else if !errors.Is(err, ErrRender) {
						t.Errorf("%s: error %v does not wrap ErrRender", c.Name, err)
					} else {
						t.Logf("%s: %v", c.Name, err)
					}
				case err != nil:
					t.Errorf("%s: %v", c.Name, err)
				case got != *c.Expected:
					t.Errorf("%s:\n got  %q\n want %q", c.Name, got, *c.Expected)
				}
			}
		})
	}
}

// TestFromGGUF: the templates stored in the vocab files are the testdata
// templates, with the bos/eos texts of the vocabulary.
func TestFromGGUF(t *testing.T) {
	for _, c := range []struct{ gguf, jinja, bos, eos string }{
		{"qwen3.gguf", "qwen3.jinja", "<|endoftext|>", "<|im_end|>"},
		{"deepseek-r1-qwen3.gguf", "deepseek-r1-0528-qwen3-8b.jinja", "<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>"},
		{"llama3.gguf", "llama3.jinja", "<|begin_of_text|>", "<|end_of_text|>"},
	} {
		f, err := gguf.Open(testdata.Path("vocab", c.gguf))
		check(t, err)
		tpl, err := FromGGUF(f)
		f.Close()
		check(t, err)
		want, err := os.ReadFile(testdata.Path("templates", c.jinja))
		check(t, err)
		if tpl.Source() != string(want) || tpl.BOS() != c.bos || tpl.EOS() != c.eos {
			t.Errorf("%s: source equal %v, bos %q, eos %q", c.gguf, tpl.Source() == string(want), tpl.BOS(), tpl.EOS())
		}
	}
}

func check(tb testing.TB, err error) {
	tb.Helper()
	if err != nil {
		tb.Fatal(err)
	}
}

// TestGoldenPromptsRender: the chat prompts of the logits tests are this
// package's renders (template from the model file), and tokenizing them with
// the matching vocabulary gives ids_full_vocab.
func TestGoldenPromptsRender(t *testing.T) {
	for _, c := range []struct{ model, vocab string }{
		{"qwen3-tiny-q6k", "qwen3.gguf"},
		{"qwen3-tiny-mixed", "deepseek-r1-qwen3.gguf"},
	} {
		data, err := os.ReadFile(testdata.Path(c.model, "prompts.json"))
		check(t, err)
		var prompts []struct {
			Name                string            `json:"name"`
			Kind                string            `json:"kind"`
			Text                string            `json:"text"`
			Messages            []json.RawMessage `json:"messages"`
			AddGenerationPrompt bool              `json:"add_generation_prompt"`
			EnableThinking      *bool             `json:"enable_thinking"`
			IDsFullVocab        []int32           `json:"ids_full_vocab"`
		}
		check(t, json.Unmarshal(data, &prompts))
		// The template from the model file; the BOS/EOS texts from the full
		// vocabulary (the small model's BOS stands in as byte 0x00, "Ā").
		mf, err := gguf.Open(testdata.Path("models", c.model+".gguf"))
		check(t, err)
		modelTpl, err := FromGGUF(mf)
		mf.Close()
		check(t, err)
		vf, err := gguf.Open(testdata.Path("vocab", c.vocab))
		check(t, err)
		tok, err := tokenizer.Load(vf)
		check(t, err)
		vocabTpl, err := FromGGUF(vf)
		vf.Close()
		check(t, err)
		tpl, err := NewTemplate(modelTpl.Source(), vocabTpl.BOS(), vocabTpl.EOS())
		check(t, err)
		n := 0
		for _, p := range prompts {
			if p.Kind != "chat" {
				continue
			}
			n++
			msgs := make([]Message, len(p.Messages))
			for i, raw := range p.Messages {
				check(t, json.Unmarshal(raw, &msgs[i]))
			}
			opts := RenderOptions{AddGenerationPrompt: p.AddGenerationPrompt}
			if p.EnableThinking != nil {
				opts.Extra = map[string]any{"enable_thinking": *p.EnableThinking}
			}
			got, err := tpl.Render(msgs, opts)
			check(t, err)
			if got != p.Text {
				t.Errorf("%s/%s: rendered\n %q\nwant\n %q", c.model, p.Name, got, p.Text)
			}
			if ids := tok.Encode(got, true); !reflect.DeepEqual(ids, p.IDsFullVocab) {
				t.Errorf("%s/%s: ids %v, want %v", c.model, p.Name, ids, p.IDsFullVocab)
			}
		}
		if n == 0 {
			t.Fatalf("%s: no chat prompts", c.model)
		}
	}
}
