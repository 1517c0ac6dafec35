package sample

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/gollm/gollm/internal/testdata"
)

var (
	posInf = float32(math.Inf(1))
	nan32  = float32(math.NaN())
)

// mustNew is New for parameters the test knows to be valid.
func mustNew(t testing.TB, p Params) *Sampler {
	t.Helper()
	s, err := New(p)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// randomRow returns n logits drawn from N(0, sigma²), plus a handful of
// tokens pushed well above the rest, roughly the shape of a real model's
// next-token logits.
func randomRow(seed uint64, n int, sigma float64) []float32 {
	r := rand.New(rand.NewPCG(seed, 1))
	row := make([]float32, n)
	for i := range row {
		row[i] = float32(r.NormFloat64() * sigma)
	}
	for range min(8, n) {
		row[r.IntN(n)] = float32(3*sigma + 4*sigma*r.Float64())
	}
	return row
}

func TestGreedy(t *testing.T) {
	cases := []struct {
		name   string
		logits []float32
		want   int32
	}{
		{"plain", []float32{0.1, 2.5, -1, 2.4}, 1},
		{"tie goes to lowest id", []float32{1, 3, 0, 3, 3}, 1},
		{"tie at id 0", []float32{7, 7}, 0},
		{"-Inf is skipped", []float32{negInf, -50, negInf}, 1},
		{"+Inf wins, lowest id", []float32{1, posInf, 2, posInf}, 1},
		{"single token", []float32{-3}, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := mustNew(t, GreedyParams())
			if got := s.Sample(c.logits); got != c.want {
				t.Fatalf("Sample(%v) = %d, want %d", c.logits, got, c.want)
			}
		})
	}
}

func TestNothingToSample(t *testing.T) {
	rows := map[string][]float32{
		"empty":            {},
		"nil":              nil,
		"all -Inf":         {negInf, negInf, negInf},
		"banned by a bias": {1, 2},
	}
	for _, stochastic := range []bool{false, true} {
		for name, row := range rows {
			p := GreedyParams()
			if stochastic {
				p = DefaultParams()
			}
			if name == "banned by a bias" {
				p.LogitBias = map[int32]float32{0: negInf, 1: negInf}
			}
			for _, topK := range []int{0, 1, 40} {
				p.TopK = topK
				s := mustNew(t, p)
				id, err := s.TrySample(row)
				if id != NoToken || !errors.Is(err, ErrNoCandidates) {
					t.Errorf("%s (temperature %g, top-k %d): TrySample = %d, %v; want NoToken, ErrNoCandidates",
						name, p.Temperature, topK, id, err)
				}
				if id := s.Sample(row); id != NoToken {
					t.Errorf("%s: Sample = %d, want NoToken", name, id)
				}
			}
		}
	}
}

// TestOddLogitsStochastic checks that -Inf is never drawn and that +Inf is
// always drawn, on every path through truncate.
func TestOddLogitsStochastic(t *testing.T) {
	row := []float32{negInf, 0.5, negInf, 0.2, negInf, 0.4, negInf, 0.1}
	allowed := map[int32]bool{1: true, 3: true, 5: true, 7: true}
	for _, p := range pathParams() {
		s := mustNew(t, p)
		seen := map[int32]int{}
		for range 2000 {
			id, err := s.TrySample(row)
			if err != nil {
				t.Fatalf("%+v: %v", p, err)
			}
			if !allowed[id] {
				t.Fatalf("%+v: drew token %d (logit %g)", p, id, row[id])
			}
			seen[id]++
		}
		if p.TopK == 0 && p.TopP == 1 && p.MinP == 0 && len(seen) != len(allowed) {
			t.Errorf("%+v: drew only %v, want all of %v", p, seen, allowed)
		}

		withInf := slices.Clone(row)
		withInf[5], withInf[7] = posInf, posInf
		for range 20 {
			if id := s.Sample(withInf); id != 5 {
				t.Fatalf("%+v: with +Inf at 5 and 7, Sample = %d, want 5", p, id)
			}
		}
	}
}

// pathParams returns one parameter set for each way through truncate:
// heap top-k (with and without top-p and min-p), nucleus, min-p only,
// temperature only, and top-k larger than the row.
func pathParams() []Params {
	base := DefaultParams()
	base.Temperature = 1
	with := func(topK int, topP, minP float32) Params {
		p := base
		p.TopK, p.TopP, p.MinP = topK, topP, minP
		return p
	}
	return []Params{
		with(40, 0.95, 0.05), // defaults
		with(3, 1, 0),        // top-k only
		with(3, 0.9, 0.1),    // top-k, top-p, min-p
		with(0, 0.9, 0),      // nucleus
		with(0, 0.9, 0.05),   // nucleus with min-p
		with(0, 1, 0.05),     // min-p only
		with(0, 1, 0),        // temperature only
		with(1000, 0.9, 0),   // top-k beyond the row: off
	}
}

