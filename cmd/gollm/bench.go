package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gollm/gollm"
	"github.com/gollm/gollm/internal/sysmem"
	"github.com/gollm/gollm/kernels"
	"github.com/gollm/gollm/sample"
	"golang.org/x/sync/errgroup"
)

func init() {
	register(command{name: "bench", summary: "measure prompt, generation and batched speed, and memory bandwidth", run: runBench})
}

const benchHelp = `Usage: gollm bench --model FILE [--threads T] [--pp 512] [--tg 128]
                   [--seqs 1,2,4,8] [--prompt-len 128] [--batch-tg 64]
                   [--reps 3] [--json]

Measures, on random token ids (the same every run):

  pp         prompt processing: one sequence evaluates a --pp token prompt,
             in one forward step (like llama-bench's pp512).
  tg         generation: one sequence generates --tg tokens from an empty
             cache, greedy, end-of-generation ignored (like llama-bench's tg128).
  batched    N sequences (each N of --seqs) each hold their own --prompt-len
             token prompt, then generate --batch-tg tokens together, packed by
             the scheduler into shared forward steps. tok/s is all generated
             tokens / wall time of the generation phase; the prompt phase is
             timed apart (like llama-batched-bench's S_TG and S_PP).
  sequential the same N prompts run one after another on one sequence;
             "x seq" is batched tok/s / sequential tok/s (generation phases),
             "e2e" the same for wall time including the prompts.

and reports the weight bytes one forward step reads, the GB/s that makes
at the tg speed, this machine's memory bandwidth (a stream read of a
--bw-mib buffer, 1 and --threads threads, best of 3 passes) and the fraction
of it one-sequence generation reaches: generation of one sequence cannot
beat bandwidth / weight bytes per token.

Every figure is the median of --reps repetitions, after a warm-up run
(which also pages the weights in); the prompt phases of the batched and
sequential runs are timed once per context. Peak RSS is the process's
VmHWM from /proc/self/status, read before the bandwidth test: it counts
the weight pages mapped from the file that were touched as well as heap
and KV cache. Each context is freed (and the heap returned to the system)
before the next is made, so it is the peak of the largest one.

Prompt ids come from a 32-bit linear congruential generator
(x = 1664525*x + 1013904223 mod 2^32, id = (x>>8) mod vocab) seeded per
prompt, so other programs (bench/compare/nlc-bench.mjs) build the same
prompts: seed 1 is the pp prompt, seed 2 the tg start token, seed 100+k
the prompt of sequence k.

Flags:
`

// benchFlags holds the bench command's settings.
type benchFlags struct {
	model                    string
	threads, pp, tg          int
	seqs                     []int
	promptLen, batchTG, reps int
	batchSize, bwMiB         int
	jsonOut, noSequential    bool
	kvType                   string
}

// benchReport is what `gollm bench --json` prints.
type benchReport struct {
	Model       string `json:"model"`
	Backend     string `json:"backend"`
	Threads     int    `json:"threads"`
	Statistic   string `json:"statistic"` // how repetitions are combined: "median"
	Reps        int    `json:"reps"`
	PromptVocab int    `json:"prompt_vocab"` // ids are drawn from [0, prompt_vocab)

	PP                int       `json:"pp"`
	PPTokensPerSecond float64   `json:"pp_tokens_per_second"`
	PPSamples         []float64 `json:"pp_samples"` // tok/s of each repetition
	TG                int       `json:"tg"`
	TGTokensPerSecond float64   `json:"tg_tokens_per_second"`
	TGSamples         []float64 `json:"tg_samples"`

	PromptLen int             `json:"prompt_len"`
	BatchTG   int             `json:"batched_tg"`
	BatchSize int             `json:"batch_size"`
	Batched   []batchedResult `json:"batched"`

	PeakRSSBytes         int64   `json:"peak_rss_bytes"`
	WeightsBytesPerToken int64   `json:"weights_bytes_per_token"`
	AchievedGBs          float64 `json:"achieved_gbs"`          // weights_bytes_per_token × tg_tokens_per_second
	BandwidthGBs         float64 `json:"bandwidth_gbs"`         // stream read, --threads threads
	Bandwidth1GBs        float64 `json:"bandwidth_1thread_gbs"` // stream read, 1 thread
	BandwidthFraction    float64 `json:"bandwidth_fraction"`    // achieved_gbs / bandwidth_gbs
	BandwidthBufferBytes int64   `json:"bandwidth_buffer_bytes"`
	Seconds              float64 `json:"seconds"` // the whole bench
}

