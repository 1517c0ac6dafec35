package model

import (
	"context"
	"encoding/binary"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/gollm/gollm/tensor"
)

// The NaN policy: a weight that is NaN or infinite is refused when the
// model is loaded, with an error naming the tensor and the place.
//
// Why at load time. The two CPU paths handled a NaN weight differently,
// and neither said so. The exact path carries the NaN through every
// product, so the logits come out NaN. The default path rounds each
// matrix input to 8 bits first (kernels.QuantizeRow, as llama.cpp does),
// and the Q8_K rounding used with K-quant weights looks for the largest
// |x| with "a > amax", which is false for NaN: a NaN activation is never
// the maximum, and a block whose activations are all NaN (RMSNorm spreads
// one NaN over the whole row) is written as zeros. So one NaN block scale
// in blk.1.ffn_down of the test fixture gave logits of exactly 0 for every
// token on the default path, and greedy decoding picked token 0 at every
// step: plausible garbage. Checking the weights removes the cause for both
// paths, and any backend, without touching the kernels' numerics.
//
// What is checked. Every value a weight stands for must be finite:
//
//   - F32, F16, BF16: every element.
//   - Quantized types: each block's half scales, d, and dmin or m where
//     the format has one. The other fields are small integers, so the
//     values d·sc·q − dmin·m are finite when the scales are: the largest
//     is |d|·|sc|·|q| ≤ 65504 · 128 · 32 ≈ 2.7e8 (Q6_K's 8-bit sub-scale
//     times its 6-bit quant), far inside float32's 3.4e38.
//     (TestScaleCheckMatchesDequantize checks this on random blocks.)
//   - Q8_K is refused as a weight type: it is ggml's activation format
//     for K-quant products, which no converter writes as a weight, and
//     its scale is a float32, so a finite scale of 3e38 times a quant of
//     127 would overflow and the scale check would not see it.
//
// The scan reads every float, 8 bytes at a time, and one or two halves
// per quantized block, split across GOMAXPROCS goroutines. On the 2-core
// development VM it takes 80-90 ms per GB of weights once the file's
// pages are mapped (about memory speed); on a fresh mapping the page
// faults come on top (0.3-0.9 s/GB there), but those the first forward
// step pays when Load has not (see BenchmarkCheckFinite).

// scaleField is one half scale inside a quantized block.
type scaleField struct {
	name   string
	offset int // bytes from the start of the block
}

// scaleFields lists the half fields of each quantized weight type that
// tensor.DequantizeRow reads, at their offsets in ggml's block layouts.
var scaleFields = map[tensor.DType][]scaleField{
	tensor.Q4_0: {{"d", int(unsafe.Offsetof(tensor.BlockQ4_0{}.D))}},
	tensor.Q4_1: {{"d", int(unsafe.Offsetof(tensor.BlockQ4_1{}.D))}, {"m", int(unsafe.Offsetof(tensor.BlockQ4_1{}.M))}},
	tensor.Q5_0: {{"d", int(unsafe.Offsetof(tensor.BlockQ5_0{}.D))}},
	tensor.Q5_1: {{"d", int(unsafe.Offsetof(tensor.BlockQ5_1{}.D))}, {"m", int(unsafe.Offsetof(tensor.BlockQ5_1{}.M))}},
	tensor.Q8_0: {{"d", int(unsafe.Offsetof(tensor.BlockQ8_0{}.D))}},
	tensor.Q2_K: {{"d", int(unsafe.Offsetof(tensor.BlockQ2_K{}.D))}, {"dmin", int(unsafe.Offsetof(tensor.BlockQ2_K{}.Dmin))}},
	tensor.Q3_K: {{"d", int(unsafe.Offsetof(tensor.BlockQ3_K{}.D))}},
	tensor.Q4_K: {{"d", int(unsafe.Offsetof(tensor.BlockQ4_K{}.D))}, {"dmin", int(unsafe.Offsetof(tensor.BlockQ4_K{}.Dmin))}},
	tensor.Q5_K: {{"d", int(unsafe.Offsetof(tensor.BlockQ5_K{}.D))}, {"dmin", int(unsafe.Offsetof(tensor.BlockQ5_K{}.Dmin))}},
	tensor.Q6_K: {{"d", int(unsafe.Offsetof(tensor.BlockQ6_K{}.D))}},
}

