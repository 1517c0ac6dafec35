package gguf

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/bits"
	"os"
	"slices"
	"sort"

	"github.com/gollm/gollm/tensor"
	"golang.org/x/sys/unix"
)

// Limits on what the parser accepts. They are far above anything a real
// model uses and exist so that a hostile file cannot ask for absurd work.
const (
	MaxDims         = 4       // ggml's GGML_MAX_DIMS
	maxArrayDepth   = 8       // arrays of arrays of …
	maxAlignment    = 1 << 16 // general.alignment upper bound
	DefaultAlign    = 32      // alignment when general.alignment is absent
	magic           = "GGUF"
	minKVBytes      = 8 + 1 + 4 // key length, one key byte, value type
	minTensorBytes  = 8 + 1 + 4 + 8 + 4 + 8
	alignmentKey    = "general.alignment"
	maxStringLength = 1 << 30
)

// KV is one metadata entry in file order.
type KV struct {
	Key   string
	Value Value
}

// TensorInfo describes one tensor: its name, element type, shape with the
// innermost dimension first (ggml's ne0, ne1, …), the offset of its data
// from the start of the data section, and its byte size.
type TensorInfo struct {
	Name   string
	Type   tensor.DType
	Shape  []int64 // (ne0, ne1, …), ne0 innermost
	Offset uint64  // from the start of the data section
	Size   int64   // bytes
}

// Elements is the number of values in the tensor.
func (t TensorInfo) Elements() int64 {
	n := int64(1)
	for _, d := range t.Shape {
		n *= d
	}
	return n
}

// Tensor is a TensorInfo with its data: a view into the file, not a copy.
type Tensor struct {
	TensorInfo
	Data []byte
}

// File is an open GGUF file.
type File struct {
	Version    uint32
	Alignment  int
	DataOffset int64 // absolute file offset of the data section

	kvs     []KV
	kvIndex map[string]int
	tensors []TensorInfo
	tIndex  map[string]int

	data   []byte // whole file contents (mapping or caller's buffer)
	mapped bool
	closed bool
}

