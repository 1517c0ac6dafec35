package demo

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// noHome unsets HOME and XDG_CACHE_HOME, so the cache falls back to the
// temporary directory, which it points at a fresh one (returned).
func noHome(t *testing.T) string {
	tmp := t.TempDir()
	t.Setenv("HOME", "")
	t.Setenv("XDG_CACHE_HOME", "")
	t.Setenv("TMPDIR", tmp)
	return tmp
}

func modelName() string { return fmt.Sprintf("demo-v%d-q6k.gguf", Version) }

// TestCacheNoHome: without HOME and XDG_CACHE_HOME the cache is a
// directory of the user's own (gollm-<uid>, mode 0700), not the shared
// gollm directory, where a file planted by someone else is ignored.
func TestCacheNoHome(t *testing.T) {
	if testing.Short() {
		t.Skip("synthesizes the demo model")
	}
	tmp := noHome(t)
	shared := filepath.Join(tmp, "gollm")
	if err := os.Mkdir(shared, 0o777); err != nil {
		t.Fatal(err)
	}
	planted := filepath.Join(shared, modelName())
	if err := os.WriteFile(planted, []byte("GGUF planted by someone else"), 0o666); err != nil {
		t.Fatal(err)
	}
	path, created, err := PathContext(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := filepath.Join(tmp, fmt.Sprintf("gollm-%d", os.Getuid()), modelName())
	if path != want || !created {
		t.Fatalf("path %s (created %v), want %s made now", path, created, want)
	}
	st, err := os.Stat(filepath.Dir(path))
	if err != nil || st.Mode().Perm() != 0o700 {
		t.Fatalf("cache directory: %v, mode %v; want 0700", err, st.Mode().Perm())
	}
	if fst, err := os.Stat(path); err != nil || fst.Size() < 1<<20 || fst.Mode().Perm()&0o022 != 0 {
		t.Fatalf("model file: %v %v", fst, err)
	}
	if data, _ := os.ReadFile(planted); string(data) != "GGUF planted by someone else" {
		t.Errorf("the planted file was changed")
	}
	// The second run finds it; no temporary file is left over.
	if p2, created, err := PathContext(context.Background()); err != nil || p2 != path || created {
		t.Errorf("second run: %s, created %v, %v", p2, created, err)
	}
	if entries, _ := os.ReadDir(filepath.Dir(path)); len(entries) != 1 {
		t.Errorf("cache directory holds %d entries, want only the model", len(entries))
	}
}

// TestCacheRefused: a cache directory or model file that someone else
// could have put there or changed is refused, with what to remove.
func TestCacheRefused(t *testing.T) {
	type setup func(t *testing.T, dir string)
	mkdir := func(mode os.FileMode) setup {
		return func(t *testing.T, dir string) {
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(dir, mode); err != nil {
				t.Fatal(err)
			}
		}
	}
	file := func(mode os.FileMode) setup {
		return func(t *testing.T, dir string) {
			mkdir(0o700)(t, dir)
			p := filepath.Join(dir, modelName())
			if err := os.WriteFile(p, []byte("GGUF planted"), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(p, mode); err != nil {
				t.Fatal(err)
			}
		}
	}
	cases := []struct {
		name    string
		setup   setup
		mention string
		root    bool // needs root, to give a file away
	}{
		{"world-writable directory", mkdir(0o777), "others may write", false},
		{"group-writable directory", mkdir(0o770), "others may write", false},
		{"directory symlink", func(t *testing.T, dir string) {
			other := t.TempDir()
			if err := os.Symlink(other, dir); err != nil {
				t.Fatal(err)
			}
		}, "symbolic link", false},
		{"directory is a file", func(t *testing.T, dir string) {
			if err := os.WriteFile(dir, nil, 0o600); err != nil {
				t.Fatal(err)
			}
		}, "not a directory", false},
		{"directory of another user", func(t *testing.T, dir string) {
			mkdir(0o700)(t, dir)
			if err := os.Chown(dir, 65534, 65534); err != nil {
				t.Fatal(err)
			}
		}, "belongs to uid 65534", true},
		{"model symlink", func(t *testing.T, dir string) {
			mkdir(0o700)(t, dir)
			target := filepath.Join(t.TempDir(), "elsewhere.gguf")
			if err := os.WriteFile(target, []byte("GGUF elsewhere"), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(target, filepath.Join(dir, modelName())); err != nil {
				t.Fatal(err)
			}
		}, "symbolic link", false},
		{"world-writable model", file(0o666), "others may write", false},
		{"model of another user", func(t *testing.T, dir string) {
			file(0o600)(t, dir)
			if err := os.Chown(filepath.Join(dir, modelName()), 65534, 65534); err != nil {
				t.Fatal(err)
			}
		}, "belongs to uid 65534", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.root && os.Getuid() != 0 {
				t.Skip("needs root to give a file to another user")
			}
			tmp := noHome(t)
			dir := filepath.Join(tmp, fmt.Sprintf("gollm-%d", os.Getuid()))
			c.setup(t, dir)
			path, _, err := PathContext(context.Background())
			if err == nil || !strings.Contains(err.Error(), c.mention) || !strings.Contains(err.Error(), "remove it") {
				t.Fatalf("path %q, err %v; want a refusal mentioning %q", path, err, c.mention)
			}
		})
	}
}

// TestWriteInterrupted: a first run interrupted during the synthesis
// (Ctrl-C cancels the context) leaves no file behind, neither the model
// nor its temporary file.
func TestWriteInterrupted(t *testing.T) {
	tmp := noHome(t)
	dir, err := CacheDir()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(dir, tmp) {
		t.Fatalf("cache directory %s is not under %s", dir, tmp)
	}
	// Cancelled before it starts.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := PathContext(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled context: %v", err)
	}
	assertEmpty(t, dir)

	// Cancelled once the temporary file has some data.
	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	go func() {
		for ctx.Err() == nil {
			entries, _ := os.ReadDir(dir)
			for _, e := range entries {
				if info, err := e.Info(); err == nil && info.Size() > 0 {
					cancel()
					return
				}
			}
			time.Sleep(time.Millisecond)
		}
	}()
	_, _, err = PathContext(ctx)
	if ctx.Err() == nil {
		t.Skip("the synthesis finished before the test could interrupt it")
	}
	if !errors.Is(err, context.Canceled) {
		t.Errorf("interrupted: %v, want context.Canceled", err)
	}
	assertEmpty(t, dir)
}

func assertEmpty(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		t.Errorf("left behind: %s", e.Name())
	}
}
