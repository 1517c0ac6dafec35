package cuda

import (
	"fmt"
	"runtime"
	"unsafe"
)

// device is one GPU, driven by one goroutine locked to its OS thread.
//
// A CUDA context is "current" per OS thread, and Go moves goroutines
// between threads freely: a driver call made from an arbitrary goroutine
// may run on a thread where the context is not current, and fails (for
// example cuMemAlloc with CUDA_ERROR_INVALID_CONTEXT, 201). So one
// goroutine calls runtime.LockOSThread, makes the device's primary context
// current on its thread, and then performs every driver call of the
// backend: other goroutines hand it closures over the calls channel (do).
//
// To keep that hand-over off the hot path, the backend's operations do not
// call the device at all: they record kernel launches into a command list
// (record.go), and the list is handed over in one piece when the host
// needs a result (Read) — one channel round trip per forward step.
type device struct {
	drv    *driver
	info   DeviceInfo
	cudaV  int // the driver's CUDA version, e.g. 12040
	dev    int32
	ctx    uintptr
	module uintptr
	funcs  map[string]uintptr // kernel entry points by name
	calls  chan func()
}

// openDevice starts the device goroutine, makes the primary context of
// GPU ordinal current on it and loads the kernels' PTX module.
func openDevice(ordinal int) (*device, error) {
	drv, err := loadDriver()
	if err != nil {
		return nil, err
	}
	var count int32
	if err := drv.check("cuDeviceGetCount", drv.cuDeviceGetCount(&count)); err != nil {
		return nil, err
	}
	if ordinal < 0 || ordinal >= int(count) {
		return nil, fmt.Errorf("%w: device %d asked for, the driver reports %d GPU(s)", ErrNoDevice, ordinal, count)
	}
	var v int32
	if err := drv.check("cuDriverGetVersion", drv.cuDriverGetVersion(&v)); err != nil {
		return nil, err
	}
	d := &device{drv: drv, cudaV: int(v), calls: make(chan func()), funcs: map[string]uintptr{}}
	ready := make(chan error, 1)
	go d.loop(ordinal, ready)
	if err := <-ready; err != nil {
		return nil, err
	}
	return d, nil
}

// loop is the device goroutine. It never unlocks its thread, so the
// thread ends with it (and takes the context binding along).
func (d *device) loop(ordinal int, ready chan<- error) {
	runtime.LockOSThread()
	err := d.start(ordinal)
	ready <- err
	if err != nil {
		return
	}
	for f := range d.calls {
		f()
	}
}

// start runs on the device goroutine.
func (d *device) start(ordinal int) error {
	drv := d.drv
	info, err := drv.deviceInfo(ordinal)
	if err != nil {
		return err
	}
	if !info.Supported() {
		return fmt.Errorf("%w: %s has compute capability %d.%d; the kernels need %d.0 (Ampere) or later",
			ErrUnsupported, info.Name, info.ComputeMajor, info.ComputeMinor, minComputeMajor)
	}
	d.info = info
	if err := drv.check("cuDeviceGet", drv.cuDeviceGet(&d.dev, int32(ordinal))); err != nil {
		return err
	}
	if err := drv.check("cuDevicePrimaryCtxRetain", drv.cuDevicePrimaryCtxRetain(&d.ctx, d.dev)); err != nil {
		return err
	}
	if err := drv.check("cuCtxSetCurrent", drv.cuCtxSetCurrent(d.ctx)); err != nil {
		drv.cuDevicePrimaryCtxRelease(d.dev)
		return err
	}
	// The driver compiles the PTX for this GPU here (a JIT step of a
	// fraction of a second; the driver caches the result on disk).
	image := append([]byte(ptxSource), 0) // PTX is passed as a NUL-terminated string
	if err := drv.check("cuModuleLoadData", drv.cuModuleLoadData(&d.module, unsafe.Pointer(&image[0]))); err != nil {
		drv.cuDevicePrimaryCtxRelease(d.dev)
		return fmt.Errorf("loading the kernels' PTX (%s): %w", ptxTarget(), err)
	}
	for _, k := range allKernels {
		var f uintptr
		if err := drv.check("cuModuleGetFunction("+k.name+")", drv.cuModuleGetFunction(&f, d.module, k.name)); err != nil {
			drv.cuModuleUnload(d.module)
			drv.cuDevicePrimaryCtxRelease(d.dev)
			return err
		}
		d.funcs[k.name] = f
	}
	return nil
}

// do runs f on the device goroutine and waits for it.
func (d *device) do(f func() error) error {
	errc := make(chan error, 1)
	d.calls <- func() { errc <- f() }
	return <-errc
}

// close unloads the module, releases the context and ends the goroutine.
func (d *device) close() error {
	err := d.do(func() error {
		e1 := d.drv.check("cuCtxSynchronize", d.drv.cuCtxSynchronize())
		e2 := d.drv.check("cuModuleUnload", d.drv.cuModuleUnload(d.module))
		e3 := d.drv.check("cuDevicePrimaryCtxRelease_v2", d.drv.cuDevicePrimaryCtxRelease(d.dev))
		return firstErr(e1, e2, e3)
	})
	close(d.calls)
	return err
}

// The calls below run on the device goroutine (inside do).

func (d *device) alloc(bytes int64) (uint64, error) {
	var p uint64
	err := d.drv.check("cuMemAlloc_v2", d.drv.cuMemAlloc(&p, uint64(bytes)))
	return p, err
}

func (d *device) free(p uint64) error {
	return d.drv.check("cuMemFree_v2", d.drv.cuMemFree(p))
}

func (d *device) memInfo() (free, total int64, err error) {
	var f, t uint64
	err = d.drv.check("cuMemGetInfo_v2", d.drv.cuMemGetInfo(&f, &t))
	return int64(f), int64(t), err
}

func (d *device) sync() error {
	return d.drv.check("cuCtxSynchronize", d.drv.cuCtxSynchronize())
}

// htod copies host bytes to device memory. The copy is ordered after all
// work already launched (everything runs on the legacy default stream)
// and src may be reused when it returns.
func (d *device) htod(dst uint64, src []byte) error {
	if len(src) == 0 {
		return nil
	}
	return d.drv.check("cuMemcpyHtoD_v2", d.drv.cuMemcpyHtoD(dst, unsafe.Pointer(&src[0]), uint64(len(src))))
}

// dtoh copies device bytes to the host; it waits for all launched work.
func (d *device) dtoh(dst []byte, src uint64) error {
	if len(dst) == 0 {
		return nil
	}
	return d.drv.check("cuMemcpyDtoH_v2", d.drv.cuMemcpyDtoH(unsafe.Pointer(&dst[0]), src, uint64(len(dst))))
}

func firstErr(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}