// Open maps path read-only and parses its header, metadata and tensor
// infos. Tensor data is not read until it is used.
func Open(path string) (*File, error) {
	fd, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fd.Close()
	st, err := fd.Stat()
	if err != nil {
		return nil, err
	}
	size := st.Size()
	if size < 4+4+8+8 {
		return nil, fmt.Errorf("%w: %s is %d bytes, smaller than a GGUF header", ErrTruncated, path, size)
	}
	if size > math.MaxInt {
		return nil, fmt.Errorf("%w: %s is too large to map", ErrCountTooLarge, path)
	}
	data, err := unix.Mmap(int(fd.Fd()), 0, int(size), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("gguf: mmap %s: %w", path, err)
	}
	f, err := parse(data)
	if err != nil {
		unix.Munmap(data)
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	f.mapped = true
	return f, nil
}

// Parse parses a GGUF image held in memory. The File keeps data; Tensor
// views point into it.
func Parse(data []byte) (*File, error) { return parse(data) }

// Close releases the mapping. Tensor data views become invalid.
func (f *File) Close() error {
	if f.closed {
		return nil
	}
	f.closed = true
	if f.mapped {
		return unix.Munmap(f.data)
	}
	return nil
}

// Bytes is the size of the whole file.
func (f *File) Bytes() int64 { return int64(len(f.data)) }

// KVs returns the metadata in file order. The slice must not be modified.
func (f *File) KVs() []KV { return f.kvs }

// Tensors returns the tensor infos in file order. The slice must not be modified.
func (f *File) Tensors() []TensorInfo { return f.tensors }

// Lookup returns a metadata value.
func (f *File) Lookup(key string) (Value, bool) {
	i, ok := f.kvIndex[key]
	if !ok {
		return Value{}, false
	}
	return f.kvs[i].Value, true
}

// Has reports whether a metadata key is present.
func (f *File) Has(key string) bool { _, ok := f.kvIndex[key]; return ok }

// Tensor returns a tensor by name, its data a view into the file.
func (f *File) Tensor(name string) (Tensor, error) {
	if f.closed {
		return Tensor{}, ErrClosed
	}
	i, ok := f.tIndex[name]
	if !ok {
		return Tensor{}, fmt.Errorf("%w: %q", ErrTensorNotFound, name)
	}
	ti := f.tensors[i]
	start := f.DataOffset + int64(ti.Offset)
	return Tensor{TensorInfo: ti, Data: f.data[start : start+ti.Size : start+ti.Size]}, nil
}

// ---- parsing ----

// decoder reads little-endian values from buf, tracking the position.
// Every read checks the remaining length first.
type decoder struct {
	buf []byte
	pos int
}

func (d *decoder) remaining() int { return len(d.buf) - d.pos }

func (d *decoder) need(n int, what string) error {
	if n < 0 || d.remaining() < n {
		return fmt.Errorf("%w: reading %s at offset %d needs %d bytes, %d left", ErrTruncated, what, d.pos, n, d.remaining())
	}
	return nil
}

func (d *decoder) u8(what string) (uint8, error) {
	if err := d.need(1, what); err != nil {
		return 0, err
	}
	v := d.buf[d.pos]
	d.pos++
	return v, nil
}

func (d *decoder) u16(what string) (uint16, error) {
	if err := d.need(2, what); err != nil {
		return 0, err
	}
	v := binary.LittleEndian.Uint16(d.buf[d.pos:])
	d.pos += 2
	return v, nil
}

func (d *decoder) u32(what string) (uint32, error) {
	if err := d.need(4, what); err != nil {
		return 0, err
	}
	v := binary.LittleEndian.Uint32(d.buf[d.pos:])
	d.pos += 4
	return v, nil
}

func (d *decoder) u64(what string) (uint64, error) {
	if err := d.need(8, what); err != nil {
		return 0, err
	}
	v := binary.LittleEndian.Uint64(d.buf[d.pos:])
	d.pos += 8
	return v, nil
}

// count reads a 64-bit element count (a 32-bit one in GGUF v1, which we
// reject earlier) and checks that count*minBytes fits in what is left.
func (d *decoder) count(what string, minBytes int) (int, error) {
	n, err := d.u64(what)
	if err != nil {
		return 0, err
	}
	if n > uint64(d.remaining())/uint64(max(minBytes, 1)) {
		return 0, fmt.Errorf("%w: %s is %d at offset %d, but only %d bytes remain", ErrCountTooLarge, what, n, d.pos-8, d.remaining())
	}
	return int(n), nil
}

func (d *decoder) str(what string) (string, error) {
	n, err := d.u64(what + " length")
	if err != nil {
		return "", err
	}
	if n > uint64(d.remaining()) || n > maxStringLength {
		return "", fmt.Errorf("%w: %s length %d at offset %d exceeds the %d bytes left", ErrCountTooLarge, what, n, d.pos-8, d.remaining())
	}
	s := string(d.buf[d.pos : d.pos+int(n)])
	d.pos += int(n)
	return s, nil
}

func parse(data []byte) (*File, error) {
	d := &decoder{buf: data}
	if err := d.need(4, "magic"); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadMagic, err)
	}
	if string(data[:4]) != magic {
		return nil, fmt.Errorf("%w: first bytes are %q", ErrBadMagic, data[:4])
	}
	d.pos = 4
	version, err := d.u32("version")
	if err != nil {
		return nil, err
	}
	if version&0xFFFF == 0 && version != 0 {
		// A small version number written big-endian reads as N<<24.
		return nil, fmt.Errorf("%w (version field reads 0x%08x, which is version %d byte-swapped)", ErrBigEndian, version, bits.ReverseBytes32(version))
	}
	if version != 2 && version != 3 {
		return nil, fmt.Errorf("%w: %d (gollm reads versions 2 and 3)", ErrVersion, version)
	}
	nTensors, err := d.count("tensor count", minTensorBytes)
	if err != nil {
		return nil, err
	}
	nKV, err := d.count("metadata count", minKVBytes)
	if err != nil {
		return nil, err
	}

	f := &File{
		Version:   version,
		Alignment: DefaultAlign,
		kvs:       make([]KV, 0, nKV),
		kvIndex:   make(map[string]int, nKV),
		tensors:   make([]TensorInfo, 0, nTensors),
		tIndex:    make(map[string]int, nTensors),
		data:      data,
	}

	for i := 0; i < nKV; i++ {
		key, err := d.str("metadata key")
		if err != nil {
			return nil, fmt.Errorf("metadata entry %d: %w", i, err)
		}
		if key == "" {
			return nil, fmt.Errorf("%w: metadata entry %d", ErrEmptyName, i)
		}
		if _, dup := f.kvIndex[key]; dup {
			return nil, fmt.Errorf("%w: %q", ErrDuplicateKey, key)
		}
		t, err := d.u32("value type")
		if err != nil {
			return nil, fmt.Errorf("metadata %q: %w", key, err)
		}
		v, err := d.value(ValueType(t), 0)
		if err != nil {
			return nil, fmt.Errorf("metadata %q: %w", key, err)
		}
		f.kvIndex[key] = len(f.kvs)
		f.kvs = append(f.kvs, KV{key, v})
	}

	if v, ok := f.Lookup(alignmentKey); ok {
		a, isInt := v.asInt()
		if !isInt || a <= 0 || a > maxAlignment || a&(a-1) != 0 {
			return nil, fmt.Errorf("%w: %v (%s); it must be a power of two up to %d", ErrBadAlignment, v.Any(), v.Type, maxAlignment)
		}
		f.Alignment = int(a)
	}

	for i := 0; i < nTensors; i++ {
		ti, err := d.tensorInfo()
		if err != nil {
			return nil, fmt.Errorf("tensor info %d: %w", i, err)
		}
		if _, dup := f.tIndex[ti.Name]; dup {
			return nil, fmt.Errorf("%w: %q", ErrDuplicateTensor, ti.Name)
		}
		if ti.Offset%uint64(f.Alignment) != 0 {
			return nil, fmt.Errorf("%w: tensor %q at data offset %d, alignment %d", ErrMisaligned, ti.Name, ti.Offset, f.Alignment)
		}
		f.tIndex[ti.Name] = len(f.tensors)
		f.tensors = append(f.tensors, ti)
	}

	// The data section starts at the next multiple of the alignment.
	dataOff := alignUp(int64(d.pos), int64(f.Alignment))
	if nTensors > 0 && dataOff > int64(len(data)) {
		return nil, fmt.Errorf("%w: data section would start at %d, file is %d bytes", ErrTruncated, dataOff, len(data))
	}
	f.DataOffset = dataOff
	if err := f.checkRanges(); err != nil {
		return nil, err
	}
	return f, nil
}

