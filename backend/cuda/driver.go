package cuda

import (
	"errors"
	"fmt"
	"sync"
	"unsafe"

	"github.com/ebitengine/purego"
)

// The CUDA driver API, reached without cgo.
//
// libcuda.so.1 is the user-mode driver that ships with the NVIDIA kernel
// driver (not with the CUDA toolkit), so a machine with a working GPU has
// it even when no toolkit is installed. purego dlopens it and calls its C
// functions with the platform's C calling convention, from pure Go. Each
// function below is bound once, by name, with the Go signature of its C
// prototype (see cuda.h); the _v2 names are the 64-bit-size versions that
// cuda.h's macros select.
//
// Every driver call returns a CUresult; a non-zero one becomes an *Error
// that names the call and CUDA's name for the code (cuGetErrorName), so
// that a failure reads like "cuda: cuMemAlloc_v2: CUDA_ERROR_OUT_OF_MEMORY
// (out of memory)".

// libName is the driver library that is opened (driverLibrary: libcuda.so.1,
// or nvcuda.dll on Windows). Tests point it at a file that does not exist
// to check the error a machine without a GPU gets.
var libName = driverLibrary

// Sentinel errors. Errors from this package wrap one of them (errors.Is).
var (
	// ErrNoDriver: libcuda.so.1 cannot be loaded (no NVIDIA driver) or
	// lacks a function this package needs (driver too old).
	ErrNoDriver = errors.New("cuda: no CUDA driver")
	// ErrNoDevice: the driver reports no GPU, or not the one asked for.
	ErrNoDevice = errors.New("cuda: no CUDA device")
	// ErrOutOfMemory: the GPU (or Options.MemoryLimit) has too little
	// memory for what was asked.
	ErrOutOfMemory = errors.New("cuda: out of device memory")
	// ErrUnsupported: a weight type or shape the kernels do not handle.
	ErrUnsupported = errors.New("cuda: unsupported")
	// ErrDriver: any other failed driver call (see *Error).
	ErrDriver = errors.New("cuda: driver call failed")
	// ErrClosed: the backend was used after Close.
	ErrClosed = errors.New("cuda: backend closed")
)

// cuResult is CUresult, the status every driver function returns.
type cuResult int32

// CUresult codes this package treats specially (cuda.h).
const (
	cudaSuccess          cuResult = 0
	cudaErrOutOfMemory   cuResult = 2
	cudaErrNoDevice      cuResult = 100
	cudaErrInvalidDevice cuResult = 101
)

// Error is a failed driver call.
type Error struct {
	Call string // the driver function, e.g. "cuMemAlloc_v2"
	Code int    // the CUresult
	Name string // CUDA's name for it, e.g. "CUDA_ERROR_OUT_OF_MEMORY"
	Desc string // CUDA's description, e.g. "out of memory"
}

func (e *Error) Error() string {
	return fmt.Sprintf("cuda: %s: %s (%s)", e.Call, e.Name, e.Desc)
}

// Is makes errors.Is(err, ErrDriver) true for every driver error, and
// ErrOutOfMemory / ErrNoDevice true for those codes.
func (e *Error) Is(target error) bool {
	switch target {
	case ErrDriver:
		return true
	case ErrOutOfMemory:
		return cuResult(e.Code) == cudaErrOutOfMemory
	case ErrNoDevice:
		return cuResult(e.Code) == cudaErrNoDevice || cuResult(e.Code) == cudaErrInvalidDevice
	}
	return false
}

// Device attributes (CUdevice_attribute) that Probe reads.
const (
	attrMultiprocessors = 16
	attrComputeMajor    = 75
	attrComputeMinor    = 76
)

// driver holds the bound functions of one loaded libcuda.
type driver struct {
	handle uintptr

	cuInit                    func(flags uint32) cuResult
	cuDriverGetVersion        func(version *int32) cuResult
	cuDeviceGetCount          func(count *int32) cuResult
	cuDeviceGet               func(dev *int32, ordinal int32) cuResult
	cuDeviceGetName           func(name *byte, length int32, dev int32) cuResult
	cuDeviceTotalMem          func(bytes *uint64, dev int32) cuResult
	cuDeviceGetAttribute      func(value *int32, attr int32, dev int32) cuResult
	cuDevicePrimaryCtxRetain  func(ctx *uintptr, dev int32) cuResult
	cuDevicePrimaryCtxRelease func(dev int32) cuResult
	cuCtxSetCurrent           func(ctx uintptr) cuResult
	cuCtxSynchronize          func() cuResult
	cuMemGetInfo              func(free, total *uint64) cuResult
	cuMemAlloc                func(dptr *uint64, size uint64) cuResult
	cuMemFree                 func(dptr uint64) cuResult
	cuMemHostAlloc            func(p *unsafe.Pointer, size uint64, flags uint32) cuResult
	cuMemFreeHost             func(p unsafe.Pointer) cuResult
	cuMemcpyHtoD              func(dst uint64, src unsafe.Pointer, size uint64) cuResult
	cuMemcpyDtoH              func(dst unsafe.Pointer, src uint64, size uint64) cuResult
	cuMemcpyDtoD              func(dst, src uint64, size uint64) cuResult
	cuMemsetD8                func(dst uint64, value uint8, count uint64) cuResult
	cuModuleLoadData          func(module *uintptr, image unsafe.Pointer) cuResult
	cuModuleUnload            func(module uintptr) cuResult
	cuModuleGetFunction       func(fn *uintptr, module uintptr, name string) cuResult
	cuGetErrorName            func(code cuResult, name **byte) cuResult
	cuGetErrorString          func(code cuResult, desc **byte) cuResult

	// cuLaunchKernel is called through purego.SyscallN rather than a
	// RegisterFunc binding: it runs hundreds of times per forward step,
	// and SyscallN skips the reflection RegisterFunc's wrappers go
	// through (and their allocations).
	cuLaunchKernel uintptr
}

