package model

import (
	"errors"
	"math"
	"testing"

	"github.com/gollm/gollm/flat"
	"github.com/gollm/gollm/kvcache"
	"github.com/gollm/gollm/tensor"
)

// batchedGolden is one schedule of testdata/<model>/batched.json.
type batchedGolden struct {
	Sequences []struct {
		Name       string      `json:"name"`
		IDs        []int32     `json:"ids"`
		GreedyIDs  []int32     `json:"greedy_ids"`
		GreedyTopK [][]idLogit `json:"greedy_topk"`
	} `json:"sequences"`
	Steps []struct {
		Items []struct {
			Seq       int    `json:"seq"`
			Prefill   []int  `json:"prefill"`
			DecodePos *int32 `json:"decode_pos"`
		} `json:"items"`
	} `json:"steps"`
}

// TestBatchedGoldens replays llama.cpp's two-sequence schedules (both
// prompts together, and staggered chunked prefill) and compares each
// sequence's greedy steps with llama.cpp's batched run. It also checks
// the stronger gollm property: the batched logits are bit-identical to
// running each sequence alone.
func TestBatchedGoldens(t *testing.T) {
	for _, model := range []string{"qwen3-tiny-q6k", "qwen3-tiny-mixed", "llama-tiny", "qwen2-tiny", "qwen3moe-tiny"} {
		var file map[string]batchedGolden
		readJSON(t, &file, model, "batched.json")
		fx := loadFixture(t, model, false, Options{})
		for _, sched := range []string{"together", "staggered"} {
			t.Run(model+"/"+sched, func(t *testing.T) {
				g := file[sched]
				s := fx.state(t, 1024, 64, tensor.F32)
				V := fx.m.Config.Vocab
				seqs := g.Sequences
				// generated[k] = logits rows that produced each greedy token of seq k.
				generated := make([][][]float32, len(seqs))
				fed := make([]int, len(seqs)) // greedy tokens fed so far
				for k := range seqs {
					s.KV.AddSeq(flat.SeqID(k))
				}
				var b flat.Batch
				for step, st := range g.Steps {
					b.Reset()
					for _, it := range st.Items {
						seq := flat.SeqID(it.Seq)
						if it.Prefill != nil {
							lo, hi := it.Prefill[0], it.Prefill[1]
							start, err := s.KV.Append(seq, hi-lo)
							if err != nil || start != lo {
								t.Fatalf("step %d: append: %v (start %d, want %d)", step, err, start, lo)
							}
							for p := lo; p < hi; p++ {
								b.Add(seqs[it.Seq].IDs[p], p, seq, p == len(seqs[it.Seq].IDs)-1)
							}
						} else {
							pos, err := s.KV.Append(seq, 1)
							if err != nil || int32(pos) != *it.DecodePos {
								t.Fatalf("step %d: decode pos %d, want %d (%v)", step, pos, *it.DecodePos, err)
							}
							b.Add(seqs[it.Seq].GreedyIDs[fed[it.Seq]], pos, seq, true)
							fed[it.Seq]++
						}
					}
					logits := make([]float32, b.NumOutputs()*V)
					if err := fx.m.Forward(s, &b, logits); err != nil {
						t.Fatal(err)
					}
					o := 0
					for i := range b.Tokens {
						if b.Output[i] {
							k := int(b.Seq[i])
							generated[k] = append(generated[k], logits[o*V:(o+1)*V])
							o++
						}
					}
				}
				for k, sq := range seqs {
					if len(generated[k]) < len(sq.GreedyTopK) {
						t.Fatalf("seq %d: %d logits rows, want %d", k, len(generated[k]), len(sq.GreedyTopK))
					}
					// Against llama.cpp's batched run.
					worst := 0.0
					for j, ref := range sq.GreedyTopK {
						worst = math.Max(worst, compareTopK(t, sq.Name, ref, generated[k][j], tolLlama))
						if got := argmax(generated[k][j]); got != int(sq.GreedyIDs[j]) && ref[0][1]-ref[1][1] > 2*tolLlama {
							t.Errorf("%s step %d: greedy %d, llama.cpp %d", sq.Name, j, got, sq.GreedyIDs[j])
						}
					}
					// Against the same sequence alone, bit for bit.
					solo := fx.state(t, 1024, 64, tensor.F32)
					n := len(sq.GreedyTopK)
					rows := runPrompt(t, fx.m, solo, 0, sq.IDs, sq.GreedyIDs[:n-1])
					for j := 0; j < n; j++ {
						if !bitsEqual(rows[len(sq.IDs)-1+j], generated[k][j]) {
							t.Errorf("%s step %d: batched logits differ from the solo run", sq.Name, j)
						}
					}
					t.Logf("%s: largest difference from llama.cpp batched: %.3g", sq.Name, worst)
				}
			})
		}
	}
}

