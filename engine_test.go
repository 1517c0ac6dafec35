package gollm

import (
	"context"
	"errors"
	"math"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gollm/gollm/internal/testdata"
	"golang.org/x/sync/errgroup"
)

// deadline fails the test if f does not return within a generous bound:
// it only catches deadlocks, it never measures speed.
func deadline(t *testing.T, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { defer close(done); f() }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		t.Fatalf("%s: deadlocked", what)
	}
}

// stepsOf counts, from a context's traces, the steps that carried seq.
type stepLog struct {
	mu     sync.Mutex
	traces []StepTrace
}

func (l *stepLog) add(st StepTrace) { l.mu.Lock(); l.traces = append(l.traces, st); l.mu.Unlock() }

func (l *stepLog) stepsWith(seq int) (n, last int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, st := range l.traces {
		for _, it := range st.Items {
			if it.Seq == seq {
				n, last = n+1, st.Step
			}
		}
	}
	return n, last
}

// TestSlowConsumer: session A's OnChunk blocks (on a channel the test
// holds) while session B answers; B's answer takes exactly as many
// engine steps as beside a fast A, and A still gets its whole answer.
func TestSlowConsumer(t *testing.T) {
	m := loadFixture(t, "qwen3-tiny-q6k")
	run := func(blockA bool) (a, b Response, bSteps, bLast int) {
		var log stepLog
		c := newContext(t, m, ContextOptions{Sequences: 2, ContextSize: 1024, OnStep: log.add})
		s1, _ := c.Sequence()
		s2, _ := c.Sequence()
		gate := make(chan struct{})
		chunks := 0
		var ra, rb *Reply
		c.Together(func() {
			var err error
			ra, err = NewChatSession(s1, ChatOptions{}).Start(context.Background(), questions[0], PromptOptions{MaxTokens: 24, Sampling: &greedy,
				OnChunk: func(Chunk) {
					if chunks++; chunks == 1 && blockA {
						<-gate // A's consumer is stuck until B is done
					}
				}})
			if err != nil {
				t.Fatal(err)
			}
			rb, err = NewChatSession(s2, ChatOptions{}).Start(context.Background(), questions[1], PromptOptions{MaxTokens: 24, Sampling: &greedy})
			if err != nil {
				t.Fatal(err)
			}
		})
		var g errgroup.Group
		g.Go(func() (err error) { a, err = ra.Wait(); return err })
		deadline(t, "B beside a blocked A", func() {
			var err error
			if b, err = rb.Wait(); err != nil {
				t.Error(err)
			}
		})
		bSteps, bLast = log.stepsWith(1)
		close(gate)
		if err := g.Wait(); err != nil {
			t.Fatal(err)
		}
		return a, b, bSteps, bLast
	}
	fastA, fastB, fastSteps, fastLast := run(false)
	slowA, slowB, slowSteps, slowLast := run(true)
	if slowSteps != fastSteps || slowLast != fastLast {
		t.Errorf("B took %d steps (last %d) beside a blocked A, %d (last %d) beside a fast one", slowSteps, slowLast, fastSteps, fastLast)
	}
	if !slices.Equal(slowB.GeneratedIDs, fastB.GeneratedIDs) || !slices.Equal(slowA.GeneratedIDs, fastA.GeneratedIDs) || len(slowA.GeneratedIDs) != 24 {
		t.Errorf("answers changed: A %v / %v, B %v / %v", slowA.GeneratedIDs, fastA.GeneratedIDs, slowB.GeneratedIDs, fastB.GeneratedIDs)
	}
	t.Logf("B: %d steps, done at step %d, either way", fastSteps, fastLast)
}