// batchedResult is one N of --seqs.
type batchedResult struct {
	Seqs int `json:"seqs"`
	// TokensPerSecond: N × batched_tg generated tokens / wall time of the
	// generation phase.
	TokensPerSecond float64   `json:"tokens_per_second"`
	Samples         []float64 `json:"samples"`
	// PromptTokensPerSecond: N × (prompt_len-1) prompt tokens / wall time
	// of the prompt phase (all N prompts evaluated together).
	PromptTokensPerSecond float64 `json:"prompt_tokens_per_second"`
	// GenSteps is the number of forward steps of the generation phase and
	// TokensPerStep the tokens they held on average (N when every step
	// packed every sequence).
	GenSteps      int     `json:"gen_steps"`
	TokensPerStep float64 `json:"tokens_per_step"`
	// RatioVsOneSequence: tokens_per_second / tg_tokens_per_second.
	RatioVsOneSequence float64 `json:"ratio_vs_one_sequence"`
	// The same N prompts run one after another on one sequence (absent
	// with --no-sequential): generation tok/s, and batched ÷ sequential
	// for the generation phase and for the wall time of prompt +
	// generation (end to end).
	SequentialTokensPerSecond float64 `json:"sequential_tokens_per_second,omitempty"`
	RatioVsSequential         float64 `json:"ratio_vs_sequential,omitempty"`
	EndToEndSpeedup           float64 `json:"end_to_end_speedup,omitempty"`

	wall float64 // median seconds of prompt + generation phase
}

// intList is a comma-separated list of positive integers (--seqs 1,2,4,8).
type intList []int

func (l *intList) Type() string { return "list" }

func (l *intList) String() string {
	s := make([]string, len(*l))
	for i, n := range *l {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ",")
}

func (l *intList) Set(v string) error {
	var out []int
	for _, f := range strings.Split(v, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 || n > gollm.MaxSequences {
			return fmt.Errorf("%s is not a sequence count from 1 to %d", quote(f), gollm.MaxSequences)
		}
		out = append(out, n)
	}
	*l = out
	return nil
}

func runBench(args []string, stdout, stderr io.Writer) error {
	f := benchFlags{seqs: []int{1, 2, 4, 8}}
	fs := newFlags("bench", stderr)
	fs.Usage = func() { printHelp(fs, benchHelp) }
	fs.StringVar(&f.model, "model", "", "GGUF model `file`, or hf:REPO:QUANT (required)")
	threads := threadsFlag(fs)
	fs.IntVar(&f.pp, "pp", 512, "prompt tokens for the prompt-processing test")
	fs.IntVar(&f.tg, "tg", 128, "tokens generated by one sequence for the generation test")
	fs.Var((*intList)(&f.seqs), "seqs", "comma-separated sequence counts for the batched test")
	fs.Var((*intList)(&f.seqs), "seq", "same as --seqs")
	fs.IntVar(&f.promptLen, "prompt-len", 128, "prompt tokens of each sequence in the batched test")
	fs.IntVar(&f.batchTG, "batch-tg", 64, "tokens each sequence generates in the batched test")
	fs.IntVar(&f.reps, "reps", 3, "repetitions of each measurement (the median is reported)")
	fs.IntVar(&f.batchSize, "batch-size", 512, "most tokens per forward step (the pp test uses at least --pp)")
	fs.IntVar(&f.bwMiB, "bw-mib", 1024, "size of the bandwidth test's buffer in MiB (keep it well above the caches)")
	fs.StringVar(&f.kvType, "kv-type", "f16", "KV cache element type: f16 or f32")
	fs.BoolVar(&f.noSequential, "no-sequential", false, "skip running the batched prompts one after another")
	fs.BoolVar(&f.jsonOut, "json", false, "print one JSON object with the results")
	var gpu gpuFlags
	gpu.register(fs)
	if err := parseArgs(fs, args); err != nil {
		return err
	}
	f.threads = *threads
	if err := f.check(); err != nil {
		return err
	}
	if f.threads == 0 {
		f.threads = kernels.DefaultThreads() // GOMAXPROCS: the CPUs this process may use
	}
	mo := gollm.ModelOptions{Threads: f.threads}
	if err := gpu.apply(&mo, stderr); err != nil {
		return err
	}
	start := time.Now()
	path, err := modelPath(f.model)
	if err != nil {
		return err
	}
	m, err := gollm.LoadModel(path, mo)
	if err != nil {
		return err
	}
	defer m.Close()
	b := &bencher{m: m, f: f, log: stderr}
	rep, err := b.run()
	if err != nil {
		return err
	}
	rep.Seconds = time.Since(start).Seconds()
	if f.jsonOut {
		enc := json.NewEncoder(stdout)
		enc.SetEscapeHTML(false)
		return enc.Encode(rep)
	}
	printBench(stdout, rep)
	return nil
}

