package gguf

import (
	"fmt"
	"math"
)

// Typed accessors. Each returns ErrKeyNotFound for a missing key and
// ErrWrongType (with the actual type named) for a value of another kind.

func (f *File) get(key string) (Value, error) {
	v, ok := f.Lookup(key)
	if !ok {
		return Value{}, fmt.Errorf("%w: %q", ErrKeyNotFound, key)
	}
	return v, nil
}

func wrongType(key string, v Value, want string) error {
	if a := v.Array(); a != nil {
		return fmt.Errorf("%w: %q is an array of %s, want %s", ErrWrongType, key, a.Elem, want)
	}
	return fmt.Errorf("%w: %q is %s, want %s", ErrWrongType, key, v.Type, want)
}

// String returns a string value.
func (f *File) String(key string) (string, error) {
	v, err := f.get(key)
	if err != nil {
		return "", err
	}
	s, ok := v.data.(string)
	if !ok {
		return "", wrongType(key, v, "string")
	}
	return s, nil
}

// Int returns any integer value (of any width or signedness) as int64.
func (f *File) Int(key string) (int64, error) {
	v, err := f.get(key)
	if err != nil {
		return 0, err
	}
	n, ok := v.asInt()
	if !ok {
		return 0, wrongType(key, v, "integer")
	}
	return n, nil
}

// Uint returns a non-negative integer value as uint64.
func (f *File) Uint(key string) (uint64, error) {
	v, err := f.get(key)
	if err != nil {
		return 0, err
	}
	if u, ok := v.data.(uint64); ok {
		return u, nil
	}
	n, ok := v.asInt()
	if !ok || n < 0 {
		return 0, wrongType(key, v, "non-negative integer")
	}
	return uint64(n), nil
}

// Float returns a float32 or float64 value as float64.
func (f *File) Float(key string) (float64, error) {
	v, err := f.get(key)
	if err != nil {
		return 0, err
	}
	x, ok := v.asFloat()
	if !ok {
		return 0, wrongType(key, v, "float")
	}
	return x, nil
}

// Bool returns a bool value.
func (f *File) Bool(key string) (bool, error) {
	v, err := f.get(key)
	if err != nil {
		return false, err
	}
	b, ok := v.data.(bool)
	if !ok {
		return false, wrongType(key, v, "bool")
	}
	return b, nil
}

// Strings returns a string array. The slice is shared with the File.
func (f *File) Strings(key string) ([]string, error) {
	v, err := f.get(key)
	if err != nil {
		return nil, err
	}
	if a := v.Array(); a != nil {
		if s, ok := a.Values.([]string); ok {
			return s, nil
		}
	}
	return nil, wrongType(key, v, "array of string")
}

// Ints returns an integer array of any element width as []int64.
func (f *File) Ints(key string) ([]int64, error) {
	v, err := f.get(key)
	if err != nil {
		return nil, err
	}
	a := v.Array()
	if a == nil {
		return nil, wrongType(key, v, "array of integers")
	}
	n := a.Len()
	out := make([]int64, n)
	switch s := a.Values.(type) {
	case []uint8:
		for i, x := range s {
			out[i] = int64(x)
		}
	case []int8:
		for i, x := range s {
			out[i] = int64(x)
		}
	case []uint16:
		for i, x := range s {
			out[i] = int64(x)
		}
	case []int16:
		for i, x := range s {
			out[i] = int64(x)
		}
	case []uint32:
		for i, x := range s {
			out[i] = int64(x)
		}
	case []int32:
		for i, x := range s {
			out[i] = int64(x)
		}
	case []int64:
		copy(out, s)
	case []uint64:
		for i, x := range s {
			if x > math.MaxInt64 {
				return nil, fmt.Errorf("%w: %q element %d is %d, beyond int64", ErrWrongType, key, i, x)
			}
			out[i] = int64(x)
		}
	default:
		return nil, wrongType(key, v, "array of integers")
	}
	return out, nil
}

// Floats returns a float32 or float64 array as []float64.
func (f *File) Floats(key string) ([]float64, error) {
	v, err := f.get(key)
	if err != nil {
		return nil, err
	}
	a := v.Array()
	if a == nil {
		return nil, wrongType(key, v, "array of floats")
	}
	switch s := a.Values.(type) {
	case []float32:
		out := make([]float64, len(s))
		for i, x := range s {
			out[i] = float64(x)
		}
		return out, nil
	case []float64:
		return append([]float64(nil), s...), nil
	}
	return nil, wrongType(key, v, "array of floats")
}

// Architecture returns general.architecture (for example "qwen3").
func (f *File) Architecture() (string, error) { return f.String("general.architecture") }
