package gguf

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"

	"github.com/gollm/gollm/tensor"
)

// Writer builds a GGUF v3 file: metadata in the order added, then tensor
// infos, then each tensor's data at an aligned offset. Tensor data can be
// given as bytes or produced by a function while writing, so that a
// multi-gigabyte model never has to be held in memory.
type Writer struct {
	Alignment int // 0 means DefaultAlign; written as general.alignment when not 32

	kvs     []KV
	keys    map[string]bool
	tensors []pendingTensor
	names   map[string]bool
}

type pendingTensor struct {
	info  TensorInfo
	write func(w io.Writer) error
}

// NewWriter returns an empty Writer with the default alignment.
func NewWriter() *Writer {
	return &Writer{keys: map[string]bool{}, names: map[string]bool{}}
}

// Set adds a metadata key. Adding a key twice is an error.
func (w *Writer) Set(key string, v Value) error {
	if key == "" {
		return ErrEmptyName
	}
	if w.keys[key] {
		return fmt.Errorf("%w: %q", ErrDuplicateKey, key)
	}
	if _, ok := sliceElemType(v.Any()); v.Type == TypeArray && !ok && v.Array() == nil {
		return fmt.Errorf("%w: array value for %q", ErrBadValueType, key)
	}
	w.keys[key] = true
	w.kvs = append(w.kvs, KV{key, v})
	return nil
}

// AddTensor adds a tensor with its data in memory.
func (w *Writer) AddTensor(name string, t tensor.DType, shape []int64, data []byte) error {
	return w.AddTensorFunc(name, t, shape, func(out io.Writer) error {
		_, err := out.Write(data)
		return err
	}, int64(len(data)))
}

// AddTensorFunc adds a tensor whose data is written by fn, which must
// write exactly size bytes; size must match the type and shape.
func (w *Writer) AddTensorFunc(name string, t tensor.DType, shape []int64, fn func(io.Writer) error, size int64) error {
	if name == "" {
		return ErrEmptyName
	}
	if w.names[name] {
		return fmt.Errorf("%w: %q", ErrDuplicateTensor, name)
	}
	if len(shape) > MaxDims {
		return fmt.Errorf("%w: %q has %d", ErrTooManyDims, name, len(shape))
	}
	if !t.Known() {
		return fmt.Errorf("%w: %q has type %d", ErrUnknownType, name, uint32(t))
	}
	elems := int64(1)
	for _, d := range shape {
		if d < 0 || (d > 0 && elems > math.MaxInt64/d) {
			return fmt.Errorf("%w: %q shape %v", ErrBadShape, name, shape)
		}
		elems *= d
	}
	ne0 := int64(1)
	if len(shape) > 0 {
		ne0 = shape[0]
	}
	if ne0%int64(t.BlockSize()) != 0 {
		return fmt.Errorf("%w: %q ne0=%d, %s blocks hold %d", ErrBlockMismatch, name, ne0, t, t.BlockSize())
	}
	want := elems / int64(t.BlockSize()) * int64(t.BlockBytes())
	if size != want {
		return fmt.Errorf("gguf: tensor %q: %d data bytes given, %s %v needs %d", name, size, t, shape, want)
	}
	w.names[name] = true
	w.tensors = append(w.tensors, pendingTensor{
		info:  TensorInfo{Name: name, Type: t, Shape: append([]int64(nil), shape...), Size: size},
		write: fn,
	})
	return nil
}

// WriteFile writes the file to path (created or truncated).
func (w *Writer) WriteFile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	if _, err := w.WriteTo(bw); err != nil {
		f.Close()
		return err
	}
	if err := bw.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// WriteTo writes the whole file to out.
