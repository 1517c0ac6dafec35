//go:build purego || !amd64

package kernels

import "unsafe"

// prefetchRows does nothing without a prefetch instruction.
func prefetchRows(p unsafe.Pointer, stride, rows, n int) {}
