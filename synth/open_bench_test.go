package synth

import (
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/gollm/gollm/gguf"
	"github.com/gollm/gollm/internal/testdata"
)

// big8B is a qwen3-8b Q6_K model with the real Qwen3 tokenizer, written
// once per test process into a temporary folder that TestMain removes.
var big8B struct {
	once    sync.Once
	dir     string
	path    string
	size    int64
	elapsed time.Duration
	err     error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if big8B.dir != "" {
		os.RemoveAll(big8B.dir)
	}
	os.Exit(code)
}

func synth8B(b *testing.B) (path string, size int64, elapsed time.Duration) {
	b.Helper()
	big8B.once.Do(func() {
		if big8B.dir, big8B.err = os.MkdirTemp("", "gollm-synth-8b-"); big8B.err != nil {
			return
		}
		vf, err := gguf.Open(testdata.Path("vocab", "qwen3.gguf"))
		if err != nil {
			big8B.err = err
			return
		}
		defer vf.Close()
		cfg, err := Preset("qwen3-8b")
		if err != nil {
			big8B.err = err
			return
		}
		big8B.path = filepath.Join(big8B.dir, "qwen3-8b-q6_k.gguf")
		start := time.Now()
		if big8B.err = Write(big8B.path, cfg, vf); big8B.err != nil {
			return
		}
		big8B.elapsed = time.Since(start)
		st, err := os.Stat(big8B.path)
		big8B.err = err
		if err == nil {
			big8B.size = st.Size()
		}
	})
	if big8B.err != nil {
		b.Fatal(big8B.err)
	}
	return big8B.path, big8B.size, big8B.elapsed
}

// BenchmarkOpen8B times gguf.Open of a qwen3-8b Q6_K file (6.7 GB, 399
// tensors, the full 151936-token Qwen3 tokenizer with 151387 merges), plus
// reading the keys a loader reads first and closing it. Opening maps the
// file and parses only the header, so it must stay far below 100 ms
// whatever the file size. The one-time synthesis (seconds, disk-bound) is
// reported as synth-s, the file size as GB. Skipped with -short.
//
//	go test ./synth -run '^$' -bench Open8B -benchtime 20x
func BenchmarkOpen8B(b *testing.B) {
	if testing.Short() {
		b.Skip("writes a 6.7 GB file")
	}
	path, size, elapsed := synth8B(b)
	for b.Loop() {
		f, err := gguf.Open(path)
		if err != nil {
			b.Fatal(err)
		}
		if arch, err := f.Architecture(); err != nil || arch != "qwen3" {
			b.Fatalf("architecture %q, %v", arch, err)
		}
		for _, key := range []string{"qwen3.block_count", "qwen3.embedding_length", "qwen3.attention.head_count", "qwen3.attention.head_count_kv"} {
			if _, err := f.Int(key); err != nil {
				b.Fatal(err)
			}
		}
		toks, err := f.Strings("tokenizer.ggml.tokens")
		if err != nil || len(toks) != QwenVocab {
			b.Fatalf("%d tokens, %v", len(toks), err)
		}
		if _, err := f.Tensor("token_embd.weight"); err != nil {
			b.Fatal(err)
		}
		if len(f.Tensors()) != 399 {
			b.Fatalf("%d tensors", len(f.Tensors()))
		}
		f.Close()
	}
	// After the loop: b.Loop's timer reset would discard these.
	b.ReportMetric(elapsed.Seconds(), "synth-s")
	b.ReportMetric(float64(size)/1e9, "GB")
}

// BenchmarkOpenVocab times gguf.Open of the tokenizer-only file
// testdata/vocab/qwen3.gguf (5.7 MiB, no tensors) with the same reads, for
// comparison with BenchmarkOpen8B: the difference is what 6.7 GB of tensor
// data and 399 tensor infos add to opening a file.
func BenchmarkOpenVocab(b *testing.B) {
	path := testdata.Path("vocab", "qwen3.gguf")
	for b.Loop() {
		f, err := gguf.Open(path)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := f.Int("qwen3.block_count"); err != nil {
			b.Fatal(err)
		}
		if toks, err := f.Strings("tokenizer.ggml.tokens"); err != nil || len(toks) != QwenVocab {
			b.Fatalf("%d tokens, %v", len(toks), err)
		}
		f.Close()
	}
}