// checkable reports whether the finiteness check knows type t's layout.
// It covers every type tensor.DequantizeRow reads but Q8_K (see above),
// and so every type a backend can load.
func checkable(t tensor.DType) bool {
	switch t {
	case tensor.F32, tensor.F16, tensor.BF16:
		return true
	}
	_, ok := scaleFields[t]
	return ok
}

// Non-finite tests on bit patterns: a float is NaN or ±Inf exactly when
// its exponent bits are all ones.
func nonFiniteF32(b uint32) bool  { return b&0x7F80_0000 == 0x7F80_0000 }
func nonFiniteF16(h uint16) bool  { return h&0x7C00 == 0x7C00 }
func nonFiniteBF16(h uint16) bool { return h&0x7F80 == 0x7F80 }

// swarLanes describes the lanes of a 64-bit word for anyNonFinite: the
// exponent mask of each lane, a 1 in each lane, and each lane's top bit.
type swarLanes struct{ exp, one, top uint64 }

var (
	lanesF32  = swarLanes{0x7F800000_7F800000, 0x00000001_00000001, 0x80000000_80000000}
	lanesF16  = swarLanes{0x7C00_7C00_7C00_7C00, 0x0001_0001_0001_0001, 0x8000_8000_8000_8000}
	lanesBF16 = swarLanes{0x7F80_7F80_7F80_7F80, 0x0001_0001_0001_0001, 0x8000_8000_8000_8000}
)

// anyNonFinite reports whether some lane of w holds a NaN or ±Inf, with
// no false positives. t = (w & exp) ^ exp has a zero lane exactly where
// the exponent is all ones. The classic "has a zero lane" test,
// (t - one) & ^t & top, is then exact: a lane of t never has its top
// (sign) bit set, and a nonzero lane is at least 0x80 (bf16's lowest
// exponent bit), so subtracting 1 and a borrow from the lane below cannot
// set its top bit; only a zero lane, which wraps to all ones, can.
func (l swarLanes) anyNonFinite(w uint64) bool { return l.zeroLanes(w) != 0 }

// zeroLanes is anyNonFinite before the comparison with 0, so that several
// words can be tested with one branch.
func (l swarLanes) zeroLanes(w uint64) uint64 {
	t := (w & l.exp) ^ l.exp
	return (t - l.one) &^ t & l.top
}

// firstNonFiniteFloats returns the index of the first NaN or ±Inf among
// the F32, F16 or BF16 values in data, or -1. It tests 32 bytes per step
// with anyNonFinite and looks at single values only around a hit.
func firstNonFiniteFloats(t tensor.DType, data []byte) int {
	size, lanes := 2, lanesF16
	switch t {
	case tensor.F32:
		size, lanes = 4, lanesF32
	case tensor.BF16:
		lanes = lanesBF16
	}
	le := binary.LittleEndian
	i := 0
	for ; i+32 <= len(data); i += 32 {
		d := data[i : i+32 : i+32] // one bounds check for the four loads
		if lanes.zeroLanes(le.Uint64(d[0:]))|lanes.zeroLanes(le.Uint64(d[8:]))|
			lanes.zeroLanes(le.Uint64(d[16:]))|lanes.zeroLanes(le.Uint64(d[24:])) != 0 {
			break
		}
	}
	for ; i+size <= len(data); i += size {
		var bad bool
		switch t {
		case tensor.F32:
			bad = nonFiniteF32(le.Uint32(data[i:]))
		case tensor.F16:
			bad = nonFiniteF16(le.Uint16(data[i:]))
		default:
			bad = nonFiniteBF16(le.Uint16(data[i:]))
		}
		if bad {
			return i / size
		}
	}
	return -1
}