func bitsEqual(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			return false
		}
	}
	return true
}

// soloLogits runs one prompt alone (in chunks of chunk tokens), then
// decodes the given tokens one by one; it returns the logits of the last
// prompt position and of every decode step.
func soloLogits(t *testing.T, m *Model, kv tensor.DType, prompt, decode []int32, chunk int) [][]float32 {
	t.Helper()
	rows, err := m.Replay(kv, Script{Prompt: prompt, Decode: decode, Chunk: chunk})
	if err != nil {
		t.Fatal(err)
	}
	return rows[0]
}

// TestBatchInvariance runs a target sequence alone and then packed with 1,
// 2 and 7 companion sequences (different prompts, different lengths,
// chunked prefill interleaved with decoding) and requires bit-identical
// logits for the target at every step, for both KV element types.
func TestBatchInvariance(t *testing.T) {
	for _, model := range []string{"qwen3-tiny-mixed", "llama-tiny", "qwen2-tiny", "qwen3moe-tiny"} {
		t.Run(model, func(t *testing.T) { testBatchInvariance(t, model) })
	}
}

func testBatchInvariance(t *testing.T, model string) {
	var prompts struct {
		Results []goldenResult `json:"results"`
	}
	readJSON(t, &prompts, model, "forward.json")
	fx := loadFixture(t, model, false, Options{})
	target := prompts.Results[0]
	decode := target.GreedyIDs[:8]
	for _, kv := range []tensor.DType{tensor.F16, tensor.F32} {
		want := soloLogits(t, fx.m, kv, target.IDs, decode, len(target.IDs))
		// Chunked prefill alone must match too.
		for _, chunk := range []int{1, 5, 13} {
			got := soloLogits(t, fx.m, kv, target.IDs, decode, chunk)
			for j := range want {
				if !bitsEqual(want[j], got[j]) {
					t.Fatalf("%s chunk %d: step %d differs from one-shot prefill", kv, chunk, j)
				}
			}
		}
		for _, companions := range []int{1, 2, 7} {
			got := packedRun(t, fx.m, kv, target.IDs, decode, prompts.Results, companions)
			for j := range want {
				if !bitsEqual(want[j], got[j]) {
					t.Fatalf("%s with %d companions: step %d differs from the solo run", kv, companions, j)
				}
			}
		}
	}
}

// packedRun evaluates the target (the first script) together with
// companions: their prompts are fed in chunks of 7 while the target's go
// in chunks of 9, so prefill and decode tokens of different sequences
// share batches.
func packedRun(t *testing.T, m *Model, kv tensor.DType, prompt, decode []int32, others []goldenResult, companions int) [][]float32 {
	t.Helper()
	scripts := []Script{{Prompt: prompt, Decode: decode, Chunk: 9}}
	for c := 0; c < companions; c++ {
		o := others[(c+1)%len(others)]
		scripts = append(scripts, Script{Prompt: o.IDs, Decode: o.GreedyIDs[:4], Chunk: 7})
	}
	rows, err := m.Replay(kv, scripts...)
	if err != nil {
		t.Fatal(err)
	}
	return rows[0]
}

