package kernels

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// Pool is a fixed set of worker goroutines that split loops between them.
// The workers are started once (NewPool), so For starts no goroutine and
// allocates nothing per call.
//
// # Handing over work quickly
//
// A forward step calls For a few hundred times (once per operation), with
// tens of microseconds of work each time. Waking a goroutine that sleeps
// on a channel takes the Go scheduler and the kernel (futex) around 10 to
// 20 µs on a virtual machine, which at this rate would cost several
// milliseconds per step. So a worker that has finished a chunk keeps
// polling for the next one for a while (spinWait) before it goes to sleep,
// and For, having run its own chunk, polls for the others to finish. A
// task is handed over by writing it into the worker's slot and then
// bumping the slot's sequence number (an atomic store the worker polls);
// only a worker that has gone to sleep needs a wake-up through its
// channel. llama.cpp's thread pool does the same (it spins on an atomic
// counter between graph nodes).
type Pool struct {
	threads int
	workers []*worker // threads-1 helpers; the caller of For is the first worker
	mu      sync.Mutex
	closed  bool
}

// worker is one helper goroutine's mailbox.
type worker struct {
	task task
	// seq is bumped by For after it writes task; the worker runs a task
	// each time seq moves past the last value it served.
	seq atomic.Uint64
	// done is set to seq's value when that task has finished.
	done atomic.Uint64
	// sleeping is set while the worker waits on wake (see await).
	sleeping atomic.Bool
	wake     chan struct{} // capacity 1: a pending wake-up is never lost
	// waiting is set while For waits on finished for this worker's task.
	waiting  atomic.Bool
	finished chan struct{} // capacity 1
	quit     bool          // set (with a task bump) by Close
}

// task is one contiguous chunk [lo, hi) of a For loop.
type task struct {
	fn     func(lo, hi int)
	lo, hi int
}

// spinWait is how long a worker polls for new work before sleeping, and
// how long For polls for its helpers before blocking. A forward step's
// operations follow each other much faster than this.
const spinWait = 200 * time.Microsecond

// DefaultThreads is the number of workers used when none is asked for:
// runtime.GOMAXPROCS(0), the number of goroutines that can run at once.
//
// Why not runtime.NumCPU. NumCPU counts the machine's cores, whatever
// share of them the process may use. Since Go 1.25, GOMAXPROCS defaults
// to the container's CPU limit (the cgroup quota, rounded up) when that is
// lower. Take a pod limited to 2 CPUs on a 64-core node: NumCPU is 64,
// GOMAXPROCS is 2. A pool of 64 workers there would be 62 goroutines too
// many, and since the workers spin between operations (see spinWait), the
// pod would burn its quota spinning and be throttled by the kernel for the
// rest of each period, slower than with 2 workers. With GOMAXPROCS it gets
// 2, one per CPU it can use. Setting GOMAXPROCS (the environment variable
// or runtime.GOMAXPROCS) changes the default as well.
func DefaultThreads() int { return max(1, runtime.GOMAXPROCS(0)) }

// NewPool starts a pool of threads workers, the caller of For counting as
// one of them. threads <= 0 means DefaultThreads().
func NewPool(threads int) *Pool {
	if threads <= 0 {
		threads = DefaultThreads()
	}
	p := &Pool{threads: threads, workers: make([]*worker, threads-1)}
	for i := range p.workers {
		w := &worker{wake: make(chan struct{}, 1), finished: make(chan struct{}, 1)}
		p.workers[i] = w
		go w.run()
	}
	return p
}

// run is the worker goroutine: wait for the next sequence number, run the
// task, publish completion.
func (w *worker) run() {
	var served uint64
	for {
		served = w.await(served)
		t := w.task
		if w.quit {
			return
		}
		t.fn(t.lo, t.hi)
		w.done.Store(served)
		if w.waiting.Load() {
			signal(w.finished)
		}
	}
}

// signal leaves a token in a channel of capacity 1 unless one is there.
func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// await returns once seq has moved past served (returning the new value):
// polling at first, then asleep on the wake channel.
func (w *worker) await(served uint64) uint64 {
	if s, ok := poll(&w.seq, served); ok {
		return s
	}
	for {
		// Announce the sleep, then look once more: For bumps seq before it
		// reads sleeping, so one of the two sees the other's write.
		w.sleeping.Store(true)
		if s := w.seq.Load(); s != served {
			w.sleeping.Store(false)
			return s
		}
		<-w.wake
		w.sleeping.Store(false)
		if s := w.seq.Load(); s != served {
			return s
		}
		// A stale wake-up from an earlier task: sleep again.
	}
}

// poll watches v for up to spinWait until it differs from old. After the
// first spinYield polls it yields the processor between polls: when there
// are more runnable threads than cores (other programs, or more workers
// than cores), the thread it waits for may be the one waiting for this
// core, and pure spinning would only delay it. It also lets other
// goroutines run, for when GOMAXPROCS is below the number of workers.
func poll(v *atomic.Uint64, old uint64) (uint64, bool) {
	start := time.Now()
	for i := 1; ; i++ {
		if s := v.Load(); s != old {
			return s, true
		}
		if i%64 == 0 && time.Since(start) > spinWait {
			return old, false
		}
		if i > spinYield {
			osYield()
			runtime.Gosched() // and to another goroutine of ours (GOMAXPROCS < threads)
		}
	}
}

// spinYield is the number of polls before poll starts yielding (a few
// microseconds).
const spinYield = 1000

// give hands t to the worker.
func (w *worker) give(t task) {
	w.task = t
	w.seq.Add(1)
	if w.sleeping.Load() {
		signal(w.wake)
	}
}

// wait returns when the worker has finished its current task: polling at
// first, then asleep on the finished channel (the same handshake as
// await, the other way round).
func (w *worker) wait() {
	want := w.seq.Load()
	if _, ok := poll(&w.done, want-1); ok {
		return
	}
	for {
		w.waiting.Store(true)
		if w.done.Load() == want {
			w.waiting.Store(false)
			return
		}
		<-w.finished
		w.waiting.Store(false)
		if w.done.Load() == want {
			return
		}
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
	for k := 1; k < chunks; k++ {
		p.workers[k-1].give(task{fn, bound(k), bound(k + 1)})
	}
	fn(0, bound(1))
	for k := 1; k < chunks; k++ {
		p.workers[k-1].wait()
	}
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
	for _, w := range p.workers {
		w.quit = true
		w.give(task{})
	}
}
