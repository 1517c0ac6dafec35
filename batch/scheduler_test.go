package batch

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
)

var errFull = errors.New("fake: KV full")

// fakeModel is a Forwarder whose "model" predicts token (last+1) % vocab:
// the logits row of a token t has its maximum at t+1. It records every
// batch it sees.
type fakeModel struct {
	mu       sync.Mutex
	vocab    int
	capacity int         // total tokens the fake KV holds
	lens     map[int]int // tokens reserved per sequence
	batches  [][]tokenAt
	onStep   func(step int) // called inside Forward (may block)
	failStep int            // Forward fails on this step (1-based), 0: never
}

type tokenAt struct {
	Seq, Pos int
	Tok      int32
	Out      bool
}

func newFake(vocab, capacity int) *fakeModel {
	return &fakeModel{vocab: vocab, capacity: capacity, lens: map[int]int{}}
}

func (f *fakeModel) Vocab() int { return f.vocab }

func (f *fakeModel) Reserve(seq, n int) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	used := 0
	for _, l := range f.lens {
		used += l
	}
	if used+n > f.capacity {
		return 0, fmt.Errorf("%w: %d used, %d asked", errFull, used, n)
	}
	start := f.lens[seq]
	f.lens[seq] += n
	return start, nil
}

func (f *fakeModel) Truncate(seq, n int) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lens[seq] = n
	return nil
}

func (f *fakeModel) Forward(tokens, pos, seq []int32, output []bool, logits []float32) error {
	f.mu.Lock()
	var b []tokenAt
	for i := range tokens {
		b = append(b, tokenAt{int(seq[i]), int(pos[i]), tokens[i], output[i]})
	}
	f.batches = append(f.batches, b)
	step := len(f.batches)
	hook := f.onStep
	f.mu.Unlock()
	if hook != nil {
		hook(step)
	}
	if step == f.failStep {
		return errors.New("fake: forward failed")
	}
	o := 0
	for i := range tokens {
		if output[i] {
			row := logits[o*f.vocab : (o+1)*f.vocab]
			clear(row)
			row[(int(tokens[i])+1)%f.vocab] = 1
			o++
		}
	}
	return nil
}

// greedy samples the argmax and stops after limit tokens.
func greedy(limit int, got *[]int32) Sampler {
	return func(logits []float32) (int32, bool) {
		if len(*got) >= limit {
			return 0, true
		}
		best := 0
		for i, v := range logits {
			if v > logits[best] {
				best = i
			}
		}
		*got = append(*got, int32(best))
		return int32(best), false
	}
}

func prompt(seq, n int) []int32 {
	p := make([]int32, n)
	for i := range p {
		p[i] = int32(seq*100 + i)
	}
	return p
}

// composition summarises a step as "seq:count" items in batch order.
func composition(b []tokenAt) []string {
	var out []string
	for i := 0; i < len(b); {
		j := i
		for j < len(b) && b[j].Seq == b[i].Seq {
			j++
		}
		out = append(out, fmt.Sprintf("%d:%d", b[i].Seq, j-i))
		i = j
	}
	return out
}

// runAll submits every request while the scheduler is held at its first
// step, so they all start together, then waits for all results.
func runAll(t *testing.T, fm *fakeModel, batchSize int, reqs []Request) []Result {
	t.Helper()
	gate, entered := make(chan struct{}), make(chan struct{})
	fm.onStep = func(step int) {
		if step == 1 {
			close(entered)
			<-gate
		}
	}
	s := New(fm, Options{BatchSize: batchSize})
	defer s.Close()
	// A warm-up request holds the loop in its first Forward while the
	// real ones are queued; it uses sequence 99 and one token.
	warm, _ := s.Submit(Request{Seq: 99, Tokens: []int32{0}})
	<-entered
	var chans []<-chan Result
	for _, r := range reqs {
		ch, err := s.Submit(r)
		if err != nil {
			t.Fatal(err)
		}
		chans = append(chans, ch)
	}
	close(gate)
	<-warm
	var res []Result
	for _, ch := range chans {
		res = append(res, <-ch)
	}
	return res
}