// value reads a metadata value of type t. depth counts array nesting.
func (d *decoder) value(t ValueType, depth int) (Value, error) {
	switch t {
	case TypeUint8:
		v, err := d.u8("uint8")
		return Value{t, v}, err
	case TypeInt8:
		v, err := d.u8("int8")
		return Value{t, int8(v)}, err
	case TypeUint16:
		v, err := d.u16("uint16")
		return Value{t, v}, err
	case TypeInt16:
		v, err := d.u16("int16")
		return Value{t, int16(v)}, err
	case TypeUint32:
		v, err := d.u32("uint32")
		return Value{t, v}, err
	case TypeInt32:
		v, err := d.u32("int32")
		return Value{t, int32(v)}, err
	case TypeFloat32:
		v, err := d.u32("float32")
		return Value{t, math.Float32frombits(v)}, err
	case TypeBool:
		v, err := d.u8("bool")
		if err == nil && v > 1 {
			return Value{}, fmt.Errorf("%w: byte %d at offset %d", ErrBadBool, v, d.pos-1)
		}
		return Value{t, v == 1}, err
	case TypeString:
		v, err := d.str("string")
		return Value{t, v}, err
	case TypeUint64:
		v, err := d.u64("uint64")
		return Value{t, v}, err
	case TypeInt64:
		v, err := d.u64("int64")
		return Value{t, int64(v)}, err
	case TypeFloat64:
		v, err := d.u64("float64")
		return Value{t, math.Float64frombits(v)}, err
	case TypeArray:
		a, err := d.array(depth + 1)
		return Value{t, a}, err
	}
	return Value{}, fmt.Errorf("%w: %d at offset %d", ErrBadValueType, uint32(t), d.pos-4)
}

