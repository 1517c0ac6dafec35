package cuda

import (
	"bytes"
	"fmt"
	"math"
	"unsafe"
)

// The command list.
//
// A forward step is about 15 operations per layer, 500 or more for a
// 36-layer model, and each becomes a kernel launch. Sending every launch
// to the device goroutine over a channel would cost a goroutine hand-over
// (microseconds) per launch. Instead the backend's operations only record
// what to launch — the kernel, the launch shape and the argument values,
// copied by value — into a list, and the list runs in one piece on the
// device goroutine when the host needs a result: at Read (the logits at
// the end of a step), or when the backend must change memory that recorded
// commands may still use (growing a scratch buffer, freeing memory, Close).
// So a forward step costs one channel round trip.
//
// Small host arrays that a step needs on the GPU (token ids, positions,
// KV slots, block tables) are recorded too: they are appended to a host
// staging area, and each recorded argument that refers to them holds an
// offset into it. At flush the whole staging area is copied to a device
// "arena" in one cuMemcpyHtoD, and those arguments become arena address +
// offset. Equal arrays recorded in the same list share one copy (every
// layer's attention uses the same block tables).
//
// Everything runs in order on CUDA's legacy default stream, so a command
// sees the effects of every command recorded before it.

// maxArgs bounds the parameters of one kernel (attention has 15).
const maxArgs = 16

// arg is one recorded kernel argument.
type arg struct {
	kind  argKind
	v     uint64 // the value: a pointer, or an integer or float's bits
	arena bool   // v is an offset into the upload arena, not an address
}

func ptrArg(p uint64) arg  { return arg{kind: argPtr, v: p} }
func arenaArg(off int) arg { return arg{kind: argPtr, v: uint64(off), arena: true} }
func i32Arg(v int) arg     { return arg{kind: argI32, v: uint64(uint32(int32(v)))} }
func i64Arg(v int64) arg   { return arg{kind: argI64, v: uint64(v)} }
func f32Arg(v float32) arg { return arg{kind: argF32, v: uint64(math.Float32bits(v))} }
func (a arg) resolve(base uint64) uint64 {
	if a.arena {
		return base + a.v
	}
	return a.v
}

// command is one recorded launch, or a device-to-device copy (k == nil:
// args[0] is the destination, args[1] the source, bytes the size).
type command struct {
	k     *kernel
	shape dims
	args  [maxArgs]arg
	nargs int
	bytes int64
}

// recorder holds the commands and staged uploads of the next flush.
type recorder struct {
	cmds    []command
	stage   []byte  // (bytes) host image of the upload arena
	uploads []span  // what was staged, for sharing equal arrays
	scratch []int32 // reused to build flattened arrays
}

// span is a staged array: stage[off : off+n].
type span struct{ off, n int }

// arenaAlign keeps every staged array 16-byte aligned on the device.
const arenaAlign = 16

// launch records a kernel launch. A wrong number or kind of arguments is
// a bug in this package and panics (the CPU tests record every operation).
func (r *recorder) launch(k *kernel, shape dims, args ...arg) {
	if len(args) != len(k.params) {
		panic(fmt.Sprintf("cuda: %s takes %d arguments, %d recorded", k.name, len(k.params), len(args)))
	}
	c := command{k: k, shape: shape, nargs: len(args)}
	for i, a := range args {
		if a.kind != k.params[i] {
			panic(fmt.Sprintf("cuda: %s argument %d is a %s, a %s was recorded", k.name, i, k.params[i], a.kind))
		}
		c.args[i] = a
	}
	r.cmds = append(r.cmds, c)
}

// copy records a device-to-device copy of n bytes.
func (r *recorder) copy(dst, src arg, n int64) {
	c := command{nargs: 2, bytes: n}
	c.args[0], c.args[1] = dst, src
	r.cmds = append(r.cmds, c)
}

// stageBytes appends b to the staging area and returns its arena offset,
// or the offset of an equal array already staged in this list.
func (r *recorder) stageBytes(b []byte) int {
	for _, s := range r.uploads {
		if s.n == len(b) && bytes.Equal(r.stage[s.off:s.off+s.n], b) {
			return s.off
		}
	}
	off := len(r.stage)
	if pad := off % arenaAlign; pad != 0 {
		off += arenaAlign - pad
	}
	for len(r.stage) < off {
		r.stage = append(r.stage, 0)
	}
	r.stage = append(r.stage, b...)
	r.uploads = append(r.uploads, span{off, len(b)})
	return off
}

// stageInt32 stages an int32 array (copied now: the caller may change it).
func (r *recorder) stageInt32(v []int32) int {
	if len(v) == 0 {
		return r.stageBytes(nil)
	}
	return r.stageBytes(unsafe.Slice((*byte)(unsafe.Pointer(&v[0])), 4*len(v)))
}

// stageFloat32 stages a float32 array.
func (r *recorder) stageFloat32(v []float32) int {
	if len(v) == 0 {
		return r.stageBytes(nil)
	}
	return r.stageBytes(unsafe.Slice((*byte)(unsafe.Pointer(&v[0])), 4*len(v)))
}

// reset empties the list after it ran, keeping its memory.
func (r *recorder) reset() {
	r.cmds, r.stage, r.uploads = r.cmds[:0], r.stage[:0], r.uploads[:0]
}

// empty reports whether nothing is recorded.
func (r *recorder) empty() bool { return len(r.cmds) == 0 }
