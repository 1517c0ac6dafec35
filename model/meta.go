package model

import (
	"fmt"
	"math"
	"math/bits"
	"strconv"
	"strings"

	"github.com/gollm/gollm/gguf"
)

// Strict reading of metadata values.
//
// gguf's accessors (File.Int, File.Float, …) answer "is there a value of
// this kind under this key?", and ReadConfig used to treat a no as "use the
// default". That turned a broken file into a silently wrong model: a
// rope.freq_base written as uint32 1000000 read as absent and became 10000,
// and the logits were wrong with no warning. The readers here tell the
// three cases apart: the key is absent (the caller decides whether that is
// allowed), it holds a value of an accepted type (which must then also be
// in range), or it holds anything else, which is an error naming the key,
// the type found and the type wanted.

// metaReader reads the hyperparameters of one architecture: name
// "block_count" is the key "<arch>.block_count".
type metaReader struct {
	f    *gguf.File
	arch string
}

func (r metaReader) key(name string) string { return r.arch + "." + name }

// configErr is an ErrConfig error with the given detail.
func configErr(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrConfig}, args...)...)
}

// typeName names a value's type with its article, for "is a string, want
// a float": "a uint32", "an int8", "a float64", "an array of uint32".
func typeName(v gguf.Value) string {
	name := v.Type.String()
	if a := v.Array(); a != nil {
		name = "array of " + a.Elem.String()
	}
	if strings.HasPrefix(name, "i") || strings.HasPrefix(name, "a") {
		return "an " + name
	}
	return "a " + name
}

// integer converts an integer scalar of any width and signedness to int64.
// ok is false for every other type. A uint64 above MaxInt64 is reported
// through tooBig, so that the error can show the value.
func integer(v gguf.Value) (n int64, tooBig uint64, ok bool) {
	switch x := v.Any().(type) {
	case uint8:
		return int64(x), 0, true
	case int8:
		return int64(x), 0, true
	case uint16:
		return int64(x), 0, true
	case int16:
		return int64(x), 0, true
	case uint32:
		return int64(x), 0, true
	case int32:
		return int64(x), 0, true
	case int64:
		return x, 0, true
	case uint64:
		if x > math.MaxInt64 {
			return 0, x, true
		}
		return int64(x), 0, true
	}
	return 0, 0, false
}

// lookup returns the value of a key, or ok = false when the key is absent.
func (r metaReader) lookup(name string) (gguf.Value, bool) { return r.f.Lookup(r.key(name)) }

// int reads an integer key and checks lo ≤ value ≤ hi. Every integer type
// is accepted (files written by different tools store the same key as
// uint32, int32 or uint64); floats, bools, strings and arrays are not: a
// block count of 4.0 is a broken file, not a block count. present is
// false, with no error, when the key is absent.
func (r metaReader) int(name string, lo, hi int64) (v int64, present bool, err error) {
	val, ok := r.lookup(name)
	if !ok {
		return 0, false, nil
	}
	n, big, ok := integer(val)
	switch {
	case !ok:
		return 0, true, configErr("%s is %s, want an integer", r.key(name), typeName(val))
	case big != 0:
		return 0, true, configErr("%s = %d, want %d to %d", r.key(name), big, lo, hi)
	case n < lo || n > hi:
		return 0, true, configErr("%s = %d, want %d to %d", r.key(name), n, lo, hi)
	}
	return n, true, nil
}

// requiredInt is int for a key the model cannot do without.
func (r metaReader) requiredInt(name string, lo, hi int64) (int, error) {
	v, present, err := r.int(name, lo, hi)
	if err == nil && !present {
		err = configErr("%s is missing", r.key(name))
	}
	return int(v), err
}

// exactFloat32 reports whether float32 holds the integer m exactly: its
// significand has 24 bits, so m must be an odd number below 2^24 times a
// power of two. Every integer up to 2^24 passes; 2^24+1 = 16777217 is the
// first that does not, and 2^25 passes again.
func exactFloat32(m uint64) bool {
	return m == 0 || m>>bits.TrailingZeros64(m) < 1<<24
}

// float reads a float key and checks that it is finite and within rng.
//
// GGUF declares these keys float32, and the model computes with them in
// float32, so float32 and float64 values are what is expected. An integer
// is accepted too, but only when float32 holds it exactly: a rope base of
// uint32 1000000 is unambiguous (1e6 is a float32), but uint32 16777217
// would silently become 16777216, so it is an error. present is false,
// with no error, when the key is absent.
func (r metaReader) float(name string, rng floatRange) (v float64, present bool, err error) {
	val, ok := r.lookup(name)
	if !ok {
		return 0, false, nil
	}
	var shown string // the value as the file has it, for errors
	switch x := val.Any().(type) {
	case float32:
		v, shown = float64(x), strconv.FormatFloat(float64(x), 'g', -1, 32)
	case float64:
		v, shown = x, strconv.FormatFloat(x, 'g', -1, 64)
	default:
		n, big, isInt := integer(val)
		if !isInt {
			return 0, true, configErr("%s is %s, want a float", r.key(name), typeName(val))
		}
		mag := big // |value|
		v, shown = float64(big), fmt.Sprint(big)
		if big == 0 {
			mag, v, shown = uint64(n), float64(n), fmt.Sprint(n)
			if n < 0 {
				mag = -uint64(n)
			}
		}
		if !exactFloat32(mag) {
			return 0, true, configErr("%s = %s (%s) is not exactly a float32: write it as a float", r.key(name), shown, val.Type)
		}
	}
	if math.IsNaN(v) || math.IsInf(v, 0) || !rng.contains(v) {
		return 0, true, configErr("%s = %s, want %s", r.key(name), shown, rng)
	}
	return v, true, nil
}

// string reads a string key. present is false, with no error, when the
// key is absent.
func (r metaReader) string(name string) (s string, present bool, err error) {
	val, ok := r.lookup(name)
	if !ok {
		return "", false, nil
	}
	s, ok = val.Any().(string)
	if !ok {
		return "", true, configErr("%s is %s, want a string", r.key(name), typeName(val))
	}
	return s, true, nil
}

// floatRange is an interval of finite numbers: [min, max], or (min, max]
// when openMin is set.
type floatRange struct {
	min, max float64
	openMin  bool
}

func (fr floatRange) contains(v float64) bool {
	if fr.openMin {
		return v > fr.min && v <= fr.max
	}
	return v >= fr.min && v <= fr.max
}

func (fr floatRange) String() string {
	if fr.openMin {
		return fmt.Sprintf("a finite number above %g and at most %g", fr.min, fr.max)
	}
	return fmt.Sprintf("a finite number from %g to %g", fr.min, fr.max)
}
