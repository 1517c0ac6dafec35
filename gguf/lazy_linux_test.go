package gguf

import (
	"os"
	"path/filepath"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// TestOpenDoesNotReadTensorData opens a sparse file with 64 MiB of tensor
// data that was never written, and checks with mincore that Open brought
// none of the data pages (past some read-ahead slack) into memory.
func TestOpenDoesNotReadTensorData(t *testing.T) {
	page := os.Getpagesize()
	const dataPages = 64 << 20 >> 12
	image := pageFile(t, dataPages)
	header := image[:len(image)-dataPages*page] // the data is all zeros: leave it a hole
	path := filepath.Join(t.TempDir(), "sparse.gguf")
	fd, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fd.Write(header); err != nil {
		t.Fatal(err)
	}
	if err := fd.Truncate(int64(len(image))); err != nil {
		t.Fatal(err)
	}
	fd.Close()

	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// Skip the first 16 MiB of the data: the kernel may read ahead around
	// the header pages the parser faults in.
	start := int(f.DataOffset) + 16<<20
	region := f.data[start:]
	vec := make([]byte, (len(region)+page-1)/page)
	_, _, errno := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(unsafe.SliceData(region))), uintptr(len(region)), uintptr(unsafe.Pointer(unsafe.SliceData(vec))))
	if errno != 0 {
		t.Skipf("mincore: %v", errno)
	}
	resident := 0
	for _, v := range vec {
		resident += int(v & 1)
	}
	if resident != 0 {
		t.Errorf("%d of %d tensor data pages are resident after Open", resident, len(vec))
	}
}
