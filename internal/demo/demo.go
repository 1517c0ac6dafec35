// Package demo makes the built-in demonstration model that `gollm run`
// uses when no --model is given: a small Qwen3 (4 layers, width 256) with
// the real DeepSeek-R1-0528-Qwen3 tokenizer and chat template, and random
// weights. It runs anywhere in a moment and shows every part of the engine
// at work, but its text is noise.
//
// The tokenizer comes from a vocab-only GGUF (the same file as
// testdata/vocab/deepseek-r1-qwen3.gguf), embedded gzipped. The model is
// synthesized on first use and cached in a directory of the user's own
// (see PathContext).
package demo

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/gollm/gollm/gguf"
	"github.com/gollm/gollm/internal/cachedir"
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
func Path() (path string, created bool, err error) { return PathContext(context.Background()) }

// PathContext is Path, with a synthesis that stops when ctx is done
// (leaving no partial file behind).
//
// The cache directory is the user's own: gollm under os.UserCacheDir
// ($XDG_CACHE_HOME or $HOME/.cache), or, when neither is set,
// gollm-<uid> under the temporary directory. It is made with mode 0700
// and must be a real directory (not a symlink) owned by the user and
// writable by no one else; the model file in it must be a regular file
// (not a symlink) owned by the user and writable by no one else.
// Anything else is refused with an error saying what to remove, since a
// file planted there would be loaded as the model.
func PathContext(ctx context.Context) (path string, created bool, err error) {
	dir, err := CacheDir()
	if err != nil {
		return "", false, err
	}
	path = filepath.Join(dir, fmt.Sprintf("demo-v%d-q6k.gguf", Version))
	switch st, err := os.Lstat(path); {
	case err == nil:
		if err := cachedir.CheckOwned(path, st, false); err != nil {
			return "", false, fmt.Errorf("demo: %w", err)
		}
		if st.Size() > 0 {
			return path, false, nil
		}
	case !errors.Is(err, fs.ErrNotExist):
		return "", false, fmt.Errorf("demo: %w", err)
	}
	return path, true, WriteContext(ctx, path)
}

// CacheDir returns the demo model's cache directory (see
// internal/cachedir), made if needed and checked.
func CacheDir() (string, error) {
	dir, err := cachedir.Dir()
	if err != nil {
		return "", fmt.Errorf("demo: %w", err)
	}
	return dir, nil
}

// Write synthesizes the demo model into path.
func Write(path string) error { return WriteContext(context.Background(), path) }

// WriteContext synthesizes the demo model into path, atomically: into a
// new temporary file in the same directory (os.CreateTemp: a unique
// name, mode 0600), renamed into place when complete, so concurrent
// first runs are safe. The temporary file is removed on any error,
// including ctx ending (Ctrl-C during the synthesis).
func WriteContext(ctx context.Context, path string) (err error) {
	img, err := Vocab()
	if err != nil {
		return fmt.Errorf("demo: embedded vocabulary: %w", err)
	}
	vocab, err := gguf.Parse(img)
	if err != nil {
		return fmt.Errorf("demo: embedded vocabulary: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".demo-*.gguf.tmp")
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	bw := bufio.NewWriterSize(ctxWriter{ctx, tmp}, 1<<20)
	if _, err := synth.WriteTo(bw, Config(), vocab); err != nil {
		return fmt.Errorf("demo: synthesizing %s: %w", path, err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("demo: synthesizing %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("demo: synthesizing %s: %w", path, err)
	}
	return os.Rename(tmp.Name(), path)
}

// ctxWriter fails every write once ctx is done, which stops a synthesis
// at its next write.
type ctxWriter struct {
	ctx context.Context
	w   io.Writer
}

func (c ctxWriter) Write(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.w.Write(p)
}
