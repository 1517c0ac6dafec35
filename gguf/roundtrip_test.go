package gguf

import (
	"bytes"
	"errors"
	"io"
	"math"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"strconv"
	"testing"

	"github.com/gollm/gollm/tensor"
)

// everyValue is metadata of every type: each scalar, an array of each
// element type, empty arrays and strings, and arrays of arrays (mixed
// inner element types, three levels deep).
func everyValue() []KV {
	inner := func(v any) *Array { return ArrayOf(v).Array() }
	return []KV{
		{"t.u8", Uint8(200)},
		{"t.i8", Int8(-100)},
		{"t.u16", Uint16(60000)},
		{"t.i16", Int16(-30000)},
		{"t.u32", Uint32(4000000000)},
		{"t.i32", Int32(-2000000000)},
		{"t.f32", Float32(-1.5e-7)},
		{"t.bool.true", Bool(true)},
		{"t.bool.false", Bool(false)},
		{"t.string", String("héllo, 世界 \x00 with a NUL")},
		{"t.string.empty", String("")},
		{"t.u64", Uint64(math.MaxUint64)},
		{"t.i64", Int64(math.MinInt64)},
		{"t.f64", Float64(math.Pi)},
		{"a.u8", ArrayOf([]uint8{0, 1, 255})},
		{"a.i8", ArrayOf([]int8{-128, 0, 127})},
		{"a.u16", ArrayOf([]uint16{0, 65535})},
		{"a.i16", ArrayOf([]int16{-32768, 32767})},
		{"a.u32", ArrayOf([]uint32{1, 2, 3})},
		{"a.i32", ArrayOf([]int32{-1, 0, 1})},
		{"a.f32", ArrayOf([]float32{0.5, -0, float32(math.Inf(1))})},
		{"a.bool", ArrayOf([]bool{true, false, true})},
		{"a.string", ArrayOf([]string{"a", "", "ccc"})},
		{"a.u64", ArrayOf([]uint64{math.MaxUint64, 0})},
		{"a.i64", ArrayOf([]int64{math.MinInt64, math.MaxInt64})},
		{"a.f64", ArrayOf([]float64{1e300, -1e-300})},
		{"a.empty", ArrayOf([]int32{})},
		{"a.nested", ArrayOf([]*Array{
			inner([]int32{1, 2}),
			inner([]string{"x", "y", "z"}),
			inner([]*Array{inner([]bool{true}), inner([]float64{})}),
			inner([]*Array{}),
		})},
	}
}

// testTensor is one tensor for the round trip, with random data.
type testTensor struct {
	name  string
	dtype tensor.DType
	shape []int64
	data  []byte
}

func someTensors(rng *rand.Rand) []testTensor {
	ts := []testTensor{
		{name: "f32.vec", dtype: tensor.F32, shape: []int64{7}},
		{name: "f16.mat", dtype: tensor.F16, shape: []int64{5, 3}},
		{name: "bf16.3d", dtype: tensor.BF16, shape: []int64{2, 3, 4}},
		{name: "q8_0.mat", dtype: tensor.Q8_0, shape: []int64{64, 3}},
		{name: "q4_k.mat", dtype: tensor.Q4_K, shape: []int64{256, 2}},
		{name: "q6_k.4d", dtype: tensor.Q6_K, shape: []int64{512, 1, 2, 1}},
		{name: "i32.scalar", dtype: tensor.I32, shape: nil},
	}
	for i := range ts {
		n, err := tensorBytes(ts[i].name, ts[i].dtype, ts[i].shape)
		if err != nil {
			panic(err)
		}
		ts[i].data = make([]byte, n)
		for j := range ts[i].data {
			ts[i].data[j] = byte(rng.Uint32())
		}
	}
	return ts
}