// check validates the flags before anything is loaded or allocated.
func (f *benchFlags) check() error {
	if f.model == "" {
		return fmt.Errorf("%w: --model FILE is required (see gollm bench -h)", errUsage)
	}
	for _, c := range []struct {
		name      string
		v, lo, hi int
	}{
		{"pp", f.pp, 1, maxTokensFlag}, {"tg", f.tg, 1, maxTokensFlag}, {"batch-tg", f.batchTG, 1, maxTokensFlag},
		{"prompt-len", f.promptLen, 2, maxTokensFlag}, {"batch-size", f.batchSize, 1, maxTokensFlag},
		{"reps", f.reps, 1, 1000}, {"bw-mib", f.bwMiB, 1, 1 << 20},
	} {
		if err := checkRange(c.name, int64(c.v), int64(c.lo), int64(c.hi)); err != nil {
			return err
		}
	}
	if err := checkThreads(f.threads); err != nil {
		return err
	}
	if err := checkKVType(f.kvType); err != nil {
		return err
	}
	if len(f.seqs) == 0 {
		return fmt.Errorf("%w: --seqs needs at least one count", errUsage)
	}
	if n := slices.Max(f.seqs); n*(f.promptLen+f.batchTG+16) > maxTokensFlag {
		return fmt.Errorf("%w: the batched test with %d sequences of --prompt-len %d and --batch-tg %d needs more than %d tokens of context",
			errUsage, n, f.promptLen, f.batchTG, maxTokensFlag)
	}
	if total, ok := sysmem.Total(); ok && int64(f.bwMiB)<<20 > total/2 {
		return fmt.Errorf("%w: --bw-mib %d is more than half of this machine's %d MiB of memory", errUsage, f.bwMiB, total>>20)
	}
	return nil
}

// bencher runs the measurements on one loaded model.
type bencher struct {
	m     *gollm.Model
	f     benchFlags
	log   io.Writer // progress lines
	vocab int       // prompt ids are drawn from [0, vocab)
}

// greedy always takes the most likely token: sampling then costs one pass
// over the logits, as in llama-bench.
var greedy = sample.GreedyParams()

