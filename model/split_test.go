package model

import (
	"testing"

	"github.com/gollm/gollm/backend/cpu"
	"github.com/gollm/gollm/gguf"
	"github.com/gollm/gollm/internal/testdata"
	"github.com/gollm/gollm/tensor"
)

// TestSplitAcrossBackends splits a model between two backends (as
// --gpu-layers does with a GPU; here two CPU backends, which compute
// identically) and checks the logits are bit-identical to the unsplit
// model, for a split in the middle, everything offloaded, and offloading
// more layers than there are. It also checks that copy-on-write and KV
// storage work per stage, with both tied (A) and untied (B) heads.
func TestSplitAcrossBackends(t *testing.T) {
	var gf goldenFile
	for _, name := range []string{"qwen3-tiny-q6k", "qwen3-tiny-mixed"} {
		readJSON(t, &gf, name, "forward.json")
		r := gf.Results[1]
		whole := loadFixture(t, name, false, Options{})
		for _, kv := range []tensor.DType{tensor.F16, tensor.F32} {
			want := soloLogits(t, whole.m, kv, r.IDs, r.GreedyIDs[:6], 7)
			for _, off := range []int{1, 3, 4, 9} {
				f, err := gguf.Open(testdata.Path("models", name+".gguf"))
				if err != nil {
					t.Fatal(err)
				}
				main, other := cpu.New(cpu.Options{Threads: 1}), cpu.New(cpu.Options{Threads: 2})
				m, err := Load(f, main, Options{Offload: other, OffloadLayers: off})
				if err != nil {
					t.Fatal(err)
				}
				bes, layers := m.Backends()
				wantStages := 2
				if off >= 4 {
					wantStages = 1
				}
				if len(bes) != wantStages || layers[len(layers)-1] != min(off, 4) || m.Backend() != other {
					t.Fatalf("offload %d: stages %v", off, layers)
				}
				if m.WeightBytesPerToken() != whole.m.WeightBytesPerToken() && wantStages == 1 {
					t.Errorf("offload %d: weight bytes %d, unsplit %d", off, m.WeightBytesPerToken(), whole.m.WeightBytesPerToken())
				}
				got := soloLogits(t, m, kv, r.IDs, r.GreedyIDs[:6], 7)
				for j := range want {
					if !bitsEqual(want[j], got[j]) {
						t.Fatalf("%s %s offload %d: step %d differs from the unsplit model", name, kv, off, j)
					}
				}
				main.Close()
				other.Close()
				f.Close()
			}
		}
	}
}
