package main

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gollm/gollm"
	"github.com/gollm/gollm/internal/testdata"
	"github.com/gollm/gollm/synth"
	"github.com/gollm/gollm/tensor"
)

// tinyBench is a `gollm bench` small enough for a test on the tiny model.
func tinyBench(extra ...string) []string {
	args := []string{"bench", "--model", testdata.Path("models", "qwen3-tiny-q6k.gguf"), "--pp", "16", "--tg", "4",
		"--seqs", "1,2,3", "--prompt-len", "5", "--batch-tg", "3", "--reps", "2", "--bw-mib", "8", "--threads", "2"}
	return append(args, extra...)
}

// TestBenchJSON: --json prints exactly one object with every promised
// field, positive finite figures, and ratios that agree with the figures
// they are made of.
func TestBenchJSON(t *testing.T) {
	code, out, errOut := run(tinyBench("--json")...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	// The keys promised to scripts (bench/compare/run.sh reads them).
	var raw map[string]any
	dec := json.NewDecoder(strings.NewReader(out))
	if err := dec.Decode(&raw); err != nil {
		t.Fatalf("stdout is not JSON: %v\n%s", err, out)
	}
	if dec.More() {
		t.Fatalf("stdout holds more than one JSON value:\n%s", out)
	}
	for _, k := range []string{"pp_tokens_per_second", "tg_tokens_per_second", "batched", "peak_rss_bytes",
		"weights_bytes_per_token", "achieved_gbs", "bandwidth_gbs", "bandwidth_fraction", "threads", "model", "backend"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("no %q in %s", k, out)
		}
	}

	var rep benchReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	positive := func(name string, x float64) {
		t.Helper()
		if !(x > 0) || math.IsInf(x, 0) {
			t.Errorf("%s = %g, want a positive finite number", name, x)
		}
	}
	positive("pp_tokens_per_second", rep.PPTokensPerSecond)
	positive("tg_tokens_per_second", rep.TGTokensPerSecond)
	positive("achieved_gbs", rep.AchievedGBs)
	positive("bandwidth_gbs", rep.BandwidthGBs)
	positive("bandwidth_1thread_gbs", rep.Bandwidth1GBs)
	positive("bandwidth_fraction", rep.BandwidthFraction)
	if rep.Threads != 2 || rep.PP != 16 || rep.TG != 4 || rep.Reps != 2 || rep.Statistic != "median" || rep.PromptVocab != 4096 {
		t.Errorf("settings echoed wrong: %+v", rep)
	}
	if len(rep.PPSamples) != 2 || len(rep.TGSamples) != 2 {
		t.Errorf("samples: pp %v, tg %v; want 2 each", rep.PPSamples, rep.TGSamples)
	}
	if m := median(rep.TGSamples); m != rep.TGTokensPerSecond {
		t.Errorf("tg %g is not the median of %v", rep.TGTokensPerSecond, rep.TGSamples)
	}

	m, err := gollm.LoadModel(testdata.Path("models", "qwen3-tiny-q6k.gguf"), gollm.ModelOptions{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	want := m.WeightBytesPerToken()
	m.Close()
	if rep.WeightsBytesPerToken != want || want <= 0 {
		t.Errorf("weights_bytes_per_token %d, the model says %d", rep.WeightsBytesPerToken, want)
	}
	if got := float64(rep.WeightsBytesPerToken) * rep.TGTokensPerSecond / 1e9; math.Abs(got-rep.AchievedGBs) > 1e-9*got {
		t.Errorf("achieved_gbs %g, weights × tg = %g", rep.AchievedGBs, got)
	}
	if got := rep.AchievedGBs / rep.BandwidthGBs; math.Abs(got-rep.BandwidthFraction) > 1e-12 {
		t.Errorf("bandwidth_fraction %g, achieved / bandwidth = %g", rep.BandwidthFraction, got)
	}
	if _, err := os.Stat("/proc/self/status"); err == nil && rep.PeakRSSBytes < 1<<20 {
		t.Errorf("peak_rss_bytes %d on a system with /proc", rep.PeakRSSBytes)
	}

	if len(rep.Batched) != 3 {
		t.Fatalf("batched: %+v, want seqs 1, 2, 3", rep.Batched)
	}
	for i, b := range rep.Batched {
		name := fmt.Sprintf("batched[%d]", i)
		if b.Seqs != i+1 || len(b.Samples) != 2 {
			t.Errorf("%s: %+v", name, b)
		}
		positive(name+".tokens_per_second", b.TokensPerSecond)
		positive(name+".prompt_tokens_per_second", b.PromptTokensPerSecond)
		positive(name+".sequential_tokens_per_second", b.SequentialTokensPerSecond)
		positive(name+".end_to_end_speedup", b.EndToEndSpeedup)
		if r := b.TokensPerSecond / rep.TGTokensPerSecond; math.Abs(r-b.RatioVsOneSequence) > 1e-12 {
			t.Errorf("%s: ratio_vs_one_sequence %g, want %g", name, b.RatioVsOneSequence, r)
		}
		if r := b.TokensPerSecond / b.SequentialTokensPerSecond; math.Abs(r-b.RatioVsSequential) > 1e-12 {
			t.Errorf("%s: ratio_vs_sequential %g, want %g", name, b.RatioVsSequential, r)
		}
		// Each sequence computes batch-tg tokens in the generation phase;
		// a step holds at most one token of each.
		if b.GenSteps < 3 || b.GenSteps > 3*b.Seqs || b.TokensPerStep < 1 || b.TokensPerStep > float64(b.Seqs) {
			t.Errorf("%s: %d steps, %g tokens per step", name, b.GenSteps, b.TokensPerStep)
		}
	}
}

// TestBenchText: without --json the report is a readable table and the
// progress goes to stderr.
func TestBenchText(t *testing.T) {
	code, out, errOut := run(tinyBench("--no-sequential", "--seq", "2")...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{"pp16", "tg4", "tok/s", "memory bandwidth", "peak RSS", "fraction of bandwidth"} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in\n%s", want, out)
		}
	}
	if !strings.Contains(errOut, "bench: pp16 rep 1/2") {
		t.Errorf("no progress on stderr:\n%s", errOut)
	}
	// --no-sequential: the batched row shows dashes for the sequential columns.
	rows := 0
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) > 0 && f[0] == "2" {
			rows++
			if !strings.Contains(line, " - ") {
				t.Errorf("row %q should have no sequential figures", line)
			}
		}
	}
	if rows != 1 {
		t.Errorf("%d rows for --seq 2 in\n%s", rows, out)
	}
}

