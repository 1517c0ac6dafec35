package synth

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/gollm/gollm/gguf"
	"github.com/gollm/gollm/tensor"
)

// The tables below are written out by hand from llama.cpp's rules (see
// mix.go), not computed by the code under test.
//
// A layer string has one character per layer: 'H' where use_more_bits
// holds (i < n/8, i >= 7n/8 or (i - n/8) % 3 == 2), so that attn_v and
// ffn_down get the higher type, '.' elsewhere.
const (
	// 28 layers (Qwen3-0.6B, Qwen3-1.7B, Llama 3.2 3B, Qwen2.5-1.5B, 7B):
	// n/8 = 3, 7n/8 = 24: 0-2, 5, 8, 11, 14, 17, 20, 23, 24-27.
	moreBits28 = "HHH..H..H..H..H..H..H..HHHHH"
	// 24 layers (Qwen2.5-0.5B): n/8 = 3, 7n/8 = 21: 0-2, 5, 8, …, 20, 21-23.
	moreBits24 = "HHH..H..H..H..H..H..HHHH"
	// 16 layers (Llama 3.2 1B): n/8 = 2, 7n/8 = 14: 0, 1, 4, 7, 10, 13, 14, 15.
	moreBits16 = "HH..H..H..H..HHH"
	// 48 layers (Qwen3-30B-A3B): n/8 = 6, 7n/8 = 42: 0-5, 8, 11, …, 41, 42-47.
	moreBits48 = "HHHHHH..H..H..H..H..H..H..H..H..H..H..H..HHHHHHH"
	// 4 layers (the qwen3-tiny-mixed fixture): n/8 = 0, 7n/8 = 3: 2, 3.
	moreBits4 = "..HH"
)

// TestUseMoreBits: useMoreBits picks exactly the layers of the tables.
func TestUseMoreBits(t *testing.T) {
	for _, want := range []string{moreBits28, moreBits24, moreBits16, moreBits48, moreBits4} {
		var got strings.Builder
		for i := range len(want) {
			if useMoreBits(i, len(want)) {
				got.WriteByte('H')
			} else {
				got.WriteByte('.')
			}
		}
		if got.String() != want {
			t.Errorf("%d layers: %s, want %s", len(want), got.String(), want)
		}
	}
	if n := strings.Count(moreBits28, "H"); n != 14 {
		t.Errorf("Qwen3-1.7B: %d Q6_K ffn_down layers, want 14", n)
	}
}

// mixRow is the expected type of one tensor name pattern: global names
// as they are, "blk.N." names in every layer, where layers, if set, says
// which layers have hi ('H') and which lo ('.'); without layers every
// layer has hi.
type mixRow struct {
	pattern string
	hi, lo  tensor.DType
	layers  string
}

// mixCase is one preset in one mix, and its expected tensors.
type mixCase struct {
	preset string
	mix    Mix
	rows   []mixRow
}

const (
	f32, f16  = tensor.F32, tensor.F16
	q4k, q5k  = tensor.Q4_K, tensor.Q5_K
	q6k, q8_0 = tensor.Q6_K, tensor.Q8_0
	q5_0      = tensor.Q5_0
	q5_1      = tensor.Q5_1
)

