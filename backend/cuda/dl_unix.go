//go:build unix

package cuda

import "github.com/ebitengine/purego"

// driverLibrary is the CUDA driver's library on Linux (the soname the
// NVIDIA driver installs; there is no CUDA on macOS, where opening it
// fails with ErrNoDriver like on any machine without the driver).
const driverLibrary = "libcuda.so.1"

func openLibrary(name string) (uintptr, error) {
	return purego.Dlopen(name, purego.RTLD_NOW|purego.RTLD_GLOBAL)
}

func librarySymbol(h uintptr, sym string) (uintptr, error) { return purego.Dlsym(h, sym) }
