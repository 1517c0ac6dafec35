package model

import (
	"errors"
	"strings"
	"testing"

	"github.com/gollm/gollm/backend"
	"github.com/gollm/gollm/backend/cpu"
	"github.com/gollm/gollm/gguf"
	"github.com/gollm/gollm/internal/testdata"
	"github.com/gollm/gollm/tensor"
)

// TestWeightBytesFileLayout: with the file's layout, the parts add up to
// every tensor in the file (the fixtures keep their norms in F32, so a
// norm's 4 bytes per value are its file bytes too), and the matrices
// among them are what a forward step reads.
func TestWeightBytesFileLayout(t *testing.T) {
	for _, name := range []string{"qwen3-tiny-q6k", "qwen3-tiny-mixed"} {
		fx := loadFixture(t, name, false, Options{})
		s, err := WeightBytes(fx.file, nil)
		if err != nil {
			t.Fatal(err)
		}
		var file int64
		for _, ti := range fx.file.Tensors() {
			file += ti.Size
		}
		got := s.Embedding + s.Output + s.OutputNorm
		for _, b := range s.Layers {
			got += b
		}
		if got != file {
			t.Errorf("%s: the parts add up to %d bytes, the file's tensors to %d", name, got, file)
		}
		c := fx.m.Config
		vectors := int64(4 * (c.Layers*(2*c.Embd+2*c.HeadDim) + c.Embd))
		read := got - vectors // every matrix once …
		if !s.Tied {
			read -= s.Embedding // … but a row of the embedding table, unless it is the LM head
		}
		if read != fx.m.WeightBytesPerToken() {
			t.Errorf("%s: matrices read per step %d, the loaded model says %d", name, read, fx.m.WeightBytesPerToken())
		}
		if s.Tied != c.Tied || len(s.Layers) != c.Layers {
			t.Errorf("%s: tied %v, %d layers; the model: %v, %d", name, s.Tied, len(s.Layers), c.Tied, c.Layers)
		}
	}
}

// counting is a backend that adds up the bytes it is asked to load, a
// matrix at the size layout gives it and a vector at 4 bytes a value.
type counting struct {
	backend.Backend
	layout MatrixBytes
	bytes  int64
}

func (c *counting) LoadWeight(name string, dt tensor.DType, rows, cols int, data []byte) (backend.Weight, error) {
	c.bytes += c.layout(dt, rows, cols)
	return c.Backend.LoadWeight(name, dt, rows, cols, data)
}

func (c *counting) LoadVector(name string, v []float32) (backend.Vector, error) {
	c.bytes += 4 * int64(len(v))
	return c.Backend.LoadVector(name, v)
}

// TestOffloadMatchesLoad loads the fixtures split across two counting
// backends, as --gpu-layers does, and checks that Sizes.Offload predicts
// what lands on the second one, tied (q6k) and untied (mixed), for a
// split, everything offloaded and more layers than there are. The layout
// is a made-up one (a byte per value plus a byte per row), so that the
// sizes can only agree if both sides use it for the same matrices.
func TestOffloadMatchesLoad(t *testing.T) {
	layout := func(dt tensor.DType, rows, cols int) int64 { return int64(rows) * int64(cols+1) }
	for _, name := range []string{"qwen3-tiny-q6k", "qwen3-tiny-mixed"} {
		f, err := gguf.Open(testdata.Path("models", name+".gguf"))
		if err != nil {
			t.Fatal(err)
		}
		s, err := WeightBytes(f, layout)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range []int{0, 1, 3, 4, 9} {
			main := &counting{Backend: cpu.New(cpu.Options{Threads: 1}), layout: layout}
			other := &counting{Backend: cpu.New(cpu.Options{Threads: 1}), layout: layout}
			if _, err := Load(f, main, Options{Offload: other, OffloadLayers: n}); err != nil {
				t.Fatal(err)
			}
			if got := s.Offload(n); got != other.bytes {
				t.Errorf("%s, %d layers offloaded: Offload says %d bytes, Load put %d there", name, n, got, other.bytes)
			}
			main.Close()
			other.Close()
		}
		f.Close()
	}
}

// TestWeightBytesErrors: a missing tensor or a wrong shape is reported as
// Load reports it, naming the tensor.
func TestWeightBytesErrors(t *testing.T) {
	cases := []struct {
		name    string
		tn      func(ti *gguf.Tensor) bool
		wantMsg string
	}{
		{"missing tensor", func(ti *gguf.Tensor) bool { return ti.Name != "blk.2.ffn_up.weight" }, "blk.2.ffn_up.weight"},
		{"missing embedding", func(ti *gguf.Tensor) bool { return ti.Name != "token_embd.weight" }, "token_embd.weight"},
		{"wrong shape", func(ti *gguf.Tensor) bool {
			if ti.Name == "blk.1.attn_q_norm.weight" {
				ti.Shape = []int64{32}
				ti.Data = ti.Data[:128]
			}
			return true
		}, "blk.1.attn_q_norm.weight has shape [32]"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := rewrite(t, nil, tc.tn)
			_, err := WeightBytes(f, nil)
			if !errors.Is(err, ErrTensor) || !strings.Contains(err.Error(), tc.wantMsg) {
				t.Fatalf("err = %v, want ErrTensor naming %q", err, tc.wantMsg)
			}
		})
	}
}
