//go:build windows

package cuda

import "golang.org/x/sys/windows"

// driverLibrary is the CUDA driver's library on Windows, installed into
// System32 by the NVIDIA driver.
const driverLibrary = "nvcuda.dll"

// openLibrary loads name from System32 only: a DLL of that name in the
// current directory or on PATH is not picked up instead of the driver's.
func openLibrary(name string) (uintptr, error) {
	h, err := windows.LoadLibraryEx(name, 0, windows.LOAD_LIBRARY_SEARCH_SYSTEM32)
	return uintptr(h), err
}

func librarySymbol(h uintptr, sym string) (uintptr, error) {
	return windows.GetProcAddress(windows.Handle(h), sym)
}
