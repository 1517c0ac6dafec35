package cuda

import (
	"bytes"
	"fmt"
	"runtime"
)

// DeviceInfo describes one GPU as the driver reports it.
type DeviceInfo struct {
	Index           int    // ordinal, as Options.Device takes it
	Name            string // e.g. "NVIDIA H200"
	TotalMemory     int64  // bytes
	ComputeMajor    int    // compute capability, e.g. 9.0 for Hopper
	ComputeMinor    int
	Multiprocessors int
}

// String is e.g. "NVIDIA H200 (sm_90, 139.8 GiB, 132 SMs)".
func (d DeviceInfo) String() string {
	return fmt.Sprintf("%s (sm_%d%d, %s, %d SMs)", d.Name, d.ComputeMajor, d.ComputeMinor, gib(d.TotalMemory), d.Multiprocessors)
}

// Supported reports whether the kernels can run on the device: they are
// compiled for compute capability 8.0 (Ampere) and later.
func (d DeviceInfo) Supported() bool { return d.ComputeMajor >= minComputeMajor }

// minComputeMajor is the oldest GPU generation the PTX targets (compute_80).
const minComputeMajor = 8

// Info is what Probe finds.
type Info struct {
	DriverVersion int // CUDA version the driver supports, e.g. 12040 for 12.4
	Devices       []DeviceInfo
}

// Driver is the driver's CUDA version as "12.4".
func (i Info) Driver() string {
	return fmt.Sprintf("%d.%d", i.DriverVersion/1000, i.DriverVersion%1000/10)
}

// Probe loads the driver and describes the GPUs without creating a
// context or allocating anything on them (for choosing a backend, as in
// --gpu auto). It fails with ErrNoDriver when libcuda.so.1 is missing and
// ErrNoDevice when the driver reports no GPU.
func Probe() (Info, error) {
	runtime.LockOSThread() // the driver's per-thread state stays on this thread
	defer runtime.UnlockOSThread()
	d, err := loadDriver()
	if err != nil {
		return Info{}, err
	}
	var info Info
	var v, count int32
	if err := d.check("cuDriverGetVersion", d.cuDriverGetVersion(&v)); err != nil {
		return Info{}, err
	}
	info.DriverVersion = int(v)
	if err := d.check("cuDeviceGetCount", d.cuDeviceGetCount(&count)); err != nil {
		return Info{}, err
	}
	if count == 0 {
		return info, fmt.Errorf("%w: the driver (CUDA %s) reports no GPU", ErrNoDevice, info.Driver())
	}
	for i := 0; i < int(count); i++ {
		di, err := d.deviceInfo(i)
		if err != nil {
			return Info{}, err
		}
		info.Devices = append(info.Devices, di)
	}
	return info, nil
}

// deviceInfo reads one device's name, memory and compute capability.
func (d *driver) deviceInfo(ordinal int) (DeviceInfo, error) {
	var dev int32
	if err := d.check("cuDeviceGet", d.cuDeviceGet(&dev, int32(ordinal))); err != nil {
		return DeviceInfo{}, err
	}
	name := make([]byte, 256)
	if err := d.check("cuDeviceGetName", d.cuDeviceGetName(&name[0], int32(len(name)), dev)); err != nil {
		return DeviceInfo{}, err
	}
	if i := bytes.IndexByte(name, 0); i >= 0 {
		name = name[:i]
	}
	var total uint64
	if err := d.check("cuDeviceTotalMem_v2", d.cuDeviceTotalMem(&total, dev)); err != nil {
		return DeviceInfo{}, err
	}
	attr := func(a int32) (int, error) {
		var v int32
		err := d.check("cuDeviceGetAttribute", d.cuDeviceGetAttribute(&v, a, dev))
		return int(v), err
	}
	di := DeviceInfo{Index: ordinal, Name: string(name), TotalMemory: int64(total)}
	var err error
	if di.ComputeMajor, err = attr(attrComputeMajor); err != nil {
		return DeviceInfo{}, err
	}
	if di.ComputeMinor, err = attr(attrComputeMinor); err != nil {
		return DeviceInfo{}, err
	}
	if di.Multiprocessors, err = attr(attrMultiprocessors); err != nil {
		return DeviceInfo{}, err
	}
	return di, nil
}

// gib formats bytes as GiB with one decimal ("6.9 GiB"), or MiB below 1 GiB.
func gib(b int64) string {
	if b < 1<<30 && b > -(1<<30) {
		return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20))
	}
	return fmt.Sprintf("%.1f GiB", float64(b)/(1<<30))
}
