package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/signal"
	"strings"
	"sync"
	"time"

	"github.com/gollm/gollm"
	"github.com/gollm/gollm/chat"
	"github.com/gollm/gollm/internal/demo"
	"github.com/gollm/gollm/internal/sysmem"
	"github.com/gollm/gollm/kvcache"
	"github.com/gollm/gollm/model"
	"github.com/gollm/gollm/sample"
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
	maxTokens                                 int
	sampling                                  samplingFlags
	seed                                      int64
	jsonOut, trace, raw, exact, noLive        bool
	parseSpecial, noParseSpecial              bool
	constraint                                constraintFlags
	yarn                                      yarnFlags
	gpu                                       gpuFlags
}

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ", ") }
func (m *multiFlag) Set(s string) error { *m = append(*m, s); return nil }
func (m *multiFlag) Type() string       { return "text" }

const runHelp = `Usage: gollm run [--model FILE|hf:REPO:QUANT] [--seq N] [--prompt TEXT ...] [--prompts-file FILE] [flags]

Answers the prompts with N sequences working at once, batched into shared
forward steps. Without --model it runs the built-in demo model (random
weights; synthesized once into the user's cache directory).

An answer ends with a finish reason: eog (the model ended its turn),
length (--max-tokens), context (the sequence reached --ctx tokens, or the
shared KV cache could not hold it even alone) or cancelled (Ctrl-C). Every
answer is printed with its reason, partial ones too; a context stop is
a finish reason, not an error. --json always prints its object (once
the flags are valid), with an "error" field in an answer that failed
and at the top when the run failed.

Output. In a terminal, a live view on stderr shows every sequence at
work (--no-live: labelled lines instead), then the conversation and a
summary on stdout. When stdout is a pipe or a file, it gets the answers
as plain text, one block per prompt under a header line
("--- sequence 1: Hi there, how are you? ---"; an answer cut short ends
with its reason, "[length]"); nothing is streamed into a pipe, and the
summary goes to stderr with -v only. --json is one object on stdout
either way.

Nothing is said about GPUs on a CPU-only run unless a GPU was asked for
(--gpu auto given explicitly, or --gpu cuda, an error without one) or -v
is given.

Exit codes: 0 when every prompt got its answer (eog, length, stop or
context); 1 when one did not (its prompt alone does not fit the
context, Ctrl-C, a model that cannot be loaded, any other failure),
after printing the answers that were made; 2 for bad flags (a one-line
message on stderr, nothing on stdout).

Structured output: --json-schema FILE constrains every answer to JSON
that validates against the JSON Schema in FILE, --grammar FILE to the
GBNF grammar (llama.cpp's format) in FILE, and --json-object to any JSON
object (--json is taken: it prints the report). Tokens that cannot
continue the grammar are never sampled, and an answer ends by itself
once it is complete. At most one of the three; a schema or grammar that
does not parse is a bad flag (exit 2, with the error's position or
schema path). The answer is all answer: a model's thinking is off while
constrained.

--prompts-file holds one prompt per line (blank lines skipped), at most
64 MiB; with fewer prompts than sequences they are asked again in turn.

Special-token text (<|im_end|>, …) in a prompt is plain text in chat mode
unless --parse-special is given; with --raw it is matched as the control
token it names, like llama.cpp, unless --no-parse-special is given.

Flags:
`