var (
	driversMu sync.Mutex
	drivers   = map[string]*driver{} // by library name, loaded once
)

// loadDriver opens libName (once per process) and binds every function.
func loadDriver() (*driver, error) {
	driversMu.Lock()
	defer driversMu.Unlock()
	name := libName
	if d, ok := drivers[name]; ok {
		return d, nil
	}
	h, err := openLibrary(name)
	if err != nil {
		return nil, fmt.Errorf("%w: %s not found: %v (is the NVIDIA driver installed?)", ErrNoDriver, name, err)
	}
	d := &driver{handle: h}
	bind := func(fptr any, sym string) error {
		addr, err := librarySymbol(h, sym)
		if err != nil || addr == 0 {
			return fmt.Errorf("%w: %s has no %s (driver too old?)", ErrNoDriver, name, sym)
		}
		purego.RegisterFunc(fptr, addr)
		return nil
	}
	for _, f := range []struct {
		ptr any
		sym string
	}{
		{&d.cuInit, "cuInit"},
		{&d.cuDriverGetVersion, "cuDriverGetVersion"},
		{&d.cuDeviceGetCount, "cuDeviceGetCount"},
		{&d.cuDeviceGet, "cuDeviceGet"},
		{&d.cuDeviceGetName, "cuDeviceGetName"},
		{&d.cuDeviceTotalMem, "cuDeviceTotalMem_v2"},
		{&d.cuDeviceGetAttribute, "cuDeviceGetAttribute"},
		{&d.cuDevicePrimaryCtxRetain, "cuDevicePrimaryCtxRetain"},
		{&d.cuDevicePrimaryCtxRelease, "cuDevicePrimaryCtxRelease_v2"},
		{&d.cuCtxSetCurrent, "cuCtxSetCurrent"},
		{&d.cuCtxSynchronize, "cuCtxSynchronize"},
		{&d.cuMemGetInfo, "cuMemGetInfo_v2"},
		{&d.cuMemAlloc, "cuMemAlloc_v2"},
		{&d.cuMemFree, "cuMemFree_v2"},
		{&d.cuMemHostAlloc, "cuMemHostAlloc"},
		{&d.cuMemFreeHost, "cuMemFreeHost"},
		{&d.cuMemcpyHtoD, "cuMemcpyHtoD_v2"},
		{&d.cuMemcpyDtoH, "cuMemcpyDtoH_v2"},
		{&d.cuMemcpyDtoD, "cuMemcpyDtoD_v2"},
		{&d.cuMemsetD8, "cuMemsetD8_v2"},
		{&d.cuModuleLoadData, "cuModuleLoadData"},
		{&d.cuModuleUnload, "cuModuleUnload"},
		{&d.cuModuleGetFunction, "cuModuleGetFunction"},
		{&d.cuGetErrorName, "cuGetErrorName"},
		{&d.cuGetErrorString, "cuGetErrorString"},
	} {
		if err := bind(f.ptr, f.sym); err != nil {
			return nil, err
		}
	}
	addr, err := librarySymbol(h, "cuLaunchKernel")
	if err != nil || addr == 0 {
		return nil, fmt.Errorf("%w: %s has no cuLaunchKernel", ErrNoDriver, name)
	}
	d.cuLaunchKernel = addr
	if r := d.cuInit(0); r != cudaSuccess {
		return nil, d.check("cuInit", r) // CUDA_ERROR_NO_DEVICE is ErrNoDevice (Error.Is)
	}
	drivers[name] = d
	return d, nil
}

// check turns a CUresult into nil or an *Error naming the call.
func (d *driver) check(call string, r cuResult) error {
	if r == cudaSuccess {
		return nil
	}
	e := &Error{Call: call, Code: int(r), Name: fmt.Sprintf("CUDA error %d", int(r)), Desc: "unknown"}
	var p *byte
	if d.cuGetErrorName(r, &p) == cudaSuccess && p != nil {
		e.Name = goString(p)
	}
	p = nil
	if d.cuGetErrorString(r, &p) == cudaSuccess && p != nil {
		e.Desc = goString(p)
	}
	return e
}

// goString copies a NUL-terminated C string (static driver memory).
func goString(p *byte) string {
	n := 0
	for *(*byte)(unsafe.Add(unsafe.Pointer(p), n)) != 0 {
		n++
	}
	return string(unsafe.Slice(p, n))
}

// launch calls cuLaunchKernel(f, grid, block, sharedBytes, stream 0,
// params, nil). params[i] points at the value of kernel argument i; the
// driver copies the values before it returns.
func (d *driver) launch(f uintptr, grid, block [3]uint32, shared uint32, params *unsafe.Pointer) cuResult {
	r, _, _ := purego.SyscallN(d.cuLaunchKernel, f,
		uintptr(grid[0]), uintptr(grid[1]), uintptr(grid[2]),
		uintptr(block[0]), uintptr(block[1]), uintptr(block[2]),
		uintptr(shared), 0, uintptr(unsafe.Pointer(params)), 0)
	return cuResult(int32(uint32(r))) // CUresult is a 32-bit int: ignore the upper half of the register
}
