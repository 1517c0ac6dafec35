package gguf

import (
	"bytes"
	"errors"
	"math"
	"reflect"
	"testing"
)

// accessorFile holds one key of each kind the accessors read.
func accessorFile(t *testing.T) *File {
	t.Helper()
	w := NewWriter()
	set := func(k string, v Value) {
		if err := w.Set(k, v); err != nil {
			t.Fatal(err)
		}
	}
	set("u8", Uint8(8))
	set("i8", Int8(-8))
	set("u16", Uint16(16))
	set("i16", Int16(-16))
	set("u32", Uint32(32))
	set("i32", Int32(-32))
	set("u64", Uint64(64))
	set("u64.huge", Uint64(math.MaxUint64))
	set("i64", Int64(-64))
	set("f32", Float32(0.25))
	set("f64", Float64(-0.5))
	set("bool", Bool(true))
	set("str", String("qwen3"))
	set("a.u8", ArrayOf([]uint8{1, 255}))
	set("a.i8", ArrayOf([]int8{-1, 127}))
	set("a.u16", ArrayOf([]uint16{2, 65535}))
	set("a.i16", ArrayOf([]int16{-2, 32767}))
	set("a.u32", ArrayOf([]uint32{3, math.MaxUint32}))
	set("a.i32", ArrayOf([]int32{-3, math.MaxInt32}))
	set("a.u64", ArrayOf([]uint64{4, math.MaxInt64}))
	set("a.u64.huge", ArrayOf([]uint64{4, math.MaxUint64}))
	set("a.i64", ArrayOf([]int64{math.MinInt64, 5}))
	set("a.f32", ArrayOf([]float32{0.5, -1}))
	set("a.f64", ArrayOf([]float64{0.25, 2}))
	set("a.str", ArrayOf([]string{"a", "b"}))
	set("a.bool", ArrayOf([]bool{true}))
	set("a.nested", ArrayOf([]*Array{ArrayOf([]int32{1}).Array()}))
	var buf bytes.Buffer
	if _, err := w.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	f, err := Parse(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestAccessors(t *testing.T) {
	f := accessorFile(t)
	allKeys := []string{}
	for _, kv := range f.KVs() {
		allKeys = append(allKeys, kv.Key)
	}

	// Each accessor, the keys it accepts with the value it must return.
	// Every other key must give ErrWrongType; a missing key ErrKeyNotFound.
	type accessor struct {
		name string
		get  func(key string) (any, error)
		ok   map[string]any
	}
	accessors := []accessor{
		{"String", func(k string) (any, error) { return f.String(k) }, map[string]any{"str": "qwen3"}},
		{"Bool", func(k string) (any, error) { return f.Bool(k) }, map[string]any{"bool": true}},
		{"Int", func(k string) (any, error) { return f.Int(k) }, map[string]any{
			"u8": int64(8), "i8": int64(-8), "u16": int64(16), "i16": int64(-16), "u32": int64(32),
			"i32": int64(-32), "u64": int64(64), "i64": int64(-64)}},
		{"Uint", func(k string) (any, error) { return f.Uint(k) }, map[string]any{
			"u8": uint64(8), "u16": uint64(16), "u32": uint64(32), "u64": uint64(64), "u64.huge": uint64(math.MaxUint64)}},
		{"Float", func(k string) (any, error) { return f.Float(k) }, map[string]any{"f32": 0.25, "f64": -0.5}},
		{"Strings", func(k string) (any, error) { return f.Strings(k) }, map[string]any{"a.str": []string{"a", "b"}}},
		{"Ints", func(k string) (any, error) { return f.Ints(k) }, map[string]any{
			"a.u8": []int64{1, 255}, "a.i8": []int64{-1, 127}, "a.u16": []int64{2, 65535}, "a.i16": []int64{-2, 32767},
			"a.u32": []int64{3, math.MaxUint32}, "a.i32": []int64{-3, math.MaxInt32}, "a.u64": []int64{4, math.MaxInt64},
			"a.i64": []int64{math.MinInt64, 5}}},
		{"Floats", func(k string) (any, error) { return f.Floats(k) }, map[string]any{"a.f32": []float64{0.5, -1}, "a.f64": []float64{0.25, 2}}},
	}
	for _, a := range accessors {
		for _, key := range allKeys {
			got, err := a.get(key)
			if want, ok := a.ok[key]; ok {
				if err != nil || !reflect.DeepEqual(got, want) {
					t.Errorf("%s(%q) = %v, %v; want %v", a.name, key, got, err, want)
				}
				continue
			}
			if !errors.Is(err, ErrWrongType) {
				t.Errorf("%s(%q) = %v, %v; want ErrWrongType", a.name, key, got, err)
			}
		}
		if _, err := a.get("no.such.key"); !errors.Is(err, ErrKeyNotFound) {
			t.Errorf("%s(missing): %v, want ErrKeyNotFound", a.name, err)
		}
	}
	// Int refuses a uint64 beyond int64 instead of wrapping it; Uint a negative.
	if _, err := f.Int("u64.huge"); !errors.Is(err, ErrWrongType) {
		t.Errorf("Int(u64.huge): %v", err)
	}
	if _, err := f.Ints("a.u64.huge"); !errors.Is(err, ErrWrongType) {
		t.Errorf("Ints(a.u64.huge): %v", err)
	}
	// The error names the actual type.
	if _, err := f.String("a.i32"); err == nil || !bytes.Contains([]byte(err.Error()), []byte("array of int32")) {
		t.Errorf("String(a.i32) error %v does not name the type", err)
	}
	if arch, err := (&File{kvIndex: map[string]int{}}).Architecture(); !errors.Is(err, ErrKeyNotFound) {
		t.Errorf("Architecture on an empty file: %q, %v", arch, err)
	}
	if !f.Has("str") || f.Has("nope") {
		t.Error("Has")
	}
	if _, err := f.Tensor("nope"); !errors.Is(err, ErrTensorNotFound) {
		t.Errorf("Tensor(missing): %v", err)
	}
}
