package gguf

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/gollm/gollm/tensor"
)

// build makes a v3 file with the given counts (which the test may set to
// lie), metadata entries, tensor infos, padding to 32 and dataBytes of
// tensor data.
func build(nTensors, nKV uint64, kvs, infos func(r *rawFile), dataBytes int) []byte {
	r := &rawFile{}
	r.header(3, nTensors, nKV)
	if kvs != nil {
		kvs(r)
	}
	if infos != nil {
		infos(r)
	}
	r.pad(32).zeros(dataBytes)
	return r.bytes()
}

// oneTensor is a file with one tensor info and enough data for an f32 [8].
func oneTensor(name string, t tensor.DType, offset uint64, ne ...uint64) []byte {
	return build(1, 0, nil, func(r *rawFile) { r.tensor(name, t, offset, ne...) }, 64)
}

// withAlignment is a file whose general.alignment entry is written by val.
func withAlignment(t ValueType, val func(r *rawFile)) []byte {
	return build(1, 1, func(r *rawFile) {
		r.kv("general.alignment", t)
		val(r)
	}, func(r *rawFile) { r.tensor("a", tensor.F32, 0, 8) }, 64)
}

// nested writes depth levels of arrays around an empty uint8 array.
func nested(r *rawFile, depth int) {
	for range depth - 1 {
		r.arrayHead(TypeArray, 1)
	}
	r.arrayHead(TypeUint8, 0)
}

type corruptCase struct {
	name    string
	data    []byte
	want    error
	mention string // text the message must contain, if any
}