// TestCallerLogitsUntouched runs every path, with bias and penalties on,
// and checks the caller's row bit for bit afterwards, also after an error.
func TestCallerLogitsUntouched(t *testing.T) {
	row := randomRow(7, 5000, 2)
	row[11], row[12] = negInf, posInf
	withNaN := slices.Clone(row)
	withNaN[10] = nan32
	for _, temperature := range []float32{0, 0.8} {
		for _, p := range pathParams() {
			p.Temperature = temperature
			p.RepeatPenalty, p.PresencePenalty, p.FrequencyPenalty = 1.3, 0.5, 0.25
			p.LogitBias = map[int32]float32{0: 3, 1: negInf, 12: negInf, 4999: 1}
			s := mustNew(t, p)
			s.AcceptAll([]int32{2, 3, 3, 4, 0, 12})
			before := slices.Clone(row)
			for range 5 {
				if _, err := s.TrySample(row); err != nil {
					t.Fatal(err)
				}
				if _, err := s.TrySample(withNaN); !errors.Is(err, ErrNaNLogit) {
					t.Fatalf("%+v: NaN row: %v", p, err)
				}
			}
			if math.Float32bits(withNaN[10]) != math.Float32bits(nan32) || !slices.Equal(withNaN[:10], row[:10]) || !slices.Equal(withNaN[11:], row[11:]) {
				t.Fatalf("%+v: the NaN row changed", p)
			}
			for i := range row {
				if math.Float32bits(row[i]) != math.Float32bits(before[i]) {
					t.Fatalf("%+v: logit %d changed from %g to %g", p, i, before[i], row[i])
				}
			}
		}
	}
}

func TestPenalties(t *testing.T) {
	// Hand-computed with repeat 2, frequency 0.5, presence 0.25 and the
	// history [0 1 0 2 9 -1] (9 and -1 are outside the row and ignored).
	//   token 0: seen 2×, logit  2   → 2/2 − 2·0.5 − 0.25      = −0.25
	//   token 1: seen 1×, logit −1   → −1·2 − 1·0.5 − 0.25     = −2.75
	//   token 2: seen 1×, logit 0.5  → 0.5/2 − 0.5 − 0.25      = −0.5
	//   token 3: unseen                                          3
	//   token 4: unseen                                          0
	logits := []float32{2, -1, 0.5, 3, 0}
	p := GreedyParams()
	p.RepeatPenalty, p.FrequencyPenalty, p.PresencePenalty = 2, 0.5, 0.25
	s := mustNew(t, p)
	s.AcceptAll([]int32{0, 1, 0, 2, 9, -1})
	work, err := s.prepare(logits)
	if err != nil {
		t.Fatal(err)
	}
	want := []float32{-0.25, -2.75, -0.5, 3, 0}
	if !slices.Equal(work, want) {
		t.Fatalf("penalised row = %v, want %v", work, want)
	}
	// The count scratch must be back to all zeros for the next call.
	for i, c := range s.counts {
		if c != 0 {
			t.Fatalf("counts[%d] = %d after prepare, want 0", i, c)
		}
	}
	// And again: penalties do not accumulate across calls.
	work, _ = s.prepare(logits)
	if !slices.Equal(work, want) {
		t.Fatalf("second call: penalised row = %v, want %v", work, want)
	}

	// Zero logit: llama.cpp multiplies logits <= 0, so 0 stays 0 before the
	// additive penalties.
	p = GreedyParams()
	p.RepeatPenalty = 3
	s = mustNew(t, p)
	s.Accept(1)
	work, _ = s.prepare([]float32{1, 0, -2})
	if !slices.Equal(work, []float32{1, 0, -2}) {
		t.Fatalf("zero logit: got %v", work)
	}
	s.AcceptAll([]int32{0, 2})
	work, _ = s.prepare([]float32{1.5, 0, -2})
	if !slices.Equal(work, []float32{0.5, 0, -6}) {
		t.Fatalf("repeat 3 on [1.5 0 -2]: got %v, want [0.5 0 -6]", work)
	}
}

