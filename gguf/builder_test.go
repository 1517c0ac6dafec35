package gguf

import (
	"encoding/binary"
	"math"

	"github.com/gollm/gollm/tensor"
)

// rawFile builds GGUF bytes field by field. Unlike the Writer it checks
// nothing, so tests can make every kind of broken file with it.
type rawFile struct{ b []byte }

func (r *rawFile) raw(p ...byte) *rawFile { r.b = append(r.b, p...); return r }
func (r *rawFile) u8(v uint8) *rawFile    { return r.raw(v) }
func (r *rawFile) u32(v uint32) *rawFile  { r.b = binary.LittleEndian.AppendUint32(r.b, v); return r }
func (r *rawFile) u64(v uint64) *rawFile  { r.b = binary.LittleEndian.AppendUint64(r.b, v); return r }
func (r *rawFile) f32(v float32) *rawFile { return r.u32(math.Float32bits(v)) }
func (r *rawFile) str(s string) *rawFile  { return r.u64(uint64(len(s))).raw([]byte(s)...) }
func (r *rawFile) zeros(n int) *rawFile   { r.b = append(r.b, make([]byte, n)...); return r }

// header writes the magic, version and the two counts.
func (r *rawFile) header(version uint32, nTensors, nKV uint64) *rawFile {
	return r.raw('G', 'G', 'U', 'F').u32(version).u64(nTensors).u64(nKV)
}

// kv writes a key and a value type tag; the caller writes the value.
func (r *rawFile) kv(key string, t ValueType) *rawFile { return r.str(key).u32(uint32(t)) }

// kvU32 and kvStr write a whole entry.
func (r *rawFile) kvU32(key string, v uint32) *rawFile { return r.kv(key, TypeUint32).u32(v) }
func (r *rawFile) kvStr(key, v string) *rawFile        { return r.kv(key, TypeString).str(v) }

// arrayHead writes an array value's element type and length.
func (r *rawFile) arrayHead(elem ValueType, n uint64) *rawFile { return r.u32(uint32(elem)).u64(n) }

// tensor writes one tensor info.
func (r *rawFile) tensor(name string, t tensor.DType, offset uint64, ne ...uint64) *rawFile {
	r.str(name).u32(uint32(len(ne)))
	for _, d := range ne {
		r.u64(d)
	}
	return r.u32(uint32(t)).u64(offset)
}

// pad writes zeros up to a multiple of align.
func (r *rawFile) pad(align int) *rawFile {
	for len(r.b)%align != 0 {
		r.b = append(r.b, 0)
	}
	return r
}

func (r *rawFile) bytes() []byte { return r.b }

// validRaw is a small well-formed file: two metadata keys, two tensors
// (f32 [8] at 0, q8_0 [32 2] at 32) and their data.
func validRaw() []byte {
	r := &rawFile{}
	r.header(3, 2, 2)
	r.kvStr("general.architecture", "test")
	r.kvU32("test.count", 7)
	r.tensor("a", tensor.F32, 0, 8)
	r.tensor("b", tensor.Q8_0, 32, 32, 2)
	r.pad(32)
	r.zeros(32)     // a: 8 × 4 bytes
	r.zeros(2 * 34) // b: 2 blocks × 34 bytes
	return r.bytes()
}
