package server

import (
	"context"
	"errors"
	"net/http"
	"sync"

	"github.com/gollm/gollm"
)

// Admission: a request waits for its sequences in a bounded queue.
//
// Worked example, --parallel 2 --queue 1: requests A and B arrive and
// each takes a sequence at once; C finds none free and waits (the queue
// holds 1); D finds the queue full and gets 429 with Retry-After: 1. When
// A finishes, its sequence goes to C, and the queue has room again.

// lease is a request's share of the context: n sequences' worth of the
// admission semaphore (admit.go), and the first sequence.
type lease struct {
	s    *Server
	n    int
	seq  *gollm.Sequence
	once sync.Once
}

// admit waits for n sequences, in the bounded queue when none are free
// now. A full queue is a 429 with Retry-After.
//
// The context's own WaitSequence waits for one sequence; a request with
// n choices needs n at once (and they must not be taken one by one, or
// two such requests could each hold half of what they need and wait for
// ever). So the server counts the free sequences itself, with a FIFO
// weighted semaphore of Parallel units: a request takes n units, and
// holding them guarantees that n sequences are free in the context,
// since only the server takes them. The first comes from WaitSequence,
// the others from forking it.
func (s *Server) admit(ctx context.Context, n int) (*lease, *apiError) {
	if !s.seqs.TryAcquire(int64(n)) {
		if w := s.waiting.Add(1); w > int64(s.opts.Queue) {
			s.waiting.Add(-1)
			e := errorf(http.StatusTooManyRequests, "", "queue_full",
				"the server is busy: %d requests are being answered and %d are waiting, the most it queues", s.opts.Parallel, s.opts.Queue)
			e.retry = 1
			return nil, e
		}
		s.metrics.Queued(1)
		if s.hooks.onQueued != nil {
			s.hooks.onQueued()
		}
		err := s.seqs.Acquire(ctx, int64(n))
		s.waiting.Add(-1)
		s.metrics.Queued(-1)
		if err != nil {
			return nil, s.ctxError(ctx)
		}
	}
	seq, err := s.ctx.WaitSequence(ctx)
	if err != nil {
		s.seqs.Release(int64(n))
		if ctx.Err() != nil {
			return nil, s.ctxError(ctx)
		}
		return nil, errorf(http.StatusServiceUnavailable, "", "closed", "the server is closing")
	}
	s.running.Add(1)
	s.metrics.Running(1)
	return &lease{s: s, n: n, seq: seq}, nil
}

// release gives the sequences back (generate closes the forks).
func (l *lease) release() {
	l.once.Do(func() {
		l.seq.Close()
		l.s.running.Add(-1)
		l.s.metrics.Running(-1)
		l.s.seqs.Release(int64(l.n))
		if l.s.hooks.onRelease != nil {
			l.s.hooks.onRelease()
		}
	})
}

// ctxError is the error for a request whose context ended: the client
// went away (nothing can be sent; the log says 499), the timeout passed
// (504) or the server is closing (503).
func (s *Server) ctxError(ctx context.Context) *apiError {
	switch {
	case s.base.Err() != nil:
		return errorf(http.StatusServiceUnavailable, "", "closed", "the server is shutting down; the request was cancelled")
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return errorf(http.StatusGatewayTimeout, "", "timeout", "the request took longer than the server's limit of %v", s.opts.Timeout)
	}
	requestRecord(ctx).gone = true
	return errorf(statusClientGone, "", "client_closed", "the client closed the connection")
}
