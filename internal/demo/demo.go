// Package demo makes the built-in demonstration model that `gollm run`
// uses when no --model is given: a small Qwen3 (4 layers, width 256) with
// the real DeepSeek-R1-0528-Qwen3 tokenizer and chat template, and random
// weights. It runs anywhere in a moment and shows every part of the engine
// at work, but its text is noise.
//
// The tokenizer comes from a vocab-only GGUF (the same file as
// testdata/vocab/deepseek-r1-qwen3.gguf), embedded gzipped. The model is
// synthesized on first use and cached in the user's cache directory.
package demo

import (
	"bytes"
	"compress/gzip"
	_ "embed"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/gollm/gollm/gguf"
	"github.com/gollm/gollm/synth"
	"github.com/gollm/gollm/tensor"
)

//go:embed deepseek-r1-qwen3-vocab.gguf.gz
var vocabGz []byte

// Version changes whenever the demo model's recipe changes, so a stale
// cached file is not reused.
const Version = 1

// Config is the demo model's shape.
func Config() synth.Config {
	return synth.Config{
		Name: "gollm-demo (random weights)", Embd: 256, Layers: 4, Heads: 8, KVHeads: 4, HeadDim: 64, FF: 768,
		Tied: true, Type: tensor.Q6_K, Seed: 20261126, ContextLength: 40960,
	}
}

// Vocab returns the embedded vocab-only GGUF image.
func Vocab() ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(vocabGz))
	if err != nil {
		return nil, err
	}
	return io.ReadAll(zr)
}

// Path returns the cached demo model's path, synthesizing it first if
// needed. created reports whether it was made now.
func Path() (path string, created bool, err error) {
	dir, err := os.UserCacheDir()
	if err != nil || dir == "" {
		dir = os.TempDir()
	}
	dir = filepath.Join(dir, "gollm")
	path = filepath.Join(dir, fmt.Sprintf("demo-v%d-q6k.gguf", Version))
	if st, err := os.Stat(path); err == nil && st.Size() > 0 {
		return path, false, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", false, err
	}
	return path, true, Write(path)
}

// Write synthesizes the demo model into path (atomically: a temporary
// file renamed into place, so concurrent first runs are safe).
func Write(path string) error {
	img, err := Vocab()
	if err != nil {
		return fmt.Errorf("demo: embedded vocabulary: %w", err)
	}
	vocab, err := gguf.Parse(img)
	if err != nil {
		return fmt.Errorf("demo: embedded vocabulary: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".demo-*.gguf")
	if err != nil {
		return err
	}
	tmp.Close()
	defer os.Remove(tmp.Name())
	if err := synth.Write(tmp.Name(), Config(), vocab); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
