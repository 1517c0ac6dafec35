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