// corruptCases are hand-made broken files, each with the sentinel error
// it must produce.
func corruptCases() []corruptCase {
	valid := validRaw()
	bigEndian := &rawFile{}
	bigEndian.raw('G', 'G', 'U', 'F', 0, 0, 0, 3).raw(make([]byte, 16)...)

	return []corruptCase{
		// Header.
		{"empty file", nil, ErrBadMagic, ""},
		{"bad magic", append([]byte("GGML"), valid[4:]...), ErrBadMagic, `"GGML"`},
		{"big-endian", bigEndian.bytes(), ErrBigEndian, "version 3 byte-swapped"},
		{"version 1", (&rawFile{}).header(1, 0, 0).bytes(), ErrVersion, "32-bit"},
		{"version 99", (&rawFile{}).header(99, 0, 0).bytes(), ErrVersion, "99"},
		{"version 0", (&rawFile{}).header(0, 0, 0).bytes(), ErrVersion, ""},
		{"truncated header", valid[:20], ErrTruncated, "metadata count"},
		{"header only magic", valid[:6], ErrTruncated, "version"},

		// Counts and lengths bounded by the file size.
		{"tensor count too large", build(1<<40, 0, nil, nil, 0), ErrCountTooLarge, "tensor count"},
		{"tensor count max", build(math64, 0, nil, nil, 0), ErrCountTooLarge, "tensor count"},
		{"kv count too large", build(0, 1<<40, nil, nil, 0), ErrCountTooLarge, "metadata count"},
		{"tensor count too large after metadata", build(2, 1, func(r *rawFile) {
			r.kvStr("k", strings.Repeat("x", 100)) // the first bound counts these bytes
		}, nil, 0), ErrCountTooLarge, "after the metadata"},
		{"key length beyond EOF", build(0, 1, func(r *rawFile) { r.u64(1000).raw('k') }, nil, 0), ErrCountTooLarge, "metadata key length"},
		{"key length 2^63", build(0, 1, func(r *rawFile) { r.u64(1 << 63).raw('k') }, nil, 0), ErrCountTooLarge, "metadata key length"},
		{"string length beyond EOF", build(0, 1, func(r *rawFile) { r.kv("k", TypeString).u64(1 << 20).raw('x') }, nil, 0), ErrCountTooLarge, "string length"},
		{"array length beyond EOF", build(0, 1, func(r *rawFile) { r.kv("k", TypeArray).arrayHead(TypeUint32, 1<<40) }, nil, 0), ErrCountTooLarge, "array length"},
		{"array length times element size", build(0, 1, func(r *rawFile) {
			// 20 uint64 elements need 160 bytes; fewer follow (build pads to 32).
			r.kv("k", TypeArray).arrayHead(TypeUint64, 20).zeros(60)
		}, nil, 0), ErrCountTooLarge, "array length"},
		{"string array count too large", build(0, 1, func(r *rawFile) { r.kv("k", TypeArray).arrayHead(TypeString, 1<<50) }, nil, 0), ErrCountTooLarge, "array length"},
		{"string array element beyond EOF", build(0, 1, func(r *rawFile) {
			r.kv("k", TypeArray).arrayHead(TypeString, 2).str("ok").u64(1 << 30)
		}, nil, 0), ErrCountTooLarge, "array string length"},
		{"array of arrays count too large", build(0, 1, func(r *rawFile) { r.kv("k", TypeArray).arrayHead(TypeArray, math64) }, nil, 0), ErrCountTooLarge, "array length"},
		{"inner array count too large", build(0, 1, func(r *rawFile) {
			r.kv("k", TypeArray).arrayHead(TypeArray, 1).arrayHead(TypeInt64, 1<<60)
		}, nil, 0), ErrCountTooLarge, "array length"},

		// Truncation inside a fixed-size field.
		{"truncated at a key", build(0, 2, func(r *rawFile) {
			r.kvStr("arch", "abcd") // 28 bytes: passes the count bound for 2 entries, then the file ends
		}, nil, 0)[:24+28], ErrTruncated, "metadata key length"},
		{"truncated in a value", build(0, 1, func(r *rawFile) { r.kv("k", TypeUint64).u32(7) }, nil, 0)[:24+17], ErrTruncated, "uint64"},
		{"truncated in a tensor info", build(1, 0, nil, func(r *rawFile) { r.str("t").u32(2).u64(8) }, 0)[:24+25], ErrTruncated, "dimension"},
		{"data section beyond EOF", build(1, 0, nil, func(r *rawFile) { r.tensor("a", tensor.F32, 0, 8) }, 0)[:24+33], ErrTruncated, "data section"},

		// Metadata values.
		{"bad value type", build(0, 1, func(r *rawFile) { r.kv("k", 13).u64(0) }, nil, 0), ErrBadValueType, "13"},
		{"bad array element type", build(0, 1, func(r *rawFile) { r.kv("k", TypeArray).arrayHead(99, 1) }, nil, 0), ErrBadValueType, "99"},
		{"bad bool byte", build(0, 1, func(r *rawFile) { r.kv("k", TypeBool).u8(2) }, nil, 0), ErrBadBool, "byte 2"},
		{"bad bool in array", build(0, 1, func(r *rawFile) { r.kv("k", TypeArray).arrayHead(TypeBool, 3).raw(0, 1, 7) }, nil, 0), ErrBadBool, "byte 7"},
		{"array nesting too deep", build(0, 1, func(r *rawFile) { r.kv("k", TypeArray); nested(r, maxArrayDepth+1) }, nil, 0), ErrNestingTooDeep, ""},
		{"empty key", build(0, 1, func(r *rawFile) { r.kvU32("", 1) }, nil, 0), ErrEmptyName, "metadata key"},
		{"key too long", build(0, 1, func(r *rawFile) { r.kvU32(strings.Repeat("k", maxNameLength+1), 1) }, nil, 0), ErrNameTooLong, "65536"},
		{"duplicate key", build(0, 2, func(r *rawFile) { r.kvU32("a.b", 1).kvStr("a.b", "x") }, nil, 0), ErrDuplicateKey, `"a.b"`},

		// general.alignment.
		{"alignment 0", withAlignment(TypeUint32, func(r *rawFile) { r.u32(0) }), ErrBadAlignment, "0"},
		{"alignment 3", withAlignment(TypeUint32, func(r *rawFile) { r.u32(3) }), ErrBadAlignment, "3"},
		{"alignment negative", withAlignment(TypeInt32, func(r *rawFile) { r.u32(uint32(0xFFFFFFE0)) }), ErrBadAlignment, "-32"},
		{"alignment 2^32", withAlignment(TypeUint64, func(r *rawFile) { r.u64(1 << 32) }), ErrBadAlignment, ""},
		{"alignment float", withAlignment(TypeFloat32, func(r *rawFile) { r.f32(32) }), ErrBadAlignment, "float32"},
		{"alignment string", withAlignment(TypeString, func(r *rawFile) { r.str("32") }), ErrBadAlignment, "string"},
		{"alignment array", withAlignment(TypeArray, func(r *rawFile) { r.arrayHead(TypeUint32, 1).u32(32) }), ErrBadAlignment, "array"},

		// Tensor infos.
		{"empty tensor name", oneTensor("", tensor.F32, 0, 8), ErrEmptyName, "tensor name"},
		{"duplicate tensor", build(2, 0, nil, func(r *rawFile) {
			r.tensor("w", tensor.F32, 0, 8).tensor("w", tensor.F32, 32, 8)
		}, 64), ErrDuplicateTensor, `"w"`},
		{"five dims", oneTensor("t", tensor.F32, 0, 1, 1, 1, 1, 8), ErrTooManyDims, "5"},
		{"dims count 2^32-1", (&rawFile{}).header(3, 1, 0).str("t").u32(math.MaxUint32).zeros(64).bytes(), ErrTooManyDims, "4294967295"},
		{"zero dim", oneTensor("t", tensor.F32, 0, 8, 0), ErrBadShape, "dimension 1 is 0"},
		{"negative dim", oneTensor("t", tensor.F32, 0, 1<<63), ErrBadShape, "negative"},
		{"shape overflow", oneTensor("t", tensor.F32, 0, 1<<32, 1<<32), ErrOverflow, "2^63 elements"},
		{"byte size overflow", oneTensor("t", tensor.F64, 0, 1<<61, 2), ErrOverflow, "2^63 bytes"},
		{"unknown tensor type", oneTensor("t", 77, 0, 8), ErrUnknownType, "type 77"},
		{"removed tensor type", oneTensor("t", 4, 0, 32), ErrUnknownType, "type 4"},
		{"ne0 not a multiple of the block size", oneTensor("t", tensor.Q4_K, 0, 100, 2), ErrBlockMismatch, "ne0=100"},

		// Tensor data ranges.
		{"misaligned offset", oneTensor("t", tensor.F32, 16, 8), ErrMisaligned, "16"},
		{"data out of bounds", oneTensor("t", tensor.F32, 64, 8), ErrOutOfBounds, `"t"`},
		{"data runs past EOF", oneTensor("t", tensor.F32, 32, 16), ErrOutOfBounds, `"t"`},
		{"offset near 2^64", oneTensor("t", tensor.F32, 1<<64-32, 8), ErrOutOfBounds, ""},
		{"overlapping tensors", build(2, 0, nil, func(r *rawFile) {
			r.tensor("a", tensor.F32, 0, 16).tensor("b", tensor.F32, 32, 8)
		}, 96), ErrOverlap, `"a"`},
		{"same offset", build(2, 0, nil, func(r *rawFile) {
			r.tensor("a", tensor.F32, 32, 8).tensor("b", tensor.F32, 32, 8)
		}, 96), ErrOverlap, ""},
	}
}

