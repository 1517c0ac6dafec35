package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/gollm/gollm"
	"github.com/gollm/gollm/chat"
	"github.com/gollm/gollm/internal/demo"
	"github.com/gollm/gollm/sample"
	"golang.org/x/sync/errgroup"
)

func init() {
	register(command{name: "run", summary: "answer several chats at once, batched into one forward pass per step", run: runCmd})
}

// defaultPrompts are the seed example's two questions, then more in turn
// for further sequences.
var defaultPrompts = []string{
	"Hi there, how are you?",
	"How much is 6+6?",
	"What is the capital of France?",
	"Write a haiku about the sea.",
	"Explain what a KV cache is in one sentence.",
	"Name three prime numbers.",
	"Why is the sky blue?",
	"Translate 'good morning' into Spanish.",
}

// runFlags holds the run command's settings.
type runFlags struct {
	model, system, promptsFile, think, kvType string
	prompts                                   multiFlag
	seqs, batchSize, ctxSize, threads         int
	maxTokens, topK                           int
	temp, topP, minP, repeat                  float64
	seed                                      int64
	jsonOut, trace, raw, exact, noLive        bool
	yarn                                      yarnFlags
	gpu                                       gpuFlags
}

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ", ") }
func (m *multiFlag) Set(s string) error { *m = append(*m, s); return nil }

