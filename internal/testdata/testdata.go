// Package testdata locates the repository's test fixtures (the testdata
// folder at the module root) from any package's tests.
package testdata

import (
	"path/filepath"
	"runtime"
)

// Dir is the absolute path of the module's testdata folder.
func Dir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "testdata")
}

// Path joins elements onto Dir, e.g. Path("models", "qwen3-tiny-q6k.gguf").
func Path(elem ...string) string { return filepath.Join(append([]string{Dir()}, elem...)...) }
