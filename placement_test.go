package gollm

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/gollm/gollm/backend/cpu"
	"github.com/gollm/gollm/backend/cuda"
	"github.com/gollm/gollm/gguf"
	"github.com/gollm/gollm/internal/testdata"
	"github.com/gollm/gollm/model"
)

// fakeGPU is a CPU backend that claims to be a GPU with some free memory,
// so the placement logic can be tested without one.
type fakeGPU struct {
	*cpu.Backend
	free, total int64
}

func (g *fakeGPU) Name() string                            { return "fake GPU" }
func (g *fakeGPU) MemInfo() (free, total int64, err error) { return g.free, g.total, nil }

func withFakeGPU(t *testing.T, free int64, openErr error) {
	t.Helper()
	old := gpuOpen
	gpuOpen = func() (gpuBackend, error) {
		if openErr != nil {
			return nil, openErr
		}
		return &fakeGPU{Backend: cpu.New(cpu.Options{Threads: 1}), free: free, total: 1 << 30}, nil
	}
	t.Cleanup(func() { gpuOpen = old })
}

func TestPlacement(t *testing.T) {
	path := testdata.Path("models", "qwen3-tiny-mixed.gguf")
	// The fixture's weights are a few MB, a layer's default KV cache 4 MiB
	// and the scratch 16.5 MiB (8 MiB of it the logits of a 512-token step
	// over 4,096 tokens); cuda.Reserve keeps 266 MiB of the fake 1 GiB
	// back. So "plenty" is 1 GiB and "tight" leaves room for some layers.
	const gib = int64(1) << 30
	reserve := cuda.Reserve(gib)
	cases := []struct {
		name     string
		mode     string
		layers   int
		free     int64
		openErr  error
		wantGPU  int
		wantErr  error
		wantNote string
	}{
		{"none", GPUNone, 0, gib, nil, 0, nil, ""},
		{"auto, plenty", GPUAuto, 0, gib, nil, 4, nil, ""},
		{"auto, explicit layers", GPUAuto, 2, gib, nil, 2, nil, "2 of 4 layers on fake GPU"},
		{"auto, more layers than the model has", GPUAuto, 9, gib, nil, 4, nil, ""},
		{"auto, tight: as many as fit", GPUAuto, 0, reserve + 30<<20, nil, 0, nil, ""}, // checked below: 0 < n < 4
		{"auto, no driver", GPUAuto, 0, 0, cuda.ErrNoDriver, 0, nil, "no GPU used"},
		{"cuda, no driver", GPUCUDA, 0, 0, cuda.ErrNoDriver, 0, cuda.ErrNoDriver, ""},
		{"cuda, too little memory", GPUCUDA, 0, 1 << 20, nil, 0, cuda.ErrOutOfMemory, ""},
		{"auto, too little memory", GPUAuto, 0, 1 << 20, nil, 0, nil, "running on the CPU"},
		{"cuda, explicit layers that do not fit", GPUCUDA, 4, reserve + 1<<20, nil, 0, cuda.ErrOutOfMemory, ""},
	}
	ref := loadFixture(t, "qwen3-tiny-mixed")
	want := solo(t, ref, questions[0], 6)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			withFakeGPU(t, tc.free, tc.openErr)
			var notes logRecords
			m, err := LoadModel(path, ModelOptions{GPU: tc.mode, GPULayers: tc.layers, Logger: slog.New(&notes)})
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if err != nil {
				if !strings.Contains(err.Error(), "MiB free of 1.0 GiB") && !errors.Is(err, cuda.ErrNoDriver) {
					t.Errorf("error should give the numbers: %v", err)
				}
				return
			}
			defer m.Close()
			if tc.name == "auto, tight: as many as fit" {
				if m.GPULayers() < 1 || m.GPULayers() > 3 {
					t.Errorf("tight memory: %d layers on the GPU, want a partial offload", m.GPULayers())
				}
			} else if m.GPULayers() != tc.wantGPU {
				t.Errorf("%d layers on the GPU, want %d (%s)", m.GPULayers(), tc.wantGPU, m.Backend())
			}
			if tc.wantNote != "" && !strings.Contains(notes.String(), tc.wantNote) {
				t.Errorf("notes %q lack %q", notes.String(), tc.wantNote)
			}
			// Wherever it runs, the answer is the same (the fake GPU
			// computes like the CPU).
			got := solo(t, m, questions[0], 6)
			if !slices.Equal(got.GeneratedIDs, want.GeneratedIDs) {
				t.Errorf("answer %v, CPU-only %v", got.GeneratedIDs, want.GeneratedIDs)
			}
		})
	}
}

