package cpu_test

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/gollm/gollm/backend"
	"github.com/gollm/gollm/backend/cpu"
	"github.com/gollm/gollm/flat"
	"github.com/gollm/gollm/gguf"
	"github.com/gollm/gollm/model"
	"github.com/gollm/gollm/synth"
	"github.com/gollm/gollm/tensor"
)

// The mixture-of-experts benchmark: decode steps of a model shaped like
// Qwen3-30B-A3B (`gollm synth --preset qwen3-30b-a3b --type q4_k`: 128
// experts of width 768 per layer, 8 used per token), for 1 and 8
// sequences.
//
// The full file is about 17 GB, so by default the benchmark writes the
// preset with -moe-layers of its 48 layers (2: about 1 GB) into a
// temporary directory; -moe-model runs it on a file written beforehand,
// e.g. the whole preset:
//
//	gollm synth --preset qwen3-30b-a3b --type q4_k --vocab-from qwen3.gguf --out /big/a3b.gguf
//	go test -run XXX -bench ForwardMoE ./backend/cpu -args -moe-model /big/a3b.gguf
//
// Besides tok/s it reports the weight bytes the step really read, per
// token (readB/tok: every Linear call's matrix counted once, as the
// kernels stream it once for up to 8 tokens), the active-parameter bytes
// of one token (activeB/tok: model.WeightBytesPerToken, attention, router
// and 8 of 128 experts per layer, and the LM head) and their ratio. One
// sequence reads exactly its active bytes (ratio 1); 8 sequences share
// the experts they have in common, each expert read once per step, so a
// token costs less than its active bytes (ratio < 1): that is where
// batching pays for a mixture of experts.
var (
	moeModel  = flag.String("moe-model", "", "a qwen3moe GGUF file for BenchmarkForwardMoE (default: the qwen3-30b-a3b preset, -moe-layers layers, Q4_K)")
	moeLayers = flag.Int("moe-layers", 2, "layers of the qwen3-30b-a3b preset BenchmarkForwardMoE writes")
)

var moeBenchModel = sync.OnceValues(func() (string, error) {
	if *moeModel != "" {
		return *moeModel, nil
	}
	dir, err := os.MkdirTemp("", "gollm-moe-bench-")
	if err != nil {
		return "", err
	}
	if benchDir == "" {
		benchDir = dir // TestMain removes it
	}
	cfg, err := synth.Preset("qwen3-30b-a3b")
	if err != nil {
		return "", err
	}
	cfg.Type, cfg.Layers = tensor.Q4_K, *moeLayers
	path := filepath.Join(dir, "qwen3-30b-a3b-q4_k.gguf")
	return path, synth.Write(path, cfg, nil)
})

// readCounter adds up the bytes of the weight matrices Linear reads.
type readCounter struct {
	*kvBackend
	bytes int64
}

func (r *readCounter) Linear(x backend.Buffer, n int, outs ...backend.Projection) {
	for _, o := range outs {
		rb, _ := tensor.RowBytes(o.W.Type(), int64(o.W.Cols()))
		r.bytes += rb * int64(o.W.Rows())
	}
	r.kvBackend.Linear(x, n, outs...)
}

func BenchmarkForwardMoE(b *testing.B) {
	for _, n := range []int{1, 8} {
		b.Run(fmt.Sprintf("decode/n%d", n), func(b *testing.B) { benchDecodeMoE(b, n) })
	}
}

func benchDecodeMoE(b *testing.B, n int) {
	path, err := moeBenchModel()
	if err != nil {
		b.Fatal(err)
	}
	f, err := gguf.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	be := &readCounter{kvBackend: &kvBackend{Backend: cpu.New(cpu.Options{Threads: *benchThreads})}}
	defer be.Close()
	m, err := model.Load(f, be, model.Options{})
	if err != nil {
		b.Fatal(err)
	}
	if m.Config.Experts == 0 {
		b.Fatalf("%s is not a mixture of experts", path)
	}
	ctx := *benchCtx
	s, err := m.NewState(model.StateOptions{Capacity: n * (ctx + 32), KVType: tensor.F16, MaxBatch: n})
	if err != nil {
		b.Fatal(err)
	}
	fillKV(be.kv)
	kv, V := s.KV, m.Config.Vocab
	var batch flat.Batch
	for k := 0; k < n; k++ {
		seq := flat.SeqID(k)
		if err := kv.AddSeq(seq); err != nil {
			b.Fatal(err)
		}
		if _, err := kv.Append(seq, ctx); err != nil {
			b.Fatal(err)
		}
		// Different tokens, so that the sequences route differently.
		batch.Add(int32((1000+977*k)%V), ctx, seq, true)
	}
	logits := make([]float32, n*V)
	step := func() {
		for k := 0; k < n; k++ {
			seq := flat.SeqID(k)
			if err := kv.Truncate(seq, ctx); err != nil {
				b.Fatal(err)
			}
			if _, err := kv.Append(seq, 1); err != nil {
				b.Fatal(err)
			}
		}
		if err := m.Forward(s, &batch, logits); err != nil {
			b.Fatal(err)
		}
	}
	step() // warm-up: page the weights in
	be.bytes = 0
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		step()
	}
	sec := b.Elapsed().Seconds()
	read := float64(be.bytes) / float64(b.N) / float64(n)
	active := float64(m.WeightBytesPerToken())
	b.ReportMetric(float64(n*b.N)/sec, "tok/s")
	b.ReportMetric(read/1e6, "readMB/tok")
	b.ReportMetric(active/1e6, "activeMB/tok")
	b.ReportMetric(read/active, "read/active")
	b.ReportMetric(float64(be.bytes)/sec/1e9, "GB/s")
}
