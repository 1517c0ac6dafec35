// Package cuda is gollm's optional NVIDIA GPU backend: it implements
// backend.Backend with CUDA kernels, reaching the driver (libcuda.so.1)
// through purego, so it builds without cgo and without the CUDA toolkit.
// On a machine without an NVIDIA driver New and Probe return errors
// wrapping ErrNoDriver and nothing else changes.
//
// What happens where:
//
//   - Weights are uploaded once, in their file formats (q6_K, q4_K, q5_K,
//     q8_0, f16, f32; see layout.go), and stay on the GPU.
//   - Activations, the KV cache pool and every operation of the forward
//     pass live on the GPU. Per step only the batch (token ids, positions,
//     KV slots, block tables) goes up and the logits rows come down;
//     sampling stays on the CPU.
//   - The operations record kernel launches into a command list that runs
//     in one piece at Read (record.go), driven by one goroutine locked to
//     an OS thread (device.go).
//   - The kernels (kernels.cu, compiled to the committed kernels_sm80.ptx)
//     compute every matrix product bit for bit like the CPU backend, which
//     makes them batch-invariant (see kernels.cu, "Numerics").
//
// Errors during a step: backend.Backend's operations return no errors, so
// a failure while recording or running a step (a kernel fault, memory
// running out while growing a scratch buffer) is kept as the backend's
// first error, reported by Err; from then on nothing more runs and Read
// fills its output with NaN. Callers check Err after a step.
package cuda

import (
	"errors"
	"fmt"
	"math"
	"os"
	"runtime"
	"sync"
	"unsafe"

	"github.com/gollm/gollm/backend"
	"github.com/gollm/gollm/kvcache"
	"github.com/gollm/gollm/tensor"
)

// Options configure the CUDA backend.
type Options struct {
	// Device is the GPU's ordinal (0: the first; see Probe).
	Device int
	// MemoryLimit caps the device memory this backend allocates, in bytes
	// (0: no cap beyond what the GPU has free). Allocations past it fail
	// with ErrOutOfMemory, as if the GPU were that small.
	MemoryLimit int64
	// TiledMinTokens is the batch size from which quantized products use
	// the tiled kernel (64 rows × 64 tokens per block) instead of the
	// warp-per-row one (0: 65). Both give bit-identical results; this is a
	// speed setting, and a value above any batch size turns the tiled
	// kernel off.
	TiledMinTokens int
	// SyncEachLaunch waits for every kernel as it is launched and checks
	// its status, so that a fault names the kernel that caused it
	// (slow; for debugging). The environment variable GOLLM_CUDA_SYNC=1
	// sets it too.
	SyncEachLaunch bool
}

// Backend is the CUDA backend. Its methods may be called from any
// goroutine.
type Backend struct {
	dev      *device // nil in a dry run (newBackend without a device, for tests)
	opts     Options
	name     string
	tiledMin int

	mu     sync.Mutex
	rec    recorder
	err    error // the first error of a step; sticky
	closed bool

	allocs      map[uint64]allocation // live device allocations by address
	allocated   int64                 // bytes in allocs
	weights     int64                 // bytes of weights in allocs
	freeMu      sync.Mutex            // guards pendingFree (Go cleanups must not wait for a flush)
	pendingFree []uint64              // freed by Go cleanups; released after the next flush
	fakeNext    uint64                // dry run: the next fake device address

	arena    uint64 // device copy of the recorder's staging area
	arenaCap int64

	act   [3]actScratch // quantized activations, indexed by actFormat (actQ8K, actQ80)
	ropes map[backend.Rope]*ropeTable

	staging       []byte         // host buffer for weight uploads (pinned when possible)
	stagingPinned unsafe.Pointer // the pinned allocation behind staging, or nil

	// cuLaunchKernel's kernelParams: argPtrs[i] points at argVals[i].
	// Both live in this heap object, which does not move.
	argVals [maxArgs]uint64
	argPtrs [maxArgs]unsafe.Pointer

	dryLog     []command // dry run: every command that would have run
	dryNoCheck bool      // dry run: skip checkDry (benchmarks)
}

var _ backend.Backend = (*Backend)(nil)

type allocation struct {
	size   int64
	weight bool
}

// actScratch is a buffer of quantized activations: int8 values (token,
// cols), a float scale per block and an int sum per 16 values.
type actScratch struct {
	qs, d, bsum uint64
	values      int // capacity in values
}

// ropeTable is the cos/sin table of one rope configuration on the GPU,
// (position, dims), from backend.Rope.Angles.
type ropeTable struct {
	ptr       uint64
	positions int
	host      []float32 // (position, dims), the same values
}

// stagingBytes is the size of the host buffer weights are uploaded through.
const stagingBytes = 64 << 20

// fakeBase is where a dry run's fake device addresses start.
const fakeBase = 0x7000_0000_0000