var mixCases = []mixCase{
	// Qwen3-1.7B, tied embeddings: token_embd is the output head, Q6_K.
	{"qwen3-1.7b", Q4_K_M, []mixRow{
		{"token_embd.weight", q6k, 0, ""},
		{"output_norm.weight", f32, 0, ""},
		{"blk.N.attn_norm.weight", f32, 0, ""},
		{"blk.N.attn_q.weight", q4k, 0, ""},
		{"blk.N.attn_q_norm.weight", f32, 0, ""},
		{"blk.N.attn_k.weight", q4k, 0, ""},
		{"blk.N.attn_k_norm.weight", f32, 0, ""},
		{"blk.N.attn_v.weight", q6k, q4k, moreBits28},
		{"blk.N.attn_output.weight", q4k, 0, ""},
		{"blk.N.ffn_norm.weight", f32, 0, ""},
		{"blk.N.ffn_gate.weight", q4k, 0, ""},
		{"blk.N.ffn_up.weight", q4k, 0, ""},
		{"blk.N.ffn_down.weight", q6k, q4k, moreBits28},
	}},
	{"qwen3-1.7b", Q5_K_M, []mixRow{
		{"token_embd.weight", q6k, 0, ""},
		{"output_norm.weight", f32, 0, ""},
		{"blk.N.attn_norm.weight", f32, 0, ""},
		{"blk.N.attn_q.weight", q5k, 0, ""},
		{"blk.N.attn_q_norm.weight", f32, 0, ""},
		{"blk.N.attn_k.weight", q5k, 0, ""},
		{"blk.N.attn_k_norm.weight", f32, 0, ""},
		{"blk.N.attn_v.weight", q6k, q5k, moreBits28},
		{"blk.N.attn_output.weight", q5k, 0, ""},
		{"blk.N.ffn_norm.weight", f32, 0, ""},
		{"blk.N.ffn_gate.weight", q5k, 0, ""},
		{"blk.N.ffn_up.weight", q5k, 0, ""},
		{"blk.N.ffn_down.weight", q6k, q5k, moreBits28},
	}},
	// Qwen3-8B, untied: output.weight Q6_K, token_embd keeps the base type.
	{"qwen3-8b", Q4_K_M, []mixRow{
		{"output.weight", q6k, 0, ""},
		{"output_norm.weight", f32, 0, ""},
		{"token_embd.weight", q4k, 0, ""},
		{"blk.N.attn_norm.weight", f32, 0, ""},
		{"blk.N.attn_q.weight", q4k, 0, ""},
		{"blk.N.attn_q_norm.weight", f32, 0, ""},
		{"blk.N.attn_k.weight", q4k, 0, ""},
		{"blk.N.attn_k_norm.weight", f32, 0, ""},
		// 36 layers: n/8 = 4, 7n/8 = 31: 0-3, 6, 9, …, 30, 31-35.
		{"blk.N.attn_v.weight", q6k, q4k, "HHHH..H..H..H..H..H..H..H..H..HHHHHH"},
		{"blk.N.attn_output.weight", q4k, 0, ""},
		{"blk.N.ffn_norm.weight", f32, 0, ""},
		{"blk.N.ffn_gate.weight", q4k, 0, ""},
		{"blk.N.ffn_up.weight", q4k, 0, ""},
		{"blk.N.ffn_down.weight", q6k, q4k, "HHHH..H..H..H..H..H..H..H..H..HHHHHH"},
	}},
	// Qwen2.5-0.5B: width 896 = 3.5 blocks of 256 forces the fallbacks
	// (Q6_K → Q8_0, Q4_K → Q5_0, Q5_K → Q5_1) on every matrix whose rows
	// are 896 wide; ffn_down's rows are 4864 = 19 blocks, no fallback.
	{"qwen2.5-0.5b", Q4_K_M, []mixRow{
		{"token_embd.weight", q8_0, 0, ""},
		{"output_norm.weight", f32, 0, ""},
		{"blk.N.attn_norm.weight", f32, 0, ""},
		{"blk.N.attn_q.bias", f32, 0, ""},
		{"blk.N.attn_q.weight", q5_0, 0, ""},
		{"blk.N.attn_k.bias", f32, 0, ""},
		{"blk.N.attn_k.weight", q5_0, 0, ""},
		{"blk.N.attn_v.bias", f32, 0, ""},
		{"blk.N.attn_v.weight", q8_0, q5_0, moreBits24},
		{"blk.N.attn_output.weight", q5_0, 0, ""},
		{"blk.N.ffn_norm.weight", f32, 0, ""},
		{"blk.N.ffn_gate.weight", q5_0, 0, ""},
		{"blk.N.ffn_up.weight", q5_0, 0, ""},
		{"blk.N.ffn_down.weight", q6k, q4k, moreBits24},
	}},
	{"qwen2.5-0.5b", Q5_K_M, []mixRow{
		{"token_embd.weight", q8_0, 0, ""},
		{"output_norm.weight", f32, 0, ""},
		{"blk.N.attn_norm.weight", f32, 0, ""},
		{"blk.N.attn_q.bias", f32, 0, ""},
		{"blk.N.attn_q.weight", q5_1, 0, ""},
		{"blk.N.attn_k.bias", f32, 0, ""},
		{"blk.N.attn_k.weight", q5_1, 0, ""},
		{"blk.N.attn_v.bias", f32, 0, ""},
		{"blk.N.attn_v.weight", q8_0, q5_1, moreBits24},
		{"blk.N.attn_output.weight", q5_1, 0, ""},
		{"blk.N.ffn_norm.weight", f32, 0, ""},
		{"blk.N.ffn_gate.weight", q5_1, 0, ""},
		{"blk.N.ffn_up.weight", q5_1, 0, ""},
		{"blk.N.ffn_down.weight", q6k, q5k, moreBits24},
	}},
	// Llama 3.2 1B: tied, rope_freqs (F32), 16 layers.
	{"llama3.2-1b", Q4_K_M, []mixRow{
		{"output_norm.weight", f32, 0, ""},
		{"rope_freqs.weight", f32, 0, ""},
		{"token_embd.weight", q6k, 0, ""},
		{"blk.N.attn_norm.weight", f32, 0, ""},
		{"blk.N.attn_q.weight", q4k, 0, ""},
		{"blk.N.attn_k.weight", q4k, 0, ""},
		{"blk.N.attn_v.weight", q6k, q4k, moreBits16},
		{"blk.N.attn_output.weight", q4k, 0, ""},
		{"blk.N.ffn_norm.weight", f32, 0, ""},
		{"blk.N.ffn_gate.weight", q4k, 0, ""},
		{"blk.N.ffn_up.weight", q4k, 0, ""},
		{"blk.N.ffn_down.weight", q6k, q4k, moreBits16},
	}},
	// Qwen3-30B-A3B: 128 experts (the 8-expert rules do not apply); the
	// 3-D ffn_down_exps follows ffn_down's rule (llama.cpp matches
	// "ffn_down" anywhere in the name, and takes the layer from it), the
	// router stays F32.
	{"qwen3-30b-a3b", Q4_K_M, []mixRow{
		{"output.weight", q6k, 0, ""},
		{"output_norm.weight", f32, 0, ""},
		{"token_embd.weight", q4k, 0, ""},
		{"blk.N.attn_norm.weight", f32, 0, ""},
		{"blk.N.attn_q.weight", q4k, 0, ""},
		{"blk.N.attn_q_norm.weight", f32, 0, ""},
		{"blk.N.attn_k.weight", q4k, 0, ""},
		{"blk.N.attn_k_norm.weight", f32, 0, ""},
		{"blk.N.attn_v.weight", q6k, q4k, moreBits48},
		{"blk.N.attn_output.weight", q4k, 0, ""},
		{"blk.N.ffn_norm.weight", f32, 0, ""},
		{"blk.N.ffn_gate_inp.weight", f32, 0, ""},
		{"blk.N.ffn_gate_exps.weight", q4k, 0, ""},
		{"blk.N.ffn_up_exps.weight", q4k, 0, ""},
		{"blk.N.ffn_down_exps.weight", q6k, q4k, moreBits48},
	}},
}