// firstNonFiniteScale returns the first block of a quantized tensor whose
// half scale is NaN or ±Inf, the field, and its value; block -1 when all
// are finite.
func firstNonFiniteScale(t tensor.DType, data []byte) (block int, field string, value float32) {
	bb, fields := t.BlockBytes(), scaleFields[t] // a map lookup: not in the loop
	le := binary.LittleEndian
	for b := 0; b+bb <= len(data); b += bb {
		for _, f := range fields {
			if h := le.Uint16(data[b+f.offset:]); nonFiniteF16(h) {
				return b / bb, f.name, tensor.HalfToFloat(h)
			}
		}
	}
	return -1, "", 0
}

// finiteChunkBytes is the size of one unit of work of checkFinite: big
// enough that handing it out costs nothing next to scanning it (≈0.1 ms
// at memory speed), small enough that a 4-layer model still splits.
const finiteChunkBytes = 1 << 20

// finiteChunk is a piece of one part's data, a whole number of blocks.
type finiteChunk struct {
	part  *part
	first int // index of the chunk's first block (first value for floats)
	data  []byte
}

// checkFinite checks that every value of every part is finite (see the
// policy above), in parallel. It returns an error wrapping ErrNotFinite
// for the first bad value in the order of parts, and within a part in
// file order, so the answer does not depend on scheduling.
//
// When ctx is done it returns ctx.Err(): each worker looks at ctx before
// taking a chunk, so after a cancellation at most one chunk per worker is
// still scanned (a few MiB, milliseconds), however large the model.
// progress, when not nil, gets the bytes scanned so far (see
// Options.OnProgress).
func checkFinite(ctx context.Context, parts []*part, progress func(done, total int64)) error {
	var chunks []finiteChunk
	var total int64
	for _, p := range parts {
		total += int64(len(p.t.Data))
		bb := p.t.Type.BlockBytes()
		step := max(1, finiteChunkBytes/bb) * bb
		for off := 0; off < len(p.t.Data); off += step {
			end := min(off+step, len(p.t.Data))
			chunks = append(chunks, finiteChunk{part: p, first: off / bb, data: p.t.Data[off:end]})
		}
	}
	// The progress count is added to and reported under a lock, so that
	// the calls see done in increasing order although the workers finish
	// their chunks in any order. One lock per MiB scanned costs nothing.
	var (
		progMu sync.Mutex
		done   int64
	)
	report := func(n int) {
		if progress == nil {
			return
		}
		progMu.Lock()
		done += int64(n)
		progress(done, total)
		progMu.Unlock()
	}
	report(0)
	// Workers take chunks in order; once a chunk has an error, later
	// chunks are skipped, earlier ones still finish and may replace it.
	var (
		next  atomic.Int64
		first atomic.Int64 // index of the earliest chunk with an error
		mu    sync.Mutex
		errs  = map[int]error{}
		wg    sync.WaitGroup
	)
	first.Store(int64(len(chunks)))
	workers := min(runtime.GOMAXPROCS(0), len(chunks))
	for range workers {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= len(chunks) || int64(i) > first.Load() {
					return
				}
				if err := chunks[i].check(); err != nil {
					mu.Lock()
					errs[i] = err
					if int64(i) < first.Load() {
						first.Store(int64(i))
					}
					mu.Unlock()
				}
				report(len(chunks[i].data))
			}
		})
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return err
	}
	return errs[int(first.Load())]
}

// check scans one chunk and describes the first bad value.
func (c finiteChunk) check() error {
	p, t := c.part, c.part.t.Type
	if bs := t.BlockSize(); bs > 1 {
		b, field, v := firstNonFiniteScale(t, c.data)
		if b < 0 {
			return nil
		}
		b += c.first
		return fmt.Errorf("%w: %s at %s: block %d has scale %s = %g", ErrNotFinite, p, p.at(b*bs, bs), b, field, v)
	}
	i := firstNonFiniteFloats(t, c.data)
	if i < 0 {
		return nil
	}
	var v [1]float32
	size := t.BlockBytes()
	_ = tensor.DequantizeRow(t, v[:], c.data[i*size:(i+1)*size]) // one value of a float type: cannot fail
	i += c.first
	return fmt.Errorf("%w: %s at %s is %g", ErrNotFinite, p, p.at(i, 1), v[0])
}
