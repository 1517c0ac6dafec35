//go:build unix

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