// TestMixTables: in each case every tensor of the preset matches exactly
// one row of its table, every row matches (in every layer), and the type
// is the table's; general.file_type is the mix's.
func TestMixTables(t *testing.T) {
	for _, mc := range mixCases {
		t.Run(mc.preset+"/"+mc.mix.String(), func(t *testing.T) {
			c, err := Preset(mc.preset)
			if err != nil {
				t.Fatal(err)
			}
			c.Mix = mc.mix
			c = c.Normalize()
			if err := c.validate(c.Vocab); err != nil {
				t.Fatal(err)
			}
			want := map[string]tensor.DType{}
			for _, r := range mc.rows {
				if !strings.HasPrefix(r.pattern, "blk.N.") {
					want[r.pattern] = r.hi
					continue
				}
				if r.layers != "" && len(r.layers) != c.Layers {
					t.Fatalf("%s: %d layers in the table, the preset has %d", r.pattern, len(r.layers), c.Layers)
				}
				for l := range c.Layers {
					typ := r.hi
					if r.layers != "" && r.layers[l] == '.' {
						typ = r.lo
					}
					want[strings.Replace(r.pattern, "N", fmt.Sprint(l), 1)] = typ
				}
			}
			specs := c.Tensors(c.Vocab)
			if len(specs) != len(want) {
				t.Errorf("%d tensors, the table %d", len(specs), len(want))
			}
			counts := map[tensor.DType]int{}
			var size int64
			for _, s := range specs {
				w, ok := want[s.Name]
				if !ok {
					t.Errorf("%s (%s) not in the table", s.Name, s.Type)
				} else if s.Type != w {
					t.Errorf("%s: %s, want %s", s.Name, s.Type, w)
				}
				counts[s.Type]++
				job, err := newTensorJob(s, c)
				if err != nil {
					t.Fatal(err)
				}
				size += job.size()
			}
			t.Logf("%v, %.3f GB of tensor data", counts, float64(size)/1e9)
			if got, want := c.fileType(), map[Mix]uint32{Q4_K_M: 15, Q5_K_M: 17}[mc.mix]; got != want {
				t.Errorf("file type %d, want %d", got, want)
			}
		})
	}
}