func (d *decoder) array(depth int) (*Array, error) {
	if depth > maxArrayDepth {
		return nil, fmt.Errorf("%w: more than %d levels", ErrNestingTooDeep, maxArrayDepth)
	}
	et, err := d.u32("array element type")
	if err != nil {
		return nil, err
	}
	elem := ValueType(et)
	minBytes := elem.fixedSize()
	switch elem {
	case TypeString:
		minBytes = 8
	case TypeArray:
		minBytes = 4 + 8
	default:
		if minBytes == 0 {
			return nil, fmt.Errorf("%w: array element type %d at offset %d", ErrBadValueType, et, d.pos-4)
		}
	}
	n, err := d.count("array length", minBytes)
	if err != nil {
		return nil, err
	}
	a := &Array{Elem: elem}
	switch elem {
	case TypeString:
		vs := make([]string, n)
		for i := range vs {
			if vs[i], err = d.str("array string"); err != nil {
				return nil, err
			}
		}
		a.Values = vs
	case TypeArray:
		vs := make([]*Array, n)
		for i := range vs {
			if vs[i], err = d.array(depth + 1); err != nil {
				return nil, err
			}
		}
		a.Values = vs
	case TypeBool:
		vs := make([]bool, n)
		for i := range vs {
			b := d.buf[d.pos+i]
			if b > 1 {
				return nil, fmt.Errorf("%w: byte %d at offset %d", ErrBadBool, b, d.pos+i)
			}
			vs[i] = b == 1
		}
		d.pos += n
		a.Values = vs
	default:
		raw := d.buf[d.pos : d.pos+n*minBytes]
		d.pos += n * minBytes
		a.Values = decodeFixed(elem, raw, n)
	}
	return a, nil
}

// decodeFixed decodes n little-endian fixed-size values into a typed slice.
func decodeFixed(t ValueType, raw []byte, n int) any {
	le := binary.LittleEndian
	switch t {
	case TypeUint8:
		return slices.Clone(raw)
	case TypeInt8:
		vs := make([]int8, n)
		for i := range vs {
			vs[i] = int8(raw[i])
		}
		return vs
	case TypeUint16:
		vs := make([]uint16, n)
		for i := range vs {
			vs[i] = le.Uint16(raw[2*i:])
		}
		return vs
	case TypeInt16:
		vs := make([]int16, n)
		for i := range vs {
			vs[i] = int16(le.Uint16(raw[2*i:]))
		}
		return vs
	case TypeUint32:
		vs := make([]uint32, n)
		for i := range vs {
			vs[i] = le.Uint32(raw[4*i:])
		}
		return vs
	case TypeInt32:
		vs := make([]int32, n)
		for i := range vs {
			vs[i] = int32(le.Uint32(raw[4*i:]))
		}
		return vs
	case TypeFloat32:
		vs := make([]float32, n)
		for i := range vs {
			vs[i] = math.Float32frombits(le.Uint32(raw[4*i:]))
		}
		return vs
	case TypeUint64:
		vs := make([]uint64, n)
		for i := range vs {
			vs[i] = le.Uint64(raw[8*i:])
		}
		return vs
	case TypeInt64:
		vs := make([]int64, n)
		for i := range vs {
			vs[i] = int64(le.Uint64(raw[8*i:]))
		}
		return vs
	case TypeFloat64:
		vs := make([]float64, n)
		for i := range vs {
			vs[i] = math.Float64frombits(le.Uint64(raw[8*i:]))
		}
		return vs
	}
	return nil
}