// New opens GPU o.Device: it loads the driver, makes the device's primary
// context current on the backend's device goroutine and loads the
// kernels. Errors wrap ErrNoDriver (no libcuda.so.1), ErrNoDevice (no such
// GPU), ErrUnsupported (a GPU older than compute capability 8.0) or
// ErrDriver.
func New(o Options) (*Backend, error) {
	dev, err := openDevice(o.Device)
	if err != nil {
		return nil, err
	}
	if os.Getenv("GOLLM_CUDA_SYNC") == "1" {
		o.SyncEachLaunch = true
	}
	b := newBackend(o, dev)
	b.name = fmt.Sprintf("cuda: %s, CUDA %d.%d", dev.info, dev.cudaV/1000, dev.cudaV%1000/10)
	return b, nil
}

// newBackend sets up a backend on dev. With dev == nil it is a dry run:
// operations are recorded and checked as usual, allocations get fake
// addresses, and a flush only moves the commands to dryLog. The tests use
// it to check the recording on machines without a GPU.
func newBackend(o Options, dev *device) *Backend {
	b := &Backend{dev: dev, opts: o, tiledMin: o.TiledMinTokens, name: "cuda: dry run (no device)",
		allocs: map[uint64]allocation{}, ropes: map[backend.Rope]*ropeTable{}, fakeNext: fakeBase}
	if b.tiledMin <= 0 {
		b.tiledMin = defaultTiledMinTokens
	}
	for i := range b.argPtrs {
		b.argPtrs[i] = unsafe.Pointer(&b.argVals[i])
	}
	return b
}

// Name describes the GPU, e.g. "cuda: NVIDIA H200 (sm_90, 139.8 GiB, 132 SMs), CUDA 12.4".
func (b *Backend) Name() string { return b.name }

// Device describes the GPU the backend runs on.
func (b *Backend) Device() DeviceInfo {
	if b.dev == nil {
		return DeviceInfo{}
	}
	return b.dev.info
}

// Err returns the first error of a recorded or running step (nil if none).
// After an error every later step is skipped and Read gives NaN.
func (b *Backend) Err() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.err
}

// MemInfo reports the GPU's free and total memory in bytes.
func (b *Backend) MemInfo() (free, total int64, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.memInfoLocked()
}

func (b *Backend) memInfoLocked() (free, total int64, err error) {
	if b.closed {
		return 0, 0, ErrClosed
	}
	if b.dev == nil {
		return 0, 0, nil
	}
	err = b.dev.do(func() error {
		var e error
		free, total, e = b.dev.memInfo()
		return e
	})
	return free, total, err
}

// Allocated is the device memory this backend holds, and how much of it
// is weights, in bytes.
func (b *Backend) Allocated() (total, weights int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.allocated, b.weights
}

// Flush runs every recorded operation and waits for the GPU to finish
// them. Read does this itself; Flush is for timing and for callers that
// want to see errors (Err) without reading anything back.
func (b *Backend) Flush() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.flushLocked(func(d *device) error { return d.sync() })
}

// Close runs what is recorded, frees every allocation and releases the
// GPU. The backend cannot be used afterwards.
func (b *Backend) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil
	}
	err := b.flushLocked(nil)
	b.closed = true
	if b.dev == nil {
		return err
	}
	err2 := b.dev.do(func() error {
		var first error
		if e := b.dev.sync(); e != nil {
			first = e
		}
		for p := range b.allocs {
			if e := b.dev.free(p); e != nil && first == nil {
				first = e
			}
		}
		if b.stagingPinned != nil {
			if e := b.dev.drv.check("cuMemFreeHost", b.dev.drv.cuMemFreeHost(b.stagingPinned)); e != nil && first == nil {
				first = e
			}
		}
		return first
	})
	clear(b.allocs)
	b.allocated, b.weights, b.staging, b.stagingPinned = 0, 0, nil, nil
	return firstErr(err, err2, b.dev.close())
}

// fail keeps the first error of a step.
func (b *Backend) fail(err error) {
	if b.err == nil {
		b.err = err
	}
}

// ---------------------------------------------------------------------------
// Memory

// allocLocked allocates size bytes of device memory for what (named in
// errors). Out of memory gives ErrOutOfMemory with the GPU's numbers.
func (b *Backend) allocLocked(what string, size int64, isWeight bool) (uint64, error) {
	if b.closed {
		return 0, ErrClosed
	}
	size = align256(max(size, 1))
	b.freeMu.Lock()
	pending := len(b.pendingFree)
	b.freeMu.Unlock()
	if pending > 0 { // give memory that Go no longer uses back first
		if err := b.flushLocked(nil); err != nil {
			return 0, err
		}
	}
	if lim := b.opts.MemoryLimit; lim > 0 && b.allocated+size > lim {
		return 0, fmt.Errorf("%w: %s needs %s; this backend holds %s (%s of it weights) of its %s memory limit",
			ErrOutOfMemory, what, gib(size), gib(b.allocated), gib(b.weights), gib(lim))
	}
	var p uint64
	if b.dev == nil {
		p = b.fakeNext
		b.fakeNext += uint64(size)
	} else {
		err := b.dev.do(func() error {
			var e error
			p, e = b.dev.alloc(size)
			return e
		})
		if err != nil {
			if errors.Is(err, ErrOutOfMemory) {
				free, total, _ := b.memInfoLocked()
				return 0, fmt.Errorf("%w: %s needs %s, the GPU has %s free of %s (this backend holds %s, %s of it weights)",
					ErrOutOfMemory, what, gib(size), gib(free), gib(total), gib(b.allocated), gib(b.weights))
			}
			return 0, fmt.Errorf("cuda: allocating %s for %s: %w", gib(size), what, err)
		}
	}
	b.allocs[p] = allocation{size: size, weight: isWeight}
	b.allocated += size
	if isWeight {
		b.weights += size
	}
	return p, nil
}

