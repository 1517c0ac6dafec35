package synth

import (
	"fmt"
	"io"
	"strings"

	"github.com/gollm/gollm/gguf"
	"github.com/gollm/gollm/tensor"
)

// Write writes a random-weight model described by cfg to path.
//
// Metadata: general.architecture = cfg.Arch, general.type, general.name,
// general.description (how it was made), the <arch>.* hyperparameters
// llama.cpp's loader reads (block_count, context_length, embedding_length,
// feed_forward_length, attention.head_count, attention.head_count_kv,
// rope.freq_base, attention.layer_norm_rms_epsilon, then
// expert_count, expert_used_count and expert_feed_forward_length for
// qwen3moe, attention.key_length and value_length for qwen3 and qwen3moe
// and wherever the head width is not embedding_length / head_count, and vocab_size and
// rope.dimension_count for llama, as its converter writes them), the
// tokenizer, general.quantization_version and general.file_type, in the
// order llama.cpp's tools write them.
//
// The tokenizer is copied from vocabFrom when it is not nil: every
// tokenizer.* key (tokens, token types, merges, special token ids, add_bos,
// chat template, pre-tokenizer, model), and the vocabulary size is then its
// token count (cfg.Vocab is ignored). With vocabFrom nil the built-in
// byte-level tokenizer is written (see vocab.go) with cfg.Vocab tokens.
//
// Tensors: see Config.Tensors, and the package comment for how their
// values are made. The file is streamed: memory use stays at a few
// megabytes whatever the model size. On error the partial file is removed.
func Write(path string, cfg Config, vocabFrom *gguf.File) error {
	w, err := newWriter(cfg, vocabFrom)
	if err != nil {
		return err
	}
	return w.WriteFile(path)
}

// WriteTo is Write to an io.Writer. It returns the bytes written.
func WriteTo(out io.Writer, cfg Config, vocabFrom *gguf.File) (int64, error) {
	w, err := newWriter(cfg, vocabFrom)
	if err != nil {
		return 0, err
	}
	return w.WriteTo(out)
}

// newWriter prepares a gguf.Writer with all metadata and tensors of the
// model; tensor data is generated when the writer writes.
func newWriter(cfg Config, vocabFrom *gguf.File) (*gguf.Writer, error) {
	cfg = cfg.Normalize()
	// The vocabulary size comes from the tokenizer file if there is one.
	// Validate before building the built-in tokenizer, whose size is
	// cfg.Vocab: a bad value must be an error, not a huge allocation.
	var tok []gguf.KV
	vocab := cfg.Vocab
	if vocabFrom != nil {
		var err error
		if tok, vocab, err = copiedTokenizer(vocabFrom); err != nil {
			return nil, err
		}
	}
	if err := cfg.validate(vocab); err != nil {
		return nil, err
	}
	if vocabFrom == nil {
		var err error
		if tok, err = builtinTokenizer(vocab); err != nil {
			return nil, err
		}
	}

	w := gguf.NewWriter()
	a := cfg.Arch + "."
	kvs := []gguf.KV{
		{Key: "general.architecture", Value: gguf.String(cfg.Arch)},
		{Key: "general.type", Value: gguf.String("model")},
		{Key: "general.name", Value: gguf.String(cfg.Name)},
		{Key: "general.description", Value: gguf.String(describe(cfg))},
		{Key: a + "block_count", Value: gguf.Uint32(uint32(cfg.Layers))},
		{Key: a + "context_length", Value: gguf.Uint32(uint32(cfg.ContextLength))},
		{Key: a + "embedding_length", Value: gguf.Uint32(uint32(cfg.Embd))},
		{Key: a + "feed_forward_length", Value: gguf.Uint32(uint32(cfg.FF))},
		{Key: a + "attention.head_count", Value: gguf.Uint32(uint32(cfg.Heads))},
		{Key: a + "attention.head_count_kv", Value: gguf.Uint32(uint32(cfg.KVHeads))},
		{Key: a + "rope.freq_base", Value: gguf.Float32(float32(cfg.RopeBase))},
		{Key: a + "attention.layer_norm_rms_epsilon", Value: gguf.Float32(float32(cfg.RMSEps))},
	}
	if cfg.Arch == "qwen3moe" {
		kvs = append(kvs,
			gguf.KV{Key: a + "expert_count", Value: gguf.Uint32(uint32(cfg.Experts))},
			gguf.KV{Key: a + "expert_used_count", Value: gguf.Uint32(uint32(cfg.ExpertsUsed))},
			gguf.KV{Key: a + "expert_feed_forward_length", Value: gguf.Uint32(uint32(cfg.ExpertFF))})
	}
	if cfg.Arch == "qwen3" || cfg.Arch == "qwen3moe" || cfg.Heads*cfg.HeadDim != cfg.Embd {
		kvs = append(kvs,
			gguf.KV{Key: a + "attention.key_length", Value: gguf.Uint32(uint32(cfg.HeadDim))},
			gguf.KV{Key: a + "attention.value_length", Value: gguf.Uint32(uint32(cfg.HeadDim))})
	}
	if cfg.Arch == "llama" {
		kvs = append(kvs,
			gguf.KV{Key: a + "vocab_size", Value: gguf.Uint32(uint32(vocab))},
			gguf.KV{Key: a + "rope.dimension_count", Value: gguf.Uint32(uint32(cfg.HeadDim))})
	}
	kvs = append(kvs, tok...)
	if cfg.Type.BlockSize() > 1 {
		kvs = append(kvs, gguf.KV{Key: "general.quantization_version", Value: gguf.Uint32(2)})
	}
	kvs = append(kvs, gguf.KV{Key: "general.file_type", Value: gguf.Uint32(cfg.fileType())})
	for _, kv := range kvs {
		if err := w.Set(kv.Key, kv.Value); err != nil {
			return nil, fmt.Errorf("synth: metadata %s: %w", kv.Key, err)
		}
	}

	workers := defaultWorkers()
	for _, spec := range cfg.Tensors(vocab) {
		job, err := newTensorJob(spec, cfg)
		if err != nil {
			return nil, err
		}
		if err := w.AddTensorFunc(spec.Name, spec.Type, spec.Shape,
			func(out io.Writer) error { return job.writeTo(out, workers) }, job.size()); err != nil {
			return nil, fmt.Errorf("synth: tensor %s: %w", spec.Name, err)
		}
	}
	return w, nil
}

// describe is the general.description text: what made the file.
func describe(cfg Config) string {
	how := "quantized blocks drawn from random bits"
	switch {
	case cfg.Type == tensor.F32 || cfg.Type == tensor.F16 || cfg.Type == tensor.BF16:
		how = "Gaussian weights"
	case cfg.Quantize:
		how = "Gaussian weights quantized with ggml's reference quantizer"
	}
	if cfg.Mix != Pure {
		how += ", tensor types as llama-quantize's " + strings.ToUpper(cfg.Mix.String())
	}
	return fmt.Sprintf("random weights from gollm synth (seed %d, weight std %g, %s); not a trained model", cfg.Seed, cfg.WeightStd, how)
}
