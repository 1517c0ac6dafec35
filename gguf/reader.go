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
)

// Limits on what the parser accepts. Most are far above anything a real
// model uses and exist so that a hostile file cannot ask for absurd work.
const (
	MaxDims      = 4  // ggml's GGML_MAX_DIMS
	DefaultAlign = 32 // alignment when general.alignment is absent

	maxArrayDepth   = 8       // arrays of arrays of …: 8 levels at most
	maxAlignment    = 1 << 31 // the largest power of two a uint32 holds
	maxNameLength   = 1<<16 - 1
	maxStringLength = 1 << 30
	// maxPrealloc caps the capacity reserved from a count read in the
	// file. Past it, slices grow only as elements are actually decoded,
	// so memory follows the bytes really present, not a claimed count.
	maxPrealloc = 1 << 12

	magic        = "GGUF"
	alignmentKey = "general.alignment"

	// The fewest bytes one entry can take, used to bound counts:
	// key length, a 1-byte key, value type, a 1-byte value.
	minKVBytes = 8 + 1 + 4 + 1
	// name length, a 1-byte name, n_dims (0 dims), type, offset.
	minTensorBytes = 8 + 1 + 4 + 4 + 8
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

// Elements is the number of values in the tensor. For a TensorInfo read
// from a file it cannot overflow: the parser checked the product.
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
	Data []byte // (Size) bytes, valid until the File is closed
}

// File is an open GGUF file.
type File struct {
	Version    uint32 // 2 or 3
	Alignment  int    // general.alignment, or DefaultAlign
	DataOffset int64  // absolute file offset of the data section

	kvs     []KV
	kvIndex map[string]int // key → index in kvs
	tensors []TensorInfo
	tIndex  map[string]int // name → index in tensors

	data   []byte // whole file contents (mapping or caller's buffer); nil once closed
	size   int64  // len(data) as parsed
	mapped bool
	closed bool
}

// Open maps path read-only and parses its header, metadata and tensor
// infos. Tensor data is not read until it is used: the parser touches only
// the bytes before DataOffset.
//
// path must name a regular file (through symlinks, which are followed):
// a FIFO, device or directory is refused before it is opened, since
// opening a FIFO would wait for a writer and none of them can be mapped.
func Open(path string) (*File, error) {
	if st, err := os.Stat(path); err != nil {
		return nil, err
	} else if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%w: %s is %s", ErrNotRegular, path, fileKind(st.Mode()))
	}
	fd, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fd.Close()
	st, err := fd.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() { // replaced since the check above
		return nil, fmt.Errorf("%w: %s is %s", ErrNotRegular, path, fileKind(st.Mode()))
	}
	size := st.Size()
	if size == 0 {
		// mmap cannot map nothing; parse the empty image for its error.
		_, err := parse(nil)
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if size > math.MaxInt {
		return nil, fmt.Errorf("%w: %s is too large to map", ErrCountTooLarge, path)
	}
	data, err := mapFile(fd, int(size))
	if err != nil {
		return nil, fmt.Errorf("gguf: mmap %s: %w", path, err)
	}
	f, err := parse(data)
	if err != nil {
		unmapFile(data)
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	f.mapped = true
	return f, nil
}

// fileKind names what a non-regular file is, for error messages.
func fileKind(m os.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&os.ModeNamedPipe != 0:
		return "a FIFO"
	case m&os.ModeSocket != 0:
		return "a socket"
	case m&os.ModeCharDevice != 0:
		return "a character device"
	case m&os.ModeDevice != 0:
		return "a device"
	}
	return "of type " + m.Type().String()
}

// Parse parses a GGUF image held in memory. The File keeps data; Tensor
// views point into it.
func Parse(data []byte) (*File, error) { return parse(data) }

// Close releases the mapping. Tensor data views become invalid; metadata
// and tensor infos stay readable (they are copies).
func (f *File) Close() error {
	if f.closed {
		return nil
	}
	f.closed = true
	if f.mapped {
		data := f.data
		f.data = nil
		return unmapFile(data)
	}
	return nil
}

// Bytes is the size of the whole file.
func (f *File) Bytes() int64 { return f.size }

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