func (b *bencher) run() (benchReport, error) {
	f := b.f
	b.vocab = min(b.m.Tokenizer().Vocab(), b.m.Config().Vocab)
	rep := benchReport{Model: b.m.Path(), Backend: b.m.Backend(), Threads: f.threads, Statistic: "median", Reps: f.reps,
		PromptVocab: b.vocab, PP: f.pp, TG: f.tg, PromptLen: f.promptLen, BatchTG: f.batchTG, BatchSize: f.batchSize,
		WeightsBytesPerToken: b.m.WeightBytesPerToken()}

	// Prompt processing and one-sequence generation share a context with
	// one sequence, big enough for either. Every context here turns
	// prefix caching off: the bench evaluates the same prompt again for
	// each repetition, and with the cache on the second pp128 would find
	// all 8 of its 16-token blocks cached and evaluate nothing (a
	// "2.5× faster" prompt phase that measures a hash lookup).
	c, err := b.m.NewContext(gollm.ContextOptions{Sequences: 1, BatchSize: max(f.pp, f.batchSize),
		ContextSize: max(f.pp, f.tg) + 16, KVType: f.kvType, DisablePrefixCache: true})
	if err != nil {
		return rep, err
	}
	seq, err := c.Sequence()
	if err != nil {
		c.Close()
		return rep, err
	}
	ppIDs := lcgPrompt(f.pp, b.vocab, 1)
	start := lcgPrompt(1, b.vocab, 2)
	b.logf("warm-up")
	if _, err := b.timePP(seq, ppIDs); err != nil {
		c.Close()
		return rep, err
	}
	if _, err := b.timeTG(seq, start, min(f.tg, 8)); err != nil {
		c.Close()
		return rep, err
	}
	for r := range f.reps {
		d, err := b.timePP(seq, ppIDs)
		if err != nil {
			c.Close()
			return rep, err
		}
		rep.PPSamples = append(rep.PPSamples, float64(f.pp)/d.Seconds())
		b.logf("pp%d rep %d/%d: %.2f tok/s", f.pp, r+1, f.reps, rep.PPSamples[r])
	}
	for r := range f.reps {
		d, err := b.timeTG(seq, start, f.tg)
		if err != nil {
			c.Close()
			return rep, err
		}
		rep.TGSamples = append(rep.TGSamples, float64(f.tg)/d.Seconds())
		b.logf("tg%d rep %d/%d: %.2f tok/s", f.tg, r+1, f.reps, rep.TGSamples[r])
	}
	closeContext(c)
	rep.PPTokensPerSecond, rep.TGTokensPerSecond = median(rep.PPSamples), median(rep.TGSamples)
	rep.AchievedGBs = float64(rep.WeightsBytesPerToken) * rep.TGTokensPerSecond / 1e9

	// Batched generation, and the same prompts one after another.
	// The prompts are made once their context exists: a context that
	// the machine cannot hold is refused before its prompts are built.
	var seqRun sequentialRun
	if !f.noSequential {
		if seqRun, err = b.sequential(slices.Max(f.seqs)); err != nil {
			return rep, err
		}
	}
	for _, n := range f.seqs {
		res, err := b.batched(n)
		if err != nil {
			return rep, err
		}
		res.RatioVsOneSequence = res.TokensPerSecond / rep.TGTokensPerSecond
		if !f.noSequential {
			res.SequentialTokensPerSecond = float64(n*f.batchTG) / sum(seqRun.gen[:n])
			res.RatioVsSequential = res.TokensPerSecond / res.SequentialTokensPerSecond
			res.EndToEndSpeedup = (sum(seqRun.prompt[:n]) + sum(seqRun.gen[:n])) / res.wall
		}
		rep.Batched = append(rep.Batched, res)
	}

	// VmHWM before the bandwidth test, whose buffer would count otherwise.
	rep.PeakRSSBytes = peakRSS()
	b.logf("memory bandwidth (%d MiB buffer)", f.bwMiB)
	buf := bandwidthBuffer(f.bwMiB << 20)
	rep.BandwidthBufferBytes = int64(len(buf))
	rep.Bandwidth1GBs = streamBandwidth(buf, 1) / 1e9
	rep.BandwidthGBs = rep.Bandwidth1GBs
	if f.threads > 1 {
		rep.BandwidthGBs = streamBandwidth(buf, f.threads) / 1e9
	}
	rep.BandwidthFraction = rep.AchievedGBs / rep.BandwidthGBs
	return rep, nil
}

// closeContext closes c and hands its memory back to the system, so that
// the next context's peak RSS does not include this one's garbage.
func closeContext(c *gollm.Context) {
	c.Close()
	runtime.GC()
	debug.FreeOSMemory()
}

func (b *bencher) logf(format string, args ...any) {
	fmt.Fprintf(b.log, "bench: "+format+"\n", args...)
}

// timePP empties the sequence and times the evaluation of ids. No logits
// are computed, as with node-llama-cpp's evaluateWithoutGeneratingNewTokens
// (llama-bench computes the last token's: one row, a negligible cost).
func (b *bencher) timePP(seq *gollm.Sequence, ids []int32) (time.Duration, error) {
	if err := seq.Clear(); err != nil {
		return 0, err
	}
	t0 := time.Now()
	err := seq.Evaluate(context.Background(), ids)
	return time.Since(t0), err
}