func runCmd(args []string, stdout, stderr io.Writer) error {
	var f runFlags
	fs := newFlags("run", stderr)
	fs.Usage = func() { printHelp(fs, runHelp) }
	fs.StringVar(&f.model, "model", "", "GGUF model file, or hf:REPO:QUANT for one gollm pull got (default: the built-in demo model, random weights)")
	fs.IntVar(&f.seqs, "seq", 2, fmt.Sprintf("sequences answering at once (1 to %d)", gollm.MaxSequences))
	fs.Var(&f.prompts, "prompt", "a prompt (repeatable; default: the seed example's questions)")
	fs.StringVar(&f.promptsFile, "prompts-file", "", "file with one prompt per line (at most 64 MiB)")
	fs.StringVar(&f.system, "system", "", "system prompt")
	fs.IntVar(&f.batchSize, "batch-size", 1024, "most tokens per forward step")
	fs.IntVar(&f.ctxSize, "ctx", 0, "tokens in the shared KV cache (default: the model's context, at most 4096 per sequence and half the memory)")
	threads := threadsFlag(fs)
	f.sampling.register(fs)
	fs.Int64Var(&f.seed, "seed", -1, "random seed (-1: a new one each run); prompt i uses seed+i")
	fs.IntVar(&f.maxTokens, "max-tokens", 0, "most tokens per answer (default: until the model stops; 64 for the demo model)")
	fs.StringVar(&f.think, "think", "show", "show or hide the model's thinking")
	fs.BoolVar(&f.jsonOut, "json", false, "print one JSON object with the results")
	f.constraint.register(fs)
	fs.BoolVar(&f.trace, "trace", false, "print every step's batch composition and KV blocks (to stderr)")
	fs.BoolVar(&f.raw, "raw", false, "no chat template: feed the prompt text as it is")
	fs.BoolVar(&f.parseSpecial, "parse-special", false, "chat mode: match special-token text in prompts as control tokens")
	fs.BoolVar(&f.noParseSpecial, "no-parse-special", false, "with --raw: keep special-token text as plain text")
	fs.StringVar(&f.kvType, "kv-type", "f16", "KV cache element type: f16 or f32")
	fs.BoolVar(&f.exact, "exact", false, "compute in float32 instead of 8-bit activations (slower)")
	fs.BoolVar(&f.noLive, "no-live", false, "in a terminal, stream labelled lines instead of the live view")
	f.yarn.register(fs)
	f.gpu.register(fs)
	if err := parseArgs(fs, args); err != nil {
		return err
	}
	f.threads = *threads
	if err := f.check(); err != nil {
		return err
	}
	prompts, err := f.promptList()
	if err != nil {
		return err
	}
	params, err := f.sampling.params()
	if err != nil {
		return err
	}
	if f.seed < 0 {
		f.seed = int64(rand.Uint32())
	}
	rope, err := f.yarn.scaling()
	if err != nil {
		return err
	}
	mo := gollm.ModelOptions{Threads: f.threads, Exact: f.exact, RopeScaling: rope}
	if err := f.gpu.apply(&mo, stderr); err != nil {
		return err
	}

	// Ctrl-C ends the answers under way (finish reason "cancelled") and
	// prints what they have; a second Ctrl-C kills as usual.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	context.AfterFunc(ctx, stop)

	// From here on, --json prints its object whatever happens.
	fail := func(err error) error {
		if f.jsonOut {
			writeJSON(stdout, runReport{Sequences: []answer{}, Error: err.Error()})
		}
		return err
	}
	path, err := modelPath(f.model)
	if err != nil {
		return fail(err)
	}
	if path == "" {
		fmt.Fprintln(stderr, "gollm: no --model given, so this runs the built-in demo model: a small Qwen3 with the real")
		fmt.Fprintln(stderr, "       DeepSeek-R1 tokenizer and RANDOM weights. Its text is noise; the batching is real.")
		fmt.Fprintln(stderr, "       Pass a real GGUF to get answers: gollm run --model DeepSeek-R1-0528-Qwen3-8B-Q6_K.gguf --seq 2")
		p, created, err := demo.PathContext(ctx)
		if err != nil {
			return fail(fmt.Errorf("making the demo model: %w", err))
		}
		if created {
			fmt.Fprintf(stderr, "       (synthesized it once into %s)\n", p)
		}
		path = p
		if f.maxTokens == 0 {
			f.maxTokens = 64
		}
	}
	m, err := gollm.LoadModelContext(ctx, path, mo) // Ctrl-C stops the load too
	if err != nil {
		return fail(err)
	}
	defer m.Close()
	if f.ctxSize == 0 {
		var capped bool
		f.ctxSize, capped = defaultContext(m.Config(), f.seqs, f.kvType)
		if capped {
			fmt.Fprintf(stderr, "gollm: --ctx defaults to %d tokens, what half of this machine's memory holds (set --ctx to choose)\n", f.ctxSize)
		}
	}
	return runPrompts(ctx, m, f, prompts, params, stdout, stderr)
}

