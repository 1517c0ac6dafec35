package model

import (
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"testing"

	"github.com/gollm/gollm/backend/cpu"
	"github.com/gollm/gollm/flat"
	"github.com/gollm/gollm/gguf"
	"github.com/gollm/gollm/internal/testdata"
	"github.com/gollm/gollm/tensor"
)

// Golden files (see testdata/SHARED-README.md).

type idLogit [2]float64 // (id, logit)

type goldenResult struct {
	Name          string      `json:"name"`
	IDs           []int32     `json:"ids"`
	TopKPerPos    [][]idLogit `json:"topk_per_position"`
	LastLogits    string      `json:"last_logits_file"`
	GreedyIDs     []int32     `json:"greedy_ids"`
	GreedyTopK    [][]idLogit `json:"greedy_topk"`
	GreedyPieces  []string    `json:"greedy_pieces_hex"`
	GreedyText    string      `json:"greedy_text"`
	BatchedGreedy []int32     `json:"-"`
}

type goldenFile struct {
	Results []goldenResult `json:"results"`
}

func readJSON(t testing.TB, v any, elem ...string) {
	t.Helper()
	data, err := os.ReadFile(testdata.Path(elem...))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatal(err)
	}
}

func readF32(t testing.TB, elem ...string) []float32 {
	t.Helper()
	data, err := os.ReadFile(testdata.Path(elem...))
	if err != nil {
		t.Fatal(err)
	}
	out := make([]float32, len(data)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(data[4*i:]))
	}
	return out
}

// fixture loads a fixture model on a CPU backend.
type fixture struct {
	name string // qwen3-tiny-q6k or qwen3-tiny-mixed
	file *gguf.File
	m    *Model
}

// fixtureFiles maps the golden-data folders of the other families to
// their model files (the qwen3 folders are named like their files).
var fixtureFiles = map[string]string{"llama-tiny": "llama-tiny-q6k", "qwen2-tiny": "qwen2-tiny-q6k", "qwen3moe-tiny": "qwen3moe-tiny-q6k"}

func loadFixture(t testing.TB, name string, exact bool, opts Options) *fixture {
	t.Helper()
	file := name
	if f, ok := fixtureFiles[name]; ok {
		file = f
	}
	f, err := gguf.Open(testdata.Path("models", file+".gguf"))
	if err != nil {
		t.Fatal(err)
	}
	be := cpu.New(cpu.Options{Threads: 2, Exact: exact})
	m, err := Load(f, be, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { be.Close(); f.Close() })
	return &fixture{name: name, file: f, m: m}
}