// TestReentrantCallbacks: the API called from inside OnToken and OnChunk
// works and gives the documented result.
func TestReentrantCallbacks(t *testing.T) {
	m := loadFixture(t, "qwen3-tiny-q6k")
	want1 := solo(t, m, questions[1], 6)
	type env struct {
		c     *Context
		cs    *ChatSession
		other *ChatSession
	}
	cases := []struct {
		name string
		call func(t *testing.T, e env) // called once, from the callback
		// check is given the prompt's outcome.
		check func(t *testing.T, e env, r Response, err error)
	}{
		{"History", func(t *testing.T, e env) {
			if h := e.cs.History(); len(h) != 0 {
				t.Errorf("History during the first prompt: %d messages, want the history before it (none)", len(h))
			}
		}, func(t *testing.T, e env, r Response, err error) {
			if err != nil || len(e.cs.History()) != 2 {
				t.Errorf("after: %v, %d messages", err, len(e.cs.History()))
			}
		}},
		{"Tokens", func(t *testing.T, e env) {
			if n := len(e.cs.Sequence().Tokens()); n == 0 {
				t.Error("Tokens during generation: empty, want what is computed so far")
			}
		}, func(t *testing.T, e env, r Response, err error) {
			if err != nil {
				t.Error(err)
			}
		}},
		{"another session's Prompt", func(t *testing.T, e env) {
			r, err := e.other.PromptWithMeta(context.Background(), questions[1], PromptOptions{MaxTokens: 6, Sampling: &greedy})
			if err != nil || !slices.Equal(r.GeneratedIDs, want1.GeneratedIDs) {
				t.Errorf("nested prompt: %v, %v, want %v", err, r.GeneratedIDs, want1.GeneratedIDs)
			}
		}, func(t *testing.T, e env, r Response, err error) {
			if err != nil {
				t.Error(err)
			}
		}},
		{"Context.Close", func(t *testing.T, e env) { e.c.Close() },
			func(t *testing.T, e env, r Response, err error) {
				if !errors.Is(err, ErrClosed) && err != nil {
					t.Errorf("after Close from a callback: %v, want ErrClosed (or the answer, if it was already complete)", err)
				}
				if _, err := e.cs.Prompt(context.Background(), "again", PromptOptions{MaxTokens: 2}); !errors.Is(err, ErrClosed) {
					t.Errorf("prompt after Close: %v", err)
				}
			}},
	}
	for _, c := range cases {
		for _, where := range []string{"OnToken", "OnChunk"} {
			t.Run(c.name+"/"+where, func(t *testing.T) {
				ctx := newContext(t, m, ContextOptions{Sequences: 2, ContextSize: 1024})
				s1, _ := ctx.Sequence()
				s2, _ := ctx.Sequence()
				e := env{c: ctx, cs: NewChatSession(s1, ChatOptions{}), other: NewChatSession(s2, ChatOptions{})}
				called := 0
				once := func() {
					if called++; called == 2 {
						c.call(t, e)
					}
				}
				o := PromptOptions{MaxTokens: 12, Sampling: &greedy}
				if where == "OnToken" {
					o.OnToken = func(int32) { once() }
				} else {
					o.OnChunk = func(Chunk) { once() }
				}
				deadline(t, c.name, func() {
					r, err := e.cs.PromptWithMeta(context.Background(), questions[0], o)
					if called < 2 {
						t.Fatalf("the callback ran %d times", called)
					}
					c.check(t, e, r, err)
				})
			})
		}
	}
}

// TestPanickingCallback: a callback's panic reaches its caller; the other
// session answers as it would alone, and the panicking session works
// again afterwards.
func TestPanickingCallback(t *testing.T) {
	m := loadFixture(t, "qwen3-tiny-mixed")
	c := newContext(t, m, ContextOptions{Sequences: 2, ContextSize: 1024})
	s1, _ := c.Sequence()
	s2, _ := c.Sequence()
	bad, good := NewChatSession(s1, ChatOptions{}), NewChatSession(s2, ChatOptions{})
	var rb Response
	var errB error
	var recovered any
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		defer func() { recovered = recover() }()
		n := 0
		bad.Prompt(context.Background(), questions[2], PromptOptions{MaxTokens: 30, Sampling: &greedy,
			OnToken: func(int32) {
				if n++; n == 3 {
					panic("callback bug")
				}
			}})
	}()
	go func() {
		defer wg.Done()
		rb, errB = good.PromptWithMeta(context.Background(), questions[3], PromptOptions{MaxTokens: 20, Sampling: &greedy})
	}()
	deadline(t, "panicking callback", wg.Wait)
	if recovered != "callback bug" {
		t.Fatalf("the caller recovered %v, want the callback's panic", recovered)
	}
	if want := solo(t, m, questions[3], 20); errB != nil || !slices.Equal(rb.GeneratedIDs, want.GeneratedIDs) {
		t.Fatalf("the other session: %v, %v, want %v", errB, rb.GeneratedIDs, want.GeneratedIDs)
	}
	r, err := bad.PromptWithMeta(context.Background(), questions[2], PromptOptions{MaxTokens: 8, Sampling: &greedy})
	if want := solo(t, m, questions[2], 8); err != nil || !slices.Equal(r.GeneratedIDs, want.GeneratedIDs) {
		t.Fatalf("after the panic: %v, %v, want %v", err, r.GeneratedIDs, want.GeneratedIDs)
	}
}

