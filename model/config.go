// Package model implements the decoder-only transformers of the families
// in family.go (llama, qwen2, qwen3, qwen3moe): loading their weights from a GGUF file and computing next-token logits for a flat batch that mixes
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
	ErrNotFinite    = errors.New("model: weight is NaN or infinite")
	ErrBatch        = errors.New("model: invalid batch")
)

// SupportedArchitectures lists the values of general.architecture gollm
// runs, in alphabetical order: the families of family.go.
var SupportedArchitectures = func() []string {
	var names []string
	for _, f := range families {
		names = append(names, f.arch)
	}
	return names
}()

// Config holds the hyperparameters of a model, read from the metadata keys
// of its architecture (qwen3.*, llama.*, …).
type Config struct {
	Arch      string  // general.architecture: the family (see family.go)
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

	// A mixture of experts (qwen3moe; all 0 for a dense family): each
	// layer has Experts feed-forward blocks of width ExpertFF, and each
	// token goes through ExpertsUsed of them (family.go, moe.go).
	Experts     int // expert_count
	ExpertsUsed int // expert_used_count (top-k)
	ExpertFF    int // expert_feed_forward_length

	fam           *family // the pieces of the architecture
	declaredVocab int     // <arch>.vocab_size when the file has it (0: absent)
}

