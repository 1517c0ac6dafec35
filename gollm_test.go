package gollm

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/gollm/gollm/internal/testdata"
	"github.com/gollm/gollm/sample"
	"golang.org/x/sync/errgroup"
)

var fixtures = []string{"qwen3-tiny-q6k", "qwen3-tiny-mixed"}

func loadFixture(t testing.TB, name string) *Model {
	t.Helper()
	m, err := LoadModel(testdata.Path("models", name+".gguf"), ModelOptions{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func newContext(t testing.TB, m *Model, o ContextOptions) *Context {
	t.Helper()
	c, err := m.NewContext(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

var greedy = sample.GreedyParams()

// questions are varied prompts for the session tests.
var questions = []string{
	"Hi there, how are you?", "How much is 6+6?", "What is the capital of France?",
	"Write a haiku about the sea.", "Name three prime numbers.", "Why is the sky blue?",
	"Translate 'good morning' into Spanish.", "Explain a KV cache in one sentence.",
}

// solo answers one question alone in a fresh single-sequence context.
func solo(t testing.TB, m *Model, q string, maxTokens int) Response {
	t.Helper()
	c := newContext(t, m, ContextOptions{Sequences: 1, ContextSize: 1024})
	seq, err := c.Sequence()
	if err != nil {
		t.Fatal(err)
	}
	defer seq.Close()
	r, err := NewChatSession(seq, ChatOptions{}).PromptWithMeta(context.Background(), q, PromptOptions{MaxTokens: maxTokens, Sampling: &greedy})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestSeedScenario is node-llama-cpp's batching example: one context
// with two sequences, a chat session on each, both prompted at once. The
// answers must be exactly those of each question asked alone, and both
// must have been evaluated in shared forward steps.
func TestSeedScenario(t *testing.T) {
	for _, name := range fixtures {
		t.Run(name, func(t *testing.T) {
			m := loadFixture(t, name)
			var traces []StepTrace
			var mu sync.Mutex
			c := newContext(t, m, ContextOptions{Sequences: 2, BatchSize: 1024, ContextSize: 2048,
				OnStep: func(st StepTrace) { mu.Lock(); traces = append(traces, st); mu.Unlock() }})
			s1, _ := c.Sequence()
			s2, _ := c.Sequence()
			c1, c2 := NewChatSession(s1, ChatOptions{}), NewChatSession(s2, ChatOptions{})
			// Start both prompts in the same step, as Promise.all does.
			var r1, r2 *Reply
			c.Together(func() {
				var err error
				if r1, err = c1.Start(context.Background(), questions[0], PromptOptions{MaxTokens: 24, Sampling: &greedy}); err != nil {
					t.Fatal(err)
				}
				if r2, err = c2.Start(context.Background(), questions[1], PromptOptions{MaxTokens: 24, Sampling: &greedy}); err != nil {
					t.Fatal(err)
				}
			})
			var a1, a2 Response
			var g errgroup.Group
			g.Go(func() (err error) { a1, err = r1.Wait(); return err })
			g.Go(func() (err error) { a2, err = r2.Wait(); return err })
			if err := g.Wait(); err != nil {
				t.Fatal(err)
			}
			for i, r := range []Response{a1, a2} {
				want := solo(t, m, questions[i], 24)
				if !slices.Equal(r.GeneratedIDs, want.GeneratedIDs) || r.Text != want.Text {
					t.Errorf("question %d: batched answer %v differs from the solo answer %v", i, r.GeneratedIDs, want.GeneratedIDs)
				}
				if len(r.GeneratedIDs) != 24 {
					t.Errorf("question %d: %d tokens, want 24", i, len(r.GeneratedIDs))
				}
			}
			// Both prompts went into the first step, and every step carried
			// both sequences until they were done.
			mu.Lock()
			defer mu.Unlock()
			for i, st := range traces {
				if len(st.Items) != 2 {
					t.Errorf("step %d carried %d sequences", i+1, len(st.Items))
				}
			}
			if len(traces) != 24 {
				t.Errorf("%d steps; want 24 (one for both prompts, then one per generated token after the first)", len(traces))
			}
		})
	}
}

func TestNoSequences(t *testing.T) {
	m := loadFixture(t, "qwen3-tiny-q6k")
	c := newContext(t, m, ContextOptions{Sequences: 2, ContextSize: 64})
	a, err1 := c.Sequence()
	_, err2 := c.Sequence()
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	if _, err := c.Sequence(); !errors.Is(err, ErrNoSequences) {
		t.Fatalf("third sequence: %v, want ErrNoSequences", err)
	}
	a.Close()
	if _, err := c.Sequence(); err != nil {
		t.Fatalf("after Close a sequence is free again: %v", err)
	}
}

// TestOverflow: a conversation longer than the context fails with an
// error naming the numbers; with ContextShift the oldest turns are dropped
// and the session goes on.
func TestOverflow(t *testing.T) {
	m := loadFixture(t, "qwen3-tiny-q6k")
	c := newContext(t, m, ContextOptions{Sequences: 1, ContextSize: 160})
	seq, _ := c.Sequence()
	long := "The quick brown fox jumps over the lazy dog. "
	for len(m.Tokenize(long, true)) < 200 {
		long += long
	}
	cs := NewChatSession(seq, ChatOptions{})
	_, err := cs.Prompt(context.Background(), long, PromptOptions{MaxTokens: 4, Sampling: &greedy})
	if !errors.Is(err, ErrContextOverflow) {
		t.Fatalf("err = %v, want ErrContextOverflow", err)
	}
	want := "the context size is 160"
	if err == nil || !contains(err.Error(), want) {
		t.Fatalf("error %q should name the numbers (%q)", err, want)
	}
	if len(cs.History()) != 0 {
		t.Fatal("a failed prompt must not stay in the history")
	}
	// Generation that runs into the limit stops with the same error.
	r, err := cs.PromptWithMeta(context.Background(), "Hello", PromptOptions{MaxTokens: 1000, Sampling: &greedy})
	if !errors.Is(err, ErrContextOverflow) || r.FinishReason != FinishContext || len(r.GeneratedIDs) == 0 {
		t.Fatalf("long generation: err %v, finish %q, %d tokens", err, r.FinishReason, len(r.GeneratedIDs))
	}

	// Shift mode: three turns of ~60 tokens each do not fit in 160 with
	// room to answer, so the oldest turns go.
	seq.Close()
	seq, _ = c.Sequence()
	shift := NewChatSession(seq, ChatOptions{SystemPrompt: "You are terse.", ContextShift: true})
	turn := "Tell me about foxes and dogs and their habits in the wild, please."
	for i := 0; i < 4; i++ {
		r, err := shift.PromptWithMeta(context.Background(), fmt.Sprint(i, " ", turn), PromptOptions{MaxTokens: 12, Sampling: &greedy})
		if err != nil {
			t.Fatalf("turn %d: %v", i, err)
		}
		if len(r.PromptIDs)+12 > 160 {
			t.Fatalf("turn %d: prompt of %d tokens leaves no room", i, len(r.PromptIDs))
		}
	}
	h := shift.History()
	if h[0].Role != "system" || len(h) >= 9 {
		t.Fatalf("history after shifting: %d messages, first %q", len(h), h[0].Role)
	}
	if h[1].Role != "user" || !contains(h[len(h)-2].Content, "3 ") {
		t.Fatalf("shifted history should start with a user turn and end with the last one: %+v", h)
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

// TestCancel: cancelling one sequence mid-generation ends it within a
// step with the context's error, gives back its new KV blocks, leaves the
// session usable, and does not change the other sequence's answer.
func TestCancel(t *testing.T) {
	m := loadFixture(t, "qwen3-tiny-mixed")
	c := newContext(t, m, ContextOptions{Sequences: 2, ContextSize: 1024})
	s1, _ := c.Sequence()
	s2, _ := c.Sequence()
	c1, c2 := NewChatSession(s1, ChatOptions{}), NewChatSession(s2, ChatOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	var r1, r2 Response
	var err1, err2 error
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		n := 0
		r1, err1 = c1.PromptWithMeta(ctx, questions[2], PromptOptions{MaxTokens: 200, Sampling: &greedy,
			OnToken: func(int32) {
				if n++; n == 5 {
					cancel()
				}
			}})
	}()
	go func() {
		defer wg.Done()
		r2, err2 = c2.PromptWithMeta(context.Background(), questions[3], PromptOptions{MaxTokens: 40, Sampling: &greedy})
	}()
	wg.Wait()
	if !errors.Is(err1, context.Canceled) || r1.FinishReason != FinishCancel {
		t.Fatalf("cancelled sequence: err %v, finish %q", err1, r1.FinishReason)
	}
	if len(r1.GeneratedIDs) > 6 {
		t.Errorf("cancelled at token 5 but %d tokens were generated", len(r1.GeneratedIDs))
	}
	if st := c.KVStats(); st.PerSeq[0] != 0 || st.Tokens[0] != 0 {
		t.Errorf("cancelled sequence still holds %d blocks, %d tokens", st.PerSeq[0], st.Tokens[0])
	}
	if err2 != nil {
		t.Fatal(err2)
	}
	if want := solo(t, m, questions[3], 40); !slices.Equal(r2.GeneratedIDs, want.GeneratedIDs) {
		t.Errorf("the other sequence's answer changed: %v, want %v", r2.GeneratedIDs, want.GeneratedIDs)
	}
	// The session is still usable and gives the solo answer.
	r, err := c1.PromptWithMeta(context.Background(), questions[2], PromptOptions{MaxTokens: 16, Sampling: &greedy})
	if err != nil {
		t.Fatal(err)
	}
	if want := solo(t, m, questions[2], 16); !slices.Equal(r.GeneratedIDs, want.GeneratedIDs) {
		t.Errorf("after cancel: %v, want %v", r.GeneratedIDs, want.GeneratedIDs)
	}
}

// TestMultiTurn: the second turn evaluates only the tokens added since
// the first (the cache is reused), and its logits are bit-identical to
// evaluating the whole conversation from scratch in a fresh sequence.
func TestMultiTurn(t *testing.T) {
	for _, raw := range []bool{false, true} {
		m := loadFixture(t, "qwen3-tiny-q6k")
		c := newContext(t, m, ContextOptions{Sequences: 2, ContextSize: 1024})
		seq, _ := c.Sequence()
		cs := NewChatSession(seq, ChatOptions{SystemPrompt: "Be brief.", Raw: raw})
		r1, err := cs.PromptWithMeta(context.Background(), questions[0], PromptOptions{MaxTokens: 10, Sampling: &greedy})
		if err != nil {
			t.Fatal(err)
		}
		held := seq.Tokens()
		var firstLogits []float32
		r2, err := cs.PromptWithMeta(context.Background(), questions[1], PromptOptions{MaxTokens: 5, Sampling: &greedy,
			OnLogits: func(l []float32) {
				if firstLogits == nil {
					firstLogits = append([]float32(nil), l...)
				}
			}})
		if err != nil {
			t.Fatal(err)
		}
		if r2.ReusedTokens != len(held) || !slices.Equal(r2.PromptIDs[:len(held)], held) {
			t.Fatalf("raw=%v: turn 2 reused %d tokens, the sequence held %d (turn 1: %d prompt + %d generated)",
				raw, r2.ReusedTokens, len(held), len(r1.PromptIDs), len(r1.GeneratedIDs))
		}
		newTokens := len(r2.PromptIDs) - len(held)
		if got := r2.EvaluatedTotal - len(r2.GeneratedIDs) + 1; got != newTokens {
			t.Fatalf("raw=%v: turn 2 evaluated %d prompt tokens, %d are new", raw, got, newTokens)
		}
		// From scratch: the same tokens in a fresh sequence.
		fresh, _ := c.Sequence()
		var scratch []float32
		_, err = fresh.Generate(context.Background(), r2.PromptIDs, GenerateOptions{MaxTokens: 1, Sampling: &greedy,
			OnLogits: func(l []float32) { scratch = append([]float32(nil), l...) }})
		if err != nil {
			t.Fatal(err)
		}
		for i := range scratch {
			if math.Float32bits(scratch[i]) != math.Float32bits(firstLogits[i]) {
				t.Fatalf("raw=%v: logit %d differs: %g reused, %g from scratch", raw, i, firstLogits[i], scratch[i])
			}
		}
		t.Logf("raw=%v: turn 2 prompt %d tokens, %d reused, %d evaluated", raw, len(r2.PromptIDs), r2.ReusedTokens, newTokens)
	}
}

// TestConcurrentSessions runs 32 chat sessions at once from 32 goroutines
// (run it with -race): every answer must equal its solo run.
func TestConcurrentSessions(t *testing.T) {
	m := loadFixture(t, "qwen3-tiny-mixed")
	const n = 32
	tokens := 8
	if testing.Short() {
		tokens = 4
	}
	c := newContext(t, m, ContextOptions{Sequences: n, BatchSize: 256, ContextSize: 4096})
	got := make([]Response, n)
	var g errgroup.Group
	for i := 0; i < n; i++ {
		g.Go(func() error {
			seq, err := c.Sequence()
			if err != nil {
				return err
			}
			defer seq.Close()
			q := fmt.Sprintf("%s (%d)", questions[i%len(questions)], i)
			got[i], err = NewChatSession(seq, ChatOptions{}).PromptWithMeta(context.Background(), q, PromptOptions{MaxTokens: tokens, Sampling: &greedy})
			return err
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		want := solo(t, m, fmt.Sprintf("%s (%d)", questions[i%len(questions)], i), tokens)
		if !slices.Equal(got[i].GeneratedIDs, want.GeneratedIDs) {
			t.Errorf("session %d: %v, solo %v", i, got[i].GeneratedIDs, want.GeneratedIDs)
		}
	}
	if st := c.KVStats(); st.FreeBlocks != st.Blocks {
		t.Errorf("after closing every sequence %d of %d blocks are free", st.FreeBlocks, st.Blocks)
	}
}

// TestStopStrings: the answer ends before the first stop string, even
// when the stop string arrives split across tokens.
func TestStopStrings(t *testing.T) {
	m := loadFixture(t, "qwen3-tiny-q6k")
	full := solo(t, m, questions[0], 30)
	if len(full.Raw) < 12 {
		t.Skip("answer too short")
	}
	stop := full.Raw[5:9]
	c := newContext(t, m, ContextOptions{Sequences: 1, ContextSize: 512})
	seq, _ := c.Sequence()
	var streamed string
	r, err := NewChatSession(seq, ChatOptions{}).PromptWithMeta(context.Background(), questions[0],
		PromptOptions{MaxTokens: 30, Sampling: &greedy, StopStrings: []string{"never appears", stop},
			OnChunk: func(ch Chunk) { streamed += ch.Text }})
	if err != nil {
		t.Fatal(err)
	}
	want := full.Raw[:strings.Index(full.Raw, stop)]
	if r.Raw != want || streamed != want || r.FinishReason != FinishStop {
		t.Fatalf("stop %q: raw %q streamed %q (finish %s), want %q", stop, r.Raw, streamed, r.FinishReason, want)
	}
}

func TestLogits(t *testing.T) {
	m := loadFixture(t, "qwen3-tiny-q6k")
	rows, err := Logits(context.Background(), m, []int32{1, 2, 3, 4}, LogitsOptions{})
	if err != nil || len(rows) != 4 || len(rows[0]) != 4096 {
		t.Fatalf("Logits: %v, %d rows", err, len(rows))
	}
	if _, err := Logits(context.Background(), m, []int32{1, 99999}, LogitsOptions{}); err == nil {
		t.Fatal("out-of-vocabulary token must fail")
	}
}

// TestSamplerError: a sampling failure (here a logit bias for a token the
// vocabulary lacks) ends generation with that error, not silently.
func TestSamplerError(t *testing.T) {
	m := loadFixture(t, "qwen3-tiny-q6k")
	c := newContext(t, m, ContextOptions{ContextSize: 64})
	seq, _ := c.Sequence()
	p := sample.GreedyParams()
	p.LogitBias = map[int32]float32{99999: 1}
	g, err := seq.Generate(context.Background(), []int32{1, 2, 3}, GenerateOptions{MaxTokens: 4, Sampling: &p})
	if !errors.Is(err, sample.ErrInvalidParams) || g.FinishReason != FinishError {
		t.Fatalf("err %v, finish %q", err, g.FinishReason)
	}
}
