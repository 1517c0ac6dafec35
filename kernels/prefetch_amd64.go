//go:build !purego

package kernels

import "unsafe"

// prefetchRows issues PREFETCHT0 for every 64-byte line of rows byte
// ranges [p + r·stride, p + r·stride + n) (prefetch_amd64.s).
//
//go:noescape
func prefetchRows(p unsafe.Pointer, stride, rows, n int)
