package gguf_test

import (
	"fmt"
	"log"

	"github.com/gollm/gollm/gguf"
)

// Open a model, read its architecture, and list its first tensors. The
// tensor data stays on disk until Tensor is called, and then it is a view
// into the mapped file rather than a copy.
func Example() {
	f, err := gguf.Open("../testdata/models/qwen3-tiny-q6k.gguf")
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()

	arch, err := f.String("general.architecture")
	if err != nil {
		log.Fatal(err)
	}
	layers, err := f.Int(arch + ".block_count")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("GGUF v%d, %s, %d layers, %d tensors\n", f.Version, arch, layers, len(f.Tensors()))

	for _, t := range f.Tensors()[:3] {
		fmt.Printf("%-20s %-5s %v %d bytes\n", t.Name, t.Type, t.Shape, t.Size)
	}

	emb, err := f.Tensor("token_embd.weight")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("embedding data:", len(emb.Data), "bytes")
	// Output:
	// GGUF v3, qwen3, 4 layers, 46 tensors
	// output_norm.weight   f32   [256] 1024 bytes
	// token_embd.weight    q6_K  [256 4096] 860160 bytes
	// blk.0.attn_k.weight  q6_K  [256 256] 53760 bytes
	// embedding data: 860160 bytes
}