// TestBenchErrors: bad flags exit 2 with the reason; a missing or broken
// model file exits 1 with a one-line message, never a panic.
func TestBenchErrors(t *testing.T) {
	model := testdata.Path("models", "qwen3-tiny-q6k.gguf")
	for _, args := range [][]string{
		{"bench"},
		{"bench", "--model", model, "--pp", "0"},
		{"bench", "--model", model, "--tg", "-1"},
		{"bench", "--model", model, "--seqs", "1,x"},
		{"bench", "--model", model, "--seqs", "0"},
		{"bench", "--model", model, "--seqs", ""},
		{"bench", "--model", model, "--reps", "0"},
		{"bench", "--model", model, "--prompt-len", "1"},
		{"bench", "--model", model, "--threads", "-2"},
		{"bench", "--model", model, "--bw-mib", "0"},
		{"bench", "--model", model, "--no-such-flag"},
		{"bench", "--model", model, "extra"},
	} {
		code, out, errOut := run(args...)
		if code != 2 || out != "" || !strings.Contains(errOut, "gollm bench") {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want exit 2 and a message", args, code, out, errOut)
		}
	}

	broken := filepath.Join(t.TempDir(), "broken.gguf")
	if err := os.WriteFile(broken, []byte("GGUF but not really"), 0o644); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(t.TempDir(), "missing.gguf")
	for _, path := range []string{missing, broken} {
		code, out, errOut := run("bench", "--model", path, "--json")
		if code != 1 || out != "" || !strings.HasPrefix(errOut, "gollm bench: ") || !strings.Contains(errOut, path) ||
			strings.Count(strings.TrimSpace(errOut), "\n") != 0 || strings.Contains(errOut, "panic") {
			t.Errorf("%s: exit %d, stdout %q, stderr %q; want exit 1 and one line naming the file", path, code, out, errOut)
		}
	}
}

