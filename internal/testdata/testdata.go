// Package testdata locates the repository's test fixtures (the testdata
// folder at the module root) from any package's tests.
package testdata

import (
	"os"
	"path/filepath"
	"runtime"
)

// Dir is the absolute path of the module's testdata folder: the folder
// next to this source file, or $GOLLM_TESTDATA when set (for test binaries
// built on one machine and run on another, as scripts/cuda-check.sh does).
func Dir() string {
	if dir := os.Getenv("GOLLM_TESTDATA"); dir != "" {
		return dir
	}
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "testdata")
}

// Path joins elements onto Dir, e.g. Path("models", "qwen3-tiny-q6k.gguf").
func Path(elem ...string) string { return filepath.Join(append([]string{Dir()}, elem...)...) }
