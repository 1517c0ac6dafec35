package kernels

import "sync"

// scratchList keeps scratch buffers between calls of kernels that may run
// on several goroutines at once. Unlike a sync.Pool it never drops them
// (a pool empties at every garbage collection, and an item put back by
// one goroutine is not always found by another), so that in steady state
// the kernels allocate nothing; it holds at most one buffer per call that
// was ever running at the same time.
type scratchList[T any] struct {
	mu   sync.Mutex
	free []*T
}

// get returns a kept buffer, or a new zero one.
func (l *scratchList[T]) get() *T {
	l.mu.Lock()
	defer l.mu.Unlock()
	if n := len(l.free); n > 0 {
		b := l.free[n-1]
		l.free = l.free[:n-1]
		return b
	}
	return new(T)
}

// put keeps b for a later get.
func (l *scratchList[T]) put(b *T) {
	l.mu.Lock()
	l.free = append(l.free, b)
	l.mu.Unlock()
}