const math64 = math.MaxUint64

func TestCorruptFiles(t *testing.T) {
	seen := map[string]bool{}
	for _, c := range corruptCases() {
		t.Run(c.name, func(t *testing.T) {
			if seen[c.name] {
				t.Fatalf("case name %q used twice", c.name)
			}
			seen[c.name] = true
			f, err := Parse(c.data)
			if err == nil {
				t.Fatalf("Parse accepted the file: %d tensors, %d keys", len(f.Tensors()), len(f.KVs()))
			}
			if !errors.Is(err, c.want) {
				t.Fatalf("error %q does not wrap %q", err, c.want)
			}
			if c.mention != "" && !strings.Contains(err.Error(), c.mention) {
				t.Errorf("error %q does not mention %q", err, c.mention)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error has a newline: %q", err)
			}
		})
	}
}

// TestCorruptFilesOpen runs a few of the cases through Open, which maps
// the file: it must give the same sentinel, name the path, and leave no
// mapping behind (a failed Open returns no File to close).
func TestCorruptFilesOpen(t *testing.T) {
	dir := t.TempDir()
	for _, c := range corruptCases() {
		switch c.name {
		case "empty file", "bad magic", "big-endian", "version 99", "truncated header",
			"tensor count too large", "string length beyond EOF", "unknown tensor type",
			"data out of bounds", "overlapping tensors":
		default:
			continue
		}
		path := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "_")+".gguf")
		if err := os.WriteFile(path, c.data, 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := Open(path)
		if !errors.Is(err, c.want) {
			t.Errorf("%s: Open error %v, want %v", c.name, err, c.want)
			continue
		}
		if !strings.Contains(err.Error(), path) {
			t.Errorf("%s: error %q does not name the file", c.name, err)
		}
	}
}

func TestOpenErrors(t *testing.T) {
	if _, err := Open(filepath.Join(t.TempDir(), "missing.gguf")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v, want os.ErrNotExist", err)
	}
	if _, err := Open(t.TempDir()); !errors.Is(err, ErrNotRegular) {
		t.Errorf("directory: %v, want ErrNotRegular", err)
	}
}