func TestWriterRoundTrip(t *testing.T) {
	for _, align := range []int{0, 1, 8, 64, 4096} {
		t.Run("alignment="+strconv.Itoa(align), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(1, uint64(align)))
			w := NewWriter()
			w.Alignment = align
			kvs := everyValue()
			for _, kv := range kvs {
				if err := w.Set(kv.Key, kv.Value); err != nil {
					t.Fatal(err)
				}
			}
			ts := someTensors(rng)
			for i, tt := range ts {
				if i%2 == 0 {
					if err := w.AddTensor(tt.name, tt.dtype, tt.shape, tt.data); err != nil {
						t.Fatal(err)
					}
				} else { // half through the streaming path
					data := tt.data
					fn := func(out io.Writer) error { _, err := io.Copy(out, bytes.NewReader(data)); return err }
					if err := w.AddTensorFunc(tt.name, tt.dtype, tt.shape, fn, int64(len(data))); err != nil {
						t.Fatal(err)
					}
				}
			}
			path := filepath.Join(t.TempDir(), "rt.gguf")
			if err := w.WriteFile(path); err != nil {
				t.Fatal(err)
			}
			f, err := Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()

			wantAlign := align
			if align == 0 {
				wantAlign = DefaultAlign
			}
			if f.Version != 3 || f.Alignment != wantAlign || f.DataOffset%int64(wantAlign) != 0 {
				t.Errorf("version %d, alignment %d, data offset %d; want 3, %d, aligned", f.Version, f.Alignment, f.DataOffset, wantAlign)
			}
			// Metadata: the same keys in the same order with equal values,
			// plus general.alignment at the end when it is not the default.
			want := kvs
			if wantAlign != DefaultAlign {
				want = append(want, KV{alignmentKey, Uint32(uint32(wantAlign))})
			}
			if got := f.KVs(); len(got) != len(want) {
				t.Fatalf("%d keys, want %d", len(got), len(want))
			}
			for i, kv := range f.KVs() {
				if kv.Key != want[i].Key || !reflect.DeepEqual(kv.Value, want[i].Value) {
					t.Errorf("entry %d: %s = %#v, want %s = %#v", i, kv.Key, kv.Value.Any(), want[i].Key, want[i].Value.Any())
				}
			}
			// Tensors: same infos in order, aligned offsets, same bytes.
			if len(f.Tensors()) != len(ts) {
				t.Fatalf("%d tensors, want %d", len(f.Tensors()), len(ts))
			}
			for i, ti := range f.Tensors() {
				tt := ts[i]
				if ti.Name != tt.name || ti.Type != tt.dtype || !reflect.DeepEqual(ti.Shape, append([]int64{}, tt.shape...)) || ti.Size != int64(len(tt.data)) {
					t.Errorf("tensor %d: %+v, want %s %s %v (%d bytes)", i, ti, tt.name, tt.dtype, tt.shape, len(tt.data))
				}
				if ti.Offset%uint64(wantAlign) != 0 {
					t.Errorf("%s: offset %d not aligned to %d", ti.Name, ti.Offset, wantAlign)
				}
				got, err := f.Tensor(tt.name)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got.Data, tt.data) {
					t.Errorf("%s: data differs", tt.name)
				}
			}
			if err := f.Close(); err != nil {
				t.Fatal(err)
			}
			if err := f.Close(); err != nil {
				t.Errorf("second Close: %v", err)
			}
			if _, err := f.Tensor(ts[0].name); !errors.Is(err, ErrClosed) {
				t.Errorf("Tensor after Close: %v, want ErrClosed", err)
			}
			if v, err := f.String("t.string"); err != nil || v != "héllo, 世界 \x00 with a NUL" {
				t.Errorf("metadata after Close: %q, %v", v, err)
			}
		})
	}
}