// TestMixSizes: the Q4_K_M presets have the tensor data sizes of the real
// files on the Hugging Face Hub, less their few MB of metadata
// (Qwen/Qwen3-8B-GGUF's Qwen3-8B-Q4_K_M.gguf is 5 027 783 488 bytes).
func TestMixSizes(t *testing.T) {
	c, err := Preset("qwen3-8b")
	if err != nil {
		t.Fatal(err)
	}
	c.Mix = Q4_K_M
	var size int64
	for _, s := range c.Tensors(c.Vocab) {
		job, err := newTensorJob(s, c.Normalize())
		if err != nil {
			t.Fatal(err)
		}
		size += job.size()
	}
	if size < 5.00e9 || size > 5.03e9 {
		t.Errorf("qwen3-8b q4_k_m: %d bytes of tensor data, want a little under 5 027 783 488", size)
	}
}

// TestMixRules covers the rules no preset reaches: 8 experts (attn_k and
// attn_v Q8_0, attn_output Q5_K in Q4_K_M only), a 70B llama (Q4_K attn_v
// becomes Q5_K, Q6_K stays), and rows too narrow even for the 32-value
// fallback (F16), or for the output head's Q8_0 (an error, as in
// llama-quantize).
func TestMixRules(t *testing.T) {
	moe8 := Config{Arch: "qwen3moe", Embd: 256, Layers: 4, Heads: 8, KVHeads: 4, HeadDim: 64, FF: 768, Vocab: 300,
		Experts: 8, ExpertsUsed: 2, ExpertFF: 256}
	llama70 := Config{Arch: "llama", Embd: 256, Layers: 80, Heads: 8, KVHeads: 2, HeadDim: 32, FF: 512, Vocab: 300}
	llama65 := llama70
	llama65.KVHeads = 8
	// Qwen2.5-0.5B's widths, 2 layers.
	qwen25Shape := Config{Arch: "qwen2", Embd: 896, Layers: 2, Heads: 14, KVHeads: 2, HeadDim: 64, FF: 4864, Vocab: 300, Tied: true}
	narrow := Config{Embd: 256, Layers: 8, Heads: 4, KVHeads: 2, HeadDim: 36, FF: 520, Vocab: 300, Tied: true}
	for _, c := range []struct {
		cfg  Config
		mix  Mix
		want map[string]tensor.DType
	}{
		{moe8, Q4_K_M, map[string]tensor.DType{
			"blk.0.attn_k.weight": q8_0, "blk.0.attn_v.weight": q8_0, "blk.3.attn_v.weight": q8_0,
			"blk.0.attn_output.weight": q5k, "blk.0.attn_q.weight": q4k,
			"blk.0.ffn_down_exps.weight": q4k, "blk.2.ffn_down_exps.weight": q6k, "output.weight": q6k}},
		{moe8, Q5_K_M, map[string]tensor.DType{
			"blk.0.attn_k.weight": q8_0, "blk.0.attn_v.weight": q8_0, "blk.0.attn_output.weight": q5k,
			"blk.1.ffn_down_exps.weight": q5k, "blk.3.ffn_down_exps.weight": q6k}},
		// 80 layers: n/8 = 10, so layer 9 has Q6_K, 10 and 11 not, 12 again.
		{llama70, Q4_K_M, map[string]tensor.DType{
			"blk.9.attn_v.weight": q6k, "blk.10.attn_v.weight": q5k, "blk.11.attn_v.weight": q5k, "blk.12.attn_v.weight": q6k,
			"blk.10.ffn_down.weight": q4k, "blk.10.attn_k.weight": q4k}},
		{llama70, Q5_K_M, map[string]tensor.DType{"blk.10.attn_v.weight": q5k, "blk.12.attn_v.weight": q6k}},
		{llama65, Q4_K_M, map[string]tensor.DType{"blk.10.attn_v.weight": q4k}},
		// q width 144 and ff 520 are multiples of 8, not of 32.
		{narrow, Q4_K_M, map[string]tensor.DType{
			"blk.0.attn_output.weight": f16, "blk.3.ffn_down.weight": f16, "blk.0.attn_q.weight": q4k,
			"token_embd.weight": q6k}},
	} {
		c.cfg.Mix = c.mix
		if err := c.cfg.Normalize().validate(c.cfg.Vocab); err != nil {
			t.Fatalf("%+v: %v", c.cfg, err)
		}
		got := map[string]tensor.DType{}
		for _, s := range c.cfg.Tensors(c.cfg.Vocab) {
			got[s.Name] = s.Type
		}
		for name, w := range c.want {
			if g, ok := got[name]; !ok || g != w {
				t.Errorf("%s %d layers %s: %s is %s, want %s", c.cfg.Arch, c.cfg.Layers, c.mix, name, g, w)
			}
		}
	}
	// Every type a mix picks, fallbacks included, can be generated, from
	// random bits or with the reference quantizer.
	for _, quantize := range []bool{false, true} {
		for _, c := range []Config{narrow, qwen25Shape} {
			c.Mix, c.Quantize = Q5_K_M, quantize
			if _, err := WriteTo(io.Discard, c, nil); err != nil {
				t.Errorf("write %+v: %v", c, err)
			}
		}
	}
	bad := narrow
	bad.Embd = 240 // output head Q8_0 needs a multiple of 32
	bad.Mix = Q4_K_M
	if err := bad.Normalize().validate(bad.Vocab); err == nil {
		t.Error("embd 240 in q4_k_m: no error")
	}
	bad.Mix = Mix(9)
	bad.Embd = 256
	if err := bad.Normalize().validate(bad.Vocab); err == nil {
		t.Error("unknown mix: no error")
	}
}

