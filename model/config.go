// Package model implements the Qwen3 transformer: loading its weights from
// a GGUF file and computing next-token logits for a flat batch that mixes
// tokens of several sequences, attending through a paged KV cache.
package model

import (
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/gollm/gollm/gguf"
)

// Errors returned by Load and Forward, wrapped with details.
var (
	ErrArchitecture = errors.New("model: unsupported architecture")
	ErrConfig       = errors.New("model: invalid model configuration")
	ErrTensor       = errors.New("model: bad or missing tensor")
	ErrBatch        = errors.New("model: invalid batch")
)

// SupportedArchitectures lists the values of general.architecture gollm runs.
var SupportedArchitectures = []string{"qwen3"}

// Config holds the hyperparameters of a Qwen3 model, read from the
// qwen3.* metadata keys.
type Config struct {
	Arch      string
	Layers    int     // block_count
	Embd      int     // embedding_length (model width)
	FF        int     // feed_forward_length
	Heads     int     // attention.head_count
	KVHeads   int     // attention.head_count_kv (grouped-query attention)
	HeadDim   int     // attention.key_length (not Embd/Heads in Qwen3)
	Vocab     int     // rows of token_embd
	Context   int     // context_length the model was trained for
	RopeBase  float64 // rope.freq_base
	RMSEps    float64 // attention.layer_norm_rms_epsilon
	Tied      bool    // no output.weight: the LM head reuses token_embd
	Scaling   RopeScaling
	QDim      int // Heads*HeadDim: width of the query projection
	KVDim     int // KVHeads*HeadDim: width of the key and value projections
	FileBytes int64
}

// RopeScaling is rotary-embedding context extension. Type is "none",
// "linear" or "yarn". For YaRN, positions are interpolated by 1/Factor for
// the low frequencies and extrapolated for the high ones, blending between
// the dimensions set by BetaFast and BetaSlow relative to OrigContext.
type RopeScaling struct {
	Type        string
	Factor      float64
	OrigContext int
	AttnFactor  float64 // extra multiplier on cos/sin (1 by default)
	BetaFast    float64 // 32 by default
	BetaSlow    float64 // 1 by default
}

// ReadConfig reads and checks the hyperparameters of a GGUF file.
func ReadConfig(f *gguf.File) (Config, error) {
	var c Config
	arch, err := f.Architecture()
	if err != nil {
		return c, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	c.Arch = arch
	supported := false
	for _, a := range SupportedArchitectures {
		supported = supported || a == arch
	}
	if !supported {
		return c, fmt.Errorf("%w: %q (gollm supports %s)", ErrArchitecture, arch, strings.Join(SupportedArchitectures, ", "))
	}
	key := func(k string) string { return arch + "." + k }
	ints := []struct {
		dst  *int
		name string
	}{
		{&c.Layers, "block_count"},
		{&c.Embd, "embedding_length"},
		{&c.FF, "feed_forward_length"},
		{&c.Heads, "attention.head_count"},
		{&c.KVHeads, "attention.head_count_kv"},
		{&c.Context, "context_length"},
	}
	for _, it := range ints {
		v, err := f.Int(key(it.name))
		if err != nil {
			return c, fmt.Errorf("%w: %w", ErrConfig, err)
		}
		if v < 1 || v > 1<<20 {
			return c, fmt.Errorf("%w: %s = %d", ErrConfig, key(it.name), v)
		}
		*it.dst = int(v)
	}
	c.HeadDim = c.Embd / c.Heads
	if v, err := f.Int(key("attention.key_length")); err == nil {
		c.HeadDim = int(v)
	}
	if v, err := f.Int(key("attention.value_length")); err == nil && int(v) != c.HeadDim {
		return c, fmt.Errorf("%w: value_length %d differs from key_length %d", ErrConfig, v, c.HeadDim)
	}
	if c.HeadDim < 2 || c.HeadDim%2 != 0 || c.HeadDim > 1024 {
		return c, fmt.Errorf("%w: head dimension %d", ErrConfig, c.HeadDim)
	}
	if c.Heads%c.KVHeads != 0 {
		return c, fmt.Errorf("%w: %d query heads are not a multiple of %d KV heads", ErrConfig, c.Heads, c.KVHeads)
	}
	c.QDim, c.KVDim = c.Heads*c.HeadDim, c.KVHeads*c.HeadDim
	c.RopeBase = 10000
	if v, err := f.Float(key("rope.freq_base")); err == nil {
		c.RopeBase = v
	}
	c.RMSEps = 1e-6
	if v, err := f.Float(key("attention.layer_norm_rms_epsilon")); err == nil {
		c.RMSEps = v
	}
	if !(c.RopeBase > 0) || math.IsInf(c.RopeBase, 0) || !(c.RMSEps > 0) {
		return c, fmt.Errorf("%w: rope base %g, rms eps %g", ErrConfig, c.RopeBase, c.RMSEps)
	}
	c.Scaling = RopeScaling{Type: "none", Factor: 1, AttnFactor: 1, BetaFast: 32, BetaSlow: 1, OrigContext: c.Context}
	if t, err := f.String(key("rope.scaling.type")); err == nil {
		c.Scaling.Type = t
	}
	if v, err := f.Float(key("rope.scaling.factor")); err == nil {
		c.Scaling.Factor = v
	}
	if v, err := f.Int(key("rope.scaling.original_context_length")); err == nil {
		c.Scaling.OrigContext = int(v)
	}
	if v, err := f.Float(key("rope.scaling.attn_factor")); err == nil && v > 0 {
		c.Scaling.AttnFactor = v
	}
	if err := c.Scaling.check(); err != nil {
		return c, err
	}
	c.FileBytes = f.Bytes()
	return c, nil
}

func (s RopeScaling) check() error {
	switch s.Type {
	case "none", "":
		return nil
	case "linear", "yarn":
		if !(s.Factor >= 1) || s.Factor > 1024 {
			return fmt.Errorf("%w: rope scaling factor %g (must be 1 to 1024)", ErrConfig, s.Factor)
		}
		if s.Type == "yarn" && s.OrigContext < 1 {
			return fmt.Errorf("%w: YaRN needs an original context length, got %d", ErrConfig, s.OrigContext)
		}
		return nil
	}
	return fmt.Errorf("%w: rope scaling type %q (use none, linear or yarn)", ErrConfig, s.Type)
}

// KVBytesPerToken is the KV cache memory per token for an element size
// in bytes: 2 × layers × kvHeads × headDim × size.
func (c Config) KVBytesPerToken(elemBytes int) int { return 2 * c.Layers * c.KVDim * elemBytes }
