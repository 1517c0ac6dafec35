package tokenizer

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/gollm/gollm/gguf"
	"github.com/gollm/gollm/internal/testdata"
)

// benchText returns about n bytes of mixed text, the same every time:
// English prose, Go code and Chinese/Japanese, in paragraphs.
func benchText(n int) string {
	english := strings.Fields(`the of and to in is was that for it with as his on be at by had are but
		from or have an they which one you were her all she there would their we him been has when who will
		more no if out so said what up its about into than them can only other new some could time these two
		may then do first any my now such like our over man me even most made after also did many before must
		through back years where much your way well down should because each just those people Mr how too
		little state good very make world still own see men work long get here between both life being under
		never day same another know while last might us great old year off come since against go came right
		used take three tokenizer inference attention transformer quantization don't it's we'll they're`)
	code := []string{
		"func (t *Tokenizer) Encode(text string) []int32 {\n", "\tfor i := 0; i < n; i++ {\n",
		"\t\tif err != nil {\n\t\t\treturn nil, fmt.Errorf(\"load: %w\", err)\n\t\t}\n", "\t}\n}\n",
		"x := make([]float32, 4096) // (dim)\n", "def forward(self, x):\n    return self.w @ x + 1e-6\n",
		"    for (int j = 0; j < 16; ++j) { acc += a[j] * b[j]; }\n", "SELECT id, name FROM users WHERE age > 42;\n",
	}
	cjk := []string{"我想在苹果公司工作。", "今天天气很好，我们去公园散步吧！", "こんにちは、世界。", "東京は日本の首都です。",
		"안녕하세요, 만나서 반갑습니다.", "机器学习模型的推理速度取决于内存带宽。", "「トークナイザー」を書く。"}
	rng := rand.New(rand.NewPCG(2026, 8))
	var b strings.Builder
	for b.Len() < n {
		switch rng.IntN(4) {
		case 0, 1: // a paragraph of prose
			for i := range 40 + rng.IntN(80) {
				w := english[rng.IntN(len(english))]
				if i == 0 {
					w = strings.ToUpper(w[:1]) + w[1:]
				}
				b.WriteString(w)
				switch rng.IntN(12) {
				case 0:
					b.WriteString(", ")
				case 1:
					b.WriteString(". ")
				case 2:
					b.WriteString(" 2024 ")
				default:
					b.WriteString(" ")
				}
			}
			b.WriteString("\n\n")
		case 2:
			for range 3 + rng.IntN(8) {
				b.WriteString(code[rng.IntN(len(code))])
			}
			b.WriteString("\n")
		case 3:
			for range 2 + rng.IntN(6) {
				b.WriteString(cjk[rng.IntN(len(cjk))])
			}
			b.WriteString("\n\n")
		}
	}
	return b.String()
}

func BenchmarkLoad(b *testing.B) {
	f, err := gguf.Open(testdata.Path("vocab", "qwen3.gguf"))
	check(b, err)
	defer f.Close()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Load(f); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEncode: the word cache warmed by earlier iterations, as it is in
// a server that keeps tokenizing text of the same language.
func BenchmarkEncode(b *testing.B) {
	tok := load(b, "vocab", "qwen3.gguf")
	text := benchText(1 << 20)
	b.SetBytes(int64(len(text)))
	for b.Loop() {
		tok.Encode(text, true)
	}
}

// BenchmarkEncodeColdCache empties the word cache before every iteration,
// so every distinct word of the megabyte goes through BPE once.
func BenchmarkEncodeColdCache(b *testing.B) {
	tok := load(b, "vocab", "qwen3.gguf")
	text := benchText(1 << 20)
	b.SetBytes(int64(len(text)))
	for b.Loop() {
		tok.cache = wordCache{}
		tok.Encode(text, true)
	}
}

// BenchmarkEncodeNoCache runs BPE on every word (the cache disabled).
func BenchmarkEncodeNoCache(b *testing.B) {
	tok := load(b, "vocab", "qwen3.gguf")
	text := benchText(1 << 20)
	s := new(bpeScratch)
	b.SetBytes(int64(len(text)))
	for b.Loop() {
		var out []int32
		s.cps, s.ends = splitQwen2(text, s.cps, s.ends[:0])
		start := 0
		for _, e := range s.ends {
			out = tok.bpeWord(s, text[start:e], out[:0])
			start = int(e)
		}
	}
}

func BenchmarkDecode(b *testing.B) {
	tok := load(b, "vocab", "qwen3.gguf")
	text := benchText(1 << 20)
	ids := tok.Encode(text, true)
	b.SetBytes(int64(len(text)))
	b.ReportMetric(float64(len(ids)), "tokens")
	for b.Loop() {
		tok.Decode(ids)
	}
}

func BenchmarkStreamDecode(b *testing.B) {
	tok := load(b, "vocab", "qwen3.gguf")
	text := benchText(1 << 20)
	ids := tok.Encode(text, true)
	b.SetBytes(int64(len(text)))
	for b.Loop() {
		d := tok.NewStreamDecoder()
		for _, id := range ids {
			d.Add(id)
		}
		d.Flush()
	}
}
