package gguf

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"

	"github.com/gollm/gollm/tensor"
)

// Writer builds a GGUF v3 file: metadata in the order added, then tensor
// infos, then each tensor's data at an aligned offset. Tensor data can be
// given as bytes or produced by a function while writing, so that a
// multi-gigabyte model never has to be held in memory.
//
// The Writer refuses anything the reader would reject (duplicate names,
// bad shapes, unknown types, data of the wrong size), so every file it
// writes opens again.
type Writer struct {
	// Alignment of the tensor data: 0 means DefaultAlign, or the value of
	// a general.alignment key added with Set. A value other than 32 is
	// written as general.alignment (uint32) unless Set already added it.
	Alignment int

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

// Set adds a metadata key. Adding a key twice is an error, and so is a
// Value that was not made with this package's constructors.
func (w *Writer) Set(key string, v Value) error {
	if err := checkName("metadata key", key); err != nil {
		return err
	}
	if w.keys[key] {
		return fmt.Errorf("%w: %q", ErrDuplicateKey, key)
	}
	if err := checkValue(v); err != nil {
		return fmt.Errorf("metadata %q: %w", key, err)
	}
	if key == alignmentKey {
		if _, err := alignmentOf(v); err != nil {
			return err
		}
	}
	w.keys[key] = true
	w.kvs = append(w.kvs, KV{key, v})
	return nil
}

// AddTensor adds a tensor with its data in memory. data is not copied and
// must not change before the file is written.
func (w *Writer) AddTensor(name string, t tensor.DType, shape []int64, data []byte) error {
	return w.AddTensorFunc(name, t, shape, func(out io.Writer) error {
		_, err := out.Write(data)
		return err
	}, int64(len(data)))
}

// AddTensorFunc adds a tensor whose data is written by fn, which must
// write exactly size bytes; size must match the type and shape.
func (w *Writer) AddTensorFunc(name string, t tensor.DType, shape []int64, fn func(io.Writer) error, size int64) error {
	if err := checkName("tensor name", name); err != nil {
		return err
	}
	if w.names[name] {
		return fmt.Errorf("%w: %q", ErrDuplicateTensor, name)
	}
	want, err := tensorBytes(name, t, shape)
	if err != nil {
		return err
	}
	if size != want {
		return fmt.Errorf("%w: tensor %q: %d data bytes given, %s %v needs %d", ErrDataSize, name, size, t, shape, want)
	}
	w.names[name] = true
	w.tensors = append(w.tensors, pendingTensor{
		info:  TensorInfo{Name: name, Type: t, Shape: slices.Clone(shape), Size: size},
		write: fn,
	})
	return nil
}

// WriteFile writes the file to path (created or truncated). On error the
// partial file is removed.
func (w *Writer) WriteFile(path string) (err error) {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(path)
		}
	}()
	bw := bufio.NewWriterSize(f, 1<<20)
	if _, err := w.WriteTo(bw); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	return f.Close()
}

// alignment resolves the data alignment and says whether general.alignment
// must be added to the metadata.
func (w *Writer) alignment() (align int, addKey bool, err error) {
	if w.keys[alignmentKey] {
		for _, kv := range w.kvs {
			if kv.Key == alignmentKey {
				align, _ = alignmentOf(kv.Value) // checked by Set
			}
		}
		if w.Alignment != 0 && w.Alignment != align {
			return 0, false, fmt.Errorf("%w: Writer.Alignment is %d but the general.alignment key says %d", ErrBadAlignment, w.Alignment, align)
		}
		return align, false, nil
	}
	align = w.Alignment
	if align == 0 {
		align = DefaultAlign
	}
	if align < 0 || int64(align) > maxAlignment || align&(align-1) != 0 {
		return 0, false, fmt.Errorf("%w: %d; it must be a power of two from 1 to 2^31", ErrBadAlignment, align)
	}
	return align, align != DefaultAlign, nil
}

// WriteTo writes the whole file to out.
func (w *Writer) WriteTo(out io.Writer) (int64, error) {
	align, addKey, err := w.alignment()
	if err != nil {
		return 0, err
	}
	kvs := w.kvs
	if addKey {
		kvs = append(slices.Clip(kvs), KV{alignmentKey, Uint32(uint32(align))})
	}
	// Lay out tensor data offsets: each tensor starts aligned, in the
	// order added.
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
			return cw.n, fmt.Errorf("%w: tensor %q: wrote %d bytes, declared %d", ErrDataSize, t.info.Name, got, t.info.Size)
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

// checkName applies the reader's rules for keys and tensor names.
func checkName(what, s string) error {
	if s == "" {
		return fmt.Errorf("%w: %s", ErrEmptyName, what)
	}
	if len(s) > maxNameLength {
		return fmt.Errorf("%w: %s of %d bytes (at most %d)", ErrNameTooLong, what, len(s), maxNameLength)
	}
	return nil
}

// checkValue verifies that v's Go value matches its type tag, that arrays
// hold the slice type their Elem names, and that nesting and string
// lengths stay within what the reader accepts.
func checkValue(v Value) error {
	if v.Type == TypeArray {
		a, ok := v.data.(*Array)
		if !ok || a == nil {
			return fmt.Errorf("%w: array value holds %T", ErrBadValueType, v.data)
		}
		return checkArray(a, 1)
	}
	var ok bool
	switch v.Type {
	case TypeUint8:
		_, ok = v.data.(uint8)
	case TypeInt8:
		_, ok = v.data.(int8)
	case TypeUint16:
		_, ok = v.data.(uint16)
	case TypeInt16:
		_, ok = v.data.(int16)
	case TypeUint32:
		_, ok = v.data.(uint32)
	case TypeInt32:
		_, ok = v.data.(int32)
	case TypeFloat32:
		_, ok = v.data.(float32)
	case TypeBool:
		_, ok = v.data.(bool)
	case TypeString:
		var s string
		if s, ok = v.data.(string); ok && len(s) > maxStringLength {
			return fmt.Errorf("%w: string of %d bytes", ErrCountTooLarge, len(s))
		}
	case TypeUint64:
		_, ok = v.data.(uint64)
	case TypeInt64:
		_, ok = v.data.(int64)
	case TypeFloat64:
		_, ok = v.data.(float64)
	}
	if !ok {
		return fmt.Errorf("%w: %s value holds Go type %T", ErrBadValueType, v.Type, v.data)
	}
	return nil
}

func checkArray(a *Array, depth int) error {
	if depth > maxArrayDepth {
		return fmt.Errorf("%w: more than %d levels", ErrNestingTooDeep, maxArrayDepth)
	}
	elem, ok := sliceElemType(a.Values)
	if !ok || elem != a.Elem {
		return fmt.Errorf("%w: array of %s holds %T", ErrBadValueType, a.Elem, a.Values)
	}
	switch vs := a.Values.(type) {
	case []string:
		for _, s := range vs {
			if len(s) > maxStringLength {
				return fmt.Errorf("%w: string of %d bytes", ErrCountTooLarge, len(s))
			}
		}
	case []*Array:
		for _, inner := range vs {
			if inner == nil {
				return fmt.Errorf("%w: nil inner array", ErrBadValueType)
			}
			if err := checkArray(inner, depth+1); err != nil {
				return err
			}
		}
	}
	return nil
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