// timeTG empties the sequence and times the generation of n tokens from
// the one-token prompt start: n forward steps, each yielding one token.
func (b *bencher) timeTG(seq *gollm.Sequence, start []int32, n int) (time.Duration, error) {
	if err := seq.Clear(); err != nil {
		return 0, err
	}
	t0 := time.Now()
	g, err := seq.Generate(context.Background(), start, gollm.GenerateOptions{MaxTokens: n, Sampling: &greedy, IgnoreEOG: true})
	d := time.Since(t0)
	if err == nil && len(g.Tokens) != n {
		err = fmt.Errorf("generated %d tokens instead of %d (%s)", len(g.Tokens), n, g.FinishReason)
	}
	return d, err
}

// together runs fn(k, seqs[k]) for every sequence at once, one goroutine
// each, and returns the wall time until all are done. The goroutines are
// started first and then released together, so that their requests reach
// the scheduler at the same time and goroutine start-up is not timed.
func together(seqs []*gollm.Sequence, fn func(k int, s *gollm.Sequence) error) (time.Duration, error) {
	var g errgroup.Group
	var ready sync.WaitGroup
	start := make(chan struct{})
	ready.Add(len(seqs))
	for k, s := range seqs {
		g.Go(func() error {
			ready.Done()
			<-start
			return fn(k, s)
		})
	}
	ready.Wait()
	t0 := time.Now()
	close(start)
	err := g.Wait()
	return time.Since(t0), err
}

// promptPhase empties the sequences and has each evaluate its prompt but
// the last token, all at once.
func (b *bencher) promptPhase(seqs []*gollm.Sequence, prompts [][]int32) (time.Duration, error) {
	for _, s := range seqs {
		if err := s.Clear(); err != nil {
			return 0, err
		}
	}
	return together(seqs, func(k int, s *gollm.Sequence) error {
		return s.Evaluate(context.Background(), prompts[k][:len(prompts[k])-1])
	})
}

// genPhase has every sequence, holding its prompt but the last token,
// generate n tokens, all at once, and returns the wall time and the number
// of forward steps. The first step of each sequence evaluates that last
// prompt token and yields the first new token, as in llama-batched-bench,
// so each sequence computes n tokens and yields n. A sequence that holds
// more (an earlier genPhase's tokens) is cut back to the prompt by
// Generate, so genPhase can be repeated without a new prompt phase.
func (b *bencher) genPhase(c *gollm.Context, seqs []*gollm.Sequence, prompts [][]int32, n int) (time.Duration, int, error) {
	s0 := c.Steps()
	d, err := together(seqs, func(k int, s *gollm.Sequence) error {
		p := prompts[k]
		r, err := s.Generate(context.Background(), p, gollm.GenerateOptions{MaxTokens: n, Sampling: &greedy, IgnoreEOG: true})
		if err == nil && (len(r.Tokens) != n || r.ReusedTokens != len(p)-1) {
			err = fmt.Errorf("sequence %d generated %d tokens instead of %d, reusing %d prompt tokens (%s)",
				k+1, len(r.Tokens), n, r.ReusedTokens, r.FinishReason)
		}
		return err
	})
	return d, c.Steps() - s0, err
}

// batchPrompt is the prompt of sequence k in the batched and sequential
// tests.
func (b *bencher) batchPrompt(k int) []int32 { return lcgPrompt(b.f.promptLen, b.vocab, uint32(100+k)) }