// TestLCGPrompt pins the prompt generator: bench/compare/nlc-bench.mjs
// builds the same prompts with the same check values.
func TestLCGPrompt(t *testing.T) {
	for _, c := range []struct {
		n, vocab int
		seed     uint32
		want     []int32
	}{
		{6, 151936, 1, []int32{16729, 117893, 103297, 126906, 88301, 122049}},
		{4, 151936, 100, []int32{52688, 80731, 9497, 121799}},
		{4, 4096, 2, []int32{447, 226, 3852, 3362}},
	} {
		if got := lcgPrompt(c.n, c.vocab, c.seed); !slices.Equal(got, c.want) {
			t.Errorf("lcgPrompt(%d, %d, %d) = %v, want %v", c.n, c.vocab, c.seed, got, c.want)
		}
	}
}

func TestMedian(t *testing.T) {
	for _, c := range []struct {
		xs   []float64
		want float64
	}{{nil, 0}, {[]float64{3}, 3}, {[]float64{5, 1, 3}, 3}, {[]float64{4, 1, 3, 2}, 2.5}} {
		if got := median(c.xs); got != c.want {
			t.Errorf("median(%v) = %g, want %g", c.xs, got, c.want)
		}
	}
}

// BenchmarkGenerate measures generation through the public API on a
// random-weight model shaped like Qwen3-0.6B with Q6_K matrices (what
// `gollm synth --preset qwen3-0.6b --type q6_k` writes, about 490 MB,
// synthesized into a temporary folder first): N sequences, each holding a
// 128-token prompt, generate 16 tokens together, packed by the scheduler.
// It reports the total generated tok/s. `gollm bench` measures more
// (prompt processing, bandwidth, the sequential ratio); this is the same
// generation phase in `go test -bench` form:
//
//	go test -run XXX -bench Generate ./cmd/gollm
func BenchmarkGenerate(b *testing.B) {
	cfg, err := synth.Preset("qwen3-0.6b")
	if err != nil {
		b.Fatal(err)
	}
	cfg.Type = tensor.Q6_K
	path := filepath.Join(b.TempDir(), "qwen3-0.6b-q6_k.gguf")
	if err := synth.Write(path, cfg, nil); err != nil {
		b.Fatal(err)
	}
	m, err := gollm.LoadModel(path, gollm.ModelOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	const promptLen, gen = 128, 16
	for _, n := range []int{1, 2, 4, 8} {
		b.Run(fmt.Sprintf("seqs=%d", n), func(b *testing.B) {
			bb := &bencher{m: m, f: benchFlags{batchTG: gen}}
			c, err := m.NewContext(gollm.ContextOptions{Sequences: n, ContextSize: n * (promptLen + gen + 16)})
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			seqs := make([]*gollm.Sequence, n)
			prompts := make([][]int32, n) // (sequence, token)
			for k := range seqs {
				if seqs[k], err = c.Sequence(); err != nil {
					b.Fatal(err)
				}
				prompts[k] = lcgPrompt(promptLen, m.Config().Vocab, uint32(100+k))
			}
			if _, err := bb.promptPhase(seqs, prompts); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for range b.N {
				if _, _, err := bb.genPhase(c, seqs, prompts, gen); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(n*gen*b.N)/b.Elapsed().Seconds(), "tok/s")
		})
	}
}