// check validates the flags that need no model.
func (f *runFlags) check() error {
	if err := checkModelRef(f.model); err != nil {
		return err
	}
	if err := checkRange("seq", int64(f.seqs), 1, gollm.MaxSequences); err != nil {
		return err
	}
	if err := checkRange("batch-size", int64(f.batchSize), 1, maxTokensFlag); err != nil {
		return err
	}
	if err := checkGeneration(f.ctxSize, f.maxTokens, f.seed, f.threads, f.kvType, f.think); err != nil {
		return err
	}
	if f.parseSpecial && f.noParseSpecial {
		return fmt.Errorf("%w: --parse-special and --no-parse-special contradict each other", errUsage)
	}
	return f.constraint.read()
}

// chatOptions are the sessions' options: special-token text is matched
// in chat mode only with --parse-special, in raw mode unless
// --no-parse-special (llama.cpp's default).
func (f *runFlags) chatOptions() gollm.ChatOptions {
	o := gollm.ChatOptions{SystemPrompt: f.system, Raw: f.raw, ParseSpecial: f.parseSpecial}
	if f.raw {
		o.ParseSpecial = !f.noParseSpecial
	}
	return o
}

// defaultContext is the KV cache size when --ctx is not given: the
// model's context, at most 4096 tokens per sequence, and at most what
// half of the machine's memory holds (capped reports that this last
// limit applied). The numbers stay far from overflowing: seqs is at
// most MaxSequences.
func defaultContext(cfg model.Config, seqs int, kvType string) (n int, capped bool) {
	n = min(cfg.Context, 4096*seqs, maxTokensFlag)
	if n < 1 {
		n = min(4096*seqs, gollm.DefaultContextSize)
	}
	elem := 2
	if kvType == "f32" {
		elem = 4
	}
	perToken := int64(cfg.KVBytesPerToken(elem))
	if total, ok := sysmem.Total(); ok && perToken > 0 && int64(n)*perToken > total/2 {
		return max(int(total/2/perToken)/16*16, 16), true
	}
	return n, false
}