// batched measures n sequences generating together: one prompt phase
// (which also warms the context's buffers), then --reps generation
// phases.
func (b *bencher) batched(n int) (batchedResult, error) {
	f := b.f
	res := batchedResult{Seqs: n}
	c, err := b.m.NewContext(gollm.ContextOptions{Sequences: n, BatchSize: f.batchSize,
		ContextSize: n * (f.promptLen + f.batchTG + 16), KVType: f.kvType, DisablePrefixCache: true})
	if err != nil {
		return res, err
	}
	defer closeContext(c)
	seqs := make([]*gollm.Sequence, n)
	prompts := make([][]int32, n) // (sequence, prompt_len)
	for k := range seqs {
		if seqs[k], err = c.Sequence(); err != nil {
			return res, err
		}
		prompts[k] = b.batchPrompt(k)
	}
	pd, err := b.promptPhase(seqs, prompts)
	if err != nil {
		return res, err
	}
	res.PromptTokensPerSecond = float64(n*(f.promptLen-1)) / pd.Seconds()
	var gens, steps []float64
	for r := range f.reps {
		gd, st, err := b.genPhase(c, seqs, prompts, f.batchTG)
		if err != nil {
			return res, err
		}
		gens = append(gens, gd.Seconds())
		steps = append(steps, float64(st))
		res.Samples = append(res.Samples, float64(n*f.batchTG)/gd.Seconds())
		b.logf("batched %d seqs rep %d/%d: %.2f tok/s generating in %d steps (prompt phase %.2f tok/s)", n, r+1, f.reps,
			res.Samples[r], st, res.PromptTokensPerSecond)
	}
	res.TokensPerSecond = float64(n*f.batchTG) / median(gens)
	res.GenSteps = int(median(steps))
	res.TokensPerStep = float64(n*f.batchTG) / median(steps)
	res.wall = pd.Seconds() + median(gens)
	return res, nil
}

// sequentialRun is the prompts run one after another on one sequence: the
// seconds of each prompt's prompt phase and (median) generation phase.
type sequentialRun struct {
	prompt, gen []float64 // (prompt)
}

// sequential runs n prompts one after another on one sequence: for each,
// a prompt phase, then --reps generation phases. The first N of them are
// "the same N prompts" as the batched run with N sequences (each prompt
// costs the same whatever N is, so one series serves every N).
func (b *bencher) sequential(n int) (sequentialRun, error) {
	f := b.f
	var run sequentialRun
	c, err := b.m.NewContext(gollm.ContextOptions{Sequences: 1, BatchSize: f.batchSize,
		ContextSize: f.promptLen + f.batchTG + 16, KVType: f.kvType, DisablePrefixCache: true})
	if err != nil {
		return run, err
	}
	defer closeContext(c)
	seq, err := c.Sequence()
	if err != nil {
		return run, err
	}
	one := []*gollm.Sequence{seq}
	for k := range n {
		prompt := [][]int32{b.batchPrompt(k)}
		pd, err := b.promptPhase(one, prompt)
		if err != nil {
			return run, err
		}
		var gens []float64
		for range f.reps {
			gd, _, err := b.genPhase(c, one, prompt, f.batchTG)
			if err != nil {
				return run, err
			}
			gens = append(gens, gd.Seconds())
		}
		run.prompt = append(run.prompt, pd.Seconds())
		run.gen = append(run.gen, median(gens))
		b.logf("sequential prompt %d/%d: %.2f tok/s generating (prompt phase %.2f tok/s)", k+1, n,
			float64(f.batchTG)/median(gens), float64(f.promptLen-1)/pd.Seconds())
	}
	return run, nil
}

// lcgPrompt returns n token ids in [0, vocab) from a 32-bit linear
// congruential generator (Numerical Recipes' constants) seeded with seed,
// dropping the 8 low bits, which repeat with short periods. It is simple
// enough to write again in any language, so that other programs can
// evaluate the very same prompts (bench/compare/nlc-bench.mjs does).
func lcgPrompt(n, vocab int, seed uint32) []int32 {
	ids := make([]int32, n) // (token)
	x := seed
	for i := range ids {
		x = x*1664525 + 1013904223 // mod 2^32 by overflow
		ids[i] = int32((x >> 8) % uint32(vocab))
	}
	return ids
}

// median of xs (the mean of the middle two when len(xs) is even).
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(xs))
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func sum(xs []float64) float64 {
	t := 0.0
	for _, x := range xs {
		t += x
	}
	return t
}

// peakRSS is the process's peak resident set size in bytes: VmHWM ("high
// water mark") of /proc/self/status, which Linux reports in kB. It counts
// anonymous memory (heap, KV cache, scratch) and the pages of mapped files
// that were touched (the weights). 0 where there is no /proc.
func peakRSS() int64 {
	fh, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer fh.Close()
	sc := bufio.NewScanner(fh)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				return 0
			}
			return kb << 10
		}
	}
	return 0
}