func (w *Writer) WriteTo(out io.Writer) (int64, error) {
	align := w.Alignment
	if align == 0 {
		align = DefaultAlign
	}
	if align <= 0 || align&(align-1) != 0 || align > maxAlignment {
		return 0, fmt.Errorf("%w: %d", ErrBadAlignment, align)
	}
	kvs := w.kvs
	if align != DefaultAlign && !w.keys[alignmentKey] {
		kvs = append(append([]KV(nil), kvs...), KV{alignmentKey, Uint32(uint32(align))})
	}
	// Lay out tensor data offsets.
	var off uint64
	for i := range w.tensors {
		w.tensors[i].info.Offset = off
		off = uint64(alignUp(int64(off)+w.tensors[i].info.Size, int64(align)))
	}

	cw := &countingWriter{w: out}
	e := encoder{w: cw}
	e.raw([]byte(magic))
	e.u32(3)
	e.u64(uint64(len(w.tensors)))
	e.u64(uint64(len(kvs)))
	for _, kv := range kvs {
		e.str(kv.Key)
		e.u32(uint32(kv.Value.Type))
		e.value(kv.Value)
	}
	for _, t := range w.tensors {
		e.str(t.info.Name)
		e.u32(uint32(len(t.info.Shape)))
		for _, d := range t.info.Shape {
			e.u64(uint64(d))
		}
		e.u32(uint32(t.info.Type))
		e.u64(t.info.Offset)
	}
	if e.err != nil {
		return cw.n, e.err
	}
	if err := pad(cw, align); err != nil {
		return cw.n, err
	}
	start := cw.n
	for _, t := range w.tensors {
		before := cw.n
		if err := t.write(cw); err != nil {
			return cw.n, fmt.Errorf("gguf: writing tensor %q: %w", t.info.Name, err)
		}
		if got := cw.n - before; got != t.info.Size {
			return cw.n, fmt.Errorf("gguf: tensor %q: wrote %d bytes, declared %d", t.info.Name, got, t.info.Size)
		}
		if uint64(before-start) != t.info.Offset {
			return cw.n, errors.New("gguf: internal error: tensor offset drift")
		}
		if err := pad(cw, align); err != nil {
			return cw.n, err
		}
	}
	return cw.n, nil
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

func pad(cw *countingWriter, align int) error {
	if r := cw.n % int64(align); r != 0 {
		_, err := cw.Write(make([]byte, int64(align)-r))
		return err
	}
	return nil
}

// encoder writes little-endian values, remembering the first error.
type encoder struct {
	w   io.Writer
	err error
	buf [8]byte
}

func (e *encoder) raw(p []byte) {
	if e.err == nil {
		_, e.err = e.w.Write(p)
	}
}
func (e *encoder) u8(v uint8) { e.buf[0] = v; e.raw(e.buf[:1]) }
func (e *encoder) u16(v uint16) {
	binary.LittleEndian.PutUint16(e.buf[:], v)
	e.raw(e.buf[:2])
}
func (e *encoder) u32(v uint32) {
	binary.LittleEndian.PutUint32(e.buf[:], v)
	e.raw(e.buf[:4])
}
func (e *encoder) u64(v uint64) {
	binary.LittleEndian.PutUint64(e.buf[:], v)
	e.raw(e.buf[:8])
}
func (e *encoder) str(s string) { e.u64(uint64(len(s))); e.raw([]byte(s)) }

func (e *encoder) value(v Value) {
	switch x := v.data.(type) {
	case uint8:
		e.u8(x)
	case int8:
		e.u8(uint8(x))
	case uint16:
		e.u16(x)
	case int16:
		e.u16(uint16(x))
	case uint32:
		e.u32(x)
	case int32:
		e.u32(uint32(x))
	case float32:
		e.u32(math.Float32bits(x))
	case bool:
		if x {
			e.u8(1)
		} else {
			e.u8(0)
		}
	case string:
		e.str(x)
	case uint64:
		e.u64(x)
	case int64:
		e.u64(uint64(x))
	case float64:
		e.u64(math.Float64bits(x))
	case *Array:
		e.array(x)
	default:
		if e.err == nil {
			e.err = fmt.Errorf("%w: Go type %T", ErrBadValueType, v.data)
		}
	}
}

func (e *encoder) array(a *Array) {
	e.u32(uint32(a.Elem))
	e.u64(uint64(a.Len()))
	switch s := a.Values.(type) {
	case []uint8:
		e.raw(s)
	case []int8:
		for _, x := range s {
			e.u8(uint8(x))
		}
	case []uint16:
		for _, x := range s {
			e.u16(x)
		}
	case []int16:
		for _, x := range s {
			e.u16(uint16(x))
		}
	case []uint32:
		for _, x := range s {
			e.u32(x)
		}
	case []int32:
		for _, x := range s {
			e.u32(uint32(x))
		}
	case []float32:
		for _, x := range s {
			e.u32(math.Float32bits(x))
		}
	case []bool:
		for _, x := range s {
			if x {
				e.u8(1)
			} else {
				e.u8(0)
			}
		}
	case []string:
		for _, x := range s {
			e.str(x)
		}
	case []uint64:
		for _, x := range s {
			e.u64(x)
		}
	case []int64:
		for _, x := range s {
			e.u64(uint64(x))
		}
	case []float64:
		for _, x := range s {
			e.u64(math.Float64bits(x))
		}
	case []*Array:
		for _, x := range s {
			e.array(x)
		}
	}
}
