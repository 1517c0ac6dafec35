package kernels

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestPoolCoversOnce: every index is visited exactly once, in contiguous
// chunks, for many sizes including n < threads and n = 0.
func TestPoolCoversOnce(t *testing.T) {
	for _, threads := range []int{1, 2, 3, 8} {
		p := NewPool(threads)
		if p.Threads() != threads {
			t.Fatalf("Threads() = %d, want %d", p.Threads(), threads)
		}
		for _, n := range []int{0, 1, 2, 3, 7, 8, 9, 100, 1001} {
			for _, grain := range []int{1, 4, 16} {
				seen := make([]int32, n)
				var chunks atomic.Int32
				p.ForGrain(n, grain, func(lo, hi int) {
					chunks.Add(1)
					if lo >= hi {
						t.Errorf("empty chunk [%d,%d)", lo, hi)
					}
					if lo%grain != 0 {
						t.Errorf("chunk start %d not a multiple of %d", lo, grain)
					}
					for i := lo; i < hi; i++ {
						atomic.AddInt32(&seen[i], 1)
					}
				})
				for i, c := range seen {
					if c != 1 {
						t.Fatalf("threads=%d n=%d grain=%d: index %d visited %d times", threads, n, grain, i, c)
					}
				}
				if int(chunks.Load()) > threads {
					t.Fatalf("%d chunks for %d threads", chunks.Load(), threads)
				}
			}
		}
		p.Close()
		p.Close() // idempotent
		ran := 0
		p.For(5, func(lo, hi int) { ran += hi - lo })
		if ran != 5 {
			t.Fatalf("For after Close ran %d of 5", ran)
		}
	}
}

// TestPoolConcurrent: For from many goroutines at once, and nested inside
// a loop body, never deadlocks and still covers everything.
func TestPoolConcurrent(t *testing.T) {
	p := NewPool(3)
	defer p.Close()
	var wg sync.WaitGroup
	var total atomic.Int64
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := 0; k < 200; k++ {
				p.For(10, func(lo, hi int) {
					p.For(hi-lo, func(a, b int) { total.Add(int64(b - a)) }) // nested
				})
			}
		}()
	}
	wg.Wait()
	if got := total.Load(); got != 8*200*10 {
		t.Fatalf("covered %d, want %d", got, 8*200*10)
	}
}

// TestPoolNoAllocs: a steady-state For allocates nothing.
func TestPoolNoAllocs(t *testing.T) {
	p := NewPool(2)
	defer p.Close()
	sink := make([]int64, 1000)
	fn := func(lo, hi int) {
		for i := lo; i < hi; i++ {
			sink[i]++ // each index belongs to one chunk
		}
	}
	if a := testing.AllocsPerRun(100, func() { p.For(1000, fn) }); a != 0 {
		t.Fatalf("For allocates %v times per call", a)
	}
}

// BenchmarkPoolFor: the cost of one For with almost no work, which a
// forward step pays a few hundred times (once per operation).
func BenchmarkPoolFor(b *testing.B) {
	for _, threads := range []int{1, 2} {
		b.Run(fmt.Sprintf("t%d", threads), func(b *testing.B) {
			p := NewPool(threads)
			defer p.Close()
			var sink [2]int
			fn := func(lo, hi int) { sink[lo&1] += hi }
			b.ReportAllocs()
			for range b.N {
				p.For(2, fn)
			}
		})
	}
}

// BenchmarkPoolForGaps: For calls separated by 20 µs of work on the
// calling goroutine alone (as between the operations of a step), so the
// helper has time to go to sleep; ns/op minus the gap is the cost of
// waking it.
func BenchmarkPoolForGaps(b *testing.B) {
	spin := func(d time.Duration) {
		for t0 := time.Now(); time.Since(t0) < d; {
		}
	}
	for _, threads := range []int{1, 2} {
		b.Run(fmt.Sprintf("t%d", threads), func(b *testing.B) {
			p := NewPool(threads)
			defer p.Close()
			fn := func(lo, hi int) { spin(5 * time.Microsecond) }
			b.ReportAllocs()
			for range b.N {
				spin(20 * time.Microsecond)
				p.For(2, fn)
			}
		})
	}
}

// TestDefaultThreadsFollowsGOMAXPROCS: with no thread count, a pool gets
// one worker per GOMAXPROCS, not per core (NumCPU), so that a container
// limited to fewer CPUs than the machine has is not oversubscribed.
// GOMAXPROCS is set here as Go sets it from a container's CPU limit.
func TestDefaultThreadsFollowsGOMAXPROCS(t *testing.T) {
	old := runtime.GOMAXPROCS(0)
	defer runtime.GOMAXPROCS(old)
	for _, n := range []int{1, 3} {
		runtime.GOMAXPROCS(n)
		if got := DefaultThreads(); got != n {
			t.Errorf("GOMAXPROCS %d: DefaultThreads() = %d", n, got)
		}
		p := NewPool(0)
		if got := p.Threads(); got != n {
			t.Errorf("GOMAXPROCS %d: NewPool(0).Threads() = %d", n, got)
		}
		p.Close()
	}
}