func TestPenaltyWindow(t *testing.T) {
	logits := []float32{1, 1, 1, 1, 1}
	history := []int32{0, 1, 2, 3, 3, 2}
	cases := []struct {
		lastN int
		want  []float32 // with presence penalty 1
	}{
		{0, []float32{1, 1, 1, 1, 1}},  // off
		{2, []float32{1, 1, 0, 0, 1}},  // sees [3 2]
		{3, []float32{1, 1, 0, 0, 1}},  // sees [3 3 2]
		{5, []float32{1, 0, 0, 0, 1}},  // sees [1 2 3 3 2]
		{-1, []float32{0, 0, 0, 0, 1}}, // sees everything
		{100, []float32{0, 0, 0, 0, 1}},
	}
	for _, c := range cases {
		p := GreedyParams()
		p.PresencePenalty, p.PenaltyLastN = 1, c.lastN
		s := mustNew(t, p)
		s.AcceptAll(history)
		work, _ := s.prepare(logits)
		if !slices.Equal(work, c.want) {
			t.Errorf("PenaltyLastN %d: got %v, want %v", c.lastN, work, c.want)
		}
	}

	// A long history: the window must always be the last n accepted, and
	// the stored history must stay bounded.
	p := GreedyParams()
	p.PenaltyLastN = 7
	s := mustNew(t, p)
	var all []int32
	for i := range int32(1000) {
		s.Accept(i)
		all = append(all, i)
		if w := s.window(); !slices.Equal(w, all[max(0, len(all)-7):]) {
			t.Fatalf("after %d accepts the window is %v", i+1, w)
		}
		if len(s.history) > 14 {
			t.Fatalf("history grew to %d tokens for a window of 7", len(s.history))
		}
	}
	s.Reset()
	if len(s.window()) != 0 {
		t.Fatal("Reset kept the history")
	}
}

func TestLogitBias(t *testing.T) {
	logits := []float32{1, 4, 2, 3}

	// A positive bias changes the greedy choice.
	p := GreedyParams()
	p.LogitBias = map[int32]float32{0: 3.5}
	if got := mustNew(t, p).Sample(logits); got != 0 {
		t.Fatalf("bias +3.5 on token 0: Sample = %d, want 0", got)
	}

	// -Inf bans: greedy takes the runner-up.
	p.LogitBias = map[int32]float32{1: negInf}
	if got := mustNew(t, p).Sample(logits); got != 3 {
		t.Fatalf("token 1 banned: Sample = %d, want 3", got)
	}

	// -Inf bans when sampling too, on every path; the other tokens still
	// come up.
	for _, q := range pathParams() {
		q.TopK = min(q.TopK, 3)
		q.TopP, q.MinP, q.Temperature = 1, 0, 2
		q.LogitBias = map[int32]float32{1: negInf}
		s := mustNew(t, q)
		seen := map[int32]int{}
		for range 3000 {
			seen[s.Sample(logits)]++
		}
		if seen[1] != 0 || len(seen) != 3 {
			t.Fatalf("%+v: draws %v, want tokens 0, 2, 3 and never 1", q, seen)
		}
	}

	// +Inf forces.
	p = DefaultParams()
	p.LogitBias = map[int32]float32{2: posInf}
	s := mustNew(t, p)
	for range 100 {
		if got := s.Sample(logits); got != 2 {
			t.Fatalf("token 2 forced: Sample = %d", got)
		}
	}

	// A bias beyond the row is the caller's mistake, reported as such.
	p = DefaultParams()
	p.LogitBias = map[int32]float32{4: 1}
	id, err := mustNew(t, p).TrySample(logits)
	if id != NoToken || !errors.Is(err, ErrInvalidParams) {
		t.Fatalf("bias for token 4 on a row of 4: TrySample = %d, %v; want NoToken, ErrInvalidParams", id, err)
	}
}

func TestDeterminism(t *testing.T) {
	row := randomRow(3, 4096, 1.6)
	p := DefaultParams()
	p.Temperature, p.RepeatPenalty = 1.2, 1.1 // penalties make each draw depend on the last
	p.Seed = 42
	run := func(s *Sampler) []int32 {
		var ids []int32
		for range 2000 {
			id := s.Sample(row)
			s.Accept(id)
			ids = append(ids, id)
		}
		return ids
	}
	a := run(mustNew(t, p))
	b := run(mustNew(t, p))
	if !slices.Equal(a, b) {
		t.Fatal("two samplers with the same seed drew different tokens")
	}
	distinct := map[int32]bool{}
	for _, id := range a {
		distinct[id] = true
	}
	if len(distinct) < 5 {
		t.Fatalf("only %d distinct tokens in 2000 draws: not random enough to test", len(distinct))
	}

	p.Seed = 43
	c := run(mustNew(t, p))
	if slices.Equal(a, c) {
		t.Fatal("seeds 42 and 43 drew the same 2000 tokens")
	}

	// Reset returns to the state after New.
	p.Seed = 42
	s := mustNew(t, p)
	run(s)
	s.Reset()
	if !slices.Equal(run(s), a) {
		t.Fatal("after Reset the sampler did not repeat its first run")
	}
}