func (d *decoder) tensorInfo() (TensorInfo, error) {
	var ti TensorInfo
	name, err := d.str("tensor name")
	if err != nil {
		return ti, err
	}
	if name == "" {
		return ti, ErrEmptyName
	}
	ti.Name = name
	nd, err := d.u32("dimension count")
	if err != nil {
		return ti, fmt.Errorf("tensor %q: %w", name, err)
	}
	if nd > MaxDims {
		return ti, fmt.Errorf("%w: %q has %d (at most %d)", ErrTooManyDims, name, nd, MaxDims)
	}
	ti.Shape = make([]int64, nd)
	elems := uint64(1)
	for i := range ti.Shape {
		ne, err := d.u64("dimension")
		if err != nil {
			return ti, fmt.Errorf("tensor %q: %w", name, err)
		}
		if ne > math.MaxInt64 {
			return ti, fmt.Errorf("%w: %q dimension %d is %d", ErrBadShape, name, i, ne)
		}
		hi, lo := bits.Mul64(elems, ne)
		if hi != 0 || lo > math.MaxInt64 {
			return ti, fmt.Errorf("%w: %q has shape beyond 2^63 elements", ErrOverflow, name)
		}
		elems = lo
		ti.Shape[i] = int64(ne)
	}
	t, err := d.u32("tensor type")
	if err != nil {
		return ti, fmt.Errorf("tensor %q: %w", name, err)
	}
	ti.Type = tensor.DType(t)
	if !ti.Type.Known() {
		return ti, fmt.Errorf("%w: %q has type %d, which ggml does not define", ErrUnknownType, name, t)
	}
	if ti.Offset, err = d.u64("tensor offset"); err != nil {
		return ti, fmt.Errorf("tensor %q: %w", name, err)
	}
	// Size: rows of ne0 values, each a whole number of blocks.
	ne0 := int64(1)
	if len(ti.Shape) > 0 {
		ne0 = ti.Shape[0]
	}
	if ne0%int64(ti.Type.BlockSize()) != 0 {
		return ti, fmt.Errorf("%w: %q has ne0=%d, type %s needs a multiple of %d", ErrBlockMismatch, name, ne0, ti.Type, ti.Type.BlockSize())
	}
	blocks := elems / uint64(ti.Type.BlockSize())
	hi, size := bits.Mul64(blocks, uint64(ti.Type.BlockBytes()))
	if hi != 0 || size > math.MaxInt64 {
		return ti, fmt.Errorf("%w: %q needs more than 2^63 bytes", ErrOverflow, name)
	}
	ti.Size = int64(size)
	return ti, nil
}

// checkRanges verifies that every tensor's bytes lie inside the file and
// that no two tensors share bytes.
func (f *File) checkRanges() error {
	avail := int64(len(f.data)) - f.DataOffset
	order := make([]int, len(f.tensors))
	for i := range order {
		order[i] = i
	}
	for _, i := range order {
		t := f.tensors[i]
		if t.Offset > uint64(avail) || uint64(t.Size) > uint64(avail)-t.Offset {
			return fmt.Errorf("%w: %q occupies data bytes [%d, %d+%d), the data section has %d", ErrOutOfBounds, t.Name, t.Offset, t.Offset, t.Size, avail)
		}
	}
	sort.Slice(order, func(a, b int) bool { return f.tensors[order[a]].Offset < f.tensors[order[b]].Offset })
	for k := 1; k < len(order); k++ {
		prev, cur := f.tensors[order[k-1]], f.tensors[order[k]]
		if prev.Offset+uint64(prev.Size) > cur.Offset && prev.Size > 0 && cur.Size > 0 {
			return fmt.Errorf("%w: %q [%d, %d) and %q [%d, %d)", ErrOverlap, prev.Name, prev.Offset, prev.Offset+uint64(prev.Size), cur.Name, cur.Offset, cur.Offset+uint64(cur.Size))
		}
	}
	return nil
}

func alignUp(x, a int64) int64 { return (x + a - 1) / a * a }
