package model

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/gollm/gollm/backend"
	"github.com/gollm/gollm/backend/cpu"
	"github.com/gollm/gollm/gguf"
	"github.com/gollm/gollm/internal/testdata"
	"github.com/gollm/gollm/tensor"
)

// fileEdit describes changes to a fixture: metadata keys to set (added or
// replaced), keys to drop, a tensor editor (return false to drop the
// tensor; it may change Data in place, which is a private copy) and extra
// tensors to append.
type fileEdit struct {
	set    map[string]gguf.Value
	drop   []string
	tensor func(ti *gguf.Tensor) bool
	extra  func(w *gguf.Writer) error
}

// edited writes the fixture with the edit applied into memory and parses
// it, without touching the disk.
func edited(t testing.TB, fixture string, e fileEdit) *gguf.File {
	t.Helper()
	src, err := gguf.Open(testdata.Path("models", fixture+".gguf"))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	w := gguf.NewWriter()
	seen := map[string]bool{}
	for _, kv := range src.KVs() {
		v, ok := e.set[kv.Key]
		seen[kv.Key] = ok
		switch {
		case ok:
		case containsString(e.drop, kv.Key):
			continue
		default:
			v = kv.Value
		}
		if err := w.Set(kv.Key, v); err != nil {
			t.Fatal(err)
		}
	}
	for k, v := range e.set {
		if !seen[k] {
			if err := w.Set(k, v); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, ti := range src.Tensors() {
		tt, _ := src.Tensor(ti.Name)
		tt.Data = bytes.Clone(tt.Data)
		if e.tensor != nil && !e.tensor(&tt) {
			continue
		}
		if err := w.AddTensor(tt.Name, tt.Type, tt.Shape, tt.Data); err != nil {
			t.Fatal(err)
		}
	}
	if e.extra != nil {
		if err := e.extra(w); err != nil {
			t.Fatal(err)
		}
	}
	var buf bytes.Buffer
	if _, err := w.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	f, err := gguf.Parse(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// set is a fileEdit that sets one key.
func set(key string, v gguf.Value) fileEdit {
	return fileEdit{set: map[string]gguf.Value{key: v}}
}

// setAll is a fileEdit that sets several keys: key, value, key, value…
func setAll(kv ...any) fileEdit {
	e := fileEdit{set: map[string]gguf.Value{}}
	for i := 0; i < len(kv); i += 2 {
		e.set[kv[i].(string)] = kv[i+1].(gguf.Value)
	}
	return e
}

// drop is a fileEdit that removes keys.
func drop(keys ...string) fileEdit { return fileEdit{drop: keys} }

// poison is a fileEdit that overwrites bytes of one tensor's data at off
// with b (little-endian bit patterns of a NaN or an infinity).
func poison(name string, off int, b ...byte) fileEdit {
	return fileEdit{tensor: func(ti *gguf.Tensor) bool {
		if ti.Name == name {
			copy(ti.Data[off:], b)
		}
		return true
	}}
}

// Bit patterns, little-endian.
var (
	halfNaN    = []byte{0x00, 0x7E} // 0x7E00
	halfNegInf = []byte{0x00, 0xFC} // 0xFC00
	halfPosInf = []byte{0x00, 0x7C} // 0x7C00
	f32NaN     = binary.LittleEndian.AppendUint32(nil, 0x7FC00000)
	f32PosInf  = binary.LittleEndian.AppendUint32(nil, 0x7F800000)
)

// metaCase is one broken (or unusual but valid) file and what Load must
// say about it.
type metaCase struct {
	name    string
	fixture string // "" is qwen3-tiny-q6k
	edit    fileEdit
	want    error  // nil: the file must load
	mention string // text the error must contain
}

const q = "qwen3."

// metadataCases are the table of TestMetadata. Fixture A (qwen3-tiny-q6k)
// has 4 layers, width 256, 8 query and 4 KV heads of 64, feed-forward 768,
// vocabulary 4096, and all its matrices are Q6_K with token_embd tied;
// fixture B (qwen3-tiny-mixed) mixes F32, F16, Q8_0, Q4_K, Q5_K and Q6_K
// matrices.
func metadataCases() []metaCase {
	nan, inf := math.NaN(), math.Inf(1)
	c := []metaCase{
		// A known key with a value of the wrong type names the key, the
		// type found and the type wanted.
		{name: "architecture as uint32", edit: set("general.architecture", gguf.Uint32(3)), want: ErrConfig, mention: "general.architecture is a uint32, want a string"},
		{name: "block_count as string", edit: set(q+"block_count", gguf.String("4")), want: ErrConfig, mention: "qwen3.block_count is a string, want an integer"},
		{name: "block_count as float32", edit: set(q+"block_count", gguf.Float32(4)), want: ErrConfig, mention: "qwen3.block_count is a float32, want an integer"},
		{name: "context_length as bool", edit: set(q+"context_length", gguf.Bool(true)), want: ErrConfig, mention: "qwen3.context_length is a bool, want an integer"},
		{name: "embedding_length as array", edit: set(q+"embedding_length", gguf.ArrayOf([]uint32{256})), want: ErrConfig, mention: "qwen3.embedding_length is an array of uint32, want an integer"},
		{name: "feed_forward_length as float64", edit: set(q+"feed_forward_length", gguf.Float64(768)), want: ErrConfig, mention: "qwen3.feed_forward_length is a float64, want an integer"},
		{name: "head_count as string", edit: set(q+"attention.head_count", gguf.String("8")), want: ErrConfig, mention: "qwen3.attention.head_count is a string, want an integer"},
		{name: "head_count_kv per layer", edit: set(q+"attention.head_count_kv", gguf.ArrayOf([]int32{4, 4, 4, 4})), want: ErrConfig, mention: "qwen3.attention.head_count_kv is an array of int32, want an integer"},
		{name: "key_length as float32", edit: set(q+"attention.key_length", gguf.Float32(64)), want: ErrConfig, mention: "qwen3.attention.key_length is a float32, want an integer"},
		{name: "value_length as string", edit: set(q+"attention.value_length", gguf.String("64")), want: ErrConfig, mention: "qwen3.attention.value_length is a string, want an integer"},
		{name: "freq_base as string", edit: set(q+"rope.freq_base", gguf.String("1000000")), want: ErrConfig, mention: "qwen3.rope.freq_base is a string, want a float"},
		{name: "freq_base as bool", edit: set(q+"rope.freq_base", gguf.Bool(true)), want: ErrConfig, mention: "qwen3.rope.freq_base is a bool, want a float"},
		{name: "rms eps as array", edit: set(q+"attention.layer_norm_rms_epsilon", gguf.ArrayOf([]float32{1e-6})), want: ErrConfig, mention: "qwen3.attention.layer_norm_rms_epsilon is an array of float32, want a float"},
		{name: "scaling type as uint32", edit: set(q+"rope.scaling.type", gguf.Uint32(2)), want: ErrConfig, mention: "qwen3.rope.scaling.type is a uint32, want a string"},
		{name: "scaling factor as string", edit: set(q+"rope.scaling.factor", gguf.String("4")), want: ErrConfig, mention: "qwen3.rope.scaling.factor is a string, want a float"},
		{name: "original context as float32", edit: set(q+"rope.scaling.original_context_length", gguf.Float32(1024)), want: ErrConfig, mention: "qwen3.rope.scaling.original_context_length is a float32, want an integer"},
		{name: "attn_factor as int8 array", edit: set(q+"rope.scaling.attn_factor", gguf.ArrayOf([]int8{1})), want: ErrConfig, mention: "qwen3.rope.scaling.attn_factor is an array of int8, want a float"},

		// Required keys.
		{name: "architecture missing", edit: drop("general.architecture"), want: ErrConfig, mention: "general.architecture is missing"},
		{name: "block_count missing", edit: drop(q + "block_count"), want: ErrConfig, mention: "qwen3.block_count is missing"},
		{name: "context_length missing", edit: drop(q + "context_length"), want: ErrConfig, mention: "qwen3.context_length is missing"},
		{name: "embedding_length missing", edit: drop(q + "embedding_length"), want: ErrConfig, mention: "qwen3.embedding_length is missing"},
		{name: "feed_forward_length missing", edit: drop(q + "feed_forward_length"), want: ErrConfig, mention: "qwen3.feed_forward_length is missing"},
		{name: "head_count missing", edit: drop(q + "attention.head_count"), want: ErrConfig, mention: "qwen3.attention.head_count is missing"},
		{name: "head_count_kv missing", edit: drop(q + "attention.head_count_kv"), want: ErrConfig, mention: "qwen3.attention.head_count_kv is missing"},
		{name: "other architecture", edit: set("general.architecture", gguf.String("gemma3")), want: ErrArchitecture, mention: `"gemma3" (gollm supports llama, qwen2, qwen3, qwen3moe)`},

		// Integer ranges, whatever the integer type.
		{name: "block_count 0", edit: set(q+"block_count", gguf.Uint32(0)), want: ErrConfig, mention: "qwen3.block_count = 0, want 1 to 4096"},
		{name: "block_count -1", edit: set(q+"block_count", gguf.Int32(-1)), want: ErrConfig, mention: "qwen3.block_count = -1, want 1 to 4096"},
		{name: "block_count 2^64-1", edit: set(q+"block_count", gguf.Uint64(math.MaxUint64)), want: ErrConfig, mention: "qwen3.block_count = 18446744073709551615, want 1 to 4096"},
		{name: "block_count 2^20", edit: set(q+"block_count", gguf.Uint32(1<<20)), want: ErrConfig, mention: "qwen3.block_count = 1048576, want 1 to 4096"},
		{name: "block_count 4096 in a 46-tensor file", edit: set(q+"block_count", gguf.Uint32(4096)), want: ErrTensor,
			mention: "blk.4.attn_norm.weight is missing: qwen3.block_count = 4096 needs at least 45058 tensors (11 per layer, plus token_embd and output_norm), the file has 46"},
		{name: "block_count 5 with 11 filler tensors", edit: fileEdit{set: map[string]gguf.Value{q + "block_count": gguf.Uint32(5)}, extra: fillers(11)},
			want: ErrTensor, mention: `tensor not found: "blk.4.attn_norm.weight"`},
		{name: "context_length 2^24+1", edit: set(q+"context_length", gguf.Uint64(1<<24+1)), want: ErrConfig, mention: "qwen3.context_length = 16777217, want 1 to 16777216"},
		{name: "embedding_length 0", edit: set(q+"embedding_length", gguf.Int64(0)), want: ErrConfig, mention: "qwen3.embedding_length = 0, want 1 to 262144"},
		{name: "embedding_length 2^18+1", edit: set(q+"embedding_length", gguf.Uint32(1<<18+1)), want: ErrConfig, mention: "qwen3.embedding_length = 262145, want 1 to 262144"},
		{name: "feed_forward_length -768", edit: set(q+"feed_forward_length", gguf.Int16(-768)), want: ErrConfig, mention: "qwen3.feed_forward_length = -768, want 1 to 262144"},
		{name: "head_count 1025", edit: set(q+"attention.head_count", gguf.Uint16(1025)), want: ErrConfig, mention: "qwen3.attention.head_count = 1025, want 1 to 1024"},
		{name: "head_count_kv 0", edit: set(q+"attention.head_count_kv", gguf.Uint8(0)), want: ErrConfig, mention: "qwen3.attention.head_count_kv = 0, want 1 to 1024"},
		{name: "kv heads do not divide", edit: set(q+"attention.head_count_kv", gguf.Uint32(3)), want: ErrConfig, mention: "qwen3.attention.head_count = 8 is not a multiple of qwen3.attention.head_count_kv = 3"},
		{name: "more kv heads than heads", edit: set(q+"attention.head_count_kv", gguf.Uint32(16)), want: ErrConfig, mention: "qwen3.attention.head_count = 8 is not a multiple of qwen3.attention.head_count_kv = 16"},
		{name: "key_length odd", edit: set(q+"attention.key_length", gguf.Uint32(63)), want: ErrConfig, mention: "head dimension 63 (qwen3.attention.key_length) is odd"},
		{name: "key_length 0", edit: set(q+"attention.key_length", gguf.Uint32(0)), want: ErrConfig, mention: "qwen3.attention.key_length = 0, want 2 to 1024"},
		{name: "key_length 2048", edit: set(q+"attention.key_length", gguf.Uint32(2048)), want: ErrConfig, mention: "qwen3.attention.key_length = 2048, want 2 to 1024"},
		{name: "value_length differs", edit: set(q+"attention.value_length", gguf.Uint32(32)), want: ErrConfig, mention: "qwen3.attention.value_length = 32 differs from the head dimension 64"},
		{name: "no key_length, width not a multiple of heads", edit: fileEdit{drop: []string{q + "attention.key_length"}, set: map[string]gguf.Value{q + "embedding_length": gguf.Uint32(250)}},
			want: ErrConfig, mention: "qwen3.attention.key_length is missing and qwen3.embedding_length = 250 is not a multiple of qwen3.attention.head_count = 8"},
		{name: "heads × head dim too wide", edit: setAll(q+"attention.head_count", gguf.Uint32(1024), q+"attention.key_length", gguf.Uint32(1024), q+"attention.value_length", gguf.Uint32(1024)),
			want: ErrConfig, mention: "qwen3.attention.head_count × qwen3.attention.key_length = 1024 × 1024 = 1048576, want at most 262144"},
		{name: "original context 0", edit: set(q+"rope.scaling.original_context_length", gguf.Uint32(0)), want: ErrConfig, mention: "qwen3.rope.scaling.original_context_length = 0, want 1 to 16777216"},

		// Float ranges: NaN and infinities too.
		{name: "freq_base NaN", edit: set(q+"rope.freq_base", gguf.Float32(float32(nan))), want: ErrConfig, mention: "qwen3.rope.freq_base = NaN, want a finite number above 1 and at most 1e+12"},
		{name: "freq_base +Inf", edit: set(q+"rope.freq_base", gguf.Float32(float32(inf))), want: ErrConfig, mention: "qwen3.rope.freq_base = +Inf, want a finite number above 1"},
		{name: "freq_base -Inf", edit: set(q+"rope.freq_base", gguf.Float64(-inf)), want: ErrConfig, mention: "qwen3.rope.freq_base = -Inf, want"},
		{name: "freq_base 0", edit: set(q+"rope.freq_base", gguf.Float32(0)), want: ErrConfig, mention: "qwen3.rope.freq_base = 0, want"},
		{name: "freq_base 1", edit: set(q+"rope.freq_base", gguf.Float32(1)), want: ErrConfig, mention: "qwen3.rope.freq_base = 1, want a finite number above 1"},
		{name: "freq_base 1e13", edit: set(q+"rope.freq_base", gguf.Float64(1e13)), want: ErrConfig, mention: "qwen3.rope.freq_base = 1e+13, want"},
		{name: "rms eps NaN", edit: set(q+"attention.layer_norm_rms_epsilon", gguf.Float32(float32(nan))), want: ErrConfig, mention: "qwen3.attention.layer_norm_rms_epsilon = NaN, want a finite number above 0 and at most 1"},
		{name: "rms eps +Inf", edit: set(q+"attention.layer_norm_rms_epsilon", gguf.Float32(float32(inf))), want: ErrConfig, mention: "qwen3.attention.layer_norm_rms_epsilon = +Inf, want"},
		{name: "rms eps 0", edit: set(q+"attention.layer_norm_rms_epsilon", gguf.Float32(0)), want: ErrConfig, mention: "qwen3.attention.layer_norm_rms_epsilon = 0, want"},
		{name: "rms eps negative", edit: set(q+"attention.layer_norm_rms_epsilon", gguf.Float32(-1e-6)), want: ErrConfig, mention: "qwen3.attention.layer_norm_rms_epsilon = -1e-06, want"},
		{name: "rms eps 2", edit: set(q+"attention.layer_norm_rms_epsilon", gguf.Float32(2)), want: ErrConfig, mention: "qwen3.attention.layer_norm_rms_epsilon = 2, want"},
		{name: "rms eps below float32", edit: set(q+"attention.layer_norm_rms_epsilon", gguf.Float64(1e-50)), want: ErrConfig, mention: "qwen3.attention.layer_norm_rms_epsilon = 1e-50 rounds to 0 in float32"},
		{name: "scaling type ntk", edit: set(q+"rope.scaling.type", gguf.String("ntk")), want: ErrConfig, mention: `qwen3.rope.scaling.type = "ntk", want none, linear or yarn`},
		{name: "scaling factor NaN", edit: setAll(q+"rope.scaling.type", gguf.String("yarn"), q+"rope.scaling.factor", gguf.Float32(float32(nan))), want: ErrConfig, mention: "qwen3.rope.scaling.factor = NaN, want"},
		{name: "scaling factor NaN, scaling off", edit: set(q+"rope.scaling.factor", gguf.Float32(float32(nan))), want: ErrConfig, mention: "qwen3.rope.scaling.factor = NaN, want"},
		{name: "scaling factor +Inf", edit: setAll(q+"rope.scaling.type", gguf.String("linear"), q+"rope.scaling.factor", gguf.Float64(inf)), want: ErrConfig, mention: "qwen3.rope.scaling.factor = +Inf, want"},
		{name: "scaling factor 0.5", edit: setAll(q+"rope.scaling.type", gguf.String("yarn"), q+"rope.scaling.factor", gguf.Float32(0.5)), want: ErrConfig, mention: "qwen3.rope.scaling.factor = 0.5, want a finite number from 1 to 1024"},
		{name: "attn_factor 0", edit: set(q+"rope.scaling.attn_factor", gguf.Float32(0)), want: ErrConfig, mention: "qwen3.rope.scaling.attn_factor = 0, want a finite number above 0 and at most 16"},
		{name: "attn_factor NaN", edit: set(q+"rope.scaling.attn_factor", gguf.Float32(float32(nan))), want: ErrConfig, mention: "qwen3.rope.scaling.attn_factor = NaN, want"},

		// Integers where a float is expected: only when float32 holds them exactly.
		{name: "freq_base uint32 1000000", edit: set(q+"rope.freq_base", gguf.Uint32(1000000))},
		{name: "freq_base uint64 2^25", edit: set(q+"rope.freq_base", gguf.Uint64(1<<25))},
		{name: "freq_base int64 2^24+1", edit: set(q+"rope.freq_base", gguf.Int64(1<<24+1)), want: ErrConfig, mention: "qwen3.rope.freq_base = 16777217 (int64) is not exactly a float32"},
		{name: "freq_base uint32 1000001 · 2^5", edit: set(q+"rope.freq_base", gguf.Uint32(1000001<<5))},
		{name: "freq_base uint32 2^32-1", edit: set(q+"rope.freq_base", gguf.Uint32(math.MaxUint32)), want: ErrConfig, mention: "qwen3.rope.freq_base = 4294967295 (uint32) is not exactly a float32"},
		{name: "freq_base uint64 2^63+1", edit: set(q+"rope.freq_base", gguf.Uint64(1<<63+1)), want: ErrConfig, mention: "qwen3.rope.freq_base = 9223372036854775809 (uint64) is not exactly a float32"},
		{name: "freq_base int8 -1", edit: set(q+"rope.freq_base", gguf.Int8(-1)), want: ErrConfig, mention: "qwen3.rope.freq_base = -1, want a finite number above 1"},
		{name: "rms eps uint8 1", edit: set(q+"attention.layer_norm_rms_epsilon", gguf.Uint8(1))},
		{name: "scaling factor 0 means unset", edit: set(q+"rope.scaling.factor", gguf.Float32(0))},
		{name: "yarn factor as uint16", edit: setAll(q+"rope.scaling.type", gguf.String("yarn"), q+"rope.scaling.factor", gguf.Uint16(4))},
	}

	// Any integer type carries an integer key.
	for _, v := range []gguf.Value{gguf.Uint8(4), gguf.Int8(4), gguf.Uint16(4), gguf.Int16(4), gguf.Int32(4), gguf.Uint64(4), gguf.Int64(4)} {
		c = append(c, metaCase{name: "block_count as " + v.Type.String(), edit: set(q+"block_count", v)})
	}

	// NaN and infinities in weights, one case per kind of storage. Offsets
	// are in bytes; the row and column follow from the shape.
	c = append(c,
		metaCase{name: "NaN in an F32 vector", edit: poison("output_norm.weight", 4*3, f32NaN...), want: ErrNotFinite,
			mention: "output_norm.weight (f32, 256) at element 3 is NaN"},
		metaCase{name: "+Inf in a Q6_K scale d", edit: poison("blk.2.ffn_down.weight", 4*210+208, halfPosInf...), want: ErrNotFinite,
			mention: "blk.2.ffn_down.weight (q6_K, 256×768) at row 1, columns 256-511: block 4 has scale d = +Inf"},
		metaCase{name: "NaN in the tied LM head", edit: poison("token_embd.weight", 5*210+208, halfNaN...), want: ErrNotFinite,
			mention: "token_embd.weight (q6_K, 4096×256) at row 5, columns 0-255: block 5 has scale d = NaN"},
		metaCase{name: "NaN in an F16 matrix", fixture: "qwen3-tiny-mixed", edit: poison("blk.0.ffn_up.weight", 2*(5*256+17), halfNaN...), want: ErrNotFinite,
			mention: "blk.0.ffn_up.weight (f16, 768×256) at row 5, column 17 is NaN"},
		metaCase{name: "+Inf in an F32 matrix", fixture: "qwen3-tiny-mixed", edit: poison("blk.0.attn_output.weight", 4*1000, f32PosInf...), want: ErrNotFinite,
			mention: "blk.0.attn_output.weight (f32, 256×512) at row 1, column 488 is +Inf"},
		metaCase{name: "-Inf in a Q4_K scale dmin", fixture: "qwen3-tiny-mixed", edit: poison("blk.0.ffn_gate.weight", 3*144+2, halfNegInf...), want: ErrNotFinite,
			mention: "blk.0.ffn_gate.weight (q4_K, 768×256) at row 3, columns 0-255: block 3 has scale dmin = -Inf"},
		metaCase{name: "NaN in a Q8_0 scale", fixture: "qwen3-tiny-mixed", edit: poison("blk.0.attn_q.weight", 9*34, halfNaN...), want: ErrNotFinite,
			mention: "blk.0.attn_q.weight (q8_0, 512×256) at row 1, columns 32-63: block 9 has scale d = NaN"},
		metaCase{name: "NaN in a Q5_K scale", fixture: "qwen3-tiny-mixed", edit: poison("blk.1.ffn_gate.weight", 767*176, halfNaN...), want: ErrNotFinite,
			mention: "blk.1.ffn_gate.weight (q5_K, 768×256) at row 767, columns 0-255: block 767 has scale d = NaN"},
		metaCase{name: "NaN in the untied LM head", fixture: "qwen3-tiny-mixed", edit: poison("output.weight", 4095*144, halfNaN...), want: ErrNotFinite,
			mention: "output.weight (q4_K, 4096×256) at row 4095, columns 0-255: block 4095 has scale d = NaN"},
		metaCase{name: "Q8_K weight", edit: fileEdit{tensor: func(ti *gguf.Tensor) bool {
			if ti.Name == "output_norm.weight" { // 256 values: one Q8_K block of 292 bytes
				ti.Type, ti.Data = tensor.Q8_K, make([]byte, 292)
			}
			return true
		}}, want: ErrTensor, mention: "output_norm.weight has type q8_K, which gollm cannot read"},
		metaCase{name: "two bad weights: the first in load order", fixture: "qwen3-tiny-mixed",
			edit: fileEdit{tensor: func(ti *gguf.Tensor) bool {
				switch ti.Name {
				case "blk.3.ffn_up.weight":
					copy(ti.Data[0:], halfNaN)
				case "blk.1.attn_q_norm.weight":
					copy(ti.Data[4*63:], f32NaN)
				}
				return true
			}},
			want: ErrNotFinite, mention: "blk.1.attn_q_norm.weight (f32, 64) at element 63 is NaN"},
	)
	// The other families (llama-tiny: 8 heads of 32, 2 KV heads, 9
	// tensors a layer; qwen2-tiny: 4 heads of 64, 2 KV heads, q/k/v
	// biases, 12 tensors a layer). Keys only some families write, checked
	// like the others.
	const l, l2 = "llama.", "qwen2."
	llama, qwen2 := "llama-tiny-q6k", "qwen2-tiny-q6k"
	c = append(c,
		metaCase{name: "llama: rope.dimension_count as float32", fixture: llama, edit: set(l+"rope.dimension_count", gguf.Float32(32)), want: ErrConfig,
			mention: "llama.rope.dimension_count is a float32, want an integer"},
		metaCase{name: "llama: rope.dimension_count 16 (partial rotation)", fixture: llama, edit: set(l+"rope.dimension_count", gguf.Uint32(16)), want: ErrConfig,
			mention: "llama.rope.dimension_count = 16 differs from the head dimension 32 (gollm rotates whole heads)"},
		metaCase{name: "llama: rope.dimension_count 0", fixture: llama, edit: set(l+"rope.dimension_count", gguf.Uint32(0)), want: ErrConfig,
			mention: "llama.rope.dimension_count = 0, want 2 to 1024"},
		metaCase{name: "llama: vocab_size as string", fixture: llama, edit: set(l+"vocab_size", gguf.String("4096")), want: ErrConfig,
			mention: "llama.vocab_size is a string, want an integer"},
		metaCase{name: "llama: vocab_size differs from token_embd", fixture: llama, edit: set(l+"vocab_size", gguf.Uint32(4095)), want: ErrConfig,
			mention: "llama.vocab_size = 4095, but token_embd.weight has 4096 rows"},
		metaCase{name: "llama: vocab_size 0", fixture: llama, edit: set(l+"vocab_size", gguf.Int32(0)), want: ErrConfig,
			mention: "llama.vocab_size = 0, want 1 to 4194304"},
		metaCase{name: "llama: expert_count 8 (Mixtral)", fixture: llama, edit: set(l+"expert_count", gguf.Uint32(8)), want: ErrArchitecture,
			mention: `llama.expert_count = 8: a mixture of experts under "llama" is not supported yet`},
		metaCase{name: "llama: expert_count 0", fixture: llama, edit: set(l+"expert_count", gguf.Uint32(0))},
		metaCase{name: "llama: no rope.dimension_count", fixture: llama, edit: drop(l + "rope.dimension_count")},
		metaCase{name: "llama: block_count 4096", fixture: llama, edit: set(l+"block_count", gguf.Uint32(4096)), want: ErrTensor,
			mention: "blk.4.attn_norm.weight is missing: llama.block_count = 4096 needs at least 36866 tensors (9 per layer, plus token_embd and output_norm), the file has 38"},
		metaCase{name: "llama: rope_freqs of the wrong length", fixture: llama, edit: fileEdit{extra: ropeFreqs(15, 1)}, want: ErrTensor,
			mention: "rope_freqs.weight has shape [15], the configuration needs [16]"},
		metaCase{name: "llama: rope_freqs with a zero", fixture: llama, edit: fileEdit{extra: ropeFreqs(16, 1, 3, float32(0))}, want: ErrTensor,
			mention: "rope_freqs.weight (f32, 16) at element 3 is 0, want a positive factor"},
		metaCase{name: "llama: rope_freqs with a negative factor", fixture: llama, edit: fileEdit{extra: ropeFreqs(16, 1, 15, float32(-2))}, want: ErrTensor,
			mention: "rope_freqs.weight (f32, 16) at element 15 is -2, want a positive factor"},
		metaCase{name: "llama: rope_freqs with a NaN", fixture: llama, edit: fileEdit{extra: ropeFreqs(16, 1, 7, float32(nan))}, want: ErrNotFinite,
			mention: "rope_freqs.weight (f32, 16) at element 7 is NaN"},
		metaCase{name: "llama: rope_freqs", fixture: llama, edit: fileEdit{extra: ropeFreqs(16, 2)}},
		metaCase{name: "llama: a qwen3 layer tensor is not needed", fixture: llama, edit: fileEdit{extra: func(w *gguf.Writer) error {
			return w.AddTensor("blk.0.attn_q_norm.weight", tensor.F32, []int64{32}, make([]byte, 4*32))
		}}},
		metaCase{name: "qwen2: attn_k.bias missing", fixture: qwen2, edit: dropTensor("blk.2.attn_k.bias"), want: ErrTensor,
			mention: "blk.2.attn_k.bias is missing: qwen2.block_count = 4 needs at least 50 tensors (12 per layer"},
		metaCase{name: "qwen2: attn_k.bias missing, a filler in its place", fixture: qwen2,
			edit: fileEdit{tensor: func(ti *gguf.Tensor) bool { return ti.Name != "blk.2.attn_k.bias" }, extra: fillers(1)}, want: ErrTensor,
			mention: `tensor not found: "blk.2.attn_k.bias"`},
		metaCase{name: "qwen2: attn_v.bias of the wrong width", fixture: qwen2, edit: fileEdit{tensor: func(ti *gguf.Tensor) bool {
			if ti.Name == "blk.1.attn_v.bias" {
				ti.Shape, ti.Data = []int64{64}, ti.Data[:4*64]
			}
			return true
		}}, want: ErrTensor, mention: "blk.1.attn_v.bias has shape [64], the configuration needs [128]"},
		metaCase{name: "qwen2: NaN in a bias", fixture: qwen2, edit: poison("blk.3.attn_q.bias", 4*100, f32NaN...), want: ErrNotFinite,
			mention: "blk.3.attn_q.bias (f32, 256) at element 100 is NaN"},
		metaCase{name: "qwen2: block_count 4096", fixture: qwen2, edit: set(l2+"block_count", gguf.Uint32(4096)), want: ErrTensor,
			mention: "blk.4.attn_norm.weight is missing: qwen2.block_count = 4096 needs at least 49154 tensors (12 per layer, plus token_embd and output_norm), the file has 50"},
		metaCase{name: "qwen2: expert_count as bool", fixture: qwen2, edit: set(l2+"expert_count", gguf.Bool(true)), want: ErrConfig,
			mention: "qwen2.expert_count is a bool, want an integer"},
	)
	// The mixture of experts (qwen3moe-tiny: 8 experts of width 256, 2
	// used, 12 tensors a layer: the router F32 [256, 8], the expert
	// tensors Q6_K [256, 256, 8]; 2 layers).
	const q = "qwen3moe."
	moe := "qwen3moe-tiny-q6k"
	const slab = 256 * 210 // one expert's Q6_K matrix
	c = append(c,
		metaCase{name: "qwen3moe: expert_count as float32", fixture: moe, edit: set(q+"expert_count", gguf.Float32(8)), want: ErrConfig,
			mention: "qwen3moe.expert_count is a float32, want an integer"},
		metaCase{name: "qwen3moe: expert_count missing", fixture: moe, edit: drop(q + "expert_count"), want: ErrConfig,
			mention: "qwen3moe.expert_count is missing"},
		metaCase{name: "qwen3moe: expert_count 0", fixture: moe, edit: set(q+"expert_count", gguf.Uint32(0)), want: ErrConfig,
			mention: "qwen3moe.expert_count = 0, want 1 to 4096"},
		metaCase{name: "qwen3moe: expert_count 2^32-1", fixture: moe, edit: set(q+"expert_count", gguf.Uint32(math.MaxUint32)), want: ErrConfig,
			mention: "qwen3moe.expert_count = 4294967295, want 1 to 4096"},
		metaCase{name: "qwen3moe: expert_count 16, the file has 8", fixture: moe, edit: set(q+"expert_count", gguf.Uint32(16)), want: ErrTensor,
			mention: "blk.0.ffn_gate_inp.weight has shape [256 8], the configuration needs [256 16]"},
		metaCase{name: "qwen3moe: expert_used_count missing", fixture: moe, edit: drop(q + "expert_used_count"), want: ErrConfig,
			mention: "qwen3moe.expert_used_count is missing"},
		metaCase{name: "qwen3moe: expert_used_count as string", fixture: moe, edit: set(q+"expert_used_count", gguf.String("2")), want: ErrConfig,
			mention: "qwen3moe.expert_used_count is a string, want an integer"},
		metaCase{name: "qwen3moe: expert_used_count 0", fixture: moe, edit: set(q+"expert_used_count", gguf.Int32(0)), want: ErrConfig,
			mention: "qwen3moe.expert_used_count = 0, want 1 to 4096"},
		metaCase{name: "qwen3moe: expert_used_count -1", fixture: moe, edit: set(q+"expert_used_count", gguf.Int32(-1)), want: ErrConfig,
			mention: "qwen3moe.expert_used_count = -1, want 1 to 4096"},
		metaCase{name: "qwen3moe: expert_used_count above expert_count", fixture: moe, edit: set(q+"expert_used_count", gguf.Uint32(9)), want: ErrConfig,
			mention: "qwen3moe.expert_used_count = 9 exceeds qwen3moe.expert_count = 8 (a token cannot use more experts than a layer has)"},
		metaCase{name: "qwen3moe: expert_used_count = expert_count", fixture: moe, edit: set(q+"expert_used_count", gguf.Uint32(8))},
		metaCase{name: "qwen3moe: expert_used_count 1", fixture: moe, edit: set(q+"expert_used_count", gguf.Uint64(1))},
		metaCase{name: "qwen3moe: expert_feed_forward_length as bool", fixture: moe, edit: set(q+"expert_feed_forward_length", gguf.Bool(true)), want: ErrConfig,
			mention: "qwen3moe.expert_feed_forward_length is a bool, want an integer"},
		metaCase{name: "qwen3moe: expert_feed_forward_length 0", fixture: moe, edit: set(q+"expert_feed_forward_length", gguf.Uint32(0)), want: ErrConfig,
			mention: "qwen3moe.expert_feed_forward_length = 0, want 1 to 262144"},
		metaCase{name: "qwen3moe: expert_feed_forward_length 128", fixture: moe, edit: set(q+"expert_feed_forward_length", gguf.Uint32(128)), want: ErrTensor,
			mention: "blk.0.ffn_gate_exps.weight has shape [256 256 8], the configuration needs [256 128 8]"},
		// Without the key llama.cpp takes feed_forward_length /
		// expert_used_count: 768 / 2 = 384, not the file's 256.
		metaCase{name: "qwen3moe: expert_feed_forward_length missing", fixture: moe, edit: drop(q + "expert_feed_forward_length"), want: ErrTensor,
			mention: "blk.0.ffn_gate_exps.weight has shape [256 256 8], the configuration needs [256 384 8]"},
		metaCase{name: "qwen3moe: expert_feed_forward_length missing, feed_forward_length 512", fixture: moe,
			edit: fileEdit{drop: []string{q + "expert_feed_forward_length"}, set: map[string]gguf.Value{q + "feed_forward_length": gguf.Uint32(512)}}},
		metaCase{name: "qwen3moe: expert_feed_forward_length missing, feed_forward_length 1, 2 used", fixture: moe,
			edit: fileEdit{drop: []string{q + "expert_feed_forward_length"}, set: map[string]gguf.Value{q + "feed_forward_length": gguf.Uint32(1)}}, want: ErrConfig,
			mention: "qwen3moe.expert_feed_forward_length is missing and qwen3moe.feed_forward_length / qwen3moe.expert_used_count = 1 / 2 rounds to 0"},
		metaCase{name: "qwen3moe: feed_forward_length missing (optional)", fixture: moe, edit: drop(q + "feed_forward_length")},
		metaCase{name: "qwen3moe: feed_forward_length as float", fixture: moe, edit: set(q+"feed_forward_length", gguf.Float32(768)), want: ErrConfig,
			mention: "qwen3moe.feed_forward_length is a float32, want an integer"},
		metaCase{name: "qwen3moe: expert_feed_forward_length and feed_forward_length missing", fixture: moe,
			edit: drop(q+"expert_feed_forward_length", q+"feed_forward_length"), want: ErrConfig,
			mention: "qwen3moe.expert_feed_forward_length and qwen3moe.feed_forward_length are both missing"},
		metaCase{name: "qwen3: feed_forward_length missing (required for a dense FFN)", fixture: "qwen3-tiny-q6k", edit: drop("qwen3.feed_forward_length"), want: ErrConfig,
			mention: "qwen3.feed_forward_length is missing"},
		metaCase{name: "qwen3moe: ffn_down_exps missing", fixture: moe, edit: dropTensor("blk.1.ffn_down_exps.weight"), want: ErrTensor,
			mention: "blk.1.ffn_down_exps.weight is missing: qwen3moe.block_count = 2 needs at least 26 tensors (12 per layer"},
		metaCase{name: "qwen3moe: router missing, a filler in its place", fixture: moe,
			edit: fileEdit{tensor: func(ti *gguf.Tensor) bool { return ti.Name != "blk.0.ffn_gate_inp.weight" }, extra: fillers(1)}, want: ErrTensor,
			mention: `tensor not found: "blk.0.ffn_gate_inp.weight"`},
		metaCase{name: "qwen3moe: an expert tensor with 2 dimensions", fixture: moe, edit: fileEdit{tensor: func(ti *gguf.Tensor) bool {
			if ti.Name == "blk.0.ffn_up_exps.weight" {
				ti.Shape = []int64{256, 2048}
			}
			return true
		}}, want: ErrTensor, mention: "blk.0.ffn_up_exps.weight has shape [256 2048], the configuration needs [256 256 8]"},
		metaCase{name: "qwen3moe: an expert tensor with a fourth dimension", fixture: moe, edit: fileEdit{tensor: func(ti *gguf.Tensor) bool {
			if ti.Name == "blk.1.ffn_gate_exps.weight" {
				ti.Shape = []int64{256, 256, 4, 2}
			}
			return true
		}}, want: ErrTensor, mention: "blk.1.ffn_gate_exps.weight has shape [256 256 4 2], the configuration needs [256 256 8]"},
		metaCase{name: "qwen3moe: NaN scale in expert 5", fixture: moe, edit: poison("blk.1.ffn_up_exps.weight", 5*slab+3*210+208, halfNaN...), want: ErrNotFinite,
			mention: "blk.1.ffn_up_exps.weight (q6_K, 8×256×256) at expert 5, row 3, columns 0-255: block 1283 has scale d = NaN"},
		metaCase{name: "qwen3moe: NaN in the router", fixture: moe, edit: poison("blk.0.ffn_gate_inp.weight", 4*(7*256+9), f32NaN...), want: ErrNotFinite,
			mention: "blk.0.ffn_gate_inp.weight (f32, 8×256) at row 7, column 9 is NaN"},
		metaCase{name: "qwen3moe: block_count 4096", fixture: moe, edit: set(q+"block_count", gguf.Uint32(4096)), want: ErrTensor,
			mention: "blk.2.attn_norm.weight is missing: qwen3moe.block_count = 4096 needs at least 49154 tensors (12 per layer, plus token_embd and output_norm), the file has 26"},
		metaCase{name: "qwen3: expert_count 8", fixture: "qwen3-tiny-q6k", edit: set("qwen3.expert_count", gguf.Uint32(8)), want: ErrArchitecture,
			mention: `qwen3.expert_count = 8: a mixture of experts under "qwen3" is not supported yet`},
		metaCase{name: "qwen3moe: a dense ffn_up is not needed", fixture: moe, edit: fileEdit{extra: func(w *gguf.Writer) error {
			return w.AddTensor("blk.0.ffn_up.weight", tensor.F32, []int64{256, 1}, make([]byte, 4*256))
		}}},
	)
	return c
}

// ropeFreqs adds a rope_freqs.weight of n float32 factors, all v except
// the (index, value) pairs that follow.
func ropeFreqs(n int, v float32, set ...any) func(w *gguf.Writer) error {
	return func(w *gguf.Writer) error {
		data := make([]byte, 4*n)
		for i := range n {
			binary.LittleEndian.PutUint32(data[4*i:], math.Float32bits(v))
		}
		for i := 0; i < len(set); i += 2 {
			binary.LittleEndian.PutUint32(data[4*set[i].(int):], math.Float32bits(set[i+1].(float32)))
		}
		return w.AddTensor("rope_freqs.weight", tensor.F32, []int64{int64(n)}, data)
	}
}

// dropTensor is a fileEdit that removes one tensor.
func dropTensor(name string) fileEdit {
	return fileEdit{tensor: func(ti *gguf.Tensor) bool { return ti.Name != name }}
}

// fillers adds n tiny tensors that no model reads, so that a file passes
// the tensor-count bound and the loader's own search is what fails.
func fillers(n int) func(w *gguf.Writer) error {
	return func(w *gguf.Writer) error {
		for i := range n {
			if err := w.AddTensor(fmt.Sprintf("filler.%d", i), tensor.F32, []int64{1}, make([]byte, 4)); err != nil {
				return err
			}
		}
		return nil
	}
}

// TestMetadata loads every case of the table on both CPU paths (int8
// activations and exact float32): each broken file must fail with its
// sentinel and message, the same error on both paths, before the backend
// was asked to load anything; each valid one must load.
func TestMetadata(t *testing.T) {
	seen := map[string]bool{}
	for _, c := range metadataCases() {
		t.Run(c.name, func(t *testing.T) {
			if seen[c.name] {
				t.Fatalf("case name %q used twice", c.name)
			}
			seen[c.name] = true
			fixture := c.fixture
			if fixture == "" {
				fixture = "qwen3-tiny-q6k"
			}
			f := edited(t, fixture, c.edit)
			var errs [2]error
			for i, exact := range []bool{false, true} {
				be := &countingBackend{Backend: cpu.New(cpu.Options{Threads: 1, Exact: exact})}
				m, err := Load(f, be, Options{})
				be.Close()
				errs[i] = err
				if c.want == nil {
					if err != nil {
						t.Fatalf("exact=%v: %v", exact, err)
					}
					wantLayers := 4
					if fixture == "qwen3moe-tiny-q6k" {
						wantLayers = 2
					}
					if m.Config.Layers != wantLayers {
						t.Fatalf("exact=%v: %d layers", exact, m.Config.Layers)
					}
					continue
				}
				if err == nil {
					t.Fatalf("exact=%v: loaded, want %v", exact, c.want)
				}
				if !errors.Is(err, c.want) {
					t.Fatalf("exact=%v: error %q does not wrap %q", exact, err, c.want)
				}
				if !strings.Contains(err.Error(), c.mention) {
					t.Fatalf("exact=%v: error %q does not mention %q", exact, err, c.mention)
				}
				if be.loads != 0 {
					t.Errorf("exact=%v: the backend loaded %d tensors before the error", exact, be.loads)
				}
			}
			if c.want != nil && errs[0].Error() != errs[1].Error() {
				t.Errorf("the paths disagree:\n int8:  %v\n exact: %v", errs[0], errs[1])
			}
		})
	}
}

// countingBackend counts the tensors a backend was asked to load.
type countingBackend struct {
	backend.Backend
	loads int
}

func (b *countingBackend) LoadWeight(name string, t tensor.DType, rows, cols int, data []byte) (backend.Weight, error) {
	b.loads++
	return b.Backend.LoadWeight(name, t, rows, cols, data)
}

func (b *countingBackend) LoadVector(name string, v []float32) (backend.Vector, error) {
	b.loads++
	return b.Backend.LoadVector(name, v)
}

// TestIntForFloat: a rope base written as the integer 1000000 gives the
// same model as the float32 1e6 of the fixture (it used to fall back to
// 10000 silently).
func TestIntForFloat(t *testing.T) {
	be := cpu.New(cpu.Options{Threads: 1})
	defer be.Close()
	want, err := Load(edited(t, "qwen3-tiny-q6k", fileEdit{}), be, Options{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := Load(edited(t, "qwen3-tiny-q6k", set(q+"rope.freq_base", gguf.Uint32(1000000))), be, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got.Config.RopeBase != 1e6 || got.rope != want.rope {
		t.Fatalf("rope base %g, rope %+v; want 1e6 and %+v", got.Config.RopeBase, got.rope, want.rope)
	}
}

// TestHugeBlockCountIsCheap: a 4.7 MB file claiming 2^20 layers (beyond
// the cap) or 4096 (within it, but beyond the file's 46 tensors), or 4096
// with enough filler tensors to pass the count so that the loader's own
// search must stop at the first missing layer, fails in milliseconds with
// a few megabytes allocated. Before, 2^20 layers allocated 790 MB and took
// 4 s. TotalAlloc counts every byte allocated during Load, so it bounds
// the peak heap growth from above.
func TestHugeBlockCountIsCheap(t *testing.T) {
	cases := []struct {
		name    string
		edit    fileEdit
		want    error
		mention string
	}{
		{"2^20 layers", set(q+"block_count", gguf.Uint32(1<<20)), ErrConfig, "qwen3.block_count = 1048576"},
		{"4096 layers", set(q+"block_count", gguf.Uint32(4096)), ErrTensor, "needs at least 45058 tensors"},
		{"4096 layers and 45012 fillers", fileEdit{set: map[string]gguf.Value{q + "block_count": gguf.Uint32(4096)}, extra: fillers(45058 - 46)},
			ErrTensor, `tensor not found: "blk.4.attn_norm.weight"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := edited(t, "qwen3-tiny-q6k", c.edit)
			be := cpu.New(cpu.Options{Threads: 1})
			defer be.Close()
			runtime.GC()
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			start := time.Now()
			_, err := Load(f, be, Options{})
			elapsed := time.Since(start)
			runtime.ReadMemStats(&after)
			if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.mention) {
				t.Fatalf("error %v, want %v mentioning %q", err, c.want, c.mention)
			}
			alloc := after.TotalAlloc - before.TotalAlloc
			t.Logf("%d tensors in the file: Load allocated %d bytes in %v", len(f.Tensors()), alloc, elapsed)
			if alloc > 100<<20 {
				t.Errorf("Load allocated %d MB", alloc>>20)
			}
		})
	}
}

// TestOptionScalingErrors: a bad Options.RopeScaling names its fields.
func TestOptionScalingErrors(t *testing.T) {
	f := edited(t, "qwen3-tiny-q6k", fileEdit{})
	be := cpu.New(cpu.Options{Threads: 1})
	defer be.Close()
	cases := []struct {
		s       RopeScaling
		mention string
	}{
		{RopeScaling{Type: "ntk", Factor: 2}, `RopeScaling.Type = "ntk"`},
		{RopeScaling{Type: "yarn", Factor: math.NaN()}, "RopeScaling.Factor = NaN"},
		{RopeScaling{Type: "linear", Factor: 0.5}, "RopeScaling.Factor = 0.5"},
		{RopeScaling{Type: "yarn", Factor: 4, AttnFactor: math.Inf(1)}, "RopeScaling.AttnFactor = +Inf"},
		{RopeScaling{Type: "yarn", Factor: 4, BetaFast: -1}, "RopeScaling.BetaFast = -1"},
		{RopeScaling{Type: "yarn", Factor: 4, OrigContext: -5}, "RopeScaling.OrigContext = -5"},
	}
	for _, c := range cases {
		_, err := Load(f, be, Options{RopeScaling: &c.s})
		if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), c.mention) {
			t.Errorf("%+v: error %v, want ErrConfig mentioning %q", c.s, err, c.mention)
		}
	}
}
