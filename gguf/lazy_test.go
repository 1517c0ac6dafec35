package gguf

import (
	"bytes"
	"os"
	"runtime"
	"runtime/debug"
	"testing"

	"github.com/gollm/gollm/tensor"
	"golang.org/x/sys/unix"
)

// pageFile writes a file whose data section starts on a page boundary:
// one f32 tensor of dataPages pages (alignment = page size).
func pageFile(t *testing.T, dataPages int) []byte {
	t.Helper()
	page := os.Getpagesize()
	w := NewWriter()
	w.Alignment = page
	if err := w.Set("general.architecture", String("lazy")); err != nil {
		t.Fatal(err)
	}
	n := int64(dataPages * page / 4)
	if err := w.AddTensor("big", tensor.F32, []int64{n}, make([]byte, 4*n)); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := w.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// sink keeps a read from being optimized away.
var sink byte

// TestParseDoesNotReadTensorData parses an image whose data pages are
// mapped PROT_NONE: reading any of them faults. With SetPanicOnFault the
// fault becomes a recoverable panic, so a parser that peeks at tensor
// data fails this test instead of crashing it.
func TestParseDoesNotReadTensorData(t *testing.T) {
	page := os.Getpagesize()
	image := pageFile(t, 4)
	mem, err := unix.Mmap(-1, 0, len(image), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANON)
	if err != nil {
		t.Skipf("anonymous mmap: %v", err)
	}
	defer unix.Munmap(mem)
	copy(mem, image)
	dataOff := len(image) - 4*page // the tensor is the last 4 pages
	if err := unix.Mprotect(mem[dataOff:], unix.PROT_NONE); err != nil {
		t.Skipf("mprotect: %v", err)
	}

	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	faulted := func(fn func()) (fault any) {
		defer func() { fault = recover() }()
		fn()
		return nil
	}
	var f *File
	if fault := faulted(func() { f, err = Parse(mem) }); fault != nil {
		t.Fatalf("Parse read protected tensor data: %v", fault)
	}
	if err != nil {
		t.Fatal(err)
	}
	if f.DataOffset != int64(dataOff) {
		t.Fatalf("data offset %d, want %d", f.DataOffset, dataOff)
	}
	var view Tensor
	if fault := faulted(func() { view, err = f.Tensor("big") }); fault != nil || err != nil {
		t.Fatalf("Tensor read the data it should only view: %v %v", fault, err)
	}
	// The guard works: touching the view does fault.
	if fault := faulted(func() { sink = view.Data[len(view.Data)-1] }); fault == nil {
		t.Fatal("reading protected memory did not fault; the test proves nothing")
	}
	runtime.KeepAlive(mem)
}

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