func TestPacking(t *testing.T) {
	cases := []struct {
		name      string
		batchSize int
		prompts   []int // prompt length per sequence
		gen       []int // tokens to generate per sequence
		want      [][]string
	}{
		{"one short prompt then decode", 16, []int{3}, []int{2},
			[][]string{{"0:3"}, {"0:1"}, {"0:1"}}},
		{"chunked prefill", 8, []int{20}, []int{1},
			[][]string{{"0:8"}, {"0:8"}, {"0:4"}, {"0:1"}}},
		{"fair split with leftovers passed on", 12, []int{20, 3}, []int{1, 1},
			[][]string{{"0:9", "1:3"}, {"1:1", "0:11"}, {"0:1"}}},
		{"decode goes first, prompts fill the rest", 6, []int{2, 9}, []int{3, 1},
			[][]string{{"0:2", "1:4"}, {"0:1", "1:5"}, {"0:1", "1:1"}, {"0:1"}}},
		{"three-way split", 9, []int{10, 10, 10}, []int{0, 0, 0},
			[][]string{{"0:3", "1:3", "2:3"}, {"0:3", "1:3", "2:3"}, {"0:3", "1:3", "2:3"}, {"0:1", "1:1", "2:1"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fm := newFake(1000, 10000)
			var reqs []Request
			got := make([][]int32, len(tc.prompts))
			for i, n := range tc.prompts {
				r := Request{Seq: i, Tokens: prompt(i, n)}
				if tc.gen[i] > 0 {
					r.Sample = greedy(tc.gen[i], &got[i])
				}
				reqs = append(reqs, r)
			}
			for _, res := range runAll(t, fm, tc.batchSize, reqs) {
				if res.Err != nil {
					t.Fatal(res.Err)
				}
			}
			var steps [][]string
			for _, b := range fm.batches[1:] { // skip the warm-up step
				steps = append(steps, composition(b))
				if len(b) > tc.batchSize {
					t.Errorf("step of %d tokens exceeds the budget %d", len(b), tc.batchSize)
				}
			}
			if !reflect.DeepEqual(steps, tc.want) {
				t.Errorf("steps = %v\nwant    %v", steps, tc.want)
			}
			// Positions are contiguous per sequence, and generated tokens
			// follow the fake model's rule.
			next := map[int]int{}
			for _, b := range fm.batches[1:] {
				for _, x := range b {
					if x.Pos != next[x.Seq] {
						t.Fatalf("seq %d: position %d, want %d", x.Seq, x.Pos, next[x.Seq])
					}
					next[x.Seq]++
				}
			}
			for i, g := range got {
				for k, tok := range g {
					want := int32(i*100+tc.prompts[i]) + int32(k)
					if tok != want {
						t.Errorf("seq %d token %d = %d, want %d", i, k, tok, want)
					}
				}
			}
		})
	}
}

// TestGenerationFirstWhenBudgetIsTight: with more generating sequences
// than the budget, each step serves a rotating subset and nobody starves.
func TestGenerationFirstWhenBudgetIsTight(t *testing.T) {
	fm := newFake(1000, 10000)
	var reqs []Request
	got := make([][]int32, 5)
	for i := range got {
		reqs = append(reqs, Request{Seq: i, Tokens: []int32{int32(i)}, Sample: greedy(6, &got[i])})
	}
	for _, res := range runAll(t, fm, 2, reqs) {
		if res.Err != nil {
			t.Fatal(res.Err)
		}
	}
	for i, g := range got {
		if len(g) != 6 {
			t.Errorf("seq %d generated %d tokens, want 6", i, len(g))
		}
	}
	for _, b := range fm.batches {
		if len(b) > 2 {
			t.Fatalf("step of %d tokens", len(b))
		}
	}
}

// TestJoinAndLeave: a sequence joins while another is generating, and the
// first leaves while the second goes on (continuous batching).
func TestJoinAndLeave(t *testing.T) {
	fm := newFake(1000, 10000)
	s := New(fm, Options{BatchSize: 64})
	defer s.Close()
	joined, submitted := make(chan struct{}), make(chan struct{})
	var got0, got1 []int32
	stepOf0 := 0
	sample0 := greedy(8, &got0)
	r0 := Request{Seq: 0, Tokens: prompt(0, 4), Sample: func(l []float32) (int32, bool) {
		stepOf0++
		if stepOf0 == 3 {
			close(joined)
			<-submitted
		}
		return sample0(l)
	}}
	ch0, _ := s.Submit(r0)
	<-joined
	ch1, err := s.Submit(Request{Seq: 1, Tokens: prompt(1, 5), Sample: greedy(12, &got1)})
	if err != nil {
		t.Fatal(err)
	}
	close(submitted)
	if res1 := <-ch1; res1.Err != nil {
		t.Fatal(res1.Err)
	}
	if r := <-ch0; r.Err != nil {
		t.Fatal(r.Err)
	}
	if len(got0) != 8 || len(got1) != 12 {
		t.Fatalf("generated %d and %d tokens", len(got0), len(got1))
	}
	// Some step must carry both sequences, and later steps only seq 1.
	both, only1After := false, false
	for _, b := range fm.batches {
		c := composition(b)
		if len(c) == 2 {
			both = true
		}
		if both && len(c) == 1 && b[0].Seq == 1 {
			only1After = true
		}
	}
	if !both || !only1After {
		t.Fatalf("expected shared steps then seq 1 alone; steps: %v", fm.batches)
	}
}

// TestKVFullFailsOnlyThatSequence: when the cache cannot hold a
// sequence's next chunk, that request ends with the cache error and the
// other keeps generating.
func TestKVFullFailsOnlyThatSequence(t *testing.T) {
	fm := newFake(1000, 30)
	var got0, got1 []int32
	res := runAll(t, fm, 64, []Request{
		{Seq: 0, Tokens: prompt(0, 5), Sample: greedy(10, &got0)},
		{Seq: 1, Tokens: prompt(1, 40), Sample: greedy(10, &got1)},
	})
	if res[0].Err != nil || len(got0) != 10 {
		t.Fatalf("seq 0: %v, %d tokens", res[0].Err, len(got0))
	}
	if !errors.Is(res[1].Err, errFull) {
		t.Fatalf("seq 1: err = %v, want the KV-full error", res[1].Err)
	}
}

// TestCancel: cancelling one request ends it within a step with the
// context's error; the other finishes normally.
func TestCancel(t *testing.T) {
	fm := newFake(1000, 10000)
	ctx, cancel := context.WithCancel(context.Background())
	var got0, got1 []int32
	sample0 := greedy(1000, &got0)
	res := runAll(t, fm, 64, []Request{
		{Ctx: ctx, Seq: 0, Tokens: prompt(0, 3), Sample: func(l []float32) (int32, bool) {
			if len(got0) == 5 {
				cancel()
			}
			return sample0(l)
		}},
		{Seq: 1, Tokens: prompt(1, 3), Sample: greedy(20, &got1)},
	})
	if !errors.Is(res[0].Err, context.Canceled) {
		t.Fatalf("seq 0: err = %v", res[0].Err)
	}
	if len(got0) != 6 {
		t.Errorf("seq 0 generated %d tokens after cancel at 5; want it to stop within one step (6)", len(got0))
	}
	if res[1].Err != nil || len(got1) != 20 {
		t.Fatalf("seq 1: %v, %d tokens", res[1].Err, len(got1))
	}
}

// TestForwardErrorRollsBack: a failing step fails its requests and
// truncates their caches to where they were.
func TestForwardErrorRollsBack(t *testing.T) {
	fm := newFake(1000, 10000)
	fm.failStep = 2
	var got []int32
	s := New(fm, Options{BatchSize: 4})
	defer s.Close()
	res := s.Run(Request{Seq: 0, Tokens: prompt(0, 6), Sample: greedy(3, &got)})
	if res.Err == nil {
		t.Fatal("expected the forward error")
	}
	if fm.lens[0] != 4 || res.Computed != 4 {
		t.Fatalf("cache length %d, computed %d; want 4 (the first step only)", fm.lens[0], res.Computed)
	}
}

func TestSubmitErrors(t *testing.T) {
	fm := newFake(10, 100)
	block := make(chan struct{})
	fm.onStep = func(int) { <-block }
	s := New(fm, Options{})
	if _, err := s.Submit(Request{Seq: 0}); err == nil {
		t.Error("empty request must fail")
	}
	ch, err := s.Submit(Request{Seq: 0, Tokens: []int32{1}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Submit(Request{Seq: 0, Tokens: []int32{1}}); !errors.Is(err, ErrBusy) {
		t.Errorf("second request on a busy sequence: %v", err)
	}
	close(block)
	<-ch
	s.Close()
	if _, err := s.Submit(Request{Seq: 1, Tokens: []int32{1}}); !errors.Is(err, ErrClosed) {
		t.Errorf("after Close: %v", err)
	}
}

// TestPause: requests submitted while paused all start in the same step.
func TestPause(t *testing.T) {
	fm := newFake(1000, 10000)
	s := New(fm, Options{BatchSize: 64})
	defer s.Close()
	s.Pause()
	var chans []<-chan Result
	got := make([][]int32, 3)
	for i := 0; i < 3; i++ {
		ch, err := s.Submit(Request{Seq: i, Tokens: prompt(i, 4), Sample: greedy(3, &got[i])})
		if err != nil {
			t.Fatal(err)
		}
		chans = append(chans, ch)
	}
	if s.Running() != 3 || s.Steps() != 0 {
		t.Fatalf("paused: %d running, %d steps", s.Running(), s.Steps())
	}
	s.Resume()
	for _, ch := range chans {
		if r := <-ch; r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	if c := composition(fm.batches[0]); !reflect.DeepEqual(c, []string{"0:4", "1:4", "2:4"}) {
		t.Fatalf("first step %v, want all three prompts", c)
	}
}