// logRecords is a slog.Handler that keeps every record (at every level)
// as one line: "LEVEL message key=value …".
type logRecords struct {
	mu    sync.Mutex
	lines []string
}

func (h *logRecords) Enabled(context.Context, slog.Level) bool { return true }
func (h *logRecords) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *logRecords) WithGroup(string) slog.Handler            { return h }
func (h *logRecords) Handle(_ context.Context, r slog.Record) error {
	line := r.Level.String() + " " + r.Message
	r.Attrs(func(a slog.Attr) bool { line += " " + a.String(); return true })
	h.mu.Lock()
	h.lines = append(h.lines, line)
	h.mu.Unlock()
	return nil
}

func (h *logRecords) String() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return strings.Join(h.lines, "\n")
}

// TestPlacementNoticeLevel is the rule of ModelOptions.Logger for the
// fallback to the CPU: at Info when the caller asked for GPUAuto, at Debug
// when GPU was left empty (a CPU-only machine is the normal case, so a
// logger at Info says nothing), none with GPUNone, and nothing at all, and
// no failure, without a logger.
func TestPlacementNoticeLevel(t *testing.T) {
	path := testdata.Path("models", "qwen3-tiny-mixed.gguf")
	withFakeGPU(t, 0, cuda.ErrNoDriver)
	for _, tc := range []struct {
		gpu  string
		want string // the line's start; "" for no fallback line
	}{
		{"", "DEBUG no GPU used; running on the CPU reason="},
		{GPUAuto, "INFO no GPU used; running on the CPU reason="},
		{GPUNone, ""},
	} {
		var rec logRecords
		m, err := LoadModel(path, ModelOptions{GPU: tc.gpu, Logger: slog.New(&rec)})
		if err != nil {
			t.Fatal(err)
		}
		m.Close()
		got := ""
		for _, l := range rec.lines {
			if strings.Contains(l, "no GPU used") {
				got = l
			}
		}
		if tc.want == "" && got != "" || !strings.HasPrefix(got, tc.want) || tc.want != "" && !strings.Contains(got, cuda.ErrNoDriver.Error()) {
			t.Errorf("GPU %q: fallback line %q, want one starting %q and giving the reason", tc.gpu, got, tc.want)
		}
		if !strings.Contains(rec.String(), "DEBUG model loaded path=") {
			t.Errorf("GPU %q: no debug line for the loaded model:\n%s", tc.gpu, rec.String())
		}
	}
	m, err := LoadModel(path, ModelOptions{GPU: GPUAuto}) // no logger: silent
	if err != nil {
		t.Fatal(err)
	}
	m.Close()
}

// TestPlacementMoE: a mixture of experts stays on the CPU. Asked for
// CUDA, loading fails with an error naming the reason; on auto it runs on
// the CPU with a note, and gives the CPU's answer.
func TestPlacementMoE(t *testing.T) {
	path := testdata.Path("models", "qwen3moe-tiny-q6k.gguf")
	withFakeGPU(t, 1<<30, nil)
	if _, err := LoadModel(path, ModelOptions{GPU: GPUCUDA}); err == nil || !strings.Contains(err.Error(), "mixture-of-experts FFN of qwen3moe runs on the CPU only") {
		t.Fatalf("GPU cuda: err = %v", err)
	}
	var notes logRecords
	m, err := LoadModel(path, ModelOptions{GPU: GPUAuto, Logger: slog.New(&notes)})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if m.GPULayers() != 0 || !strings.Contains(notes.String(), "runs on the CPU only so far") {
		t.Errorf("%d layers on the GPU, notes %q", m.GPULayers(), notes.String())
	}
}

// TestVocabRows: placement counts the logits of a step (ReadConfig does
// not know the vocabulary size; the embedding table does).
func TestVocabRows(t *testing.T) {
	f, err := gguf.Open(testdata.Path("models", "qwen3-tiny-mixed.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cfg, err := model.ReadConfig(f)
	if err != nil {
		t.Fatal(err)
	}
	if got := vocabRows(f, cfg); got != 4096 {
		t.Errorf("vocabRows = %d, want the fixture's 4096", got)
	}
}