// TestNoAllocations checks that sampling a 151936-long row allocates
// nothing once the scratch buffers have been sized.
func TestNoAllocations(t *testing.T) {
	row := randomRow(1, 151936, 2)
	for _, p := range append(pathParams(), GreedyParams()) {
		p.RepeatPenalty, p.FrequencyPenalty = 1.1, 0.1
		s := mustNew(t, p)
		for i := range int32(300) { // fill the history past its compaction point
			s.Accept(i * 7)
		}
		next := int32(0)
		allocs := testing.AllocsPerRun(20, func() {
			s.Accept(next)
			next++
			if s.Sample(row) == NoToken {
				t.Fatal("NoToken")
			}
		})
		if allocs != 0 {
			t.Errorf("%+v: %.1f allocations per Sample, want 0", p, allocs)
		}
	}
}

// golden is the part of forward.json these tests use.
type golden struct {
	Results []struct {
		Name       string         `json:"name"`
		TopK       [][][2]float64 `json:"topk_per_position"`
		LogitsFile string         `json:"last_logits_file"`
		GreedyIDs  []int32        `json:"greedy_ids"`
	} `json:"results"`
}

// TestGoldenTopKAndGreedy checks TopK and greedy sampling against
// llama.cpp's goldens: for the last prompt position of every prompt, TopK
// of the full logits must equal the stored top-20 exactly (ids, order and
// float32 logits) and greedy Sample must give the first greedy token.
func TestGoldenTopKAndGreedy(t *testing.T) {
	for _, model := range []string{"qwen3-tiny-q6k", "qwen3-tiny-mixed"} {
		raw, err := os.ReadFile(testdata.Path(model, "forward.json"))
		if err != nil {
			t.Fatal(err)
		}
		var g golden
		if err := json.Unmarshal(raw, &g); err != nil {
			t.Fatal(err)
		}
		if len(g.Results) == 0 {
			t.Fatalf("%s: no results in forward.json", model)
		}
		for _, r := range g.Results {
			logits := readF32(t, testdata.Path(model, "logits", r.LogitsFile))
			want := r.TopK[len(r.TopK)-1]
			got := TopK(logits, len(want))
			if len(got) != len(want) {
				t.Fatalf("%s/%s: TopK returned %d entries, want %d", model, r.Name, len(got), len(want))
			}
			for i := range want {
				if got[i].ID != int32(want[i][0]) || got[i].Logit != float32(want[i][1]) {
					t.Fatalf("%s/%s: TopK[%d] = %+v, want id %v logit %v", model, r.Name, i, got[i], want[i][0], want[i][1])
				}
			}
			if id := mustNew(t, GreedyParams()).Sample(logits); id != r.GreedyIDs[0] {
				t.Errorf("%s/%s: greedy Sample = %d, want %d", model, r.Name, id, r.GreedyIDs[0])
			}
		}
	}
}

// readF32 reads a file of little-endian float32 values.
func readF32(t *testing.T, path string) []float32 {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(raw)%4 != 0 {
		t.Fatalf("%s: %d bytes is not a whole number of float32", path, len(raw))
	}
	out := make([]float32, len(raw)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
	}
	return out
}

