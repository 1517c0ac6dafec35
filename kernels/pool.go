package kernels

import (
	"runtime"
	"sync"
)

// Pool is a fixed set of worker goroutines that split loops between them.
// The workers are started once (NewPool) and wait on their own channel, so
// For starts no goroutine and allocates nothing per call.
type Pool struct {
	threads int
	work    []chan task // one channel per helper worker (threads-1 of them)
	wg      sync.WaitGroup
	mu      sync.Mutex // one For at a time; see For
	closed  bool
}

// task is one contiguous chunk [lo, hi) of a For loop.
type task struct {
	fn     func(lo, hi int)
	lo, hi int
}

// NewPool starts a pool of threads workers, the caller of For counting as
// one of them. threads <= 0 means runtime.NumCPU().
func NewPool(threads int) *Pool {
	if threads <= 0 {
		threads = runtime.NumCPU()
	}
	p := &Pool{threads: threads, work: make([]chan task, threads-1)}
	for i := range p.work {
		ch := make(chan task, 1)
		p.work[i] = ch
		go p.worker(ch)
	}
	return p
}

func (p *Pool) worker(ch chan task) {
	for t := range ch {
		t.fn(t.lo, t.hi)
		p.wg.Done()
	}
}

// Threads is the number of goroutines (including the caller) For uses.
func (p *Pool) Threads() int { return p.threads }

// For splits [0, n) into at most Threads() contiguous chunks of nearly
// equal size, runs fn(lo, hi) on each (the calling goroutine takes the
// first chunk), and returns when all are done.
//
// For is safe to call from several goroutines, and from inside fn: a call
// that finds the pool busy runs its whole loop on the calling goroutine
// instead of waiting (so nested or concurrent loops never deadlock; they
// just do not get extra workers).
func (p *Pool) For(n int, fn func(lo, hi int)) { p.ForGrain(n, 1, fn) }

// ForGrain is For with chunk boundaries at multiples of grain (except the
// end, n), for kernels that work best on whole groups of rows.
func (p *Pool) ForGrain(n, grain int, fn func(lo, hi int)) {
	if n <= 0 {
		return
	}
	if grain < 1 {
		grain = 1
	}
	units := (n + grain - 1) / grain // number of grains
	chunks := min(p.threads, units)
	if chunks <= 1 || !p.mu.TryLock() {
		fn(0, n)
		return
	}
	defer p.mu.Unlock()
	if p.closed {
		fn(0, n)
		return
	}
	bound := func(k int) int { return min(n, k*units/chunks*grain) }
	p.wg.Add(chunks - 1)
	for k := 1; k < chunks; k++ {
		p.work[k-1] <- task{fn, bound(k), bound(k + 1)}
	}
	fn(0, bound(1))
	p.wg.Wait()
}

// Close stops the workers. The pool must not be in use; a For after Close
// runs on the calling goroutine alone.
func (p *Pool) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	p.closed = true
	for _, ch := range p.work {
		close(ch)
	}
}