// RopeStyle names how the family pairs dimensions in the rotary
// embedding: "norm" (adjacent pairs, llama) or "neox" (halves, the
// Qwens); "" for a Config that ReadConfig did not make.
func (c Config) RopeStyle() string {
	if c.fam == nil {
		return ""
	}
	return c.fam.rope.String()
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

// Limits on the hyperparameters. They are far above every released model
// (the largest Qwen3 have 94 layers (235B-A22B) and width 5120 with 64
// query heads (32B); Llama 3.1 405B has 126 layers, width 16384, 128 heads
// and feed-forward width 53248), and low enough that nothing derived from
// them can overflow an int or ask for an absurd allocation before the
// tensors are checked: the largest product formed from the configuration
// alone, KVBytesPerToken = 2 · layers · kvDim · elemBytes, stays below
// 2 · 2^12 · 2^18 · 2^3 = 2^34 for 8-byte elements.
const (
	// maxLayers is 8 times llama.cpp's own limit, LLAMA_MAX_LAYERS = 512.
	maxLayers = 1 << 12
	// maxWidth bounds every width: embedding, feed-forward, and the
	// query and key/value projections (heads × head dimension).
	maxWidth = 1 << 18
	// maxHeads bounds the query head count.
	maxHeads = 1 << 10
	// maxHeadDim bounds the head dimension; real models use 64 to 256.
	maxHeadDim = 1 << 10
	// maxContext bounds context lengths: 2^24 = 16.8M positions, above
	// the longest advertised (10M) and well inside the int32 positions
	// of a Batch.
	maxContext = 1 << 24
	// tensorsOutside are token_embd and output_norm, which every file
	// has (output.weight is optional); the tensors per layer depend on the
	// family (family.tensorsPerLayer).
	tensorsOutside = 2
	// maxVocabKey bounds <arch>.vocab_size like maxVocab the embedding rows.
	maxVocabKey = maxVocab
	// maxExperts bounds expert_count: 8 times llama.cpp's own limit,
	// LLAMA_MAX_EXPERTS = 512 (Qwen3-30B-A3B and 235B-A22B have 128).
	// An expert tensor holds at most maxExperts · maxWidth² = 2^48
	// values, so its size fits an int64 whatever the type.
	maxExperts = 1 << 12
)

// Ranges of the float hyperparameters. All must be finite.
var (
	// ropeBaseRange: the rotary frequencies are base^(-2i/headDim), which
	// must fall with i, so the base must exceed 1; released models use
	// 10^4 (Llama 2) to 10^6 (Qwen3) and a few 10^7. 10^12 leaves room
	// and stays far inside float32, in which the backends compute.
	ropeBaseRange = floatRange{min: 1, max: 1e12, openMin: true}
	// rmsEpsRange: the epsilon keeps 1/sqrt(mean(x²) + eps) finite for a
	// zero row, so it must be positive, also once rounded to float32 (the
	// smallest positive float32 is 1.4e-45). Models use 1e-5 or 1e-6; an
	// epsilon near 1 would swamp the mean square of unit-scale activations.
	rmsEpsRange = floatRange{min: 0, max: 1, openMin: true}
	// ropeFactorRange: a scaling factor stretches the context; below 1
	// it would shrink it. Qwen3's YaRN recipe uses 4 (32k → 128k).
	ropeFactorRange = floatRange{min: 1, max: 1024}
	// attnFactorRange: YaRN's extra multiplier on cos and sin, 1 by
	// default (ropeParams multiplies it by 1 + 0.1·ln(factor), at most
	// 1.7 for factor 1024).
	attnFactorRange = floatRange{min: 0, max: 16, openMin: true}
	// betaRange: YaRN's ramp ends, in rotations over the original
	// context; 32 and 1 by default.
	betaRange = floatRange{min: 0, max: 1024, openMin: true}
)

// ReadConfig reads and checks the hyperparameters of a GGUF file.
//
// Every key it knows is read strictly (see meta.go): a value of the wrong
// type is an error naming the key, the type found and the type wanted,
// and every value must lie in its range (see the limits above), with
// errors naming the key and the value. Required keys are block_count,
// context_length, embedding_length, feed_forward_length (but for a
// mixture of experts), attention.head_count and attention.head_count_kv; the others have
// defaults (key_length: embedding_length / head_count; rope.freq_base:
// 10000; layer_norm_rms_epsilon: 1e-6; no rope scaling). Optional keys
// that only confirm what the rest implies are checked against it:
// rope.dimension_count must be the head dimension (gollm rotates whole
// heads), vocab_size the rows of token_embd (checked by Load), and, for a
// dense family, expert_count must be absent or 0 (a llama file with
// experts is Mixtral, a mixture of experts gollm does not run yet). A
// mixture-of-experts family (qwen3moe) requires expert_count and
// expert_used_count (see readExperts).
//
// The layer count is also bounded by the file: block_count layers need
// 9 to 12 tensors each (by family), so a file with fewer tensors than that cannot hold the
// model; the error (ErrTensor) names the first tensor missing. Every
// other error wraps ErrConfig, or ErrArchitecture for an architecture
// gollm does not run.
func ReadConfig(f *gguf.File) (Config, error) {
	var c Config
	arch, present, err := metaReader{f: f, arch: "general"}.string("architecture")
	if err != nil {
		return c, err
	}
	if !present {
		return c, configErr("general.architecture is missing")
	}
	c.Arch = arch
	if c.fam = familyOf(arch); c.fam == nil {
		return c, fmt.Errorf("%w: %q (gollm supports %s)", ErrArchitecture, arch, strings.Join(SupportedArchitectures, ", "))
	}
	r := metaReader{f: f, arch: arch}
	required := []struct {
		dst    *int
		name   string
		lo, hi int64
	}{
		{&c.Layers, "block_count", 1, maxLayers},
		{&c.Context, "context_length", 1, maxContext},
		{&c.Embd, "embedding_length", 1, maxWidth},
		{&c.FF, "feed_forward_length", 1, maxWidth},
		{&c.Heads, "attention.head_count", 1, maxHeads},
		{&c.KVHeads, "attention.head_count_kv", 1, maxHeads},
	}
	for _, it := range required {
		if it.name == "feed_forward_length" && c.fam.ffn == ffnMoE {
			// A mixture of experts has no dense FFN: llama.cpp reads
			// the key (for the expert width's fallback) but does not
			// need it, so it is optional there (0 when absent).
			v, _, err := r.int(it.name, it.lo, it.hi)
			if err != nil {
				return c, err
			}
			c.FF = int(v)
			continue
		}
		if *it.dst, err = r.requiredInt(it.name, it.lo, it.hi); err != nil {
			return c, err
		}
	}
	if c.KVHeads > c.Heads || c.Heads%c.KVHeads != 0 {
		return c, configErr("%s = %d is not a multiple of %s = %d (each KV head serves a whole group of query heads)",
			r.key("attention.head_count"), c.Heads, r.key("attention.head_count_kv"), c.KVHeads)
	}
	if c.HeadDim, err = r.headDim(c.Embd, c.Heads); err != nil {
		return c, err
	}
	c.QDim, c.KVDim = c.Heads*c.HeadDim, c.KVHeads*c.HeadDim // at most 2^10 · 2^10 = 2^20
	if c.QDim > maxWidth {
		return c, configErr("%s × %s = %d × %d = %d, want at most %d",
			r.key("attention.head_count"), r.key("attention.key_length"), c.Heads, c.HeadDim, c.QDim, maxWidth)
	}
	if n, present, err := r.int("rope.dimension_count", 2, maxHeadDim); err != nil {
		return c, err
	} else if present && int(n) != c.HeadDim {
		return c, configErr("%s = %d differs from the head dimension %d (gollm rotates whole heads)",
			r.key("rope.dimension_count"), n, c.HeadDim)
	}
	if n, present, err := r.int("vocab_size", 1, maxVocabKey); err != nil {
		return c, err
	} else if present {
		c.declaredVocab = int(n)
	}
	if c.fam.ffn == ffnMoE {
		if err := r.readExperts(&c); err != nil {
			return c, err
		}
	} else if n, present, err := r.int("expert_count", 0, maxExperts); err != nil {
		return c, err
	} else if present && n > 0 {
		return c, fmt.Errorf("%w: %s = %d: a mixture of experts under %q is not supported yet", ErrArchitecture, r.key("expert_count"), n, arch)
	}
	if err := r.checkLayersFit(c); err != nil {
		return c, err
	}

	c.RopeBase, c.RMSEps = 10000, 1e-6 // llama.cpp's default base; Qwen3's epsilon
	if v, present, err := r.float("rope.freq_base", ropeBaseRange); err != nil {
		return c, err
	} else if present {
		c.RopeBase = v
	}
	if v, present, err := r.float("attention.layer_norm_rms_epsilon", rmsEpsRange); err != nil {
		return c, err
	} else if present {
		c.RMSEps = v
	}
	if !(float32(c.RMSEps) > 0) {
		return c, configErr("%s = %g rounds to 0 in float32", r.key("attention.layer_norm_rms_epsilon"), c.RMSEps)
	}
	if c.Scaling, err = r.ropeScaling(c.Context); err != nil {
		return c, err
	}
	c.FileBytes = f.Bytes()
	return c, nil
}

// readExperts reads a mixture of experts' hyperparameters, as llama.cpp
// reads them for qwen3moe:
//
//   - expert_count (required): experts per layer, 1 to maxExperts;
//   - expert_used_count (required): experts per token, 1 to expert_count
//     (llama.cpp asserts both);
//   - expert_feed_forward_length: an expert's width, 1 to maxWidth. When
//     absent llama.cpp takes feed_forward_length / expert_used_count
//     (rounded down), and so does gollm; a quotient of 0 is an error, and
//     so is a file with neither key. (feed_forward_length itself is
//     optional for a mixture of experts, which has no dense FFN.)
//
// Qwen3-30B-A3B: 128 experts, 8 used, width 768 (its feed_forward_length,
// 6144, is the dense width the experts replace: 8 · 768).
func (r metaReader) readExperts(c *Config) error {
	var err error
	if c.Experts, err = r.requiredInt("expert_count", 1, maxExperts); err != nil {
		return err
	}
	if c.ExpertsUsed, err = r.requiredInt("expert_used_count", 1, maxExperts); err != nil {
		return err
	}
	if c.ExpertsUsed > c.Experts {
		return configErr("%s = %d exceeds %s = %d (a token cannot use more experts than a layer has)",
			r.key("expert_used_count"), c.ExpertsUsed, r.key("expert_count"), c.Experts)
	}
	n, present, err := r.int("expert_feed_forward_length", 1, maxWidth)
	if err != nil {
		return err
	}
	if !present {
		if c.FF == 0 {
			return configErr("%s and %s are both missing", r.key("expert_feed_forward_length"), r.key("feed_forward_length"))
		}
		if n = int64(c.FF / c.ExpertsUsed); n < 1 {
			return configErr("%s is missing and %s / %s = %d / %d rounds to 0",
				r.key("expert_feed_forward_length"), r.key("feed_forward_length"), r.key("expert_used_count"), c.FF, c.ExpertsUsed)
		}
	}
	c.ExpertFF = int(n)
	return nil
}

// checkLayersFit bounds the layer count by the tensors in the file. Load
// builds per-layer state for block_count layers; without this bound a
// 4 MB file claiming 2^20 layers made it allocate 790 MB and spend 4 s
// before it reported the first missing tensor.
//
// A file that is too short must lack some tensor among its first
// ⌊have/k⌋+1 layers, k tensors per layer (those alone need more than it
// has), so the error can name the first one missing, as Load would, after
// at most have+k+2 name lookups.
func (r metaReader) checkLayersFit(c Config) error {
	tensorsPerLayer := c.fam.tensorsPerLayer()
	have, need := len(r.f.Tensors()), tensorsPerLayer*c.Layers+tensorsOutside
	if have >= need {
		return nil
	}
	missing := ""
	for _, name := range []string{"token_embd.weight", "output_norm.weight"} {
		if missing == "" && !hasTensor(r.f, name) {
			missing = name
		}
	}
	for i := 0; missing == "" && i < min(c.Layers, have/tensorsPerLayer+1); i++ {
		for _, p := range layerParts(&c, i) {
			if p != nil && missing == "" && !hasTensor(r.f, p.name) {
				missing = p.name
			}
		}
	}
	return fmt.Errorf("%w: %s is missing: %s = %d needs at least %d tensors (%d per layer, plus token_embd and output_norm), the file has %d",
		ErrTensor, missing, r.key("block_count"), c.Layers, need, tensorsPerLayer, have)
}

// headDim reads attention.key_length and attention.value_length. Qwen3's
// head dimension is not embedding_length / head_count (Qwen3-4B: 2560 / 32
// = 80, but heads are 128 wide), so key_length is the authority; a file
// without it gets the quotient, which must then be exact. The attention
// code uses one width for keys and values, and RoPE rotates pairs of
// dimensions, so the width must be even.
func (r metaReader) headDim(embd, heads int) (int, error) {
	k, present, err := r.int("attention.key_length", 2, maxHeadDim)
	if err != nil {
		return 0, err
	}
	if !present {
		if embd%heads != 0 {
			return 0, configErr("%s is missing and %s = %d is not a multiple of %s = %d",
				r.key("attention.key_length"), r.key("embedding_length"), embd, r.key("attention.head_count"), heads)
		}
		k = int64(embd / heads)
		if k < 2 || k > maxHeadDim {
			return 0, configErr("%s is missing and %s / %s = %d / %d = %d, want 2 to %d",
				r.key("attention.key_length"), r.key("embedding_length"), r.key("attention.head_count"), embd, heads, k, maxHeadDim)
		}
	}
	if k%2 != 0 {
		return 0, configErr("head dimension %d (%s) is odd; RoPE rotates pairs of dimensions", k, r.key("attention.key_length"))
	}
	v, present, err := r.int("attention.value_length", 1, maxHeadDim)
	if err != nil {
		return 0, err
	}
	if present && v != k {
		return 0, configErr("%s = %d differs from the head dimension %d (gollm needs keys and values of one width)",
			r.key("attention.value_length"), v, k)
	}
	return int(k), nil
}

// ropeScaling reads the rope.scaling.* keys. Every key present is checked
// for its type and range even when scaling is off, so that a broken file
// is found out before someone turns scaling on.
func (r metaReader) ropeScaling(context int) (RopeScaling, error) {
	s := RopeScaling{Type: "none", Factor: 1, AttnFactor: 1, BetaFast: 32, BetaSlow: 1, OrigContext: context}
	if t, present, err := r.string("rope.scaling.type"); err != nil {
		return s, err
	} else if present {
		s.Type = t
	}
	// llama.cpp writes a factor of 0 to mean "unset"; it takes the default.
	if v, present, err := r.float("rope.scaling.factor", floatRange{min: 0, max: ropeFactorRange.max}); err != nil {
		return s, err
	} else if present && v != 0 {
		s.Factor = v
	}
	if v, present, err := r.int("rope.scaling.original_context_length", 1, maxContext); err != nil {
		return s, err
	} else if present {
		s.OrigContext = int(v)
	}
	if v, present, err := r.float("rope.scaling.attn_factor", attnFactorRange); err != nil {
		return s, err
	} else if present {
		s.AttnFactor = v
	}
	return s, s.check(fileScalingNames(r))
}

// scalingNames names RopeScaling's fields in errors: the metadata keys for
// a file, the Go field names for Options.RopeScaling.
type scalingNames struct{ typ, factor, origContext, attnFactor, betaFast, betaSlow string }

var optionScalingNames = scalingNames{"RopeScaling.Type", "RopeScaling.Factor", "RopeScaling.OrigContext",
	"RopeScaling.AttnFactor", "RopeScaling.BetaFast", "RopeScaling.BetaSlow"}

func fileScalingNames(r metaReader) scalingNames {
	return scalingNames{r.key("rope.scaling.type"), r.key("rope.scaling.factor"), r.key("rope.scaling.original_context_length"),
		r.key("rope.scaling.attn_factor"), "YaRN beta_fast", "YaRN beta_slow"}
}

// check validates a scaling, naming its fields with n.
func (s RopeScaling) check(n scalingNames) error {
	switch s.Type {
	case "none", "":
		return nil
	case "linear", "yarn":
	default:
		return configErr("%s = %q, want none, linear or yarn", n.typ, s.Type)
	}
	floats := []struct {
		name string
		v    float64
		rng  floatRange
	}{
		{n.factor, s.Factor, ropeFactorRange},
		{n.attnFactor, s.AttnFactor, attnFactorRange},
		{n.betaFast, s.BetaFast, betaRange},
		{n.betaSlow, s.BetaSlow, betaRange},
	}
	for _, x := range floats {
		if math.IsNaN(x.v) || math.IsInf(x.v, 0) || !x.rng.contains(x.v) {
			return configErr("%s = %g, want %s", x.name, x.v, x.rng)
		}
	}
	if s.Type == "yarn" && (s.OrigContext < 1 || s.OrigContext > maxContext) {
		return configErr("%s = %d, want 1 to %d (YaRN needs the original context length)", n.origContext, s.OrigContext, maxContext)
	}
	return nil
}

// KVBytesPerToken is the KV cache memory per token for an element size
// in bytes: 2 × layers × kvHeads × headDim × size.
func (c Config) KVBytesPerToken(elemBytes int) int { return 2 * c.Layers * c.KVDim * elemBytes }
