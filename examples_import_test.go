package gollm

import (
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestExamplesUsePublicAPI: the example programs (examples/**) and the
// Example functions (every *example_test.go of the module) import no
// internal package, so that a reader can copy them into a program of
// their own as they are: Go refuses an import of
// github.com/gollm/gollm/internal/... from outside this module.
func TestExamplesUsePublicAPI(t *testing.T) {
	var files []string
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			// testdata and hidden folders hold no package's code.
			if path != "." && (name == "testdata" || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_")) {
				return filepath.SkipDir
			}
			return nil
		}
		inExamples := strings.HasPrefix(filepath.ToSlash(path), "examples/")
		if strings.HasSuffix(name, ".go") && (inExamples || strings.HasSuffix(name, "example_test.go")) {
			files = append(files, path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, path := range files {
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			if p == "internal" || strings.HasPrefix(p, "internal/") || strings.Contains(p, "/internal/") || strings.HasSuffix(p, "/internal") {
				t.Errorf("%s imports %s: examples must use only the public API", path, p)
			}
		}
		seen[filepath.ToSlash(path)] = true
	}
	// The check must have looked at the files it is about.
	for _, want := range []string{"example_test.go", "examples/batch/main.go"} {
		if !seen[want] {
			t.Errorf("%s was not checked (checked: %v)", want, files)
		}
	}
}