// TestManySessionsSmallPool: 200 sessions on a 1024-token pool (room for
// about 20 at once) all finish, each with its solo answer, and the pool
// is whole afterwards.
func TestManySessionsSmallPool(t *testing.T) {
	m := loadFixture(t, "qwen3-tiny-q6k")
	n, tokens := 200, 8
	if testing.Short() {
		n = 50
	}
	c := newContext(t, m, ContextOptions{Sequences: n, ContextSize: 1024, BatchSize: 256})
	wants := map[string][]int32{}
	for _, q := range questions {
		wants[q] = solo(t, m, q, tokens).GeneratedIDs
	}
	got := make([]Response, n)
	var g errgroup.Group
	for i := range n {
		g.Go(func() error {
			seq, err := c.Sequence()
			if err != nil {
				return err
			}
			defer seq.Close()
			got[i], err = NewChatSession(seq, ChatOptions{}).PromptWithMeta(context.Background(), questions[i%len(questions)],
				PromptOptions{MaxTokens: tokens, Sampling: &greedy})
			return err
		})
	}
	deadline(t, "200 sessions", func() {
		if err := g.Wait(); err != nil {
			t.Fatal(err)
		}
	})
	for i, r := range got {
		if !slices.Equal(r.GeneratedIDs, wants[questions[i%len(questions)]]) {
			t.Errorf("session %d: %v, solo %v", i, r.GeneratedIDs, wants[questions[i%len(questions)]])
		}
	}
	st := c.Stats()
	if err := c.eng.kv.Check(); err != nil || st.KV.FreeBlocks != st.KV.Blocks {
		t.Fatalf("after every session closed: %v; %d of %d blocks free", err, st.KV.FreeBlocks, st.KV.Blocks)
	}
	t.Logf("%d sessions: %d steps, %d preemptions, %d prefix-cache tokens reused", n, st.Steps, st.Preemptions, st.KV.PrefixHits)
}

// TestForcedPreemption: two sequences on a pool that holds only one of
// them at full length: one is preempted and recomputed, and both answers
// equal their solo runs bit for bit (greedy and seeded sampling).
func TestForcedPreemption(t *testing.T) {
	m := loadFixture(t, "qwen3-tiny-mixed")
	prompts := [][]int32{{1, 5, 9, 14, 20, 27, 35, 44, 54, 65}, {2, 7, 3, 11, 13, 17, 19, 23, 29, 31}}
	seeded := greedy
	seeded.Temperature, seeded.Seed = 0.9, 7
	for _, mode := range []string{"greedy", "seeded"} {
		sampling := greedy
		if mode == "seeded" {
			sampling = seeded
		}
		solo := func(prompt []int32) Generation {
			c := newContext(t, m, ContextOptions{Sequences: 1, ContextSize: 256})
			s, _ := c.Sequence()
			g, err := s.Generate(context.Background(), prompt, GenerateOptions{MaxTokens: 40, Sampling: &sampling, IgnoreEOG: true})
			if err != nil {
				t.Fatal(err)
			}
			return g
		}
		// 64 tokens: each sequence needs 50 alone (4 blocks of 16), both 8 blocks.
		c := newContext(t, m, ContextOptions{Sequences: 2, ContextSize: 64})
		var got [2]Generation
		var pend [2]*Pending
		c.Together(func() {
			for i := range 2 {
				s, _ := c.Sequence()
				var err error
				if pend[i], err = s.Start(context.Background(), prompts[i], GenerateOptions{MaxTokens: 40, Sampling: &sampling, IgnoreEOG: true}); err != nil {
					t.Fatal(err)
				}
			}
		})
		for i := range 2 {
			var err error
			if got[i], err = pend[i].Wait(); err != nil {
				t.Fatal(err)
			}
		}
		if c.Stats().Preemptions == 0 {
			t.Fatalf("%s: no preemption happened", mode)
		}
		for i := range 2 {
			if want := solo(prompts[i]); !slices.Equal(got[i].Tokens, want.Tokens) {
				t.Errorf("%s: sequence %d: %v, solo %v", mode, i, got[i].Tokens, want.Tokens)
			}
		}
		t.Logf("%s: %d preemptions; preempted sequences recomputed %d and %d tokens in all", mode, c.Stats().Preemptions, got[0].EvaluatedTotal, got[1].EvaluatedTotal)
	}
}

