//go:build !linux

package kernels

import "runtime"

// osYield lets other goroutines run (elsewhere there is no portable way to
// yield the thread itself).
func osYield() { runtime.Gosched() }