// TestWriterAlignmentKey: a general.alignment set as metadata decides the
// layout, whatever its integer type; a conflicting Writer.Alignment is an
// error.
func TestWriterAlignmentKey(t *testing.T) {
	w := NewWriter()
	if err := w.Set(alignmentKey, Uint64(128)); err != nil {
		t.Fatal(err)
	}
	if err := w.AddTensor("x", tensor.F32, []int64{3}, make([]byte, 12)); err != nil {
		t.Fatal(err)
	}
	if err := w.AddTensor("y", tensor.F32, []int64{3}, make([]byte, 12)); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := w.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	f, err := Parse(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if f.Alignment != 128 || len(f.KVs()) != 1 || f.Tensors()[1].Offset != 128 {
		t.Errorf("alignment %d, %d keys, second tensor at %d", f.Alignment, len(f.KVs()), f.Tensors()[1].Offset)
	}
	w.Alignment = 64
	if _, err := w.WriteTo(io.Discard); !errors.Is(err, ErrBadAlignment) {
		t.Errorf("conflicting alignments: %v, want ErrBadAlignment", err)
	}
	for _, bad := range []Value{Uint32(0), Uint32(48), Int32(-8), String("32"), Float32(32)} {
		if err := NewWriter().Set(alignmentKey, bad); !errors.Is(err, ErrBadAlignment) {
			t.Errorf("Set(general.alignment, %v): %v, want ErrBadAlignment", bad.Any(), err)
		}
	}
	for _, bad := range []int{-32, 3, 48, math.MaxInt} {
		w := NewWriter()
		w.Alignment = bad
		if _, err := w.WriteTo(io.Discard); !errors.Is(err, ErrBadAlignment) {
			t.Errorf("Alignment %d: %v, want ErrBadAlignment", bad, err)
		}
	}
}

// TestWriterRefuses: everything the reader would reject, the Writer
// refuses up front.
func TestWriterRefuses(t *testing.T) {
	deep := ArrayOf([]uint8{}).Array()
	for range maxArrayDepth {
		deep = ArrayOf([]*Array{deep}).Array()
	}
	w := NewWriter()
	if err := w.Set("k", Uint8(1)); err != nil {
		t.Fatal(err)
	}
	if err := w.AddTensor("t", tensor.F32, []int64{1}, make([]byte, 4)); err != nil {
		t.Fatal(err)
	}
	long := string(make([]byte, maxNameLength+1))
	cases := []struct {
		name string
		err  error
		want error
	}{
		{"duplicate key", w.Set("k", Uint8(2)), ErrDuplicateKey},
		{"empty key", w.Set("", Uint8(2)), ErrEmptyName},
		{"long key", w.Set(long, Uint8(2)), ErrNameTooLong},
		{"zero Value", w.Set("z", Value{}), ErrBadValueType},
		{"mismatched Value", w.Set("z", Value{TypeString, 5}), ErrBadValueType},
		{"nil array", w.Set("z", Value{TypeArray, (*Array)(nil)}), ErrBadValueType},
		{"array Elem lies", w.Set("z", Value{TypeArray, &Array{Elem: TypeInt32, Values: []uint32{1}}}), ErrBadValueType},
		{"nil inner array", w.Set("z", ArrayOf([]*Array{nil})), ErrBadValueType},
		{"nesting too deep", w.Set("z", Value{TypeArray, deep}), ErrNestingTooDeep},
		{"duplicate tensor", w.AddTensor("t", tensor.F32, []int64{1}, make([]byte, 4)), ErrDuplicateTensor},
		{"empty tensor name", w.AddTensor("", tensor.F32, []int64{1}, make([]byte, 4)), ErrEmptyName},
		{"five dims", w.AddTensor("u", tensor.F32, []int64{1, 1, 1, 1, 1}, make([]byte, 4)), ErrTooManyDims},
		{"zero dim", w.AddTensor("u", tensor.F32, []int64{4, 0}, nil), ErrBadShape},
		{"negative dim", w.AddTensor("u", tensor.F32, []int64{-4}, nil), ErrBadShape},
		{"overflow", w.AddTensor("u", tensor.F32, []int64{1 << 62, 4}, nil), ErrOverflow},
		{"unknown type", w.AddTensor("u", 77, []int64{4}, nil), ErrUnknownType},
		{"block mismatch", w.AddTensor("u", tensor.Q6_K, []int64{100}, nil), ErrBlockMismatch},
		{"wrong data size", w.AddTensor("u", tensor.F32, []int64{4}, make([]byte, 15)), ErrDataSize},
	}
	for _, c := range cases {
		if !errors.Is(c.err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, c.err, c.want)
		}
	}
	// A streaming tensor that writes the wrong number of bytes.
	w = NewWriter()
	short := func(out io.Writer) error { _, err := out.Write(make([]byte, 3)); return err }
	if err := w.AddTensorFunc("s", tensor.F32, []int64{1}, short, 4); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "short.gguf")
	if err := w.WriteFile(path); !errors.Is(err, ErrDataSize) {
		t.Errorf("short tensor: %v, want ErrDataSize", err)
	}
	if _, err := Open(path); err == nil {
		t.Error("a failed WriteFile left a readable file behind")
	}
}
