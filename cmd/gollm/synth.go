package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/gollm/gollm/gguf"
	"github.com/gollm/gollm/synth"
	"github.com/gollm/gollm/tensor"
)

func init() {
	register(command{name: "synth", summary: "write a random-weight model of a supported family (for tests and benchmarks)", run: runSynth})
}

const synthHelp = `Usage: gollm synth --out FILE [--preset NAME] [--type TYPE] [--seed N]
                   [--vocab-from FILE] [--embd N --layers N --heads N --kv-heads N
                    --head-dim N --ff N --vocab N --tied --ctx N --name S --quantize
                    --experts N --experts-used N --expert-ff N]

Writes a GGUF file shaped exactly like a llama.cpp model of one of the
families gollm runs (metadata, tensor names, shapes and types) but filled
with random weights: it loads and runs like the real thing and talks
nonsense. Useful for tests and for benchmarks at real sizes when no real
weights are at hand.

Start from a preset and override any dimension:

  qwen3-tiny    qwen3   256 embd,  4 layers,  8/4 heads x 64,  ff   768, vocab   4096, tied
  qwen3-0.6b    qwen3  1024 embd, 28 layers, 16/8 heads x 128, ff  3072, vocab 151936, tied
  qwen3-1.7b    qwen3  2048 embd, 28 layers, 16/8 heads x 128, ff  6144, vocab 151936, tied
  qwen3-4b      qwen3  2560 embd, 36 layers, 32/8 heads x 128, ff  9728, vocab 151936, tied
  qwen3-8b      qwen3  4096 embd, 36 layers, 32/8 heads x 128, ff 12288, vocab 151936
  llama3.2-1b   llama  2048 embd, 16 layers, 32/8 heads x 64,  ff  8192, vocab 128256, tied, rope_freqs
  llama3.2-3b   llama  3072 embd, 28 layers, 24/8 heads x 128, ff  8192, vocab 128256, tied, rope_freqs
  llama3.1-8b   llama  4096 embd, 32 layers, 32/8 heads x 128, ff 14336, vocab 128256, rope_freqs
  mistral-7b    llama  4096 embd, 32 layers, 32/8 heads x 128, ff 14336, vocab  32768
  qwen2.5-0.5b  qwen2   896 embd, 24 layers, 14/2 heads x 64,  ff  4864, vocab 151936, tied
  qwen2.5-1.5b  qwen2  1536 embd, 28 layers, 12/2 heads x 128, ff  8960, vocab 151936, tied
  qwen2.5-3b    qwen2  2048 embd, 36 layers, 16/2 heads x 128, ff 11008, vocab 151936, tied
  qwen2.5-7b    qwen2  3584 embd, 28 layers, 28/4 heads x 128, ff 18944, vocab 152064
  qwen3-30b-a3b qwen3moe 2048 embd, 48 layers, 32/4 heads x 128, 8 of 128 experts of ff 768, vocab 151936

The second column is the architecture (general.architecture): llama files
are Llama 3.x and Mistral, qwen2 files Qwen2.5, qwen3moe files
Qwen3-30B-A3B, a mixture of experts: each layer has --experts SwiGLU
experts of width --expert-ff and a router that sends each token to
--experts-used of them (a q4_k file of the real shape is about 17 GB). A width that is not a whole
number of 256-value blocks (Qwen2.5-0.5B's 896) gets llama-quantize's
fallback type for those matrices (q6_k: q8_0, q5_k: q5_1, q4_k: q5_0).

Matrices get --type (q6_k, q4_k, q5_k, q8_0, q4_0, q4_1, q5_0, q5_1, f16,
bf16 or f32); norms are f32. --type q4_k_m or q5_k_m instead gives each
matrix the type llama-quantize gives it in a Q4_K_M or Q5_K_M file, the
mixes people actually run: q6_k for the output head (or the tied
token_embd) and for attn_v and ffn_down (ffn_down_exps) in the first and
last eighth of the layers and every third layer between (14 of
Qwen3-1.7B's 28), q4_k (q5_k) elsewhere, with the same fallbacks for
widths that are not whole blocks. Quantized blocks are drawn directly from
random bits with scales set for a weight std of 0.02, which writes an 8B
model in seconds; --quantize instead quantizes Gaussian weights with
ggml's reference quantizer (realistic, but slow: small models only).

--vocab-from copies the tokenizer (tokens, merges, special tokens, chat
template) from another GGUF file, e.g. a real model or a vocab-only file;
the vocabulary size is then that file's. Without it the file gets a
minimal byte-level tokenizer (256 byte tokens, <|im_start|>, <|im_end|>,
<|endoftext|>, <think>, </think>, padding) and a ChatML template.

The same flags and seed always give the same bytes.

Flags:
`

