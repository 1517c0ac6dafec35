package gguf

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/gollm/gollm/internal/testdata"
	"github.com/gollm/gollm/tensor"
)

// manifestFile is one entry of testdata/manifest.json.
type manifestFile struct {
	File     string         `json:"file"`
	Bytes    int64          `json:"bytes"`
	Metadata map[string]any `json:"metadata"`
	Tensors  []struct {
		Name string  `json:"name"`
		Type string  `json:"type"`
		Ne   []int64 `json:"ne"`
	} `json:"tensors"`
}

func readManifest(t testing.TB) (models, vocab []manifestFile) {
	t.Helper()
	raw, err := os.ReadFile(testdata.Path("manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		Models   []manifestFile `json:"models"`
		Vocab    []manifestFile `json:"vocab"`
		Families []manifestFile `json:"families"`
		FamVocab []manifestFile `json:"families_vocab"`
	}
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.UseNumber() // keep integers exact
	if err := dec.Decode(&m); err != nil {
		t.Fatal(err)
	}
	// The other families' files, those copied into testdata (the shared
	// manifest also lists ones no test reads yet).
	for _, list := range []struct{ from, to *[]manifestFile }{{&m.Families, &m.Models}, {&m.FamVocab, &m.Vocab}} {
		for _, f := range *list.from {
			if _, err := os.Stat(testdata.Path(f.File)); err == nil {
				*list.to = append(*list.to, f)
			}
		}
	}
	return m.Models, m.Vocab
}

var (
	arraySummary  = regexp.MustCompile(`^<array of (\d+)>$`)
	stringSummary = regexp.MustCompile(`^<(\d+) chars, see templates/>$`)
)

// checkManifestValue compares one metadata value with the manifest's
// rendering of it: a number, bool or string, or a summary of an array or
// a long string.
func checkManifestValue(v Value, want any) error {
	switch w := want.(type) {
	case bool:
		if b, ok := v.Any().(bool); !ok || b != w {
			return fmt.Errorf("%v (%s), want %v", v.Any(), v.Type, w)
		}
	case string:
		if m := arraySummary.FindStringSubmatch(w); m != nil {
			n, _ := strconv.Atoi(m[1])
			if a := v.Array(); a == nil || a.Len() != n {
				return fmt.Errorf("%s value, want an array of %d", v.Type, n)
			}
			return nil
		}
		s, ok := v.Any().(string)
		if m := stringSummary.FindStringSubmatch(w); m != nil {
			n, _ := strconv.Atoi(m[1])
			if !ok || utf8.RuneCountInString(s) != n {
				return fmt.Errorf("%s of %d chars, want a string of %d", v.Type, utf8.RuneCountInString(s), n)
			}
			return nil
		}
		if !ok || s != w {
			return fmt.Errorf("%v (%s), want %q", v.Any(), v.Type, w)
		}
	case json.Number:
		if n, ok := v.asInt(); ok {
			if w.String() != strconv.FormatInt(n, 10) {
				return fmt.Errorf("%d (%s), want %s", n, v.Type, w)
			}
			return nil
		}
		x, ok := v.asFloat()
		wf, err := w.Float64()
		if !ok || err != nil {
			return fmt.Errorf("%v (%s), want %s", v.Any(), v.Type, w)
		}
		// The manifest prints a float32 widened to float64; compare as
		// float32 when the file holds one.
		if v.Type == TypeFloat32 && float32(wf) != float32(x) || v.Type == TypeFloat64 && wf != x {
			return fmt.Errorf("%v (%s), want %s", x, v.Type, w)
		}
	default:
		return fmt.Errorf("manifest value %v of type %T not understood", want, want)
	}
	return nil
}

// TestFixtures opens every fixture GGUF and checks it against the
// manifest: version, counts, every metadata value, and every tensor's
// name, type and shape, in file order.
func TestFixtures(t *testing.T) {
	models, vocab := readManifest(t)
	for _, m := range append(models, vocab...) {
		t.Run(m.File, func(t *testing.T) {
			f, err := Open(testdata.Path(m.File))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if f.Bytes() != m.Bytes {
				t.Errorf("%d bytes, manifest says %d", f.Bytes(), m.Bytes)
			}
			for key, want := range m.Metadata {
				var err error
				switch key {
				case "GGUF.version":
					err = checkManifestValue(Uint32(f.Version), want)
				case "GGUF.tensor_count":
					err = checkManifestValue(Int64(int64(len(f.Tensors()))), want)
				case "GGUF.kv_count":
					err = checkManifestValue(Int64(int64(len(f.KVs()))), want)
				default:
					v, ok := f.Lookup(key)
					if !ok {
						t.Errorf("%s: missing", key)
						continue
					}
					err = checkManifestValue(v, want)
				}
				if err != nil {
					t.Errorf("%s: %v", key, err)
				}
			}
			// Every key in the file is in the manifest (plus the three GGUF.* entries).
			if len(f.KVs())+3 != len(m.Metadata) {
				t.Errorf("%d keys, manifest lists %d", len(f.KVs()), len(m.Metadata)-3)
			}

			if len(f.Tensors()) != len(m.Tensors) {
				t.Fatalf("%d tensors, manifest lists %d", len(f.Tensors()), len(m.Tensors))
			}
			var end int64 // end of the last tensor's data, from the file start
			for i, ti := range f.Tensors() {
				want := m.Tensors[i]
				wantType, err := tensor.ParseDType(want.Type)
				if err != nil {
					t.Fatal(err)
				}
				if ti.Name != want.Name || ti.Type != wantType || fmt.Sprint(ti.Shape) != fmt.Sprint(want.Ne) {
					t.Errorf("tensor %d: %s %s %v, manifest %s %s %v", i, ti.Name, ti.Type, ti.Shape, want.Name, want.Type, want.Ne)
				}
				tt, err := f.Tensor(ti.Name)
				if err != nil {
					t.Fatal(err)
				}
				if int64(len(tt.Data)) != ti.Size {
					t.Errorf("%s: view of %d bytes, size %d", ti.Name, len(tt.Data), ti.Size)
				}
				end = max(end, f.DataOffset+int64(ti.Offset)+ti.Size)
			}
			if end > f.Bytes() {
				t.Errorf("tensor data ends at %d, beyond the file", end)
			}
		})
	}
}

// TestFixtureTemplates: the chat template strings are byte-identical to
// the files in testdata/templates (the manifest only gives their length).
func TestFixtureTemplates(t *testing.T) {
	cases := map[string]string{
		"models/qwen3-tiny-q6k.gguf":   "qwen3.jinja",
		"models/qwen3-tiny-mixed.gguf": "deepseek-r1-0528-qwen3-8b.jinja",
		"vocab/qwen3.gguf":             "qwen3.jinja",
		"vocab/deepseek-r1-qwen3.gguf": "deepseek-r1-0528-qwen3-8b.jinja",
	}
	for file, tmpl := range cases {
		f, err := Open(testdata.Path(strings.Split(file, "/")...))
		if err != nil {
			t.Fatal(err)
		}
		got, err := f.String("tokenizer.chat_template")
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		want, err := os.ReadFile(testdata.Path("templates", tmpl))
		if err != nil {
			t.Fatal(err)
		}
		if got != string(want) {
			t.Errorf("%s: chat template differs from templates/%s", file, tmpl)
		}
	}
}
