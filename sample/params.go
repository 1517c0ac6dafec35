package sample

import (
	"errors"
	"fmt"
	"maps"
	"math"
)

// Sentinel errors. Every error this package returns wraps one of them, so
// callers can test with errors.Is.
var (
	// ErrInvalidParams reports a Params value that Validate rejects, or a
	// logit bias for a token id that the logits row does not have.
	ErrInvalidParams = errors.New("sample: invalid parameters")

	// ErrNoCandidates reports a logits row from which no token can be drawn:
	// the row is empty, or every logit is -Inf once the logit bias and the
	// penalties have been applied.
	ErrNoCandidates = errors.New("sample: no token can be sampled")

	// ErrNaNLogit reports a logits row with a NaN in it: the model's
	// computation broke, and no token drawn from such a row can be trusted.
	ErrNaNLogit = errors.New("sample: NaN logit")
)

// Params configures a Sampler. The fields follow llama.cpp's names and
// meanings (llama-cli --temp, --top-k, --top-p, --min-p, --repeat-penalty,
// --presence-penalty, --frequency-penalty, --repeat-last-n, --logit-bias,
// --seed).
//
// The zero value is not valid: TopP and RepeatPenalty use 1, not 0, to mean
// "off". Start from DefaultParams or GreedyParams and change what you need.
type Params struct {
	// Temperature divides the logits before the final softmax. 0 means
	// greedy: take the highest logit (after bias and penalties), ties to the
	// lowest token id. Must be finite and not negative.
	Temperature float32

	// TopK keeps only the K highest logits. 0 turns it off. Must not be
	// negative.
	TopK int

	// TopP (nucleus sampling) keeps the smallest set of most likely tokens
	// whose probabilities add up to at least TopP. Must be in (0, 1];
	// 1 turns it off.
	TopP float32

	// MinP keeps only tokens whose probability is at least MinP times the
	// probability of the most likely token. Must be in [0, 1]; 0 turns it
	// off.
	MinP float32

	// RepeatPenalty is llama.cpp's repetition penalty: a token seen in the
	// penalty window has a positive logit divided by RepeatPenalty and a
	// negative (or zero) logit multiplied by it. Must be finite and > 0;
	// 1 turns it off.
	RepeatPenalty float32

	// PresencePenalty is subtracted once from the logit of every token seen
	// in the penalty window. 0 turns it off. Must be finite.
	PresencePenalty float32

	// FrequencyPenalty is subtracted from a token's logit once per time the
	// token occurs in the penalty window. 0 turns it off. Must be finite.
	FrequencyPenalty float32

	// PenaltyLastN is how many of the most recently accepted tokens the
	// three penalties look at. 0 turns the penalties off; -1 means every
	// token accepted since New or Reset (llama.cpp's -1 means "context
	// size", and a sequence's history never exceeds its context). Must be
	// >= -1. The default is 64.
	PenaltyLastN int

	// LogitBias is added to the logits of the given token ids before
	// anything else. A bias of -Inf bans a token; +Inf forces it (see the
	// package comment). Ids must not be negative, and biases must not be
	// NaN. An id beyond the end of the logits row makes TrySample fail.
	// New copies the map; later changes to it have no effect.
	LogitBias map[int32]float32

	// Seed seeds the random number generator (a PCG from math/rand/v2). The
	// same seed and the same logits give the same tokens. 0 is an ordinary
	// seed, not "random": give every sequence its own seed if their answers
	// should differ.
	Seed uint64
}

// DefaultParams returns llama.cpp's default sampling settings (those of
// llama-cli and llama-server): temperature 0.8, top-k 40, top-p 0.95,
// min-p 0.05, the penalties off (repeat 1.0, presence 0, frequency 0) with a
// window of 64 tokens, no logit bias, seed 0.
func DefaultParams() Params {
	return Params{
		Temperature:      0.8,
		TopK:             40,
		TopP:             0.95,
		MinP:             0.05,
		RepeatPenalty:    1.0,
		PresencePenalty:  0,
		FrequencyPenalty: 0,
		PenaltyLastN:     64,
		Seed:             0,
	}
}

// GreedyParams returns DefaultParams with Temperature 0: always the most
// likely token. This is how the golden files' greedy runs were made.
func GreedyParams() Params {
	p := DefaultParams()
	p.Temperature = 0
	return p
}

// Validate reports the first field that is out of range, as an error that
// wraps ErrInvalidParams.
func (p Params) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrInvalidParams}, args...)...)
	}
	finite := func(x float32) bool { return !math.IsNaN(float64(x)) && !math.IsInf(float64(x), 0) }

	switch {
	case !finite(p.Temperature):
		return bad("temperature %g is not a finite number", p.Temperature)
	case p.Temperature < 0:
		return bad("temperature %g is negative (use 0 for greedy)", p.Temperature)
	case p.TopK < 0:
		return bad("top-k %d is negative (use 0 to turn it off)", p.TopK)
	case !(p.TopP > 0 && p.TopP <= 1): // also rejects NaN
		return bad("top-p %g is outside (0, 1] (use 1 to turn it off)", p.TopP)
	case !(p.MinP >= 0 && p.MinP <= 1):
		return bad("min-p %g is outside [0, 1] (use 0 to turn it off)", p.MinP)
	case !finite(p.RepeatPenalty) || p.RepeatPenalty <= 0:
		return bad("repeat penalty %g must be a finite number > 0 (use 1 to turn it off)", p.RepeatPenalty)
	case !finite(p.PresencePenalty):
		return bad("presence penalty %g is not a finite number", p.PresencePenalty)
	case !finite(p.FrequencyPenalty):
		return bad("frequency penalty %g is not a finite number", p.FrequencyPenalty)
	case p.PenaltyLastN < -1:
		return bad("penalty window %d is below -1 (use -1 for the whole history, 0 to turn penalties off)", p.PenaltyLastN)
	}
	for id, b := range p.LogitBias {
		if id < 0 {
			return bad("logit bias for negative token id %d", id)
		}
		if math.IsNaN(float64(b)) {
			return bad("logit bias for token %d is NaN", id)
		}
	}
	return nil
}

// penaltiesOn reports whether any of the three penalties can change a logit.
func (p Params) penaltiesOn() bool {
	return p.PenaltyLastN != 0 &&
		(p.RepeatPenalty != 1 || p.PresencePenalty != 0 || p.FrequencyPenalty != 0)
}

// clone returns p with its own copy of the LogitBias map.
func (p Params) clone() Params {
	p.LogitBias = maps.Clone(p.LogitBias)
	return p
}