// TestValidEdgeCases are unusual files that are nevertheless valid.
func TestValidEdgeCases(t *testing.T) {
	v2 := validRaw()
	v2[4] = 2
	cases := []struct {
		name  string
		data  []byte
		check func(t *testing.T, f *File)
	}{
		{"valid base", validRaw(), func(t *testing.T, f *File) {
			if len(f.Tensors()) != 2 || f.Tensors()[1].Size != 68 || f.DataOffset != 192 {
				t.Errorf("tensors %+v, data offset %d", f.Tensors(), f.DataOffset)
			}
		}},
		{"version 2", v2, func(t *testing.T, f *File) {
			if f.Version != 2 {
				t.Errorf("version %d", f.Version)
			}
		}},
		{"no tensors, no padding", (&rawFile{}).header(3, 0, 1).kvStr("general.architecture", "x").bytes(), func(t *testing.T, f *File) {
			if f.DataOffset != f.Bytes() {
				t.Errorf("data offset %d beyond the %d-byte file", f.DataOffset, f.Bytes())
			}
		}},
		{"no tensors, alignment beyond EOF", (&rawFile{}).header(3, 0, 1).kvU32("general.alignment", 1<<20).bytes(), func(t *testing.T, f *File) {
			if f.DataOffset != f.Bytes() || f.Alignment != 1<<20 {
				t.Errorf("data offset %d, alignment %d", f.DataOffset, f.Alignment)
			}
		}},
		{"alignment as uint8", build(1, 1, func(r *rawFile) { r.kv("general.alignment", TypeUint8).u8(64) },
			func(r *rawFile) { r.tensor("a", tensor.F32, 0, 8) }, 64), func(t *testing.T, f *File) {
			if f.Alignment != 64 || f.DataOffset%64 != 0 {
				t.Errorf("alignment %d, data offset %d", f.Alignment, f.DataOffset)
			}
		}},
		{"alignment 1 as int64", (&rawFile{}).header(3, 1, 1).kv("general.alignment", TypeInt64).u64(1).
			tensor("a", tensor.F32, 0, 1).u32(0x3f800000).bytes(), func(t *testing.T, f *File) {
			tt, err := f.Tensor("a")
			if err != nil || f.Alignment != 1 || len(tt.Data) != 4 || tt.Data[3] != 0x3f {
				t.Errorf("alignment %d, tensor %+v, %v", f.Alignment, tt, err)
			}
		}},
		{"0-dim tensor is one value", oneTensor("s", tensor.F32, 0), func(t *testing.T, f *File) {
			if ti := f.Tensors()[0]; len(ti.Shape) != 0 || ti.Size != 4 || ti.Elements() != 1 {
				t.Errorf("%+v", ti)
			}
		}},
		{"tensors out of order with gaps", build(2, 0, nil, func(r *rawFile) {
			r.tensor("late", tensor.F32, 96, 8).tensor("early", tensor.F32, 0, 8)
		}, 128), func(t *testing.T, f *File) {
			if f.Tensors()[0].Name != "late" {
				t.Errorf("file order lost: %+v", f.Tensors())
			}
		}},
		{"empty values and 8-deep arrays", build(0, 4, func(r *rawFile) {
			r.kvStr("empty.string", "")
			r.kv("empty.array", TypeArray).arrayHead(TypeString, 0)
			r.kv("deep", TypeArray)
			nested(r, maxArrayDepth)
			r.kv("bools", TypeArray).arrayHead(TypeBool, 3).raw(1, 0, 1)
		}, nil, 0), func(t *testing.T, f *File) {
			if s, err := f.String("empty.string"); s != "" || err != nil {
				t.Errorf("empty string: %q %v", s, err)
			}
			v, _ := f.Lookup("deep")
			depth := 0
			for a := v.Array(); a != nil; depth++ {
				if inner, ok := a.Values.([]*Array); ok {
					a = inner[0]
				} else {
					a = nil
				}
			}
			if depth != maxArrayDepth {
				t.Errorf("depth %d", depth)
			}
			if b, _ := f.Lookup("bools"); !reflect.DeepEqual(b.Any(), []bool{true, false, true}) {
				t.Errorf("bools %v", b.Any())
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f, err := Parse(c.data)
			if err != nil {
				t.Fatal(err)
			}
			c.check(t, f)
		})
	}
}