// TestExhaustionLeavesOthersAlone fills the pool with one sequence until
// it gets ErrKVFull, and checks that another sequence's logits are
// unchanged by it.
func TestExhaustionLeavesOthersAlone(t *testing.T) {
	var gf goldenFile
	readJSON(t, &gf, "qwen3-tiny-q6k", "forward.json")
	fx := loadFixture(t, "qwen3-tiny-q6k", false, Options{})
	r := gf.Results[0]
	want := soloLogits(t, fx.m, tensor.F16, r.IDs, r.GreedyIDs[:4], len(r.IDs))

	// A pool of 64 tokens: the victim holds its 26-token prompt, the hog
	// grabs the rest and then asks for more.
	s, err := fx.m.NewState(StateOptions{Capacity: 64, BlockSize: 16, KVType: tensor.F16, MaxBatch: 64})
	if err != nil {
		t.Fatal(err)
	}
	s.KV.AddSeq(0)
	s.KV.AddSeq(1)
	V := fx.m.Config.Vocab
	var b flat.Batch
	s.KV.Append(0, len(r.IDs))
	for p, id := range r.IDs {
		b.Add(id, p, 0, p == len(r.IDs)-1)
	}
	got := make([]float32, V)
	if err := fx.m.Forward(s, &b, got); err != nil {
		t.Fatal(err)
	}
	// The hog takes the remaining 2 blocks, then fails.
	if _, err := s.KV.Append(1, 32); err != nil {
		t.Fatal(err)
	}
	b.Reset()
	for p := 0; p < 32; p++ {
		b.Add(int32(p+1), p, 1, false)
	}
	if err := fx.m.Forward(s, &b, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.KV.Append(1, 1); !errors.Is(err, kvcache.ErrKVFull) {
		t.Fatalf("hog: err = %v, want ErrKVFull", err)
	}
	if !bitsEqual(got, want[0]) {
		t.Fatal("victim's prompt logits changed")
	}
	// The victim still decodes within its last block (26 → 30 tokens).
	for k, id := range r.GreedyIDs[:4] {
		pos, err := s.KV.Append(0, 1)
		if err != nil {
			t.Fatalf("victim decode %d: %v", k, err)
		}
		b.Reset()
		b.Add(id, pos, 0, true)
		if err := fx.m.Forward(s, &b, got); err != nil {
			t.Fatal(err)
		}
		if !bitsEqual(got, want[k+1]) {
			t.Fatalf("victim's decode step %d changed by the hog", k)
		}
	}
}

// TestForwardErrors checks that bad batches give errors, not panics.
func TestForwardErrors(t *testing.T) {
	fx := loadFixture(t, "qwen3-tiny-q6k", false, Options{})
	s := fx.state(t, 64, 4, tensor.F16)
	s.KV.AddSeq(0)
	s.KV.Append(0, 2)
	V := fx.m.Config.Vocab
	cases := []struct {
		name string
		b    flat.Batch
		out  int
	}{
		{"empty", flat.Batch{}, V},
		{"token out of vocabulary", flat.Batch{Tokens: []int32{int32(V)}, Pos: []int32{0}, Seq: []flat.SeqID{0}, Output: []bool{true}}, V},
		{"negative token", flat.Batch{Tokens: []int32{-1}, Pos: []int32{0}, Seq: []flat.SeqID{0}, Output: []bool{true}}, V},
		{"position not allocated", flat.Batch{Tokens: []int32{1}, Pos: []int32{5}, Seq: []flat.SeqID{0}, Output: []bool{true}}, V},
		{"unknown sequence", flat.Batch{Tokens: []int32{1}, Pos: []int32{0}, Seq: []flat.SeqID{3}, Output: []bool{true}}, V},
		{"ragged arrays", flat.Batch{Tokens: []int32{1, 2}, Pos: []int32{0}, Seq: []flat.SeqID{0}, Output: []bool{true}}, V},
		{"too many tokens", flat.Batch{Tokens: make([]int32, 5), Pos: make([]int32, 5), Seq: make([]flat.SeqID, 5), Output: make([]bool, 5)}, V},
		{"logits buffer too small", flat.Batch{Tokens: []int32{1}, Pos: []int32{0}, Seq: []flat.SeqID{0}, Output: []bool{true}}, V - 1},
	}
	for _, tc := range cases {
		if err := fx.m.Forward(s, &tc.b, make([]float32, tc.out)); !errors.Is(err, ErrBatch) {
			t.Errorf("%s: err = %v, want ErrBatch", tc.name, err)
		}
	}
	// A state sized for one logits row refuses a batch asking for two.
	one, err := fx.m.NewState(StateOptions{Capacity: 64, KVType: tensor.F16, MaxBatch: 4, MaxOutputs: 1})
	if err != nil {
		t.Fatal(err)
	}
	one.KV.AddSeq(0)
	one.KV.Append(0, 2)
	b := flat.Batch{Tokens: []int32{1, 2}, Pos: []int32{0, 1}, Seq: []flat.SeqID{0, 0}, Output: []bool{true, true}}
	if err := fx.m.Forward(one, &b, make([]float32, 2*V)); !errors.Is(err, ErrBatch) {
		t.Errorf("two outputs in a one-output state: err = %v", err)
	}
}