func (fx *fixture) state(t testing.TB, capacity, maxBatch int, kv tensor.DType) *State {
	t.Helper()
	s, err := fx.m.NewState(StateOptions{Capacity: capacity, BlockSize: 16, KVType: kv, MaxBatch: maxBatch})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// runPrompt evaluates ids in one Forward with every position producing
// logits, then feeds next (teacher forcing) one token per Forward. It
// returns one logits row per prompt position and per fed token.
func runPrompt(t testing.TB, m *Model, s *State, seq flat.SeqID, ids, next []int32) [][]float32 {
	t.Helper()
	if err := s.KV.AddSeq(seq); err != nil {
		t.Fatal(err)
	}
	V := m.Config.Vocab
	var rows [][]float32
	var b flat.Batch
	start, err := s.KV.Append(seq, len(ids))
	if err != nil {
		t.Fatal(err)
	}
	for i, id := range ids {
		b.Add(id, start+i, seq, true)
	}
	logits := make([]float32, len(ids)*V)
	if err := m.Forward(s, &b, logits); err != nil {
		t.Fatal(err)
	}
	for i := range ids {
		rows = append(rows, logits[i*V:(i+1)*V])
	}
	for _, id := range next {
		pos, err := s.KV.Append(seq, 1)
		if err != nil {
			t.Fatal(err)
		}
		b.Reset()
		b.Add(id, pos, seq, true)
		out := make([]float32, V)
		if err := m.Forward(s, &b, out); err != nil {
			t.Fatal(err)
		}
		rows = append(rows, out)
	}
	return rows
}

// compareTopK checks every reference (id, logit) entry against our logits
// and returns the largest difference. It also checks that the reference
// top-1 is our top-1 wherever the reference margin exceeds 2·tol.
func compareTopK(t *testing.T, what string, ref []idLogit, got []float32, tol float64) float64 {
	t.Helper()
	worst := 0.0
	for _, e := range ref {
		d := math.Abs(float64(got[int(e[0])]) - e[1])
		worst = math.Max(worst, d)
		if d > tol || math.IsNaN(d) {
			t.Errorf("%s: id %d logit %.6f, reference %.6f (diff %.3g > %.3g)", what, int(e[0]), got[int(e[0])], e[1], d, tol)
			return worst
		}
	}
	if len(ref) > 1 && ref[0][1]-ref[1][1] > 2*tol {
		if a := argmax(got); a != int(ref[0][0]) {
			t.Errorf("%s: top-1 is %d, reference %d (margin %.4f)", what, a, int(ref[0][0]), ref[0][1]-ref[1][1])
		}
	}
	return worst
}

func argmax(x []float32) int {
	best := 0
	for i, v := range x {
		if v > x[best] {
			best = i
		}
	}
	return best
}

// Tolerances.
//
// tolExact is for the exact float32 mode against the float64 reference:
// the README measured 1e-5 for a float32 implementation and suggests 1e-4
// to leave room for other summation orders.
//
// The default mode rounds every matrix input to 8 bits exactly as
// llama.cpp does (TestAgainstNaive pins that down), so wherever the inputs
// of a rounding agree to the bit, gollm and llama.cpp agree to ~1e-6: the
// first position of every prompt (no attention mixing yet) must match
// within tolFirst, and in practice most positions up to some point do.
// But the float operations before each rounding (attention sums, softmax,
// SiLU's expf, RMSNorm) are ordered differently from llama.cpp's SIMD and
// sgemm code, and one value landing on the other side of a rounding
// boundary moves a block of 8-bit activations; from there, that position
// (and every later one that attends to it) differs by up to ~0.13 in these
// random 4-layer models. tolLlama bounds that: below the README's 0.3 for
// implementations that round differently, and near llama.cpp's own
// variation between its KV-F16/flash-attention variants (0.19).
const (
	tolExact = 1e-4
	tolFirst = 1e-4
	tolLlama = 0.25
)

type goldenSet struct {
	model string
	file  string // forward.json or forward_yarn.json …
	exact bool
	opts  Options
	tol   float64
}

func yarnOpts() Options {
	return Options{RopeScaling: &RopeScaling{Type: "yarn", Factor: 4, OrigContext: 1024}}
}

func goldenSets() []goldenSet {
	return []goldenSet{
		{"qwen3-tiny-q6k", "forward.json", false, Options{}, tolLlama},
		{"qwen3-tiny-mixed", "forward.json", false, Options{}, tolLlama},
		{"qwen3-tiny-mixed", "forward_yarn.json", false, yarnOpts(), tolLlama},
		{"qwen3-tiny-q6k", "forward_exact.json", true, Options{}, tolExact},
		{"qwen3-tiny-mixed", "forward_exact.json", true, Options{}, tolExact},
		{"qwen3-tiny-mixed", "forward_yarn_exact.json", true, yarnOpts(), tolExact},
		// The other families: against llama.cpp within llama.cpp's own
		// spread (tol 0: read by llamaSpread).
		{"llama-tiny", "forward.json", false, Options{}, 0},
		{"llama-tiny", "forward_exact.json", true, Options{}, tolExact},
		{"qwen2-tiny", "forward.json", false, Options{}, 0},
		{"qwen2-tiny", "forward_exact.json", true, Options{}, tolExact},
		{"qwen3moe-tiny", "forward.json", false, Options{}, 0},
		{"qwen3moe-tiny", "forward_exact.json", true, Options{}, tolExact},
	}
}

// llamaSpread is the tolerance against llama.cpp for the families added
// after qwen3, read from the model's tolerances.json: the largest change
// llama.cpp itself shows between its numerically equivalent settings (KV
// cache F16, flash attention), over prompt positions and greedy steps
// (0.113 for llama-tiny, 0.071 for qwen2-tiny). gollm rounds activations
// as llama.cpp does but sums attention and norms in another order, so it
// must stay as close to llama.cpp as llama.cpp stays to itself; that is
// tighter than tolLlama and than the 0.3 the README suggests for
// implementations that do not round like llama.cpp.
//
// A mixture of experts is the exception: there llama.cpp's variants
// differ by up to 0.29 (qwen3moe-tiny), all of it at tokens where the
// router's k-th and (k+1)-th probabilities nearly tie, so that a rounding
// picks another expert (tolerances.json → moe_router_near_ties). Away
// from those, llama.cpp stays within 0.065 of the float64 reference
// (max_abs_diff_elsewhere); gollm must stay that close to llama.cpp at
// every position, near-ties included (it does: 0.044), since it rounds
// the activations as llama.cpp does and so routes the same way.
func llamaSpread(t testing.TB, model string) float64 {
	var tols map[string]json.RawMessage
	readJSON(t, &tols, model, "tolerances.json")
	spread := 0.0
	if raw, ok := tols["moe_router_near_ties"]; ok {
		var ties map[string]json.RawMessage
		if err := json.Unmarshal(raw, &ties); err != nil {
			t.Fatalf("%s/tolerances.json moe_router_near_ties: %v", model, err)
		}
		for name, r := range ties {
			var v struct {
				Elsewhere *float64 `json:"max_abs_diff_elsewhere"`
			}
			if name == "near_tie_threshold" {
				continue
			}
			if err := json.Unmarshal(r, &v); err != nil || v.Elsewhere == nil {
				t.Fatalf("%s/tolerances.json moe_router_near_ties.%s: no max_abs_diff_elsewhere (%v)", model, name, err)
			}
			spread = max(spread, *v.Elsewhere)
		}
		if spread <= 0 || spread > tolLlama {
			t.Fatalf("%s/tolerances.json: llama.cpp's spread away from router near-ties %g is not in (0, %g]", model, spread, tolLlama)
		}
		return spread
	}
	for _, k := range []string{"kv_f16", "kv_f16_flashattn", "kv_f32_flashattn"} {
		var v struct {
			Prompt float64 `json:"max_abs_diff_prompt_topk"`
			Greedy float64 `json:"max_abs_diff_greedy_topk"`
		}
		if err := json.Unmarshal(tols[k], &v); err != nil {
			t.Fatalf("%s/tolerances.json %s: %v", model, k, err)
		}
		spread = max(spread, v.Prompt, v.Greedy)
	}
	if spread <= 0 || spread > tolLlama {
		t.Fatalf("%s/tolerances.json: llama.cpp's spread %g is not in (0, %g]", model, spread, tolLlama)
	}
	return spread
}

// TestForwardGoldens compares every prompt position and every
// teacher-forced greedy step with the reference top-20 logits.
func TestForwardGoldens(t *testing.T) {
	for _, gs := range goldenSets() {
		t.Run(gs.model+"/"+gs.file, func(t *testing.T) {
			var gf goldenFile
			readJSON(t, &gf, gs.model, gs.file)
			fx := loadFixture(t, gs.model, gs.exact, gs.opts)
			if gs.tol == 0 {
				gs.tol = llamaSpread(t, gs.model)
			}
			worst := 0.0
			rowsSeen, rowsClose, top1 := 0, 0, 0
			for _, r := range gf.Results {
				s := fx.state(t, 1024, len(r.IDs), tensor.F32)
				// Feed the reference's own greedy tokens (all but the last),
				// so every step of greedy_topk has a matching logits row.
				rows := runPrompt(t, fx.m, s, 0, r.IDs, r.GreedyIDs[:len(r.GreedyIDs)-1])
				for i, ref := range r.TopKPerPos {
					tol := gs.tol
					if i == 0 {
						tol = min(tol, tolFirst)
					}
					d := compareTopK(t, r.Name+" prompt pos", ref, rows[i], tol)
					worst = math.Max(worst, d)
					rowsSeen++
					if d <= 1e-3 {
						rowsClose++
					}
					if argmax(rows[i]) == int(ref[0][0]) {
						top1++
					}
				}
				for k, ref := range r.GreedyTopK {
					worst = math.Max(worst, compareTopK(t, r.Name+" greedy step", ref, rows[len(r.IDs)-1+k], gs.tol))
				}
				if r.LastLogits != "" && gs.opts.RopeScaling == nil {
					// forward_exact.json names the float64 reference's files
					// (the other families have them for plain and chat only).
					ref := readF32(t, gs.model, "logits", r.LastLogits)
					last := rows[len(r.IDs)-1]
					for id, v := range ref {
						d := math.Abs(float64(last[id] - v))
						worst = math.Max(worst, d)
						if d > gs.tol {
							t.Errorf("%s: last-position logit %d = %g, reference %g", r.Name, id, last[id], v)
							break
						}
					}
				}
			}
			t.Logf("largest difference from the reference: %.3g (tolerance %.3g); %d of %d prompt positions within 1e-3; top-1 agrees at %d of %d",
				worst, gs.tol, rowsClose, rowsSeen, top1, rowsSeen)
		})
	}
}