// TestTooBigAlone: a request that cannot fit in the pool even alone fails
// with ErrKVFull and the numbers; the context keeps working.
func TestTooBigAlone(t *testing.T) {
	m := loadFixture(t, "qwen3-tiny-q6k")
	c := newContext(t, m, ContextOptions{Sequences: 1, ContextSize: 32})
	s, _ := c.Sequence()
	g, err := s.Generate(context.Background(), []int32{1, 2, 3}, GenerateOptions{MaxTokens: 100, Sampling: &greedy, IgnoreEOG: true})
	if !errors.Is(err, ErrContextOverflow) || g.FinishReason != FinishContext || len(g.Tokens) != 30 {
		t.Fatalf("generation to the end of the context: %v, finish %q, %d tokens", err, g.FinishReason, len(g.Tokens))
	}
	if _, err := s.Generate(context.Background(), []int32{4, 5}, GenerateOptions{MaxTokens: 2, Sampling: &greedy}); err != nil {
		t.Fatal(err)
	}
}

// TestPrefixCaching: two requests share a 100-token system prompt; the
// second evaluates only what follows the shared full blocks, and its
// logits are bit-identical to a run with caching off.
func TestPrefixCaching(t *testing.T) {
	m := loadFixture(t, "qwen3-tiny-q6k")
	system := strings.Repeat("You answer questions about geography briefly. ", 12)
	first := func(c *Context, q string) (Response, []float32) {
		s, err := c.Sequence()
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		var row []float32
		r, err := NewChatSession(s, ChatOptions{SystemPrompt: system}).PromptWithMeta(context.Background(), q,
			PromptOptions{MaxTokens: 4, Sampling: &greedy, OnLogits: func(l []float32) {
				if row == nil {
					row = l
				}
			}})
		if err != nil {
			t.Fatal(err)
		}
		return r, row
	}
	var steps stepLog
	on := newContext(t, m, ContextOptions{Sequences: 2, ContextSize: 1024, OnStep: steps.add})
	r1, _ := first(on, questions[0])
	r2, row2 := first(on, questions[1])
	shared := commonPrefix(r1.PromptIDs, r2.PromptIDs)
	if shared < 100 {
		t.Fatalf("the prompts share only %d tokens", shared)
	}
	wantCached := shared / 16 * 16
	if r2.CachedTokens != wantCached || r2.ReusedTokens != wantCached {
		t.Fatalf("second request: %d tokens from the prefix cache, %d reused; the prompts share %d (%d in full blocks)",
			r2.CachedTokens, r2.ReusedTokens, shared, wantCached)
	}
	if evaluated := r2.EvaluatedTotal - len(r2.GeneratedIDs) + 1; evaluated != len(r2.PromptIDs)-wantCached {
		t.Fatalf("second request evaluated %d prompt tokens, want %d", evaluated, len(r2.PromptIDs)-wantCached)
	}
	if st := on.KVStats(); st.PrefixHits != int64(wantCached) {
		t.Fatalf("stats: %d prefix hits", st.PrefixHits)
	}
	if last := steps.traces[len(steps.traces)-1]; last.PrefixHits != int64(wantCached) {
		t.Fatalf("trace: %d prefix hits", last.PrefixHits)
	}
	off := newContext(t, m, ContextOptions{Sequences: 2, ContextSize: 1024, DisablePrefixCache: true})
	first(off, questions[0])
	r2off, row2off := first(off, questions[1])
	if r2off.CachedTokens != 0 || !slices.Equal(r2off.GeneratedIDs, r2.GeneratedIDs) {
		t.Fatalf("caching off: %d cached, %v vs %v", r2off.CachedTokens, r2off.GeneratedIDs, r2.GeneratedIDs)
	}
	for i := range row2 {
		if math.Float32bits(row2[i]) != math.Float32bits(row2off[i]) {
			t.Fatalf("logit %d: %g with the prefix cache, %g without", i, row2[i], row2off[i])
		}
	}
	t.Logf("prompts of %d and %d tokens share %d; the second evaluated %d", len(r1.PromptIDs), len(r2.PromptIDs), shared, len(r2.PromptIDs)-wantCached)
}

