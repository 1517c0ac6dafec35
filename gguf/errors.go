// Package gguf reads and writes GGUF files, llama.cpp's model format.
//
// A file is a header (magic "GGUF", version, tensor count, metadata count),
// the metadata key/value pairs, the tensor infos (name, dimensions, type,
// offset), padding to the alignment, and then the tensor data. Open maps
// the file read-only and parses only the header part, so opening a large
// model is cheap; Tensor returns views into the mapping.
//
// The parser distrusts every count in the file: lengths are bounded by the
// bytes that remain before anything is allocated, products are checked for
// overflow, and every tensor's data range must lie inside the file without
// overlapping another. Every error wraps one of the sentinel errors below,
// so callers can test for a kind of problem with errors.Is.
package gguf

import "errors"

// Sentinel errors. Parse errors wrap one of these with %w and add detail.
var (
	ErrBadMagic        = errors.New("gguf: not a GGUF file (bad magic)")
	ErrBigEndian       = errors.New("gguf: big-endian GGUF files are not supported")
	ErrVersion         = errors.New("gguf: unsupported GGUF version")
	ErrTruncated       = errors.New("gguf: file is truncated")
	ErrCountTooLarge   = errors.New("gguf: count exceeds what the file can hold")
	ErrBadValueType    = errors.New("gguf: invalid metadata value type")
	ErrBadBool         = errors.New("gguf: invalid bool value")
	ErrNestingTooDeep  = errors.New("gguf: arrays nested too deeply")
	ErrDuplicateKey    = errors.New("gguf: duplicate metadata key")
	ErrDuplicateTensor = errors.New("gguf: duplicate tensor name")
	ErrBadAlignment    = errors.New("gguf: invalid general.alignment")
	ErrTooManyDims     = errors.New("gguf: tensor has too many dimensions")
	ErrBadShape        = errors.New("gguf: invalid tensor shape")
	ErrOverflow        = errors.New("gguf: tensor size overflows")
	ErrUnknownType     = errors.New("gguf: unknown tensor type")
	ErrBlockMismatch   = errors.New("gguf: tensor row is not a whole number of blocks")
	ErrMisaligned      = errors.New("gguf: tensor offset is not aligned")
	ErrOutOfBounds     = errors.New("gguf: tensor data lies outside the file")
	ErrOverlap         = errors.New("gguf: tensor data ranges overlap")
	ErrEmptyName       = errors.New("gguf: empty key or tensor name")

	ErrKeyNotFound    = errors.New("gguf: metadata key not found")
	ErrWrongType      = errors.New("gguf: metadata value has another type")
	ErrTensorNotFound = errors.New("gguf: tensor not found")
	ErrClosed         = errors.New("gguf: file is closed")
)