// forget removes an allocation from the books (the memory is freed by the caller).
func (b *Backend) forget(p uint64) {
	if a, ok := b.allocs[p]; ok {
		delete(b.allocs, p)
		b.allocated -= a.size
		if a.weight {
			b.weights -= a.size
		}
	}
}

// deferFree is the Go cleanup of buffers, weights, vectors and KV pools
// that became unreachable: recorded commands may still use the memory, so
// it is released after the next flush.
func (b *Backend) deferFree(p uint64) {
	b.freeMu.Lock()
	defer b.freeMu.Unlock()
	b.pendingFree = append(b.pendingFree, p)
}

// freeNowLocked frees memory that recorded commands may use: it runs them
// first, then frees (after a device synchronisation).
func (b *Backend) freeNowLocked(p uint64) {
	b.deferFree(p)
	if err := b.flushLocked(nil); err != nil {
		b.fail(err)
	}
}

// upload copies host bytes to device memory now (not through the command
// list; used for weights and tables, whose memory no recorded command uses
// yet).
func (b *Backend) uploadLocked(dst uint64, src []byte) error {
	if b.dev == nil || len(src) == 0 {
		return nil
	}
	return b.dev.do(func() error { return b.dev.htod(dst, src) })
}

// stagingLocked returns the upload buffer, pinned host memory if the driver
// gives it (page-locked memory is copied by DMA at full PCIe speed).
func (b *Backend) stagingLocked() []byte {
	if b.staging != nil {
		return b.staging
	}
	if b.dev != nil {
		var p unsafe.Pointer
		err := b.dev.do(func() error {
			return b.dev.drv.check("cuMemHostAlloc", b.dev.drv.cuMemHostAlloc(&p, stagingBytes, 0))
		})
		if err == nil && p != nil {
			b.stagingPinned = p
			b.staging = unsafe.Slice((*byte)(p), stagingBytes)
			return b.staging
		}
	}
	b.staging = make([]byte, stagingBytes)
	return b.staging
}

// ---------------------------------------------------------------------------
// Running the command list

// flushLocked runs every recorded command on the device goroutine, then
// after (if any, e.g. a copy to the host), then releases pendingFree. A
// failure becomes the sticky error; once there is one, nothing runs.
func (b *Backend) flushLocked(after func(*device) error) error {
	if b.closed {
		b.rec.reset()
		return ErrClosed
	}
	if b.err != nil {
		b.rec.reset()
		return b.err
	}
	b.freeMu.Lock()
	frees := b.pendingFree
	b.pendingFree = nil
	b.freeMu.Unlock()
	if b.dev == nil {
		var err error
		if !b.dryNoCheck {
			err = b.checkDry()
		}
		b.dryLog = append(b.dryLog, b.rec.cmds...)
		b.rec.reset()
		for _, p := range frees {
			b.forget(p)
		}
		if err != nil {
			b.fail(err)
		}
		return err
	}
	err := b.dev.do(func() error {
		if err := b.execute(); err != nil {
			return err
		}
		if after != nil {
			if err := after(b.dev); err != nil {
				return err
			}
		}
		if len(frees) > 0 {
			if err := b.dev.sync(); err != nil {
				return err
			}
			for _, p := range frees {
				if err := b.dev.free(p); err != nil {
					return err
				}
			}
		}
		return nil
	})
	for _, p := range frees {
		b.forget(p)
	}
	b.rec.reset()
	if err != nil {
		b.fail(err)
	}
	return err
}

// checkDry is a dry run's stand-in for the GPU's memory protection: every
// pointer argument must point into a live allocation and every arena
// offset into the staging area.
func (b *Backend) checkDry() error {
	for _, c := range b.rec.cmds {
		name := "copy"
		if c.k != nil {
			name = c.k.name
		}
		for i := 0; i < c.nargs; i++ {
			a := c.args[i]
			switch {
			case a.kind != argPtr:
			case a.arena:
				if a.v >= uint64(len(b.rec.stage)) {
					return fmt.Errorf("cuda: dry run: %s argument %d: arena offset %d past the %d staged bytes", name, i, a.v, len(b.rec.stage))
				}
			case !b.inAllocation(a.v):
				return fmt.Errorf("cuda: dry run: %s argument %d: %#x is not in any allocation", name, i, a.v)
			}
		}
	}
	return nil
}