// TestCloseMidGeneration: Model.Close and Context.Close while sequences
// generate end them with ErrClosed, crash nothing, and leave no goroutine
// behind. Run with -race.
func TestCloseMidGeneration(t *testing.T) {
	for _, which := range []string{"context", "model"} {
		t.Run(which, func(t *testing.T) {
			before := runtime.NumGoroutine()
			m, err := LoadModel(testdata.Path("models", "qwen3-tiny-q6k.gguf"), ModelOptions{Threads: 2})
			if err != nil {
				t.Fatal(err)
			}
			c, err := m.NewContext(ContextOptions{Sequences: 4, ContextSize: 1024})
			if err != nil {
				t.Fatal(err)
			}
			started := make(chan struct{}, 4)
			errs := make([]error, 4)
			var wg sync.WaitGroup
			for i := range 4 {
				s, _ := c.Sequence()
				wg.Add(1)
				go func() {
					defer wg.Done()
					n := 0
					_, errs[i] = s.Generate(context.Background(), []int32{1, 2, 3, int32(i)}, GenerateOptions{MaxTokens: 500, Sampling: &greedy, IgnoreEOG: true,
						OnToken: func(int32) bool {
							if n++; n == 2 {
								started <- struct{}{}
							}
							return false
						}})
				}()
			}
			for range 4 {
				<-started
			}
			if which == "context" {
				c.Close()
				c.Close() // idempotent
			}
			m.Close()
			m.Close()
			deadline(t, "close", wg.Wait)
			for i, err := range errs {
				if !errors.Is(err, ErrClosed) {
					t.Errorf("sequence %d: %v, want ErrClosed", i, err)
				}
			}
			if _, err := c.Sequence(); !errors.Is(err, ErrClosed) {
				t.Errorf("Sequence after close: %v", err)
			}
			if _, err := m.NewContext(ContextOptions{}); !errors.Is(err, ErrClosed) {
				t.Errorf("NewContext after Model.Close: %v", err)
			}
			waitGoroutines(t, before)
		})
	}
}

// waitGoroutines checks that the goroutine count comes back to n: exiting
// goroutines may take a moment to be counted, so it looks again a few
// times (as goleak does).
func waitGoroutines(t *testing.T, n int) {
	t.Helper()
	for i := 0; i < 200 && runtime.NumGoroutine() > n; i++ {
		runtime.Gosched()
		time.Sleep(5 * time.Millisecond)
	}
	if got := runtime.NumGoroutine(); got > n {
		buf := make([]byte, 1<<16)
		t.Fatalf("%d goroutines left, %d before:\n%s", got, n, buf[:runtime.Stack(buf, true)])
	}
}

// TestContextOptionsBounds: every option at 0, negative and absurd values
// gives the default or a clear error, never a panic or an out-of-memory.
func TestContextOptionsBounds(t *testing.T) {
	m := loadFixture(t, "qwen3-tiny-q6k")
	const huge = 1_000_000_000_000
	cases := []struct {
		name string
		o    ContextOptions
		err  string // "" : works
	}{
		{"all zero: defaults", ContextOptions{}, ""},
		{"Sequences negative", ContextOptions{Sequences: -1}, "Sequences -1 must be between 1 and 65536"},
		{"Sequences huge", ContextOptions{Sequences: huge}, "Sequences 1000000000000 must be between 1 and 65536"},
		{"BatchSize negative", ContextOptions{BatchSize: -5}, "BatchSize -5 must be at least 1"},
		{"BatchSize huge: lowered to the context size", ContextOptions{BatchSize: huge, ContextSize: 256}, ""},
		{"ContextSize negative", ContextOptions{ContextSize: -1}, "ContextSize -1 must be between 1 and 1073741824"},
		{"ContextSize huge", ContextOptions{ContextSize: huge}, "ContextSize 1000000000000 must be between 1 and 1073741824"},
		{"ContextSize at the limit, beyond memory", ContextOptions{ContextSize: MaxContextSize, BatchSize: 1 << 24}, "this machine has"},
		{"ContextSize near MaxInt", ContextOptions{ContextSize: math.MaxInt - 1}, "must be between 1 and"},
		{"ContextSize tiny", ContextOptions{ContextSize: 1}, ""},
		{"BlockSize negative", ContextOptions{BlockSize: -16}, "BlockSize -16 must be between 1 and 4096"},
		{"BlockSize huge", ContextOptions{BlockSize: huge}, "BlockSize 1000000000000 must be between 1 and 4096"},
		{"BlockSize above ContextSize", ContextOptions{BlockSize: 64, ContextSize: 32}, "BlockSize 64 is larger than ContextSize 32"},
		{"KVType unknown", ContextOptions{KVType: "q4"}, `KVType "q4" (use f16 or f32)`},
		{"KVType f32", ContextOptions{KVType: "f32", ContextSize: 64}, ""},
		{"prefix cache off", ContextOptions{DisablePrefixCache: true, ContextSize: 64}, ""},
		{"many sequences, small pool", ContextOptions{Sequences: MaxSequences, ContextSize: 64}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx, err := m.NewContext(c.o)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("error %v, want one containing %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer ctx.Close()
			o := ctx.Options()
			if o.Sequences < 1 || o.BatchSize < 1 || o.BatchSize > o.ContextSize || o.BlockSize < 1 || o.BlockSize > o.ContextSize {
				t.Fatalf("options in effect: %+v", o)
			}
			s, _ := ctx.Sequence()
			if _, err := s.Generate(context.Background(), []int32{1}, GenerateOptions{MaxTokens: 2, Sampling: &greedy}); err != nil && !errors.Is(err, ErrContextOverflow) {
				t.Fatal(err)
			}
		})
	}
}