// TestMixMatchesFixture: the qwen3-tiny-mixed fixture was made by
// llama-quantize with the Q4_K_M recipe plus per-tensor overrides
// (testdata/SHARED-README.md). Every tensor the overrides leave alone has
// the type synth's q4_k_m gives it (attn_v and ffn_down Q6_K in layers 2
// and 3, the rest Q4_K, the untied token_embd Q4_K), and the file type is
// 15 as there.
func TestMixMatchesFixture(t *testing.T) {
	fix := openFixture(t, "models/qwen3-tiny-mixed.gguf")
	c := Config{Embd: 256, Layers: 4, Heads: 8, KVHeads: 4, HeadDim: 64, FF: 768, Mix: Q4_K_M}
	var buf bytes.Buffer
	if _, err := WriteTo(&buf, c, fix); err != nil {
		t.Fatal(err)
	}
	got, err := gguf.Parse(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	overridden := map[string]bool{"output.weight": true, "blk.0.attn_output.weight": true, "blk.1.attn_output.weight": true,
		"blk.0.ffn_up.weight": true, "blk.0.attn_q.weight": true, "blk.2.attn_k.weight": true,
		"blk.1.ffn_gate.weight": true, "blk.2.attn_q.weight": true, "blk.3.ffn_up.weight": true}
	if len(got.Tensors()) != len(fix.Tensors()) {
		t.Fatalf("%d tensors, fixture %d", len(got.Tensors()), len(fix.Tensors()))
	}
	compared := 0
	for i, w := range fix.Tensors() {
		g := got.Tensors()[i]
		if g.Name != w.Name {
			t.Fatalf("tensor %d: %s, fixture %s", i, g.Name, w.Name)
		}
		if overridden[w.Name] {
			if w.Type == g.Type {
				t.Errorf("%s: the fixture's override gives %s, which q4_k_m gives anyway", w.Name, w.Type)
			}
			continue
		}
		compared++
		if g.Type != w.Type {
			t.Errorf("%s: %s, fixture %s", w.Name, g.Type, w.Type)
		}
	}
	if compared != len(fix.Tensors())-len(overridden) {
		t.Errorf("compared %d tensors", compared)
	}
	if output := got.Tensors()[0]; output.Name != "output.weight" || output.Type != tensor.Q6_K {
		t.Errorf("%s %s, want output.weight q6_K", output.Name, output.Type)
	}
	for _, f := range []*gguf.File{got, fix} {
		if ft, err := f.Int("general.file_type"); err != nil || ft != 15 {
			t.Errorf("general.file_type %d (%v), want 15", ft, err)
		}
	}
}
