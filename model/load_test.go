package model

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gollm/gollm/backend/cpu"
	"github.com/gollm/gollm/gguf"
	"github.com/gollm/gollm/internal/testdata"
	"github.com/gollm/gollm/tensor"
)

// rewrite copies fixture A into a temporary file, letting kv and tensor
// edit or drop entries (return false to drop), and opens the copy.
func rewrite(t *testing.T, kv func(k string, v gguf.Value) (gguf.Value, bool), tn func(ti *gguf.Tensor) bool) *gguf.File {
	t.Helper()
	src, err := gguf.Open(testdata.Path("models", "qwen3-tiny-q6k.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	w := gguf.NewWriter()
	for _, e := range src.KVs() {
		v, keep := e.Value, true
		if kv != nil {
			v, keep = kv(e.Key, v)
		}
		if keep {
			if err := w.Set(e.Key, v); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, ti := range src.Tensors() {
		tt, _ := src.Tensor(ti.Name)
		if tn != nil && !tn(&tt) {
			continue
		}
		if err := w.AddTensor(tt.Name, tt.Type, tt.Shape, tt.Data); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(t.TempDir(), "m.gguf")
	if err := w.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	f, err := gguf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func TestLoadErrors(t *testing.T) {
	cases := []struct {
		name    string
		kv      func(k string, v gguf.Value) (gguf.Value, bool)
		tn      func(ti *gguf.Tensor) bool
		wantErr error
		wantMsg string
	}{
		{"other architecture", func(k string, v gguf.Value) (gguf.Value, bool) {
			if k == "general.architecture" {
				return gguf.String("gemma3"), true
			}
			return v, true
		}, nil, ErrArchitecture, `"gemma3" (gollm supports llama, qwen2, qwen3, qwen3moe)`},
		{"missing hyperparameter", func(k string, v gguf.Value) (gguf.Value, bool) {
			return v, k != "qwen3.block_count"
		}, nil, ErrConfig, "qwen3.block_count"},
		{"heads not a multiple of kv heads", func(k string, v gguf.Value) (gguf.Value, bool) {
			if k == "qwen3.attention.head_count_kv" {
				return gguf.Uint32(3), true
			}
			return v, true
		}, nil, ErrConfig, "not a multiple"},
		{"unknown rope scaling", func(k string, v gguf.Value) (gguf.Value, bool) {
			return v, true
		}, nil, nil, ""},
		{"missing tensor", nil, func(ti *gguf.Tensor) bool { return ti.Name != "blk.2.ffn_up.weight" }, ErrTensor, "blk.2.ffn_up.weight"},
		{"wrong shape", nil, func(ti *gguf.Tensor) bool {
			if ti.Name == "blk.1.attn_q_norm.weight" {
				ti.Shape = []int64{32}
				ti.Data = ti.Data[:128]
			}
			return true
		}, ErrTensor, "blk.1.attn_q_norm.weight has shape [32]"},
		{"unsupported weight type", nil, func(ti *gguf.Tensor) bool {
			if ti.Name == "blk.0.attn_v.weight" { // 256x256 Q6_K: 256 blocks of 210 bytes
				ti.Type = tensor.IQ2_XXS // 66 bytes per block
				ti.Data = ti.Data[:256*66]
			}
			return true
		}, ErrTensor, "iq2_xxs"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := rewrite(t, tc.kv, tc.tn)
			be := cpu.New(cpu.Options{Threads: 1})
			defer be.Close()
			_, err := Load(f, be, Options{})
			if !errors.Is(err, tc.wantErr) || (err != nil && !strings.Contains(err.Error(), tc.wantMsg)) {
				t.Fatalf("err = %v, want %v containing %q", err, tc.wantErr, tc.wantMsg)
			}
		})
	}
}

// TestRopeScalingFromFile: YaRN keys in the file give the same logits as
// the load option (the mixed fixture's YaRN golden was made with the option).
func TestRopeScalingFromFile(t *testing.T) {
	f := rewrite(t, nil, nil)
	w := gguf.NewWriter()
	for _, e := range f.KVs() {
		w.Set(e.Key, e.Value)
	}
	w.Set("qwen3.rope.scaling.type", gguf.String("yarn"))
	w.Set("qwen3.rope.scaling.factor", gguf.Float32(4))
	w.Set("qwen3.rope.scaling.original_context_length", gguf.Uint32(1024))
	for _, ti := range f.Tensors() {
		tt, _ := f.Tensor(ti.Name)
		w.AddTensor(tt.Name, tt.Type, tt.Shape, tt.Data)
	}
	path := filepath.Join(t.TempDir(), "yarn.gguf")
	if err := w.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	yf, err := gguf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer yf.Close()
	be := cpu.New(cpu.Options{Threads: 1})
	defer be.Close()
	fromFile, err := Load(yf, be, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if fromFile.Config.Scaling.Type != "yarn" || fromFile.Config.Scaling.Factor != 4 || fromFile.Config.Scaling.OrigContext != 1024 {
		t.Fatalf("scaling read from the file: %+v", fromFile.Config.Scaling)
	}
	fromOpt, err := Load(f, be, yarnOpts())
	if err != nil {
		t.Fatal(err)
	}
	if fromFile.rope != fromOpt.rope {
		t.Fatalf("rope from file %+v, from option %+v", fromFile.rope, fromOpt.rope)
	}
	// And a bad override is refused.
	if _, err := Load(f, be, Options{RopeScaling: &RopeScaling{Type: "ntk", Factor: 2}}); !errors.Is(err, ErrConfig) {
		t.Fatalf("bad scaling type: %v", err)
	}
}

// TestConfig checks what Load reads from the two fixtures.
func TestConfig(t *testing.T) {
	a := loadFixture(t, "qwen3-tiny-q6k", false, Options{}).m.Config
	b := loadFixture(t, "qwen3-tiny-mixed", false, Options{}).m.Config
	if a.Layers != 4 || a.Embd != 256 || a.Heads != 8 || a.KVHeads != 4 || a.HeadDim != 64 || a.FF != 768 || a.Vocab != 4096 || a.QDim != 512 {
		t.Fatalf("config A: %+v", a)
	}
	if !a.Tied || b.Tied {
		t.Fatalf("tied: A %v (want true), B %v (want false)", a.Tied, b.Tied)
	}
	if got := a.KVBytesPerToken(2); got != 2*4*256*2 {
		t.Fatalf("KV bytes per token: %d", got)
	}
}