func runSynth(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("synth", stderr)
	out := fs.String("out", "", "output GGUF `file` (required)")
	preset := fs.String("preset", "qwen3-tiny", "model shape to start from: "+strings.Join(synth.PresetNames(), ", "))
	typ := fs.String("type", "q6_k", "`type` of the weight matrices, or a mix: q4_k_m, q5_k_m")
	seed := fs.Uint64("seed", 0, "random seed")
	vocabFrom := fs.String("vocab-from", "", "copy the tokenizer from this GGUF `file`")
	quantize := fs.Bool("quantize", false, "quantize Gaussian weights with the reference quantizer (slow)")
	name := fs.String("name", "", "general.name (default: <preset>-synth)")
	embd := fs.Int("embd", 0, "embedding width (default: the preset's)")
	layers := fs.Int("layers", 0, "transformer blocks")
	heads := fs.Int("heads", 0, "query heads")
	kvHeads := fs.Int("kv-heads", 0, "key/value heads")
	headDim := fs.Int("head-dim", 0, "width of one head")
	ff := fs.Int("ff", 0, "feed-forward hidden width")
	vocab := fs.Int("vocab", 0, "vocabulary size without --vocab-from")
	tied := fs.Bool("tied", false, "tie the output head to the token embedding (default: the preset's)")
	ctx := fs.Int("ctx", 0, "context length (default: the preset's)")
	experts := fs.Int("experts", 0, "experts per layer (qwen3moe)")
	expertsUsed := fs.Int("experts-used", 0, "experts per token (qwen3moe)")
	expertFF := fs.Int("expert-ff", 0, "width of one expert (qwen3moe)")
	fs.Usage = func() { printHelp(fs, synthHelp) }
	if err := parseArgs(fs, args); err != nil {
		return err
	}
	if *out == "" {
		return fmt.Errorf("%w: --out FILE is required (see gollm synth -h)", errUsage)
	}
	set := map[string]bool{}
	fs.Visit(func(f *pflag.Flag) { set[f.Name] = true })
	if set["vocab"] && *vocabFrom != "" {
		return fmt.Errorf("%w: --vocab and --vocab-from both given: the vocabulary file decides the size", errUsage)
	}

	cfg, err := synth.Preset(*preset)
	if err != nil {
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	if mix, err := synth.ParseMix(*typ); err == nil {
		cfg.Mix = mix
	} else if cfg.Type, err = tensor.ParseDType(*typ); err != nil {
		return fmt.Errorf("%w: --type: %v (or a mix: %v)", errUsage, err, synth.Mixes)
	}
	cfg.Seed = *seed
	cfg.Quantize = *quantize
	if *name != "" {
		cfg.Name = *name
	}
	// Flags given on the command line override the preset.
	overrides := []struct {
		flag     string
		dst, val *int
	}{
		{"embd", &cfg.Embd, embd}, {"layers", &cfg.Layers, layers}, {"heads", &cfg.Heads, heads},
		{"kv-heads", &cfg.KVHeads, kvHeads}, {"head-dim", &cfg.HeadDim, headDim}, {"ff", &cfg.FF, ff},
		{"vocab", &cfg.Vocab, vocab}, {"ctx", &cfg.ContextLength, ctx},
		{"experts", &cfg.Experts, experts}, {"experts-used", &cfg.ExpertsUsed, expertsUsed}, {"expert-ff", &cfg.ExpertFF, expertFF},
	}
	for _, o := range overrides {
		if set[o.flag] {
			*o.dst = *o.val
		}
	}
	if set["tied"] {
		cfg.Tied = *tied
	}

	var vf *gguf.File
	if *vocabFrom != "" {
		if vf, err = gguf.Open(*vocabFrom); err != nil {
			return err
		}
		defer vf.Close()
		toks, err := vf.Strings("tokenizer.ggml.tokens")
		if err != nil {
			return fmt.Errorf("--vocab-from %s: %w", *vocabFrom, err)
		}
		cfg.Vocab = len(toks)
	}

	start := time.Now()
	if err := synth.Write(*out, cfg, vf); err != nil {
		if errors.Is(err, synth.ErrConfig) {
			return fmt.Errorf("%w: %w", errUsage, err)
		}
		return err
	}
	elapsed := time.Since(start)
	st, err := os.Stat(*out)
	if err != nil {
		return err
	}
	tying := "untied output"
	if cfg.Tied {
		tying = "tied output"
	}
	how := "random bits"
	switch {
	case cfg.Type.BlockSize() == 1:
		how = "Gaussian"
	case cfg.Quantize:
		how = "reference quantizer"
	}
	fmt.Fprintf(stdout, "wrote %s: %s, %d tensors, %.3f GB (%d bytes) in %.1fs (%.0f MB/s)\n",
		*out, cfg.Name, len(cfg.Tensors(cfg.Vocab)), float64(st.Size())/1e9, st.Size(),
		elapsed.Seconds(), float64(st.Size())/1e6/elapsed.Seconds())
	ffn := fmt.Sprintf("ff %d", cfg.FF)
	if cfg.Experts > 0 {
		ffn = fmt.Sprintf("%d of %d experts of ff %d", cfg.ExpertsUsed, cfg.Experts, cfg.ExpertFF)
	}
	typeName := cfg.Type.String()
	if cfg.Mix != synth.Pure {
		typeName = cfg.Mix.String() + " mix"
	}
	fmt.Fprintf(stdout, "  %s, embd %d, %d layers, %d/%d heads x %d, %s, vocab %d, %s, %s (%s), seed %d\n",
		cfg.Arch, cfg.Embd, cfg.Layers, cfg.Heads, cfg.KVHeads, cfg.HeadDim, ffn, cfg.Vocab, tying, typeName, how, cfg.Seed)
	return nil
}
