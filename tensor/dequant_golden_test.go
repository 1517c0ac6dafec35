package tensor_test

import (
	"encoding/json"
	"math"
	"os"
	"testing"

	"github.com/gollm/gollm/gguf"
	"github.com/gollm/gollm/internal/testdata"
	"github.com/gollm/gollm/tensor"
)

// dequantGolden is testdata/<model>/dequant.json (see SHARED-README.md,
// § dequant.json): for every tensor, a few whole rows dequantized by
// gguf-py (a port of ggml's dequantize_row_*, checked bit-identical to ggml
// itself), and the correctly rounded float64 sum and sum of absolute values
// over the whole tensor.
type dequantGolden struct {
	Model   string `json:"model"`
	Tensors []struct {
		Name   string  `json:"name"`
		Type   string  `json:"type"`
		Ne     []int64 `json:"ne"`
		NBytes int64   `json:"nbytes"`
		Rows   []struct {
			Index  int       `json:"index"`
			Values []float64 `json:"values"` // float32 values, exact in float64
		} `json:"rows"`
		Sum    float64 `json:"sum"`
		SumAbs float64 `json:"sum_abs"`
	} `json:"tensors"`
}

// neumaier is a compensated float64 sum (Kahan–Babuška–Neumaier). Its
// error does not grow with the number of terms, so over a million values
// it stays within a couple of ulps of the correctly rounded sum that the
// golden file holds (Python's math.fsum).
type neumaier struct{ sum, c float64 }

func (s *neumaier) add(x float64) {
	t := s.sum + x
	if math.Abs(s.sum) >= math.Abs(x) {
		s.c += (s.sum - t) + x
	} else {
		s.c += (x - t) + s.sum
	}
	s.sum = t
}

func (s *neumaier) value() float64 { return s.sum + s.c }

// TestDequantizeGoldens is the acceptance test for DequantizeRow: every
// tensor of both fixture models, the listed rows bit for bit and the
// whole-tensor sums to 1e-12 relative.
func TestDequantizeGoldens(t *testing.T) {
	files := map[string]string{"llama-tiny": "llama-tiny-q6k", "qwen2-tiny": "qwen2-tiny-q6k", "qwen3moe-tiny": "qwen3moe-tiny-q6k"}
	for _, model := range []string{"qwen3-tiny-q6k", "qwen3-tiny-mixed", "llama-tiny", "qwen2-tiny", "qwen3moe-tiny"} {
		t.Run(model, func(t *testing.T) {
			file := model
			if f, ok := files[model]; ok {
				file = f
			}
			raw, err := os.ReadFile(testdata.Path(model, "dequant.json"))
			if err != nil {
				t.Fatal(err)
			}
			var golden dequantGolden
			if err := json.Unmarshal(raw, &golden); err != nil {
				t.Fatal(err)
			}
			f, err := gguf.Open(testdata.Path("models", file+".gguf"))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if len(golden.Tensors) != len(f.Tensors()) {
				t.Errorf("golden lists %d tensors, file has %d", len(golden.Tensors), len(f.Tensors()))
			}
			seen := map[tensor.DType]int{}
			for _, g := range golden.Tensors {
				tt, err := f.Tensor(g.Name)
				if err != nil {
					t.Errorf("%s: %v", g.Name, err)
					continue
				}
				wantType, err := tensor.ParseDType(g.Type)
				if err != nil || wantType != tt.Type {
					t.Errorf("%s: file type %s, golden type %s", g.Name, tt.Type, g.Type)
					continue
				}
				seen[tt.Type]++
				if tt.Size != g.NBytes {
					t.Errorf("%s: %d bytes, golden %d", g.Name, tt.Size, g.NBytes)
				}
				// Dequantize the whole tensor, one ggml row (ne0 values) at a time.
				ne0 := int(tt.Shape[0])
				rows := int(tt.Elements()) / ne0
				rowBytes := int(tt.Size) / rows
				all := make([]float32, rows*ne0) // (row, ne0)
				for r := 0; r < rows; r++ {
					if err := tensor.DequantizeRow(tt.Type, all[r*ne0:(r+1)*ne0], tt.Data[r*rowBytes:(r+1)*rowBytes]); err != nil {
						t.Fatalf("%s row %d: %v", g.Name, r, err)
					}
				}
				for _, row := range g.Rows {
					got := all[row.Index*ne0 : (row.Index+1)*ne0]
					if len(row.Values) != ne0 {
						t.Fatalf("%s row %d: golden has %d values, want %d", g.Name, row.Index, len(row.Values), ne0)
					}
					bad := 0
					for j, v := range row.Values {
						want := float32(v)
						if math.Float32bits(got[j]) != math.Float32bits(want) {
							if bad < 3 {
								t.Errorf("%s (%s) row %d [%d]: got %g (%08x), want %g (%08x)",
									g.Name, tt.Type, row.Index, j, got[j], math.Float32bits(got[j]), want, math.Float32bits(want))
							}
							bad++
						}
					}
					if bad > 0 {
						t.Errorf("%s row %d: %d of %d values differ", g.Name, row.Index, bad, ne0)
					}
				}
				var sum, sumAbs neumaier
				for _, v := range all {
					sum.add(float64(v))
					sumAbs.add(math.Abs(float64(v)))
				}
				if !closeRel(sum.value(), g.Sum, 1e-12) {
					t.Errorf("%s: sum %.17g, golden %.17g", g.Name, sum.value(), g.Sum)
				}
				if !closeRel(sumAbs.value(), g.SumAbs, 1e-12) {
					t.Errorf("%s: sum_abs %.17g, golden %.17g", g.Name, sumAbs.value(), g.SumAbs)
				}
			}
			t.Logf("%s: tensors per type %v", model, seen)
		})
	}
}

func closeRel(got, want, rel float64) bool {
	return math.Abs(got-want) <= rel*math.Abs(want)
}
