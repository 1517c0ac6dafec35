package gollm

import (
	"context"
	"runtime"
	"testing"
)

// BenchmarkDecodeSteps generates with two sequences on the tiny model and
// reports the heap allocations of the whole engine path (planner, loop,
// queues, the callers' side) per decode step.
func BenchmarkDecodeSteps(b *testing.B) {
	m := loadFixture(b, "qwen3-tiny-q6k")
	c := newContext(b, m, ContextOptions{Sequences: 2, ContextSize: 2048})
	s1, _ := c.Sequence()
	s2, _ := c.Sequence()
	const tokens = 256
	gen := func() {
		var p [2]*Pending
		c.Together(func() {
			p[0], _ = s1.Start(context.Background(), []int32{1, 2, 3}, GenerateOptions{MaxTokens: tokens, Sampling: &greedy, IgnoreEOG: true})
			p[1], _ = s2.Start(context.Background(), []int32{4, 5, 6}, GenerateOptions{MaxTokens: tokens, Sampling: &greedy, IgnoreEOG: true})
		})
		p[0].Wait()
		p[1].Wait()
	}
	gen() // warm up
	var ms0, ms1 runtime.MemStats
	b.ResetTimer()
	steps0 := c.Steps()
	runtime.ReadMemStats(&ms0)
	for range b.N {
		gen()
	}
	runtime.ReadMemStats(&ms1)
	steps := c.Steps() - steps0
	b.ReportMetric(float64(ms1.Mallocs-ms0.Mallocs)/float64(steps), "allocs/step")
	b.ReportMetric(float64(ms1.TotalAlloc-ms0.TotalAlloc)/float64(steps), "B/step")
}

// TestDecodeStepsDoNotAllocate: once a request runs, a decode step costs
// no heap allocation anywhere on the engine path. Two generations that
// differ only in length (32 and 160 tokens, two sequences) must differ by
// no more than the geometric growth of the slices that hold what was
// generated (each doubles about log2(160/32) ≈ 2-3 times more): measured
// 72 and 84 allocations, 128 steps apart. One allocation per step would
// add 128.
func TestDecodeStepsDoNotAllocate(t *testing.T) {
	m := loadFixture(t, "qwen3-tiny-q6k")
	c := newContext(t, m, ContextOptions{Sequences: 2, ContextSize: 1024})
	s1, _ := c.Sequence()
	s2, _ := c.Sequence()
	gen := func(tokens int) (allocs int64, steps int) {
		var ms0, ms1 runtime.MemStats
		steps0 := c.Steps()
		runtime.ReadMemStats(&ms0)
		var p [2]*Pending
		c.Together(func() {
			p[0], _ = s1.Start(context.Background(), []int32{1, 2, 3}, GenerateOptions{MaxTokens: tokens, Sampling: &greedy, IgnoreEOG: true})
			p[1], _ = s2.Start(context.Background(), []int32{4, 5, 6}, GenerateOptions{MaxTokens: tokens, Sampling: &greedy, IgnoreEOG: true})
		})
		if _, err := p[0].Wait(); err != nil {
			t.Fatal(err)
		}
		if _, err := p[1].Wait(); err != nil {
			t.Fatal(err)
		}
		runtime.ReadMemStats(&ms1)
		return int64(ms1.Mallocs - ms0.Mallocs), c.Steps() - steps0
	}
	gen(160) // warm up: the loop's buffers reach their size
	short, shortSteps := gen(32)
	long, longSteps := gen(160)
	t.Logf("32 tokens: %d allocations in %d steps; 160 tokens: %d in %d", short, shortSteps, long, longSteps)
	if extra := long - short; extra > 24 {
		t.Errorf("%d more allocations for %d more decode steps: a decode step allocates", extra, longSteps-shortSteps)
	}
}