// TestWaitSequence: with every sequence taken, WaitSequence waits until
// one is closed, or until its context ends.
func TestWaitSequence(t *testing.T) {
	m := loadFixture(t, "qwen3-tiny-q6k")
	c := newContext(t, m, ContextOptions{Sequences: 1, ContextSize: 64})
	s, _ := c.Sequence()
	if _, err := c.Sequence(); !errors.Is(err, ErrNoSequences) {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.WaitSequence(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled wait: %v", err)
	}
	got := make(chan *Sequence)
	go func() {
		s2, err := c.WaitSequence(context.Background())
		if err != nil {
			t.Error(err)
		}
		got <- s2
	}()
	s.Close()
	deadline(t, "WaitSequence", func() {
		if s2 := <-got; s2 == nil || s2.ID() != 0 {
			t.Errorf("got %v", s2)
		}
	})
}

// TestFork: a fork shares the prompt's blocks, evaluates only the last
// prompt token again, and generates exactly what a fresh sequence would.
func TestFork(t *testing.T) {
	m := loadFixture(t, "qwen3-tiny-q6k")
	prompt := []int32{3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8, 9, 7, 9, 3, 2, 3, 8, 4}
	c := newContext(t, m, ContextOptions{Sequences: 3, ContextSize: 256})
	s, _ := c.Sequence()
	if err := s.Evaluate(context.Background(), prompt); err != nil {
		t.Fatal(err)
	}
	f, err := s.Fork()
	if err != nil {
		t.Fatal(err)
	}
	if st := c.KVStats(); st.Shared != 2 || !slices.Equal(f.Tokens(), prompt) {
		t.Fatalf("fork: %d shared blocks, tokens %v", st.Shared, f.Tokens())
	}
	g, err := f.Generate(context.Background(), prompt, GenerateOptions{MaxTokens: 6, Sampling: &greedy, IgnoreEOG: true})
	if err != nil {
		t.Fatal(err)
	}
	if g.ReusedTokens != len(prompt)-1 || g.EvaluatedTotal != 6 {
		t.Fatalf("fork reused %d tokens and evaluated %d", g.ReusedTokens, g.EvaluatedTotal)
	}
	fresh := newContext(t, m, ContextOptions{Sequences: 1, ContextSize: 256, DisablePrefixCache: true})
	s2, _ := fresh.Sequence()
	want, err := s2.Generate(context.Background(), prompt, GenerateOptions{MaxTokens: 6, Sampling: &greedy, IgnoreEOG: true})
	if err != nil || !slices.Equal(g.Tokens, want.Tokens) {
		t.Fatalf("fork generated %v, a fresh sequence %v (%v)", g.Tokens, want.Tokens, err)
	}
	// The source is untouched by the fork's writes.
	if !slices.Equal(s.Tokens(), prompt) {
		t.Fatalf("source now holds %v", s.Tokens())
	}
	s.Close()
	f.Close()
	if err := c.eng.kv.Check(); err != nil {
		t.Fatal(err)
	}
}