func (b *Backend) inAllocation(p uint64) bool {
	for base, a := range b.allocs {
		if p >= base && p < base+uint64(a.size) {
			return true
		}
	}
	return false
}

// execute runs on the device goroutine: it uploads the staging area to the
// arena and launches the commands in order.
func (b *Backend) execute() error {
	d := b.dev
	if stage := b.rec.stage; len(stage) > 0 {
		if int64(len(stage)) > b.arenaCap {
			if b.arena != 0 { // recorded commands of earlier flushes may still read it
				if err := d.sync(); err != nil {
					return err
				}
				if err := d.free(b.arena); err != nil {
					return err
				}
				b.forget(b.arena)
				b.arena, b.arenaCap = 0, 0
			}
			size := align256(max(int64(len(stage)), 2*b.arenaCap, 1<<20))
			p, err := d.alloc(size)
			if err != nil {
				return fmt.Errorf("cuda: allocating the %s upload arena: %w", gib(size), err)
			}
			b.allocs[p] = allocation{size: size}
			b.allocated += size
			b.arena, b.arenaCap = p, size
		}
		// Ordered after earlier work on the default stream, so commands of
		// an earlier flush that read the arena have finished.
		if err := d.htod(b.arena, stage); err != nil {
			return err
		}
	}
	for i := range b.rec.cmds {
		c := &b.rec.cmds[i]
		if c.k == nil {
			dst, src := c.args[0].resolve(b.arena), c.args[1].resolve(b.arena)
			if err := d.drv.check("cuMemcpyDtoD_v2", d.drv.cuMemcpyDtoD(dst, src, uint64(c.bytes))); err != nil {
				return err
			}
			continue
		}
		for j := 0; j < c.nargs; j++ {
			b.argVals[j] = c.args[j].resolve(b.arena)
		}
		s := c.shape
		if r := d.drv.launch(d.funcs[c.k.name], s.grid, s.block, s.shared, &b.argPtrs[0]); r != cudaSuccess {
			return fmt.Errorf("cuda: launching %s (grid %v, block %v, %d bytes of shared memory): %w",
				c.k.name, s.grid, s.block, s.shared, d.drv.check("cuLaunchKernel", r))
		}
		if b.opts.SyncEachLaunch {
			if err := d.sync(); err != nil {
				return fmt.Errorf("cuda: kernel %s (grid %v, block %v): %w", c.k.name, s.grid, s.block, err)
			}
		}
	}
	return nil
}

// ---------------------------------------------------------------------------
// Buffers, weights, vectors

// buffer is a float32 activation matrix on the GPU, (rows, cols) row-major.
type buffer struct {
	ptr        uint64
	rows, cols int
}

func (m *buffer) Rows() int { return m.rows }
func (m *buffer) Cols() int { return m.cols }

func asBuf(x backend.Buffer) *buffer { return x.(*buffer) }

// NewBuffer allocates a (rows, cols) float32 matrix on the GPU. If the GPU
// is out of memory the failure is kept for Err (the interface has no error
// here) and the buffer is unusable.
func (b *Backend) NewBuffer(rows, cols int) backend.Buffer {
	b.mu.Lock()
	defer b.mu.Unlock()
	p, err := b.allocLocked(fmt.Sprintf("a (%d, %d) activation buffer", rows, cols), 4*int64(rows)*int64(cols), false)
	if err != nil {
		b.fail(err)
	}
	buf := &buffer{ptr: p, rows: rows, cols: cols}
	if p != 0 {
		runtime.AddCleanup(buf, b.deferFree, p)
	}
	return buf
}

// weight is a matrix in its device layout (layout.go).
type weight struct {
	ptr        uint64
	t          tensor.DType
	rows, cols int
	rowBytes   int64 // device bytes per row
}

func (w *weight) Rows() int          { return w.rows }
func (w *weight) Cols() int          { return w.cols }
func (w *weight) Type() tensor.DType { return w.t }

