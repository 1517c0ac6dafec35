// Package gguf reads and writes GGUF files, llama.cpp's model format.
//
// A file is a header (magic "GGUF", version, tensor count, metadata count),
// the metadata key/value pairs, the tensor infos (name, dimensions, type,
// offset), padding to the alignment, and then the tensor data:
//
//	offset 0   "GGUF"  version:u32  n_tensors:u64  n_kv:u64
//	           n_kv × (key:string  type:u32  value)
//	           n_tensors × (name:string  n_dims:u32  ne:u64×n_dims  type:u32  offset:u64)
//	           zero padding up to a multiple of the alignment
//	DataOffset tensor data; each tensor at DataOffset+offset, offsets aligned
//
// A string is a u64 byte length followed by the bytes (no terminator). All
// numbers are little-endian. The format is specified in ggml's
// docs/gguf.md; versions 2 and 3 share this layout (version 1 used 32-bit
// counts and is not read).
//
// Open maps the file read-only and parses only the header part, so opening
// a large model is cheap and touches none of the tensor data; Tensor
// returns views into the mapping.
//
// The parser distrusts every count in the file: lengths are bounded by the
// bytes that remain before anything is allocated, products are checked for
// overflow, and every tensor's data range must lie inside the file without
// overlapping another. Every error wraps one of the sentinel errors below,
// so callers can test for a kind of problem with errors.Is.
//
// A mapped file must not shrink while it is open. If another program
// truncates it, reading the tensor data past the new end raises SIGBUS,
// which the Go runtime turns into a crash (as llama.cpp crashes): the
// reads happen in the compute kernels' worker goroutines, deep in hot
// loops, where runtime/debug.SetPanicOnFault with a recover around every
// read would cost more than it saves. Replace model files by writing a
// new file and renaming it over the old one (the mapping keeps the old
// inode), never by rewriting them in place.
package gguf

import "errors"

// Sentinel errors. Parse errors wrap one of these with %w and add detail
// (what was being read, at which file offset).
var (
	ErrBadMagic        = errors.New("gguf: not a GGUF file (bad magic)")
	ErrBigEndian       = errors.New("gguf: big-endian GGUF files are not supported")
	ErrVersion         = errors.New("gguf: unsupported GGUF version")
	ErrTruncated       = errors.New("gguf: file is truncated")
	ErrCountTooLarge   = errors.New("gguf: count or length exceeds what the file can hold")
	ErrNameTooLong     = errors.New("gguf: key or tensor name too long")
	ErrEmptyName       = errors.New("gguf: empty key or tensor name")
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
	ErrNotRegular      = errors.New("gguf: not a regular file")

	// Writer errors (the reader computes sizes, so it cannot see these).
	ErrDataSize = errors.New("gguf: tensor data size does not match its type and shape")

	// Lookup errors.
	ErrKeyNotFound    = errors.New("gguf: metadata key not found")
	ErrWrongType      = errors.New("gguf: metadata value has another type")
	ErrTensorNotFound = errors.New("gguf: tensor not found")
	ErrClosed         = errors.New("gguf: file is closed")
)