// Tensor returns a tensor by name, its data a view into the file (no copy).
func (f *File) Tensor(name string) (Tensor, error) {
	if f.closed {
		return Tensor{}, ErrClosed
	}
	i, ok := f.tIndex[name]
	if !ok {
		return Tensor{}, fmt.Errorf("%w: %q", ErrTensorNotFound, name)
	}
	ti := f.tensors[i]
	// checkRanges proved start+Size <= len(f.data).
	start := f.DataOffset + int64(ti.Offset)
	end := start + ti.Size
	return Tensor{TensorInfo: ti, Data: f.data[start:end:end]}, nil
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
	if d.remaining() < n {
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

// count reads a 64-bit element count and bounds it (see bound).
func (d *decoder) count(what string, minBytes int) (int, error) {
	n, err := d.u64(what)
	if err != nil {
		return 0, err
	}
	return d.bound(what, n, d.pos-8, minBytes)
}

// bound checks that n entries of at least minBytes each fit in the bytes
// that remain, and returns n as an int. After this check
// n*minBytes <= remaining, so that product cannot overflow. at is where n
// was read, for the message.
func (d *decoder) bound(what string, n uint64, at, minBytes int) (int, error) {
	if n > uint64(d.remaining()/minBytes) {
		return 0, fmt.Errorf("%w: %s is %d at offset %d, but only %d bytes remain (each entry takes at least %d)", ErrCountTooLarge, what, n, at, d.remaining(), minBytes)
	}
	return int(n), nil
}

// str reads a length-prefixed string. The bytes are copied, so the string
// stays valid after the mapping is closed.
func (d *decoder) str(what string) (string, error) {
	n, err := d.skipStr(what)
	if err != nil {
		return "", err
	}
	return string(d.buf[d.pos-n : d.pos]), nil
}

// name reads a metadata key or tensor name: a string that must be neither
// empty nor longer than maxNameLength.
func (d *decoder) name(what string) (string, error) {
	start := d.pos
	n, err := d.skipStr(what)
	if err != nil {
		return "", err
	}
	if n == 0 {
		return "", fmt.Errorf("%w: %s at offset %d", ErrEmptyName, what, start)
	}
	if n > maxNameLength {
		return "", fmt.Errorf("%w: %s at offset %d is %d bytes (at most %d)", ErrNameTooLong, what, start, n, maxNameLength)
	}
	return string(d.buf[d.pos-n : d.pos]), nil
}

// parse reads the header, the metadata and the tensor infos, then checks
// where the tensor data lies. It reads nothing past DataOffset.
func parse(data []byte) (*File, error) {
	d := &decoder{buf: data}
	version, nTensors, nKV, err := d.header()
	if err != nil {
		return nil, err
	}
	f := &File{
		Version:   version,
		Alignment: DefaultAlign,
		// Reserve room for at most maxPrealloc entries: beyond that the
		// slices and maps grow as entries are really read.
		kvs:     make([]KV, 0, min(nKV, maxPrealloc)),
		kvIndex: make(map[string]int, min(nKV, maxPrealloc)),
		tensors: make([]TensorInfo, 0, min(nTensors, maxPrealloc)),
		tIndex:  make(map[string]int, min(nTensors, maxPrealloc)),
		data:    data,
		size:    int64(len(data)),
	}
	if err := f.readMetadata(d, nKV); err != nil {
		return nil, err
	}
	if v, ok := f.Lookup(alignmentKey); ok {
		if f.Alignment, err = alignmentOf(v); err != nil {
			return nil, err
		}
	}
	// The tensor count was bounded against the bytes after the header;
	// bound it again against what the metadata left over.
	if _, err := d.bound("tensor count (after the metadata)", uint64(nTensors), 8, minTensorBytes); err != nil {
		return nil, err
	}
	if err := f.readTensorInfos(d, nTensors); err != nil {
		return nil, err
	}

	// The data section starts at the next multiple of the alignment. A
	// file without tensors has an empty data section; some writers leave
	// out its padding, so it may end before that point: clamp to EOF.
	dataOff := alignUp(int64(d.pos), int64(f.Alignment))
	if dataOff > int64(len(data)) {
		if nTensors > 0 {
			return nil, fmt.Errorf("%w: the data section would start at offset %d, the file is %d bytes", ErrTruncated, dataOff, len(data))
		}
		dataOff = int64(len(data))
	}
	f.DataOffset = dataOff
	if err := f.checkRanges(); err != nil {
		return nil, err
	}
	return f, nil
}

// header reads the magic, the version and the two counts, and bounds the
// counts by the bytes that follow.
func (d *decoder) header() (version uint32, nTensors, nKV int, err error) {
	if err := d.need(4, "magic"); err != nil {
		return 0, 0, 0, fmt.Errorf("%w: %w", ErrBadMagic, err)
	}
	if string(d.buf[:4]) != magic {
		return 0, 0, 0, fmt.Errorf("%w: first bytes are %q", ErrBadMagic, d.buf[:4])
	}
	d.pos = 4
	if version, err = d.u32("version"); err != nil {
		return 0, 0, 0, err
	}
	switch {
	case version != 0 && version&0xFFFF == 0:
		// A small version number written big-endian reads as N<<24. The
		// magic is the same in both byte orders, so this is the only clue.
		return 0, 0, 0, fmt.Errorf("%w (the version field reads 0x%08x, which is version %d byte-swapped)", ErrBigEndian, version, bits.ReverseBytes32(version))
	case version == 1:
		return 0, 0, 0, fmt.Errorf("%w: 1 (GGUF v1 used 32-bit counts and is obsolete; gollm reads versions 2 and 3)", ErrVersion)
	case version != 2 && version != 3:
		return 0, 0, 0, fmt.Errorf("%w: %d (gollm reads versions 2 and 3)", ErrVersion, version)
	}
	// Read both counts before bounding either, so that a header cut short
	// reads as truncated rather than as a bad count.
	rawTensors, err := d.u64("tensor count")
	if err != nil {
		return 0, 0, 0, err
	}
	rawKV, err := d.u64("metadata count")
	if err != nil {
		return 0, 0, 0, err
	}
	if nTensors, err = d.bound("tensor count", rawTensors, 8, minTensorBytes); err != nil {
		return 0, 0, 0, err
	}
	if nKV, err = d.bound("metadata count", rawKV, 16, minKVBytes); err != nil {
		return 0, 0, 0, err
	}
	return version, nTensors, nKV, nil
}

// readMetadata reads n key/value entries.
func (f *File) readMetadata(d *decoder, n int) error {
	for i := range n {
		keyAt := d.pos
		key, err := d.name("metadata key")
		if err != nil {
			return fmt.Errorf("metadata entry %d: %w", i, err)
		}
		if _, dup := f.kvIndex[key]; dup {
			return fmt.Errorf("%w: %q (entry %d, offset %d)", ErrDuplicateKey, key, i, keyAt)
		}
		t, err := d.u32("value type")
		if err != nil {
			return fmt.Errorf("metadata %q: %w", key, err)
		}
		v, err := d.value(ValueType(t), 0)
		if err != nil {
			return fmt.Errorf("metadata %q: %w", key, err)
		}
		f.kvIndex[key] = len(f.kvs)
		f.kvs = append(f.kvs, KV{key, v})
	}
	return nil
}

// readTensorInfos reads n tensor infos. f.Alignment must be known.
func (f *File) readTensorInfos(d *decoder, n int) error {
	for i := range n {
		ti, err := d.tensorInfo()
		if err != nil {
			return fmt.Errorf("tensor info %d: %w", i, err)
		}
		if _, dup := f.tIndex[ti.Name]; dup {
			return fmt.Errorf("%w: %q (tensor info %d)", ErrDuplicateTensor, ti.Name, i)
		}
		if ti.Offset%uint64(f.Alignment) != 0 {
			return fmt.Errorf("%w: tensor %q at data offset %d, alignment %d", ErrMisaligned, ti.Name, ti.Offset, f.Alignment)
		}
		f.tIndex[ti.Name] = len(f.tensors)
		f.tensors = append(f.tensors, ti)
	}
	return nil
}

// alignmentOf validates a general.alignment value. The spec makes it a
// uint32; any integer type is accepted, but the value must be a power of
// two that a uint32 can hold (as llama.cpp requires).
func alignmentOf(v Value) (int, error) {
	a, isInt := v.asInt()
	if !isInt {
		if arr := v.Array(); arr != nil {
			return 0, fmt.Errorf("%w: an array of %s, not an integer", ErrBadAlignment, arr.Elem)
		}
		return 0, fmt.Errorf("%w: %v (%s), not an integer", ErrBadAlignment, v.Any(), v.Type)
	}
	if a <= 0 || a > maxAlignment || a&(a-1) != 0 {
		return 0, fmt.Errorf("%w: %d; it must be a power of two from 1 to 2^31", ErrBadAlignment, a)
	}
	return int(a), nil
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
		if err != nil {
			return Value{}, err
		}
		if v > 1 {
			return Value{}, fmt.Errorf("%w: byte %d at offset %d (only 0 and 1 are allowed)", ErrBadBool, v, d.pos-1)
		}
		return Value{t, v == 1}, nil
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

// array reads an array's element type, length and elements. depth is the
// nesting level of this array (1 for an array that is a metadata value).
func (d *decoder) array(depth int) (*Array, error) {
	if depth > maxArrayDepth {
		return nil, fmt.Errorf("%w: more than %d levels at offset %d", ErrNestingTooDeep, maxArrayDepth, d.pos)
	}
	et, err := d.u32("array element type")
	if err != nil {
		return nil, err
	}
	elem := ValueType(et)
	// The fewest bytes one element can take: its fixed size, a string's
	// length field, or an inner array's type and length fields.
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
		// Walk the lengths first, so that the slice is allocated only
		// once every string is known to fit (a vocabulary has 150k).
		if err := d.checkStrings(n); err != nil {
			return nil, err
		}
		// One copy of the whole region, sliced into the strings: one
		// allocation instead of one per string, which makes opening a
		// model with a 150k-token vocabulary several times faster.
		// (checkStrings has already walked and bounded every length.)
		start := d.pos
		for i := 0; i < n; i++ {
			d.skipStr("array string")
		}
		region := string(d.buf[start:d.pos])
		vs := make([]string, n)
		for i, off := 0, 0; i < n; i++ {
			ln := int(binary.LittleEndian.Uint64(d.buf[start+off:]))
			off += 8
			vs[i] = region[off : off+ln]
			off += ln
		}
		a.Values = vs
	case TypeArray:
		// Inner arrays are checked as they are decoded; the slice grows
		// with them, so memory follows the bytes really present.
		vs := make([]*Array, 0, min(n, maxPrealloc))
		for range n {
			inner, err := d.array(depth + 1)
			if err != nil {
				return nil, err
			}
			vs = append(vs, inner)
		}
		a.Values = vs
	case TypeBool:
		raw := d.buf[d.pos : d.pos+n]
		vs := make([]bool, n)
		for i, b := range raw {
			if b > 1 {
				return nil, fmt.Errorf("%w: byte %d at offset %d (only 0 and 1 are allowed)", ErrBadBool, b, d.pos+i)
			}
			vs[i] = b == 1
		}
		d.pos += n
		a.Values = vs
	default:
		// Fixed-size elements: count checked n*minBytes <= remaining, and
		// each decoded element takes as many bytes in memory as on disk.
		raw := d.buf[d.pos : d.pos+n*minBytes]
		d.pos += n * minBytes
		a.Values = decodeFixed(elem, raw, n)
	}
	return a, nil
}

// checkStrings verifies, without moving or allocating, that n strings
// follow and fit in the remaining bytes.
func (d *decoder) checkStrings(n int) error {
	probe := *d
	for range n {
		if _, err := probe.skipStr("array string"); err != nil {
			return err
		}
	}
	return nil
}

// skipStr moves past a length-prefixed string, with str's checks.
func (d *decoder) skipStr(what string) (int, error) {
	if d.remaining() < 8 { // as d.u64, without building "<what> length" on every call
		return 0, fmt.Errorf("%w: reading %s length at offset %d needs 8 bytes, %d left", ErrTruncated, what, d.pos, d.remaining())
	}
	n := binary.LittleEndian.Uint64(d.buf[d.pos:])
	d.pos += 8
	if n > uint64(d.remaining()) || n > maxStringLength {
		return 0, fmt.Errorf("%w: %s length %d at offset %d, but only %d bytes remain", ErrCountTooLarge, what, n, d.pos-8, d.remaining())
	}
	d.pos += int(n)
	return int(n), nil
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
	panic("gguf: decodeFixed: not a fixed-size type") // callers check fixedSize first
}

// tensorInfo reads one tensor info: name, dimensions, type, data offset.
func (d *decoder) tensorInfo() (TensorInfo, error) {
	var ti TensorInfo
	name, err := d.name("tensor name")
	if err != nil {
		return ti, err
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
	for i := range ti.Shape {
		ne, err := d.u64("dimension")
		if err != nil {
			return ti, fmt.Errorf("tensor %q: %w", name, err)
		}
		// ggml stores ne as int64: above MaxInt64 it is negative.
		if ne > math.MaxInt64 {
			return ti, fmt.Errorf("%w: %q dimension %d is %d (negative as ggml's int64)", ErrBadShape, name, i, int64(ne))
		}
		ti.Shape[i] = int64(ne)
	}
	t, err := d.u32("tensor type")
	if err != nil {
		return ti, fmt.Errorf("tensor %q: %w", name, err)
	}
	ti.Type = tensor.DType(t)
	if ti.Offset, err = d.u64("tensor offset"); err != nil {
		return ti, fmt.Errorf("tensor %q: %w", name, err)
	}
	if ti.Size, err = tensorBytes(name, ti.Type, ti.Shape); err != nil {
		return ti, err
	}
	return ti, nil
}

// tensorBytes checks a tensor's type and shape and returns its data size:
// rows of ne0 values, each row a whole number of blocks. The reader and
// the Writer share it, so they accept exactly the same tensors.
func tensorBytes(name string, t tensor.DType, shape []int64) (int64, error) {
	if len(shape) > MaxDims {
		return 0, fmt.Errorf("%w: %q has %d (at most %d)", ErrTooManyDims, name, len(shape), MaxDims)
	}
	if !t.Known() {
		return 0, fmt.Errorf("%w: %q has type %d, which ggml does not define (or has removed)", ErrUnknownType, name, uint32(t))
	}
	// A dimension of 0 would make an empty tensor. No model has one, and
	// ggml's own loader divides by ne1..ne3, so reject it.
	elems := uint64(1)
	for i, ne := range shape {
		if ne <= 0 {
			return 0, fmt.Errorf("%w: %q dimension %d is %d (must be at least 1)", ErrBadShape, name, i, ne)
		}
		hi, lo := bits.Mul64(elems, uint64(ne))
		if hi != 0 || lo > math.MaxInt64 {
			return 0, fmt.Errorf("%w: %q shape %v has more than 2^63 elements", ErrOverflow, name, shape)
		}
		elems = lo
	}
	ne0 := int64(1) // a 0-dimensional tensor is one value
	if len(shape) > 0 {
		ne0 = shape[0]
	}
	if ne0%int64(t.BlockSize()) != 0 {
		return 0, fmt.Errorf("%w: %q has ne0=%d, type %s needs a multiple of %d", ErrBlockMismatch, name, ne0, t, t.BlockSize())
	}
	// ne0 is a whole number of blocks, so elems is too.
	blocks := elems / uint64(t.BlockSize())
	hi, size := bits.Mul64(blocks, uint64(t.BlockBytes()))
	if hi != 0 || size > math.MaxInt64 {
		return 0, fmt.Errorf("%w: %q (%s %v) needs more than 2^63 bytes", ErrOverflow, name, t, shape)
	}
	return int64(size), nil
}

// checkRanges verifies that every tensor's bytes lie inside the file and
// that no two tensors share bytes.
func (f *File) checkRanges() error {
	avail := uint64(int64(len(f.data)) - f.DataOffset) // bytes in the data section
	for _, t := range f.tensors {
		if t.Offset > avail || uint64(t.Size) > avail-t.Offset {
			return fmt.Errorf("%w: %q occupies data bytes [%d, %d+%d), the data section has %d", ErrOutOfBounds, t.Name, t.Offset, t.Offset, t.Size, avail)
		}
	}
	// Sorted by start, two ranges overlap only if some range overlaps the
	// next one; so checking neighbours is enough.
	order := make([]int, len(f.tensors)) // tensor indices by data offset
	for i := range order {
		order[i] = i
	}
	sort.Slice(order, func(a, b int) bool { return f.tensors[order[a]].Offset < f.tensors[order[b]].Offset })
	for k := 1; k < len(order); k++ {
		prev, cur := f.tensors[order[k-1]], f.tensors[order[k]]
		if prev.Offset+uint64(prev.Size) > cur.Offset {
			return fmt.Errorf("%w: %q [%d, %d) and %q [%d, %d)", ErrOverlap, prev.Name, prev.Offset, prev.Offset+uint64(prev.Size), cur.Name, cur.Offset, cur.Offset+uint64(cur.Size))
		}
	}
	return nil
}

// alignUp rounds x up to a multiple of a.
func alignUp(x, a int64) int64 { return (x + a - 1) / a * a }