// FuzzTrySample feeds arbitrary rows and parameters to the sampler. It must
// never panic, never return a token whose logit is NaN or -Inf, never touch
// the row, fail with ErrNaNLogit exactly when the row holds a NaN, and
// fail only with its sentinel errors. Run with `go test -fuzz FuzzTrySample ./sample/`.
func FuzzTrySample(f *testing.F) {
	f.Add([]byte{0, 0, 128, 63, 0, 0, 0, 64}, float32(0.8), 40, float32(0.95), float32(0.05), float32(1.1), uint64(1))
	f.Add([]byte{0, 0, 192, 127, 0, 0, 128, 255, 0, 0, 128, 127}, float32(1), 0, float32(0.5), float32(0), float32(1), uint64(2))
	f.Add([]byte{}, float32(0), 0, float32(1), float32(0), float32(1), uint64(3))
	f.Fuzz(func(t *testing.T, raw []byte, temp float32, topK int, topP, minP, repeat float32, seed uint64) {
		row := make([]float32, len(raw)/4)
		for i := range row {
			row[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
		}
		p := Params{Temperature: temp, TopK: topK, TopP: topP, MinP: minP, RepeatPenalty: repeat,
			PresencePenalty: 0.5, PenaltyLastN: 4, Seed: seed}
		s, err := New(p)
		if err != nil {
			if !errors.Is(err, ErrInvalidParams) {
				t.Fatalf("New: %v", err)
			}
			return
		}
		s.AcceptAll([]int32{0, 1, 1, -5, 1 << 30})
		before := slices.Clone(raw)
		for range 3 {
			id, err := s.TrySample(row)
			if hasNaN := slices.ContainsFunc(row, func(l float32) bool { return l != l }); hasNaN != errors.Is(err, ErrNaNLogit) {
				t.Fatalf("row has NaN: %v, but TrySample = %d, %v", hasNaN, id, err)
			}
			if err != nil {
				if id != NoToken || !(errors.Is(err, ErrNoCandidates) || errors.Is(err, ErrNaNLogit)) {
					t.Fatalf("TrySample = %d, %v", id, err)
				}
				continue
			}
			if id < 0 || int(id) >= len(row) {
				t.Fatalf("TrySample = %d for a row of %d", id, len(row))
			}
			if l := row[id]; l != l || l == negInf {
				t.Fatalf("drew token %d whose logit is %g", id, l)
			}
			s.Accept(id)
		}
		for i := range row {
			if math.Float32bits(row[i]) != binary.LittleEndian.Uint32(before[4*i:]) {
				t.Fatal("the caller's row changed")
			}
		}
	})
}

// TestNaNLogits: a NaN anywhere in the row is an error naming the first
// NaN token, on every path (greedy and each way through truncate), whatever
// else the row holds: it must not be skipped and the rest drawn from.
func TestNaNLogits(t *testing.T) {
	base := randomRow(21, 3000, 2)
	params := append(pathParams(), GreedyParams())
	for _, p := range params {
		for _, at := range []int{0, 1, 1499, 2998, 2999} {
			for _, other := range []float32{0, negInf, posInf, nan32} {
				row := slices.Clone(base)
				row[at] = nan32
				if at+1 < len(row) {
					row[at+1] = other // a second NaN, or an infinity, right after
				}
				s := mustNew(t, p)
				s.AcceptAll([]int32{int32(at), 5, 7})
				id, err := s.TrySample(row)
				want := fmt.Sprintf("the logit of token %d (of 3000) is NaN", at)
				if id != NoToken || !errors.Is(err, ErrNaNLogit) || !strings.Contains(err.Error(), want) {
					t.Fatalf("%+v, NaN at %d then %g: TrySample = %d, %v; want ErrNaNLogit mentioning %q", p, at, other, id, err, want)
				}
				if id := s.Sample(row); id != NoToken {
					t.Fatalf("%+v: Sample = %d, want NoToken", p, id)
				}
			}
		}
	}
	// A row of NaN only, and a NaN under a ban: still errors.
	for _, p := range params {
		s := mustNew(t, p)
		if _, err := s.TrySample([]float32{nan32, nan32}); !errors.Is(err, ErrNaNLogit) {
			t.Errorf("%+v: all NaN: %v", p, err)
		}
		p.LogitBias = map[int32]float32{1: negInf}
		s = mustNew(t, p)
		if _, err := s.TrySample([]float32{0.5, nan32, 0.2}); !errors.Is(err, ErrNaNLogit) {
			t.Errorf("%+v: NaN under a ban: %v", p, err)
		}
	}
	// TopK, a display helper, still skips NaN.
	if got := TopK([]float32{nan32, 1, 2}, 2); len(got) != 2 || got[0].ID != 2 || got[1].ID != 1 {
		t.Errorf("TopK skipping NaN: %v", got)
	}
}

// TestInfiniteBiasWins: an infinite bias bans or forces a token even when
// the model's logit is the opposite infinity (the sum would be NaN).
func TestInfiniteBiasWins(t *testing.T) {
	for _, p := range append(pathParams(), GreedyParams()) {
		p.LogitBias = map[int32]float32{1: negInf}
		s := mustNew(t, p)
		if id, err := s.TrySample([]float32{0.1, posInf, 0.3}); err != nil || id == 1 {
			t.Errorf("%+v: +Inf logit, -Inf bias: TrySample = %d, %v; want any token but 1", p, id, err)
		}
		p.LogitBias = map[int32]float32{2: posInf}
		s = mustNew(t, p)
		if id, err := s.TrySample([]float32{0.1, 5, negInf}); err != nil || id != 2 {
			t.Errorf("%+v: -Inf logit, +Inf bias: TrySample = %d, %v; want 2", p, id, err)
		}
	}
}