// LoadWeight uploads a matrix, repacking it to the device layout on the
// way (in chunks, through a pinned host buffer).
func (b *Backend) LoadWeight(name string, t tensor.DType, rows, cols int, data []byte) (backend.Weight, error) {
	frb, err := tensor.RowBytes(t, int64(cols))
	if err != nil {
		return nil, fmt.Errorf("cuda: %s: %w", name, err)
	}
	if int64(len(data)) != frb*int64(rows) {
		return nil, fmt.Errorf("cuda: %s: %d bytes for %d rows of %d bytes", name, len(data), rows, frb)
	}
	drb, err := DeviceRowBytes(t, cols)
	if err != nil {
		return nil, fmt.Errorf("cuda: %s: %w", name, err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	p, err := b.allocLocked(name, drb*int64(rows), true)
	if err != nil {
		return nil, err
	}
	if b.dev != nil {
		stage := b.stagingLocked()
		per := max(1, int(int64(len(stage))/drb)) // rows per chunk
		for r0 := 0; r0 < rows; r0 += per {
			r1 := min(rows, r0+per)
			chunk := stage[:int64(r1-r0)*drb]
			repack(t, chunk, data[int64(r0)*frb:int64(r1)*frb])
			if err := b.uploadLocked(p+uint64(int64(r0)*drb), chunk); err != nil {
				b.freeNowLocked(p)
				return nil, fmt.Errorf("cuda: uploading %s: %w", name, err)
			}
		}
	}
	w := &weight{ptr: p, t: t, rows: rows, cols: cols, rowBytes: drb}
	runtime.AddCleanup(w, b.deferFree, p)
	return w, nil
}

// vector is a float32 vector on the GPU.
type vector struct {
	ptr uint64
	n   int
}

func (v *vector) Len() int { return v.n }

// LoadVector uploads a float32 vector (norm weights).
func (b *Backend) LoadVector(name string, v []float32) (backend.Vector, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	p, err := b.allocLocked(name, 4*int64(len(v)), true)
	if err != nil {
		return nil, err
	}
	if len(v) > 0 {
		if err := b.uploadLocked(p, unsafe.Slice((*byte)(unsafe.Pointer(&v[0])), 4*len(v))); err != nil {
			b.freeNowLocked(p)
			return nil, fmt.Errorf("cuda: uploading %s: %w", name, err)
		}
	}
	vec := &vector{ptr: p, n: len(v)}
	runtime.AddCleanup(vec, b.deferFree, p)
	return vec, nil
}

// ---------------------------------------------------------------------------
// The KV cache

// kvStore is a paged KV pool in device memory: K and V each (layer, slot,
// kvDim) with slot = block*blockSize + offset, elements F16 or F32, laid
// out as cpu.HostStorage does it on the CPU.
type kvStore struct {
	b                                   *Backend
	dt                                  tensor.DType
	layers, kvDim, blockSize, numBlocks int
	k, v                                uint64
	perLayer                            int64 // bytes of one layer's K (or V)
}

// NewKV allocates the KV pool on the GPU (zeroed).
func (b *Backend) NewKV(dt tensor.DType, layers, kvDim, blockSize, numBlocks int) (backend.KV, error) {
	if dt != tensor.F16 && dt != tensor.F32 {
		return nil, fmt.Errorf("%w: KV element type %s (use f16 or f32)", kvcache.ErrBadConfig, dt)
	}
	if layers < 0 || kvDim < 1 || blockSize < 1 || numBlocks < 1 {
		return nil, fmt.Errorf("%w: layers %d, kvDim %d, block size %d, blocks %d", kvcache.ErrBadConfig, layers, kvDim, blockSize, numBlocks)
	}
	s := &kvStore{b: b, dt: dt, layers: layers, kvDim: kvDim, blockSize: blockSize, numBlocks: numBlocks}
	s.perLayer = int64(blockSize) * int64(numBlocks) * int64(kvDim) * int64(dt.BlockBytes())
	if layers == 0 { // a model stage without layers (only the head) holds no KV
		return s, nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	var err error
	what := fmt.Sprintf("the KV cache (%d blocks of %d tokens, %s)", numBlocks, blockSize, dt)
	if s.k, err = b.allocLocked(what, s.perLayer*int64(layers), false); err != nil {
		return nil, err
	}
	if s.v, err = b.allocLocked(what, s.perLayer*int64(layers), false); err != nil {
		b.freeNowLocked(s.k)
		return nil, err
	}
	if b.dev != nil {
		err = b.dev.do(func() error {
			n := uint64(s.perLayer * int64(layers))
			return firstErr(b.dev.drv.check("cuMemsetD8_v2", b.dev.drv.cuMemsetD8(s.k, 0, n)),
				b.dev.drv.check("cuMemsetD8_v2", b.dev.drv.cuMemsetD8(s.v, 0, n)))
		})
		if err != nil {
			b.freeNowLocked(s.k)
			b.freeNowLocked(s.v)
			return nil, err
		}
	}
	runtime.AddCleanup(s, b.deferFree, s.k)
	runtime.AddCleanup(s, b.deferFree, s.v)
	return s, nil
}

func (s *kvStore) layerK(l int) uint64 { return s.k + uint64(int64(l)*s.perLayer) }
func (s *kvStore) layerV(l int) uint64 { return s.v + uint64(int64(l)*s.perLayer) }
func (s *kvStore) f16() int {
	if s.dt == tensor.F16 {
		return 1
	}
	return 0
}

// CopyBlock records a copy of block src to block dst in every layer (the
// cache's copy on write); it runs before any later step's StoreKV.
func (s *kvStore) CopyBlock(dst, src int) {
	b := s.b
	if s.layers == 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if dst < 0 || src < 0 || dst >= s.numBlocks || src >= s.numBlocks {
		b.fail(fmt.Errorf("%w: copy KV block %d to %d in a pool of %d", kvcache.ErrBadConfig, src, dst, s.numBlocks))
		return
	}
	units := int64(s.blockSize) * int64(s.kvDim) * int64(s.dt.BlockBytes()) / 2 // 16-bit units per block
	b.rec.launch(kCopyKVBlock, elemGeometry(s.layers*int(units)),
		ptrArg(s.k), ptrArg(s.v), i64Arg(s.perLayer/2), i64Arg(units), i32Arg(s.layers), i32Arg(dst), i32Arg(src))
}

// ---------------------------------------------------------------------------
// The operations (recorded; see record.go)

// Embed writes row ids[i] of table, dequantized, into dst row i.
func (b *Backend) Embed(dst backend.Buffer, table backend.Weight, ids []int32) {
	d, w, n := asBuf(dst), table.(*weight), len(ids)
	if n == 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	off := b.rec.stageInt32(ids)
	b.rec.launch(kEmbed, elemGeometry(n*w.cols), ptrArg(d.ptr), ptrArg(w.ptr), arenaArg(off),
		i32Arg(n), i32Arg(w.cols), i64Arg(w.rowBytes), i32Arg(int(w.t)))
}

// RMSNorm: dst[i] = x[i] / rms(x[i]) * w, a warp per row.
func (b *Backend) RMSNorm(dst, x backend.Buffer, w backend.Vector, eps float32, n int) {
	if n == 0 {
		return
	}
	d, s, wv := asBuf(dst), asBuf(x), w.(*vector)
	b.mu.Lock()
	defer b.mu.Unlock()
	b.rec.launch(kRMSNorm, warpGeometry(n), ptrArg(d.ptr), ptrArg(s.ptr), ptrArg(wv.ptr), f32Arg(eps), i32Arg(n), i32Arg(s.cols))
}

// RMSNormHeads normalises every head (w.Len() values) of the first n rows
// in place, a warp per head.
func (b *Backend) RMSNormHeads(x backend.Buffer, w backend.Vector, eps float32, n int) {
	m, wv := asBuf(x), w.(*vector)
	chunks := n * m.cols / wv.n
	if chunks == 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.rec.launch(kRMSNormHeads, warpGeometry(chunks), ptrArg(m.ptr), ptrArg(wv.ptr), f32Arg(eps), i32Arg(wv.n), i64Arg(int64(chunks)))
}

// Linear computes every projection of x: the rows of x are quantized once
// per activation format the weights need, then each product is one launch.
func (b *Backend) Linear(x backend.Buffer, n int, outs ...backend.Projection) {
	if n == 0 {
		return
	}
	xb := asBuf(x)
	b.mu.Lock()
	defer b.mu.Unlock()
	var done [3]bool
	for _, o := range outs {
		w := o.W.(*weight)
		_, _, act, _ := matKernels(w.t)
		if act == actFloat || done[act] {
			continue
		}
		done[act] = true
		s, err := b.actScratchLocked(act, n*xb.cols)
		if err != nil {
			b.fail(err)
			return
		}
		if act == actQ8K {
			b.rec.launch(kQuantQ8K, warpGeometry(n*xb.cols/256),
				ptrArg(s.qs), ptrArg(s.d), ptrArg(s.bsum), ptrArg(xb.ptr), i32Arg(n), i32Arg(xb.cols))
		} else {
			b.rec.launch(kQuantQ80, warpGeometry(n*xb.cols/32),
				ptrArg(s.qs), ptrArg(s.d), ptrArg(xb.ptr), i32Arg(n), i32Arg(xb.cols))
		}
	}
	for _, o := range outs {
		w, d := o.W.(*weight), asBuf(o.Dst)
		k, shape, err := matGeometry(w.t, w.rows, w.cols, n, b.tiledMin)
		if err != nil {
			b.fail(err)
			return
		}
		if _, _, act, _ := matKernels(w.t); act == actFloat {
			b.rec.launch(k, shape, ptrArg(d.ptr), i32Arg(d.cols), ptrArg(w.ptr), ptrArg(xb.ptr),
				i32Arg(w.rows), i32Arg(w.cols), i32Arg(n))
		} else {
			s := &b.act[act]
			b.rec.launch(k, shape, ptrArg(d.ptr), i32Arg(d.cols), ptrArg(w.ptr), ptrArg(s.qs), ptrArg(s.d), ptrArg(s.bsum),
				i32Arg(w.rows), i32Arg(w.cols), i32Arg(n))
		}
	}
}

// actScratchLocked returns the quantized-activation buffer of a format,
// grown to hold values values. Growing runs the recorded commands first
// (they may read the old buffer).
func (b *Backend) actScratchLocked(f actFormat, values int) (*actScratch, error) {
	s := &b.act[f]
	if s.values >= values {
		return s, nil
	}
	if s.qs != 0 {
		b.freeNowLocked(s.qs)
		*s = actScratch{}
	}
	v := int64(values)
	p, err := b.allocLocked("quantized activations", actScratchBytes(v), false)
	if err != nil {
		return nil, err
	}
	s.qs = p
	s.d = p + uint64(align256(v))
	s.bsum = s.d + uint64(align256(4*ceilDiv64(v, 32)))
	s.values = values
	return s, nil
}

// RoPE rotates each head of row i by position pos[i], with the cos/sin
// table of r (computed on the host by backend.Rope.Angles, uploaded
// once per configuration and grown as positions grow).
func (b *Backend) RoPE(x backend.Buffer, n int, pos []int32, r *backend.Rope) {
	if n == 0 {
		return
	}
	m := asBuf(x)
	b.mu.Lock()
	defer b.mu.Unlock()
	if r.Style != backend.RopeNeoX {
		// kernels_sm80.ptx has only the NEOX rotation so far.
		b.fail(fmt.Errorf("cuda: RoPE style %s is not implemented on the GPU yet", r.Style))
		return
	}
	maxPos := int32(0)
	for _, p := range pos[:n] {
		if p < 0 {
			b.fail(fmt.Errorf("cuda: RoPE at negative position %d", p))
			return
		}
		maxPos = max(maxPos, p)
	}
	tab, err := b.ropeTableLocked(r, int(maxPos))
	if err != nil {
		b.fail(err)
		return
	}
	off := b.rec.stageInt32(pos[:n])
	half, heads := r.Dims/2, m.cols/r.Dims
	b.rec.launch(kRoPE, elemGeometry(n*heads*half), ptrArg(m.ptr), arenaArg(off), ptrArg(tab),
		i32Arg(n), i32Arg(m.cols), i32Arg(r.Dims))
}

// ropeTableLocked returns the device table of r covering positions up to
// maxPos, growing it (at least doubling) when needed.
func (b *Backend) ropeTableLocked(r *backend.Rope, maxPos int) (uint64, error) {
	t := b.ropes[*r]
	if t == nil {
		t = &ropeTable{}
		b.ropes[*r] = t
	}
	if maxPos < t.positions {
		return t.ptr, nil
	}
	positions := max(maxPos+1, 2*t.positions, 4096)
	host := make([]float32, positions*r.Dims)
	copy(host, t.host)
	for p := t.positions; p < positions; p++ {
		r.Angles(host[p*r.Dims:(p+1)*r.Dims], p)
	}
	p, err := b.allocLocked("the rope table", 4*int64(len(host)), false)
	if err != nil {
		return 0, err
	}
	if err := b.uploadLocked(p, unsafe.Slice((*byte)(unsafe.Pointer(&host[0])), 4*len(host))); err != nil {
		return 0, err
	}
	if t.ptr != 0 {
		b.deferFree(t.ptr) // recorded commands may read the old one
	}
	t.ptr, t.positions, t.host = p, positions, host
	return p, nil
}

// planOffsets are the arena offsets of a staged attention plan.
type planOffsets struct{ slots, pos, tabOff, tables int }

// stagePlanLocked stages a plan as one int32 array: slots (N), positions
// (N), each token's offset into the tables (N), then the distinct block
// tables one after the other. Every layer's StoreKV and Attention of a
// step share one staged copy.
func (b *Backend) stagePlanLocked(p *backend.AttnPlan) planOffsets {
	n := p.N
	img := b.rec.scratch[:0]
	img = append(img, p.Slots[:n]...)
	img = append(img, p.Pos[:n]...)
	for i := 0; i < n; i++ {
		img = append(img, 0) // table offsets, filled below
	}
	type seen struct {
		data *int32
		len  int
		off  int32
	}
	var tables []seen
	for i := 0; i < n; i++ {
		t := p.Tables[i]
		var data *int32
		if len(t) > 0 {
			data = &t[0]
		}
		off := int32(-1)
		for _, s := range tables {
			if s.data == data && s.len == len(t) {
				off = s.off
				break
			}
		}
		if off < 0 {
			off = int32(len(img) - 3*n)
			tables = append(tables, seen{data, len(t), off})
			img = append(img, t...)
		}
		img[2*n+i] = off
	}
	b.rec.scratch = img
	base := b.rec.stageInt32(img)
	return planOffsets{slots: base, pos: base + 4*n, tabOff: base + 8*n, tables: base + 12*n}
}

// checkPlanLocked verifies that a KV pool fits a plan.
func (b *Backend) checkPlanLocked(s *kvStore, layer int, p *backend.AttnPlan) bool {
	switch {
	case layer < 0 || layer >= s.layers:
		b.fail(fmt.Errorf("%w: layer %d of a %d-layer KV pool", kvcache.ErrBadConfig, layer, s.layers))
	case p.KVHeads*p.HeadDim != s.kvDim || p.BlockSize != s.blockSize:
		b.fail(fmt.Errorf("%w: plan of %d KV heads × %d, block size %d, for a pool of width %d, block size %d",
			kvcache.ErrBadConfig, p.KVHeads, p.HeadDim, p.BlockSize, s.kvDim, s.blockSize))
	default:
		return true
	}
	return false
}

// StoreKV writes each token's key and value rows into its cache slot.
func (b *Backend) StoreKV(kv backend.KV, layer int, k, v backend.Buffer, p *backend.AttnPlan) {
	if p.N == 0 {
		return
	}
	s, kb, vb := kv.(*kvStore), asBuf(k), asBuf(v)
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.checkPlanLocked(s, layer, p) {
		return
	}
	pl := b.stagePlanLocked(p)
	b.rec.launch(kStoreKV, elemGeometry(p.N*s.kvDim), ptrArg(s.layerK(layer)), ptrArg(s.layerV(layer)),
		ptrArg(kb.ptr), ptrArg(vb.ptr), arenaArg(pl.slots), i32Arg(p.N), i32Arg(s.kvDim), i32Arg(s.f16()))
}

// Attention computes causal grouped-query attention for every token of
// the plan over its sequence's cached positions.
func (b *Backend) Attention(dst, q backend.Buffer, kv backend.KV, layer int, p *backend.AttnPlan) {
	if p.N == 0 {
		return
	}
	s, qb, ob := kv.(*kvStore), asBuf(q), asBuf(dst)
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.checkPlanLocked(s, layer, p) {
		return
	}
	shape, gpb, err := attnGeometry(p.Heads, p.KVHeads, p.HeadDim, p.N)
	if err != nil {
		b.fail(err)
		return
	}
	pl := b.stagePlanLocked(p)
	b.rec.launch(kAttention, shape, ptrArg(ob.ptr), ptrArg(qb.ptr), ptrArg(s.layerK(layer)), ptrArg(s.layerV(layer)),
		i32Arg(s.f16()), arenaArg(pl.pos), arenaArg(pl.tabOff), arenaArg(pl.tables), i32Arg(p.BlockSize),
		i32Arg(s.kvDim), i32Arg(qb.cols), i32Arg(p.HeadDim), i32Arg(p.Heads/p.KVHeads), i32Arg(gpb), f32Arg(p.Scale))
}

// SwiGLU: dst = silu(gate) * up.
func (b *Backend) SwiGLU(dst, gate, up backend.Buffer, n int) {
	d, g, u := asBuf(dst), asBuf(gate), asBuf(up)
	count := n * d.cols
	if count == 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.rec.launch(kSwiGLU, elemGeometry(count), ptrArg(d.ptr), ptrArg(g.ptr), ptrArg(u.ptr), i64Arg(int64(count)))
}

// Add: dst += x.
func (b *Backend) Add(dst, x backend.Buffer, n int) {
	d, s := asBuf(dst), asBuf(x)
	count := n * d.cols
	if count == 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.rec.launch(kAdd, elemGeometry(count), ptrArg(d.ptr), ptrArg(s.ptr), i64Arg(int64(count)))
}

// AddBias adds the vector v to each of the first n rows of x, one add
// launch per row (the add kernel is element-wise; biases are a few
// launches per layer, small beside the matrix products).
func (b *Backend) AddBias(x backend.Buffer, v backend.Vector, n int) {
	d, bv := asBuf(x), v.(*vector)
	if n == 0 || d.cols == 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for i := 0; i < n; i++ {
		b.rec.launch(kAdd, elemGeometry(d.cols), ptrArg(d.ptr+uint64(4*i*d.cols)), ptrArg(bv.ptr), i64Arg(int64(d.cols)))
	}
}

// Gather copies x rows[i] into dst row i.
func (b *Backend) Gather(dst, x backend.Buffer, rows []int32) {
	d, s := asBuf(dst), asBuf(x)
	if len(rows) == 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	off := b.rec.stageInt32(rows)
	b.rec.launch(kGather, elemGeometry(len(rows)*d.cols), ptrArg(d.ptr), ptrArg(s.ptr), arenaArg(off),
		i32Arg(len(rows)), i32Arg(d.cols))
}

// Scatter is not implemented on the GPU yet: a mixture of experts
// (qwen3moe) is refused with a sticky error naming it.
func (b *Backend) Scatter(dst, x backend.Buffer, rows []int32) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.fail(errMoE)
}

// WeightedSum is not implemented on the GPU yet (see Scatter).
func (b *Backend) WeightedSum(dst, x backend.Buffer, w []float32, k, n int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.fail(errMoE)
}

// errMoE refuses the mixture-of-experts operations.
var errMoE = errors.New("cuda: the mixture-of-experts FFN (qwen3moe) is not implemented on the GPU yet; run it on the CPU")

// Read runs everything recorded and copies the first n rows of x into dst
// (row-major). After an error (see Err) dst gets NaN.
func (b *Backend) Read(dst []float32, x backend.Buffer, n int) {
	m := asBuf(x)
	count := n * m.cols
	if count == 0 {
		return
	}
	out := dst[:count]
	b.mu.Lock()
	defer b.mu.Unlock()
	err := b.flushLocked(func(d *device) error {
		return d.dtoh(unsafe.Slice((*byte)(unsafe.Pointer(&out[0])), 4*count), m.ptr)
	})
	if err != nil || b.dev == nil {
		nan := float32(math.NaN())
		for i := range out {
			out[i] = nan
		}
	}
}

// Write copies n rows from src (row-major) into x, through the command
// list (so it lands after everything recorded before it).
func (b *Backend) Write(x backend.Buffer, src []float32, n int) {
	m := asBuf(x)
	count := n * m.cols
	if count == 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	off := b.rec.stageFloat32(src[:count])
	b.rec.copy(ptrArg(m.ptr), arenaArg(off), 4*int64(count))
}
