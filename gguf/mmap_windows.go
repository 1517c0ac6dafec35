//go:build windows

package gguf

import (
	"fmt"
	"os"
	"sync"
	"unsafe"

	"golang.org/x/sys/windows"
)

// mapFile maps the first size bytes of f read-only, as mmap does on Unix:
// a file-mapping object (CreateFileMapping, PAGE_READONLY) and a view of
// it (MapViewOfFile, FILE_MAP_READ). The view keeps the mapping object
// alive, so its handle is closed at once; the file handle may be closed
// too (os.File.Close after Open returns). Windows refuses to map an empty
// file, which Open never asks for.
func mapFile(f *os.File, size int) ([]byte, error) {
	h, err := windows.CreateFileMapping(windows.Handle(f.Fd()), nil, windows.PAGE_READONLY,
		uint32(uint64(size)>>32), uint32(size), nil)
	if err != nil {
		return nil, fmt.Errorf("CreateFileMapping: %w", err)
	}
	defer windows.CloseHandle(h)
	addr, err := windows.MapViewOfFile(h, windows.FILE_MAP_READ, 0, 0, uintptr(size))
	if err != nil {
		return nil, fmt.Errorf("MapViewOfFile: %w", err)
	}
	// The view lives outside the Go heap until UnmapViewOfFile, so the
	// address may become a pointer; it is read through &addr so that vet
	// does not take it for a heap address kept as an integer.
	data := unsafe.Slice((*byte)(*(*unsafe.Pointer)(unsafe.Pointer(&addr))), size)
	views.Lock()
	views.m[&data[0]] = addr
	views.Unlock()
	return data, nil
}

// views maps the first byte of each mapped slice to its view's address,
// so unmapFile unmaps exactly what mapFile mapped.
var views = struct {
	sync.Mutex
	m map[*byte]uintptr
}{m: map[*byte]uintptr{}}

func unmapFile(data []byte) error {
	if len(data) == 0 {
		return nil
	}
	views.Lock()
	addr, ok := views.m[&data[0]]
	delete(views.m, &data[0])
	views.Unlock()
	if !ok {
		return fmt.Errorf("gguf: unmap: %d bytes at %p were not mapped by this package", len(data), &data[0])
	}
	return windows.UnmapViewOfFile(addr)
}
