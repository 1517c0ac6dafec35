package gguf

import (
	"fmt"
	"math"
)

// ValueType is the type tag of a metadata value, as stored in the file.
type ValueType uint32

// The metadata value types of the GGUF specification.
const (
	TypeUint8   ValueType = 0
	TypeInt8    ValueType = 1
	TypeUint16  ValueType = 2
	TypeInt16   ValueType = 3
	TypeUint32  ValueType = 4
	TypeInt32   ValueType = 5
	TypeFloat32 ValueType = 6
	TypeBool    ValueType = 7
	TypeString  ValueType = 8
	TypeArray   ValueType = 9
	TypeUint64  ValueType = 10
	TypeInt64   ValueType = 11
	TypeFloat64 ValueType = 12
)

var valueTypeNames = [...]string{"uint8", "int8", "uint16", "int16", "uint32", "int32", "float32", "bool", "string", "array", "uint64", "int64", "float64"}

func (t ValueType) String() string {
	if int(t) < len(valueTypeNames) {
		return valueTypeNames[t]
	}
	return fmt.Sprintf("valuetype(%d)", uint32(t))
}

// fixedSize is the encoded size of a scalar of this type; 0 for string and
// array, whose size depends on their content.
func (t ValueType) fixedSize() int {
	switch t {
	case TypeUint8, TypeInt8, TypeBool:
		return 1
	case TypeUint16, TypeInt16:
		return 2
	case TypeUint32, TypeInt32, TypeFloat32:
		return 4
	case TypeUint64, TypeInt64, TypeFloat64:
		return 8
	}
	return 0
}

// Value is one metadata value. Scalars are held as the matching Go type
// (uint8 … float64, bool, string); an array is held as an *Array.
type Value struct {
	Type ValueType
	data any
}

// Array is a metadata array. Values is a typed slice: []uint8, []int8,
// []uint16, []int16, []uint32, []int32, []float32, []bool, []string,
// []uint64, []int64, []float64, or []*Array for an array of arrays.
type Array struct {
	Elem   ValueType
	Values any
}

// Len is the number of elements.
func (a *Array) Len() int {
	switch v := a.Values.(type) {
	case []uint8:
		return len(v)
	case []int8:
		return len(v)
	case []uint16:
		return len(v)
	case []int16:
		return len(v)
	case []uint32:
		return len(v)
	case []int32:
		return len(v)
	case []float32:
		return len(v)
	case []bool:
		return len(v)
	case []string:
		return len(v)
	case []uint64:
		return len(v)
	case []int64:
		return len(v)
	case []float64:
		return len(v)
	case []*Array:
		return len(v)
	}
	return 0
}

// Constructors for metadata values, used with Writer.
func Uint8(v uint8) Value     { return Value{TypeUint8, v} }
func Int8(v int8) Value       { return Value{TypeInt8, v} }
func Uint16(v uint16) Value   { return Value{TypeUint16, v} }
func Int16(v int16) Value     { return Value{TypeInt16, v} }
func Uint32(v uint32) Value   { return Value{TypeUint32, v} }
func Int32(v int32) Value     { return Value{TypeInt32, v} }
func Float32(v float32) Value { return Value{TypeFloat32, v} }
func Bool(v bool) Value       { return Value{TypeBool, v} }
func String(v string) Value   { return Value{TypeString, v} }
func Uint64(v uint64) Value   { return Value{TypeUint64, v} }
func Int64(v int64) Value     { return Value{TypeInt64, v} }
func Float64(v float64) Value { return Value{TypeFloat64, v} }

// ArrayOf wraps a typed slice (see Array) as an array value. It panics on
// a slice type GGUF cannot hold, which is a programming error.
func ArrayOf(values any) Value {
	elem, ok := sliceElemType(values)
	if !ok {
		panic(fmt.Sprintf("gguf: ArrayOf: unsupported slice type %T", values))
	}
	return Value{TypeArray, &Array{Elem: elem, Values: values}}
}

func sliceElemType(values any) (ValueType, bool) {
	switch values.(type) {
	case []uint8:
		return TypeUint8, true
	case []int8:
		return TypeInt8, true
	case []uint16:
		return TypeUint16, true
	case []int16:
		return TypeInt16, true
	case []uint32:
		return TypeUint32, true
	case []int32:
		return TypeInt32, true
	case []float32:
		return TypeFloat32, true
	case []bool:
		return TypeBool, true
	case []string:
		return TypeString, true
	case []uint64:
		return TypeUint64, true
	case []int64:
		return TypeInt64, true
	case []float64:
		return TypeFloat64, true
	case []*Array:
		return TypeArray, true
	}
	return 0, false
}

// Any gives the value as a plain Go value: the scalar itself, the typed
// slice of an array, or for an array of arrays a []any of the inner slices.
func (v Value) Any() any {
	if a, ok := v.data.(*Array); ok {
		return a.anyValues()
	}
	return v.data
}

func (a *Array) anyValues() any {
	if inner, ok := a.Values.([]*Array); ok {
		out := make([]any, len(inner))
		for i, x := range inner {
			out[i] = x.anyValues()
		}
		return out
	}
	return a.Values
}

// Array gives the array, or nil when the value is not an array.
func (v Value) Array() *Array { a, _ := v.data.(*Array); return a }

// asInt converts any integer scalar to int64. ok is false for non-integers
// and for a uint64 above MaxInt64.
func (v Value) asInt() (int64, bool) {
	switch x := v.data.(type) {
	case uint8:
		return int64(x), true
	case int8:
		return int64(x), true
	case uint16:
		return int64(x), true
	case int16:
		return int64(x), true
	case uint32:
		return int64(x), true
	case int32:
		return int64(x), true
	case uint64:
		if x > math.MaxInt64 {
			return 0, false
		}
		return int64(x), true
	case int64:
		return x, true
	}
	return 0, false
}

// asFloat converts a float scalar to float64.
func (v Value) asFloat() (float64, bool) {
	switch x := v.data.(type) {
	case float32:
		return float64(x), true
	case float64:
		return x, true
	}
	return 0, false
}