func runCmd(args []string, stdout, stderr io.Writer) error {
	var f runFlags
	fs := newFlags("run", stderr)
	fs.StringVar(&f.model, "model", "", "GGUF model file (default: the built-in demo model, random weights)")
	fs.IntVar(&f.seqs, "seq", 2, "sequences answering at once")
	fs.Var(&f.prompts, "prompt", "a prompt (repeatable; default: the seed example's questions)")
	fs.StringVar(&f.promptsFile, "prompts-file", "", "file with one prompt per line")
	fs.StringVar(&f.system, "system", "", "system prompt")
	fs.IntVar(&f.batchSize, "batch-size", 1024, "most tokens per forward step")
	fs.IntVar(&f.ctxSize, "ctx", 0, "tokens in the shared KV cache (default: the model's context, at most 4096 per sequence)")
	fs.IntVar(&f.threads, "threads", 0, "CPU threads (default: one per core)")
	fs.Float64Var(&f.temp, "temp", 0.8, "sampling temperature (0: greedy)")
	fs.IntVar(&f.topK, "top-k", 40, "top-k sampling (0: off)")
	fs.Float64Var(&f.topP, "top-p", 0.95, "top-p sampling (1: off)")
	fs.Float64Var(&f.minP, "min-p", 0.05, "min-p sampling (0: off)")
	fs.Float64Var(&f.repeat, "repeat-penalty", 1, "repeat penalty (1: off)")
	fs.Int64Var(&f.seed, "seed", -1, "random seed (-1: a new one each run); prompt i uses seed+i")
	fs.IntVar(&f.maxTokens, "max-tokens", 0, "most tokens per answer (default: until the model stops; 64 for the demo model)")
	fs.StringVar(&f.think, "think", "show", "show or hide the model's thinking")
	fs.BoolVar(&f.jsonOut, "json", false, "print one JSON object with the results")
	fs.BoolVar(&f.trace, "trace", false, "print every step's batch composition and KV blocks (to stderr)")
	fs.BoolVar(&f.raw, "raw", false, "no chat template: feed the prompt text as it is")
	fs.StringVar(&f.kvType, "kv-type", "f16", "KV cache element type: f16 or f32")
	fs.BoolVar(&f.exact, "exact", false, "compute in float32 instead of 8-bit activations (slower)")
	fs.BoolVar(&f.noLive, "no-live", false, "in a terminal, stream labelled lines instead of the live view")
	f.yarn.register(fs)
	f.gpu.register(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if f.seqs < 1 {
		return fmt.Errorf("%w: --seq must be at least 1", errUsage)
	}
	if f.think != "show" && f.think != "hide" {
		return fmt.Errorf("%w: --think is show or hide, not %q", errUsage, f.think)
	}
	prompts, err := f.promptList()
	if err != nil {
		return err
	}
	params := sample.DefaultParams()
	params.Temperature, params.TopK, params.TopP, params.MinP = float32(f.temp), f.topK, float32(f.topP), float32(f.minP)
	params.RepeatPenalty = float32(f.repeat)
	if err := params.Validate(); err != nil {
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	if f.seed < 0 {
		f.seed = int64(rand.Uint32())
	}

	path := f.model
	if path == "" {
		fmt.Fprintln(stderr, "gollm: no --model given, so this runs the built-in demo model: a small Qwen3 with the real")
		fmt.Fprintln(stderr, "       DeepSeek-R1 tokenizer and RANDOM weights. Its text is noise; the batching is real.")
		fmt.Fprintln(stderr, "       Pass a real GGUF to get answers: gollm run --model DeepSeek-R1-0528-Qwen3-8B-Q6_K.gguf --seq 2")
		p, created, err := demo.Path()
		if err != nil {
			return fmt.Errorf("making the demo model: %w", err)
		}
		if created {
			fmt.Fprintf(stderr, "       (synthesized it once into %s)\n", p)
		}
		path = p
		if f.maxTokens == 0 {
			f.maxTokens = 64
		}
	}
	rope, err := f.yarn.scaling()
	if err != nil {
		return err
	}
	mo := gollm.ModelOptions{Threads: f.threads, Exact: f.exact, RopeScaling: rope}
	if err := f.gpu.apply(&mo, stderr); err != nil {
		return err
	}
	m, err := gollm.LoadModel(path, mo)
	if err != nil {
		return err
	}
	defer m.Close()
	if f.ctxSize == 0 {
		f.ctxSize = min(m.Config().Context, 4096*f.seqs)
	}
	return runPrompts(m, f, prompts, params, stdout, stderr)
}

func (f *runFlags) promptList() ([]string, error) {
	prompts := append([]string(nil), f.prompts...)
	if f.promptsFile != "" {
		data, err := os.ReadFile(f.promptsFile)
		if err != nil {
			return nil, err
		}
		sc := bufio.NewScanner(strings.NewReader(string(data)))
		sc.Buffer(make([]byte, 1<<20), 1<<24)
		for sc.Scan() {
			if line := strings.TrimSpace(sc.Text()); line != "" {
				prompts = append(prompts, line)
			}
		}
	}
	if len(prompts) == 0 {
		// The seed example's questions, then more, one per sequence.
		for i := 0; i < f.seqs; i++ {
			prompts = append(prompts, defaultPrompts[i%len(defaultPrompts)])
		}
	}
	for len(prompts) < f.seqs { // more sequences than prompts: ask them again
		prompts = append(prompts, prompts[len(prompts)%len(f.prompts)])
	}
	return prompts, nil
}

// answer is one prompt's outcome.
type answer struct {
	Prompt       string  `json:"prompt"`
	Answer       string  `json:"answer"`
	Thoughts     string  `json:"thoughts"`
	PromptIDs    []int32 `json:"prompt_ids"`
	GeneratedIDs []int32 `json:"generated_ids"`
	TokensPerSec float64 `json:"tokens_per_second"`
	Sequence     int     `json:"sequence"`
	Finish       string  `json:"finish_reason"`
	Evaluated    int     `json:"prompt_tokens_evaluated"`
	Seconds      float64 `json:"seconds"`
}

type runReport struct {
	Sequences      []answer `json:"sequences"`
	TotalTPS       float64  `json:"total_tokens_per_second"`
	Steps          int      `json:"steps"`
	MeanPerStep    float64  `json:"mean_tokens_per_step"`
	Model          string   `json:"model"`
	Backend        string   `json:"backend"`
	Seed           int64    `json:"seed"`
	WallSeconds    float64  `json:"wall_seconds"`
	TokensComputed int      `json:"tokens_computed"`
}

// runPrompts answers the prompts with f.seqs sequences working in
// parallel: each sequence takes the next unanswered prompt when it is
// done with one (continuous batching), all packed by one scheduler.
func runPrompts(m *gollm.Model, f runFlags, prompts []string, params sample.Params, stdout, stderr io.Writer) error {
	var live *liveView
	var mu sync.Mutex // guards computed and the stream writer
	computed := 0
	opts := gollm.ContextOptions{Sequences: f.seqs, BatchSize: f.batchSize, ContextSize: f.ctxSize, KVType: f.kvType}
	opts.OnStep = func(st gollm.StepTrace) {
		mu.Lock()
		computed += st.Tokens
		mu.Unlock()
		if f.trace {
			printTrace(stderr, st)
		}
	}
	c, err := m.NewContext(opts)
	if err != nil {
		return err
	}
	defer c.Close()

	if isTerminal(stderr) && !f.jsonOut && !f.noLive && !f.trace {
		live = newLiveView(stderr, f.seqs, f.think == "show")
	}
	var mu2 sync.Mutex // guards next
	answers := make([]answer, len(prompts))
	next := f.seqs // worker w answers prompt w first, then the next unanswered one
	take := func() int {
		mu2.Lock()
		defer mu2.Unlock()
		next++
		return next - 1
	}
	// ask starts prompt i on a worker's session; wait streams it and
	// records the answer.
	type worker struct {
		seq   *gollm.Sequence
		label int
	}
	ask := func(w worker, i int) (*gollm.Reply, error) {
		cs := gollm.NewChatSession(w.seq, gollm.ChatOptions{SystemPrompt: f.system, Raw: f.raw})
		p := params
		p.Seed = uint64(f.seed) + uint64(i)
		return cs.Start(context.Background(), prompts[i], gollm.PromptOptions{
			MaxTokens: f.maxTokens, Sampling: &p,
			OnChunk: func(ch gollm.Chunk) {
				if live != nil {
					live.add(w.label-1, ch)
					return
				}
				if f.jsonOut || (ch.Kind == chat.Thought && f.think == "hide") {
					return
				}
				mu.Lock()
				streamLine(stderr, w.label, ch)
				mu.Unlock()
			},
		})
	}
	wait := func(w worker, i int, r *gollm.Reply, t0 time.Time) error {
		res, err := r.Wait()
		if err != nil {
			return fmt.Errorf("sequence %d, prompt %q: %w", w.label, prompts[i], err)
		}
		secs := time.Since(t0).Seconds()
		answers[i] = answer{Prompt: prompts[i], Answer: res.Text, Thoughts: res.Thoughts, PromptIDs: res.PromptIDs,
			GeneratedIDs: nonNilIDs(res.GeneratedIDs), TokensPerSec: float64(len(res.GeneratedIDs)) / secs, Sequence: w.label,
			Finish: res.FinishReason, Evaluated: res.PromptTokens - res.ReusedTokens, Seconds: secs}
		if live != nil {
			live.done(w.label-1, len(res.GeneratedIDs), answers[i].TokensPerSec)
		}
		return nil
	}
	workers := make([]worker, min(f.seqs, len(prompts)))
	for k := range workers {
		seq, err := c.Sequence()
		if err != nil {
			return err
		}
		defer seq.Close()
		workers[k] = worker{seq: seq, label: seq.ID() + 1}
	}
	// Every worker's first prompt starts in the same step (as
	// Promise.all's prompts do in node-llama-cpp).
	start := time.Now()
	first := make([]*gollm.Reply, len(workers))
	c.Together(func() {
		for k, w := range workers {
			if first[k], err = ask(w, k); err != nil {
				return
			}
		}
	})
	if err != nil {
		return err
	}
	var g errgroup.Group
	for k, w := range workers {
		g.Go(func() error {
			r, i, t0 := first[k], k, start
			for {
				if err := wait(w, i, r, t0); err != nil {
					return err
				}
				if i = take(); i >= len(prompts) {
					return nil
				}
				t0 = time.Now()
				var err error
				if r, err = ask(w, i); err != nil {
					return err
				}
			}
		})
	}
	err = g.Wait()
	wall := time.Since(start).Seconds()
	if live != nil {
		live.stop()
	}
	if err != nil {
		return err
	}
	total := 0
	for _, a := range answers {
		total += len(a.GeneratedIDs)
	}
	rep := runReport{Sequences: answers, TotalTPS: float64(total) / wall, Steps: c.Steps(), Model: m.Path(),
		Backend: m.Backend(), Seed: f.seed, WallSeconds: wall, TokensComputed: computed}
	if rep.Steps > 0 {
		rep.MeanPerStep = float64(computed) / float64(rep.Steps)
	}
	if f.jsonOut {
		enc := json.NewEncoder(stdout)
		enc.SetEscapeHTML(false)
		return enc.Encode(rep)
	}
	for _, a := range answers {
		fmt.Fprintf(stdout, "User: %s\n", a.Prompt)
		if a.Thoughts != "" && f.think == "show" {
			fmt.Fprintf(stdout, "AI (thinking): %s\n", a.Thoughts)
		}
		fmt.Fprintf(stdout, "AI: %s\n\n", a.Answer)
	}
	fmt.Fprintf(stdout, "── summary (%s, %s)\n", shortPath(m.Path()), m.Backend())
	for i, a := range answers {
		fmt.Fprintf(stdout, "  prompt %d on sequence %d: %d prompt tokens evaluated, %d generated, %.1f tokens/s (%s)\n",
			i+1, a.Sequence, a.Evaluated, len(a.GeneratedIDs), a.TokensPerSec, a.Finish)
	}
	fmt.Fprintf(stdout, "  total: %d tokens generated in %.2fs = %.1f tokens/s; %d steps, %.1f tokens per step\n",
		total, wall, rep.TotalTPS, rep.Steps, rep.MeanPerStep)
	return nil
}

func nonNilIDs(ids []int32) []int32 {
	if ids == nil {
		return []int32{}
	}
	return ids
}

func shortPath(p string) string {
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		return p[i+1:]
	}
	return p
}

// streamLine prints a chunk as a labelled line (the non-terminal stream).
func streamLine(w io.Writer, seq int, ch gollm.Chunk) {
	kind := ""
	if ch.Kind == chat.Thought {
		kind = " (thinking)"
	}
	fmt.Fprintf(w, "[seq %d%s] %q\n", seq, kind, ch.Text)
}

// printTrace shows one step: who contributed how many tokens, and the KV
// blocks each sequence holds.
func printTrace(w io.Writer, st gollm.StepTrace) {
	var parts []string
	for _, it := range st.Items {
		kind := "gen"
		if it.Prompt {
			kind = fmt.Sprintf("prompt %d..%d", it.FromPos, it.FromPos+it.Tokens-1)
		}
		parts = append(parts, fmt.Sprintf("seq %d: %d (%s)", it.Seq+1, it.Tokens, kind))
	}
	var kv []string
	for _, it := range st.Items {
		kv = append(kv, fmt.Sprintf("seq %d %d blk/%d tok", it.Seq+1, st.KVBlocks[it.Seq], st.KVTokens[it.Seq]))
	}
	extra := ""
	if len(st.Preempted) > 0 {
		var p []string
		for _, s := range st.Preempted {
			p = append(p, fmt.Sprintf("seq %d", s+1))
		}
		extra += "  preempted: " + strings.Join(p, ", ")
	}
	if st.CachedBlocks > 0 || st.PrefixHits > 0 {
		extra += fmt.Sprintf("  prefix cache: %d blocks, %d tokens reused so far", st.CachedBlocks, st.PrefixHits)
	}
	fmt.Fprintf(w, "step %4d  %3d tokens  %7.2f ms  [%s]  KV: %s, %d/%d blocks free (x%d tokens)%s\n",
		st.Step, st.Tokens, float64(st.StepDuration.Microseconds())/1000, strings.Join(parts, ", "),
		strings.Join(kv, ", "), st.FreeBlocks, st.TotalBlocks, st.BlockSize, extra)
}