func (f *runFlags) promptList() ([]string, error) {
	prompts := append([]string(nil), f.prompts...)
	if f.promptsFile != "" {
		data, err := readInput("prompts-file", f.promptsFile)
		if err != nil {
			return nil, err
		}
		for line := range strings.Lines(string(data)) {
			if line := strings.TrimSpace(line); line != "" {
				prompts = append(prompts, line)
			}
		}
		if len(prompts) == 0 {
			return nil, fmt.Errorf("%w: --prompts-file %s holds no prompt (only blank lines)", errUsage, f.promptsFile)
		}
	}
	if len(prompts) == 0 {
		// The seed example's questions, then more, one per sequence.
		for i := 0; i < f.seqs; i++ {
			prompts = append(prompts, defaultPrompts[i%len(defaultPrompts)])
		}
	}
	// More sequences than prompts: ask them again, in turn.
	for n := len(prompts); len(prompts) < f.seqs; {
		prompts = append(prompts, prompts[len(prompts)%n])
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
	Sequence     int     `json:"sequence"` // 1-based
	// Finish is the finish reason: eog, length, stop, context, cancelled
	// or error.
	Finish string `json:"finish_reason"`
	// FinishDetail says, for a "context" stop, which limit was reached.
	FinishDetail string `json:"finish_detail,omitempty"`
	// Error is why the prompt got no answer, or why it broke off.
	Error     string  `json:"error,omitempty"`
	Evaluated int     `json:"prompt_tokens_evaluated"`
	Seconds   float64 `json:"seconds"`
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
	// Error is set when the run failed (exit code 1): the first prompt
	// that got no answer, or what stopped the run before any.
	Error string `json:"error,omitempty"`
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// contextStop reports whether err is a generation that ended at a limit
// of the context (its length, or a KV pool too small for it): a finish
// reason, not a failure.
func contextStop(res gollm.Response, err error) bool {
	return res.FinishReason == gollm.FinishContext &&
		(errors.Is(err, gollm.ErrContextOverflow) || errors.Is(err, kvcache.ErrKVFull))
}

// runPrompts answers the prompts with f.seqs sequences working in
// parallel: each sequence takes the next unanswered prompt when it is
// done with one (continuous batching), all packed by one scheduler.
// Every prompt gets an answer or an error; all are printed. The error
// returned is the first failure (a context stop is none).
func runPrompts(ctx context.Context, m *gollm.Model, f runFlags, prompts []string, params sample.Params, stdout, stderr io.Writer) error {
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
	fail := func(err error) error {
		if f.jsonOut {
			writeJSON(stdout, runReport{Sequences: []answer{}, Model: m.Path(), Backend: m.Backend(), Seed: f.seed, Error: err.Error()})
		}
		return err
	}
	c, err := m.NewContext(opts)
	if err != nil {
		return fail(err)
	}
	defer c.Close()

	streamTerm := isTerminal(stderr)
	if streamTerm && !f.jsonOut && !f.noLive && !f.trace {
		live = newLiveView(stderr, f.seqs, f.think == "show")
	}
	var mu2 sync.Mutex // guards next and firstErr
	var firstErr error
	failed := func(err error) {
		mu2.Lock()
		if firstErr == nil {
			firstErr = err
		}
		mu2.Unlock()
	}
	answers := make([]answer, len(prompts))
	next := f.seqs // worker w answers prompt w first, then the next unanswered one
	take := func() int {
		mu2.Lock()
		defer mu2.Unlock()
		next++
		return next - 1
	}
	// ask starts prompt i on a worker's session (nil when it could not
	// start: the answer then holds the error); wait streams it and
	// records the answer.
	type worker struct {
		seq   *gollm.Sequence
		label int // the sequence's number for users, 1-based
	}
	chatOpts := f.chatOptions()
	ask := func(w worker, i int) *gollm.Reply {
		cs := gollm.NewChatSession(w.seq, chatOpts)
		p := params
		p.Seed = uint64(f.seed) + uint64(i)
		r, err := cs.Start(ctx, prompts[i], gollm.PromptOptions{
			MaxTokens: f.maxTokens, Sampling: &p, Grammar: f.constraint.grammar,
			OnChunk: func(ch gollm.Chunk) {
				if live != nil {
					live.add(w.label-1, ch)
					return
				}
				// The labelled stream is for a terminal (--no-live,
				// --trace); into a pipe or a file it would be one
				// quoted line per token, so the answers come only at
				// the end, on stdout.
				if f.jsonOut || !streamTerm || (ch.Kind == chat.Thought && f.think == "hide") {
					return
				}
				mu.Lock()
				streamLine(stderr, w.label, ch)
				mu.Unlock()
			},
		})
		if err != nil {
			err = fmt.Errorf("prompt %d %s on sequence %d: %w", i+1, quote(prompts[i]), w.label, err)
			answers[i] = answer{Prompt: prompts[i], PromptIDs: []int32{}, GeneratedIDs: []int32{}, Sequence: w.label,
				Finish: gollm.FinishError, Error: err.Error()}
			failed(err)
			if live != nil {
				live.done(w.label-1, "no answer")
			}
			return nil
		}
		return r
	}
	wait := func(w worker, i int, r *gollm.Reply, t0 time.Time) {
		res, err := r.Wait()
		secs := time.Since(t0).Seconds()
		a := answer{Prompt: prompts[i], Answer: res.Text, Thoughts: res.Thoughts, PromptIDs: nonNilIDs(res.PromptIDs),
			GeneratedIDs: nonNilIDs(res.GeneratedIDs), TokensPerSec: float64(len(res.GeneratedIDs)) / secs, Sequence: w.label,
			Finish: res.FinishReason, Evaluated: res.PromptTokens - res.ReusedTokens, Seconds: secs}
		switch {
		case err == nil:
		case contextStop(res, err):
			a.FinishDetail = err.Error()
		default:
			if a.Finish == "" {
				a.Finish = gollm.FinishError
			}
			err = fmt.Errorf("prompt %d %s on sequence %d: %w", i+1, quote(prompts[i]), w.label, err)
			a.Error = err.Error()
			failed(err)
		}
		answers[i] = a
		if live != nil {
			live.done(w.label-1, fmt.Sprintf("%s: %d tokens, %.1f tok/s", a.Finish, len(a.GeneratedIDs), a.TokensPerSec))
		}
	}
	workers := make([]worker, min(f.seqs, len(prompts)))
	for k := range workers {
		seq, err := c.Sequence()
		if err != nil {
			return fail(err)
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
			first[k] = ask(w, k)
		}
	})
	var wg sync.WaitGroup
	for k, w := range workers {
		wg.Go(func() {
			r, i, t0 := first[k], k, start
			for {
				if r != nil {
					wait(w, i, r, t0)
				}
				if i = take(); i >= len(prompts) {
					return
				}
				t0 = time.Now()
				r = ask(w, i)
			}
		})
	}
	wg.Wait()
	wall := time.Since(start).Seconds()
	if live != nil {
		live.stop()
	}
	total := 0
	for _, a := range answers {
		total += len(a.GeneratedIDs)
	}
	mu.Lock()
	rep := runReport{Sequences: answers, TotalTPS: float64(total) / wall, Steps: c.Steps(), Model: m.Path(),
		Backend: m.Backend(), Seed: f.seed, WallSeconds: wall, TokensComputed: computed}
	mu.Unlock()
	if rep.Steps > 0 {
		rep.MeanPerStep = float64(rep.TokensComputed) / float64(rep.Steps)
	}
	if firstErr == nil && ctx.Err() != nil {
		firstErr = errors.New("interrupted")
	}
	if firstErr != nil {
		rep.Error = firstErr.Error()
	}
	if f.jsonOut {
		if err := writeJSON(stdout, rep); err != nil {
			return err
		}
		return firstErr
	}
	if !isTerminal(stdout) {
		// A pipe or a file: the answers as plain text, as they are. The
		// summary goes to stderr with -v only: a script reading the
		// answers wants them alone, a failure is still one line on
		// stderr, and the numbers are all in --json. (Someone watching
		// `gollm run | less` has seen each sequence's reason and speed
		// in the live view.)
		writeBlocks(stdout, answers, f.think == "show", len(prompts) > len(workers))
		if f.gpu.verbose {
			writeSummary(stderr, m, answers, rep, total, wall)
		}
		return firstErr
	}
	// Text for a terminal has its control characters escaped.
	show := func(s string) string { return visible(s, true) }
	for _, a := range answers {
		fmt.Fprintf(stdout, "User: %s\n", show(a.Prompt))
		if a.Thoughts != "" && f.think == "show" {
			fmt.Fprintf(stdout, "AI (thinking): %s\n", show(a.Thoughts))
		}
		switch {
		case a.Error != "" && len(a.GeneratedIDs) == 0:
			fmt.Fprintf(stdout, "AI: (no answer: %s)\n\n", a.Finish)
		case a.Finish == gollm.FinishEOG || a.Finish == gollm.FinishStop:
			fmt.Fprintf(stdout, "AI: %s\n\n", show(a.Answer))
		default: // cut short: say so
			fmt.Fprintf(stdout, "AI: %s [%s]\n\n", show(a.Answer), a.Finish)
		}
	}
	writeSummary(stdout, m, answers, rep, total, wall)
	return firstErr
}

// writeSummary prints the per-prompt counts and the totals.
func writeSummary(w io.Writer, m *gollm.Model, answers []answer, rep runReport, total int, wall float64) {
	fmt.Fprintf(w, "── summary (%s, %s)\n", shortPath(m.Path()), m.Backend())
	for i, a := range answers {
		why := a.Finish
		switch {
		case a.Error != "":
			why += ": " + a.Error
		case a.FinishDetail != "":
			why += ": " + a.FinishDetail
		}
		fmt.Fprintf(w, "  prompt %d on sequence %d: %d prompt tokens evaluated, %d generated, %.1f tokens/s (%s)\n",
			i+1, a.Sequence, a.Evaluated, len(a.GeneratedIDs), a.TokensPerSec, why)
	}
	fmt.Fprintf(w, "  total: %d tokens generated in %.2fs = %.1f tokens/s; %d steps, %.1f tokens per step\n",
		total, wall, rep.TotalTPS, rep.Steps, rep.MeanPerStep)
}

// writeBlocks writes the answers for a pipe or a file: one block each, a
// header line naming the sequence and the prompt (shortened to one line),
// then the text as the model wrote it (no quoting, no escapes), so that
// `gollm run … | less` or `> answers.txt` reads like the conversation:
//
//	--- sequence 1: Hi there, how are you? ---
//	<think>
//	The user greets me…
//	</think>
//	Hello! I'm doing well.
//
//	--- sequence 2: How much is 6+6? ---
//	6 + 6 = 12.
//	[length]
//
// The thoughts are in <think> tags, as thinking models write them (with
// thoughts shown). An answer cut short ends with a line holding its finish
// reason in brackets, as in the terminal's "AI: … [length]"; a prompt with
// no answer has "(no answer: error)" (the error is the run's message on
// stderr, and every prompt's is in the summary that -v adds there). When there are more prompts than sequences, the header names
// the prompt too: "--- prompt 3 (sequence 1): … ---".
func writeBlocks(w io.Writer, answers []answer, thoughts, numberPrompts bool) {
	for i, a := range answers {
		if i > 0 {
			io.WriteString(w, "\n")
		}
		if numberPrompts {
			fmt.Fprintf(w, "--- prompt %d (sequence %d): %s ---\n", i+1, a.Sequence, headerText(a.Prompt))
		} else {
			fmt.Fprintf(w, "--- sequence %d: %s ---\n", a.Sequence, headerText(a.Prompt))
		}
		if t := strings.TrimSpace(a.Thoughts); thoughts && t != "" {
			fmt.Fprintf(w, "<think>\n%s\n</think>\n", t)
		}
		switch {
		case a.Error != "" && len(a.GeneratedIDs) == 0:
			fmt.Fprintf(w, "(no answer: %s)\n", a.Finish)
			continue
		case strings.TrimSpace(a.Answer) != "":
			fmt.Fprintf(w, "%s\n", strings.TrimSpace(a.Answer))
		}
		if a.Finish != gollm.FinishEOG && a.Finish != gollm.FinishStop {
			fmt.Fprintf(w, "[%s]\n", a.Finish)
		}
	}
}

// headerMax is how many characters of a prompt a block's header shows.
const headerMax = 60

// headerText is a prompt on one line for a block's header: runs of
// whitespace (newlines too) become one space, control characters are
// escaped, and past headerMax characters it is cut with "…".
func headerText(p string) string {
	p = visible(strings.Join(strings.Fields(p), " "), false)
	if r := []rune(p); len(r) > headerMax {
		return string(r[:headerMax-1]) + "…"
	}
	return p
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
