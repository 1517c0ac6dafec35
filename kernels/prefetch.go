package kernels

import "unsafe"

// Prefetch hints to the CPU that the first n elements of rows rows of x,
// stride elements apart (x[r*stride : r*stride+n] for r in [0, rows)),
// will be read soon, so that it starts loading them into its caches. It
// changes no value and reads nothing that a program could observe (a
// prefetch never faults); rows that do not fit in x are skipped.
//
// Memory-bound loops whose next addresses the hardware prefetchers cannot
// guess use it: attention walks its KV cache one block of positions at a
// time, the blocks scattered in the cache's pool (paged attention), and
// each worker reads only its heads' part of every row, so the next block
// is prefetched while the current one is computed. Where there is no
// prefetch instruction (the purego build), it does nothing.
func Prefetch[T any](x []T, stride, rows, n int) {
	var zero T
	size := int(unsafe.Sizeof(zero))
	if rows <= 0 || n <= 0 || stride < 0 {
		return
	}
	if fit := (len(x) - n) / max(stride, 1); stride > 0 && rows > fit+1 {
		rows = fit + 1
	}
	if len(x) < n || rows <= 0 {
		return
	}
	prefetchRows(unsafe.Pointer(unsafe.SliceData(x)), stride*size, rows, n*size)
}
