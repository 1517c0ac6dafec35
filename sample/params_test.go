package sample

import (
	"errors"
	"math"
	"strings"
	"testing"
)

func TestDefaultParams(t *testing.T) {
	p := DefaultParams()
	want := Params{Temperature: 0.8, TopK: 40, TopP: 0.95, MinP: 0.05, RepeatPenalty: 1, PenaltyLastN: 64}
	if p.Temperature != want.Temperature || p.TopK != want.TopK || p.TopP != want.TopP ||
		p.MinP != want.MinP || p.RepeatPenalty != want.RepeatPenalty || p.PenaltyLastN != want.PenaltyLastN ||
		p.PresencePenalty != 0 || p.FrequencyPenalty != 0 || p.LogitBias != nil || p.Seed != 0 {
		t.Fatalf("DefaultParams() = %+v, want %+v", p, want)
	}
	if err := p.Validate(); err != nil {
		t.Fatalf("DefaultParams().Validate() = %v", err)
	}
	if g := GreedyParams(); g.Temperature != 0 || g.Validate() != nil {
		t.Fatalf("GreedyParams() = %+v (Validate %v), want temperature 0 and valid", g, g.Validate())
	}
	if p.penaltiesOn() {
		t.Fatal("default penalties should be off")
	}
}

func TestValidate(t *testing.T) {
	nan := float32(math.NaN())
	inf := float32(math.Inf(1))
	cases := []struct {
		name   string
		change func(*Params)
		msg    string // part of the error message
	}{
		{"negative temperature", func(p *Params) { p.Temperature = -0.1 }, "temperature -0.1 is negative"},
		{"NaN temperature", func(p *Params) { p.Temperature = nan }, "temperature NaN"},
		{"infinite temperature", func(p *Params) { p.Temperature = inf }, "temperature +Inf"},
		{"negative top-k", func(p *Params) { p.TopK = -1 }, "top-k -1"},
		{"top-p zero", func(p *Params) { p.TopP = 0 }, "top-p 0 is outside (0, 1]"},
		{"top-p negative", func(p *Params) { p.TopP = -0.5 }, "top-p -0.5"},
		{"top-p above one", func(p *Params) { p.TopP = 1.01 }, "top-p 1.01"},
		{"top-p NaN", func(p *Params) { p.TopP = nan }, "top-p NaN"},
		{"min-p negative", func(p *Params) { p.MinP = -0.01 }, "min-p -0.01"},
		{"min-p above one", func(p *Params) { p.MinP = 2 }, "min-p 2"},
		{"min-p NaN", func(p *Params) { p.MinP = nan }, "min-p NaN"},
		{"repeat penalty zero", func(p *Params) { p.RepeatPenalty = 0 }, "repeat penalty 0"},
		{"repeat penalty negative", func(p *Params) { p.RepeatPenalty = -1 }, "repeat penalty -1"},
		{"repeat penalty infinite", func(p *Params) { p.RepeatPenalty = inf }, "repeat penalty +Inf"},
		{"presence NaN", func(p *Params) { p.PresencePenalty = nan }, "presence penalty NaN"},
		{"frequency infinite", func(p *Params) { p.FrequencyPenalty = -inf }, "frequency penalty -Inf"},
		{"window below -1", func(p *Params) { p.PenaltyLastN = -2 }, "penalty window -2"},
		{"bias negative id", func(p *Params) { p.LogitBias = map[int32]float32{-3: 1} }, "negative token id -3"},
		{"bias NaN", func(p *Params) { p.LogitBias = map[int32]float32{7: nan} }, "token 7 is NaN"},
		{"zero value", func(p *Params) { *p = Params{} }, "top-p 0"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := DefaultParams()
			c.change(&p)
			err := p.Validate()
			if !errors.Is(err, ErrInvalidParams) {
				t.Fatalf("Validate() = %v, want an error wrapping ErrInvalidParams", err)
			}
			if !strings.Contains(err.Error(), c.msg) {
				t.Fatalf("Validate() = %q, want it to mention %q", err, c.msg)
			}
			if s, err := New(p); s != nil || !errors.Is(err, ErrInvalidParams) {
				t.Fatalf("New() = %v, %v; want nil and ErrInvalidParams", s, err)
			}
		})
	}

	// Edge values that are valid.
	valid := []func(*Params){
		func(p *Params) { p.Temperature = 0 },
		func(p *Params) { p.TopK = 0 },
		func(p *Params) { p.TopP = 1 },
		func(p *Params) { p.TopP = 1e-6 },
		func(p *Params) { p.MinP = 0 },
		func(p *Params) { p.MinP = 1 },
		func(p *Params) { p.PenaltyLastN = -1 },
		func(p *Params) { p.PenaltyLastN = 0 },
		func(p *Params) { p.PresencePenalty, p.FrequencyPenalty = -2, 2 },
		func(p *Params) { p.LogitBias = map[int32]float32{0: -inf, 5: inf, 9: -3} },
	}
	for i, change := range valid {
		p := DefaultParams()
		change(&p)
		if err := p.Validate(); err != nil {
			t.Errorf("valid case %d: Validate() = %v", i, err)
		}
	}
}

func TestParamsCopied(t *testing.T) {
	p := DefaultParams()
	p.LogitBias = map[int32]float32{1: 5}
	s, err := New(p)
	if err != nil {
		t.Fatal(err)
	}
	p.LogitBias[1] = -100 // must not reach the Sampler
	p.LogitBias[2] = 100
	got := s.Params()
	if len(got.LogitBias) != 1 || got.LogitBias[1] != 5 {
		t.Fatalf("Sampler saw the caller's later map change: %v", got.LogitBias)
	}
	got.LogitBias[1] = 7 // nor may the returned copy reach it
	if s.Params().LogitBias[1] != 5 {
		t.Fatal("Params() returned the Sampler's own map")
	}
}
