package gollm

import (
	"context"
	"errors"
	"log/slog"
	"runtime"
	"slices"
	"testing"

	"github.com/gollm/gollm/internal/testdata"
)

// TestLoadProgress: OnProgress starts at 0, never goes down, keeps one
// total (the weights' bytes: less than the file, which also holds the
// tokenizer) and ends at it.
func TestLoadProgress(t *testing.T) {
	for _, name := range []string{"qwen3-tiny-q6k", "qwen3-tiny-mixed"} {
		var dones []int64
		var total int64
		m, err := LoadModelContext(context.Background(), testdata.Path("models", name+".gguf"), ModelOptions{
			OnProgress: func(done, tot int64) {
				if total != 0 && tot != total {
					t.Errorf("%s: total changed from %d to %d", name, total, tot)
				}
				total = tot
				dones = append(dones, done) // calls come one at a time
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		size := m.FileSize()
		m.Close()
		if len(dones) < 2 || dones[0] != 0 || dones[len(dones)-1] != total || total <= 0 || total >= size {
			t.Fatalf("%s: progress %v of %d (file %d bytes); want 0 … total, total below the file size", name, dones, total, size)
		}
		for i := 1; i < len(dones); i++ {
			if dones[i] < dones[i-1] {
				t.Fatalf("%s: progress went back from %d to %d", name, dones[i-1], dones[i])
			}
		}
	}
}

// TestLoadModelContextCancel: a load whose context is cancelled partway
// (here from OnProgress, after the first piece) returns ctx.Err() after
// at most one more piece per checking goroutine; one cancelled before it
// starts does no work. Counted in pieces, not time.
func TestLoadModelContextCancel(t *testing.T) {
	path := testdata.Path("models", "qwen3-tiny-mixed.gguf")
	ctx, cancel := context.WithCancel(context.Background())
	calls, after := 0, 0
	m, err := LoadModelContext(ctx, path, ModelOptions{OnProgress: func(done, total int64) {
		calls++
		if ctx.Err() != nil {
			after++
		}
		if done > 0 && ctx.Err() == nil {
			cancel()
		}
	}})
	if !errors.Is(err, context.Canceled) || m != nil {
		t.Fatalf("got %v, %v; want context.Canceled and no model", m, err)
	}
	if after > runtime.GOMAXPROCS(0)-1 {
		t.Errorf("%d pieces checked after the cancellation (of %d calls); want at most one per other worker (%d)", after, calls, runtime.GOMAXPROCS(0)-1)
	}
	calls = 0
	m, err = LoadModelContext(ctx, path, ModelOptions{OnProgress: func(done, total int64) { calls++ }})
	if !errors.Is(err, context.Canceled) || m != nil || calls != 0 {
		t.Errorf("cancelled before: %v, %d progress calls; want context.Canceled and none", err, calls)
	}
}

// TestLoadCancelNoFallback: a load onto a (fake) GPU cancelled after the
// weight check (from OnProgress at done = total, before the uploads)
// returns ctx.Err() and no model: a cancellation is not one of the GPU
// failures that GPUAuto answers by loading onto the CPU instead.
func TestLoadCancelNoFallback(t *testing.T) {
	withFakeGPU(t, 1<<30, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var rec logRecords
	m, err := LoadModelContext(ctx, testdata.Path("models", "qwen3-tiny-mixed.gguf"), ModelOptions{
		GPU: GPUAuto, Logger: slog.New(&rec),
		OnProgress: func(done, total int64) {
			if done == total {
				cancel()
			}
		},
	})
	if !errors.Is(err, context.Canceled) || m != nil {
		t.Fatalf("got %v, %v; want context.Canceled", m, err)
	}
	if s := rec.String(); s != "" {
		t.Errorf("a cancelled load logged %q", s)
	}
}

// TestMonotone: a second pass of the weight check (after a GPU load fell
// back to the CPU) does not move the progress back.
func TestMonotone(t *testing.T) {
	var got []int64
	f := monotone(func(done, total int64) { got = append(got, done) })
	for _, d := range []int64{0, 5, 10, 0, 5, 10} {
		f(d, 10)
	}
	if !slices.Equal(got, []int64{0, 5, 10}) {
		t.Errorf("reported %v, want [0 5 10]", got)
	}
	if monotone(nil) != nil {
		t.Error("monotone(nil) should be nil: no callback to call")
	}
}