// bandwidthBuffer returns n bytes, every page written, so that reading it
// really goes to memory (untouched pages would all read the kernel's one
// shared zero page, from the cache).
func bandwidthBuffer(n int) []byte {
	buf := make([]byte, n)
	for i := range min(n, 1<<20) {
		buf[i] = byte(i * 7)
	}
	for done := min(n, 1<<20); done < n; done *= 2 {
		copy(buf[done:], buf[:done])
	}
	return buf
}

// streamBandwidth measures bytes/s of kernels.StreamRead over buf, split in
// 1 MiB chunks among threads workers: the best of three passes after one
// warm-up pass. The best pass is the machine's ceiling; the others only
// add the noise of whatever else was running.
func streamBandwidth(buf []byte, threads int) float64 {
	p := kernels.NewPool(threads)
	defer p.Close()
	const chunk = 1 << 20
	chunks := max(1, len(buf)/chunk)
	size := min(len(buf), chunks*chunk)
	var sums [64]uint64 // checksums, so the reads cannot be optimised away
	fn := func(lo, hi int) { sums[lo%64] += kernels.StreamRead(buf[lo*chunk : min(hi*chunk, size)]) }
	best := 0.0
	for pass := range 4 {
		t0 := time.Now()
		p.For(chunks, fn)
		if bw := float64(size) / time.Since(t0).Seconds(); pass > 0 && bw > best {
			best = bw
		}
	}
	return best
}

// printBench writes the human-readable report.
func printBench(w io.Writer, r benchReport) {
	fmt.Fprintf(w, "gollm bench: %s\n", r.Model)
	fmt.Fprintf(w, "  backend %s; median of %d repetitions after a warm-up\n\n", r.Backend, r.Reps)
	fmt.Fprintf(w, "  prompt processing  pp%-5d %9.2f tok/s\n", r.PP, r.PPTokensPerSecond)
	fmt.Fprintf(w, "  generation         tg%-5d %9.2f tok/s\n\n", r.TG, r.TGTokensPerSecond)
	fmt.Fprintf(w, "  batched generation: each sequence holds a %d-token prompt, then generates %d tokens;\n", r.PromptLen, r.BatchTG)
	fmt.Fprintf(w, "  tok/s counts all sequences' generated tokens over the generation phase only\n")
	fmt.Fprintf(w, "  (x1 seq: / tg tok/s; x seq: / the same prompts run one after another; e2e: the same for prompt + generation)\n\n")
	fmt.Fprintf(w, "    seqs     tok/s   x1 seq   tok/step   sequential tok/s   x seq    e2e   prompt tok/s\n")
	for _, b := range r.Batched {
		seq := "        -        -      -"
		if b.SequentialTokensPerSecond > 0 {
			seq = fmt.Sprintf("%9.2f  %7.2f  %5.2f", b.SequentialTokensPerSecond, b.RatioVsSequential, b.EndToEndSpeedup)
		}
		fmt.Fprintf(w, "    %4d  %8.2f  %7.2f  %9.2f          %s  %13.2f\n", b.Seqs, b.TokensPerSecond, b.RatioVsOneSequence,
			b.TokensPerStep, seq, b.PromptTokensPerSecond)
	}
	fmt.Fprintf(w, "\n  weights read per token   %.1f MB\n", float64(r.WeightsBytesPerToken)/1e6)
	fmt.Fprintf(w, "  achieved at tg speed     %.2f GB/s\n", r.AchievedGBs)
	fmt.Fprintf(w, "  memory bandwidth         %.2f GB/s with %d threads, %.2f GB/s with 1 (stream read of %d MiB)\n",
		r.BandwidthGBs, r.Threads, r.Bandwidth1GBs, r.BandwidthBufferBytes>>20)
	fmt.Fprintf(w, "  fraction of bandwidth    %.0f%%\n", 100*r.BandwidthFraction)
	fmt.Fprintf(w, "  peak RSS                 %.1f MiB (VmHWM, before the bandwidth test; includes the touched weight pages)\n",
		float64(r.PeakRSSBytes)/(1<<20))
}
