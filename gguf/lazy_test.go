package gguf

import (
	"runtime"
	"testing"
)

// TestAllocationBoundedByFileSize parses hostile files that claim huge
// counts, and valid files packed with the cheapest possible elements,
// and checks that parsing allocates no more than a small multiple of the
// file size.
func TestAllocationBoundedByFileSize(t *testing.T) {
	const size = 1 << 20
	fill := func(head func(r *rawFile), elem func(r *rawFile)) []byte {
		r := &rawFile{}
		head(r)
		for len(r.b) < size {
			elem(r)
		}
		return r.bytes()
	}
	maxCount := func(elemBytes int) uint64 { return uint64((size - 64) / elemBytes) }
	inputs := map[string][]byte{
		"kv count max, zero keys": fill(func(r *rawFile) { r.header(3, 0, maxCount(minKVBytes)) }, func(r *rawFile) { r.u8(0) }),
		"tensor count max":        fill(func(r *rawFile) { r.header(3, maxCount(minTensorBytes), 0) }, func(r *rawFile) { r.u8(0) }),
		"empty strings": fill(func(r *rawFile) {
			r.header(3, 0, 1).kv("k", TypeArray).arrayHead(TypeString, maxCount(8))
		}, func(r *rawFile) { r.u64(0) }),
		"empty arrays": fill(func(r *rawFile) {
			r.header(3, 0, 1).kv("k", TypeArray).arrayHead(TypeArray, maxCount(12))
		}, func(r *rawFile) { r.arrayHead(TypeUint8, 0) }),
		"nested arrays claiming everything": fill(func(r *rawFile) {
			r.header(3, 0, 1).kv("k", TypeArray)
			for range maxArrayDepth - 1 {
				r.arrayHead(TypeArray, maxCount(12))
			}
		}, func(r *rawFile) { r.u8(0xff) }),
		"one-byte keys": fill(func(r *rawFile) { r.header(3, 0, maxCount(minKVBytes)) }, func(r *rawFile) {
			r.kv(string(rune('a'+len(r.b)%26))+string(rune(len(r.b))), TypeUint8).u8(0)
		}),
	}
	for name, data := range inputs {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		_, err := Parse(data)
		runtime.ReadMemStats(&after)
		allocated := after.TotalAlloc - before.TotalAlloc
		t.Logf("%s: %d bytes, allocated %d (%.1fx), err %v", name, len(data), allocated, float64(allocated)/float64(len(data)), err)
		// The worst case is an array of empty arrays: each 12-byte element
		// becomes a pointer, an Array and a boxed empty slice (about 7x).
		if allocated > 16*uint64(len(data)) {
			t.Errorf("%s: parsing %d bytes allocated %d", name, len(data), allocated)
		}
	}
}
