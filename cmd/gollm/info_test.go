package main

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/gollm/gollm/gguf"
	"github.com/gollm/gollm/internal/testdata"
	"github.com/gollm/gollm/tensor"
)

// run drives the CLI in-process and returns its exit code and output.
func run(args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	code = runMain(args, &out, &errb)
	return code, out.String(), errb.String()
}

// manifestEntry is one file of testdata/manifest.json.
type manifestEntry struct {
	File     string         `json:"file"`
	Metadata map[string]any `json:"metadata"`
	Tensors  []struct {
		Name string  `json:"name"`
		Type string  `json:"type"`
		Ne   []int64 `json:"ne"`
	} `json:"tensors"`
}

func manifest(t *testing.T) (models, vocab []manifestEntry) {
	t.Helper()
	raw, err := os.ReadFile(testdata.Path("manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m struct{ Models, Vocab []manifestEntry }
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		t.Fatal(err)
	}
	return m.Models, m.Vocab
}

// infoOutput is what `gollm info --json` prints, decoded.
type infoOutput struct {
	Version  json.Number    `json:"version"`
	Metadata map[string]any `json:"metadata"`
	Tensors  []struct {
		Name   string  `json:"name"`
		Type   string  `json:"type"`
		Shape  []int64 `json:"shape"`
		Offset uint64  `json:"offset"`
		Bytes  int64   `json:"bytes"`
	} `json:"tensors"`
	Parameters    int64   `json:"parameters"`
	BitsPerWeight float64 `json:"bits_per_weight"`
}

// decodeOne decodes stdout as exactly one JSON object, numbers kept exact.
func decodeOne(t *testing.T, stdout string) (infoOutput, []string) {
	t.Helper()
	var info infoOutput
	dec := json.NewDecoder(strings.NewReader(stdout))
	dec.UseNumber()
	if err := dec.Decode(&info); err != nil {
		t.Fatalf("stdout is not JSON: %v\n%s", err, stdout)
	}
	if dec.More() {
		t.Fatal("stdout holds more than one JSON value")
	}
	// The metadata keys in the order printed.
	var keys []string
	raw := struct {
		Metadata json.RawMessage `json:"metadata"`
	}{}
	json.Unmarshal([]byte(stdout), &raw)
	kd := json.NewDecoder(bytes.NewReader(raw.Metadata))
	kd.Token() // {
	for kd.More() {
		tok, _ := kd.Token()
		keys = append(keys, tok.(string))
		var skip json.RawMessage
		kd.Decode(&skip)
	}
	return info, keys
}

var (
	arraySummary  = regexp.MustCompile(`^<array of (\d+)>$`)
	stringSummary = regexp.MustCompile(`^<(\d+) chars, see templates/>$`)
)

// TestInfoJSONMatchesManifest: on every fixture, --json lists exactly the
// manifest's tensors (names, types, shapes, in order) and metadata.
func TestInfoJSONMatchesManifest(t *testing.T) {
	models, vocab := manifest(t)
	for _, m := range append(models, vocab...) {
		t.Run(m.File, func(t *testing.T) {
			code, stdout, stderr := run("info", "--json", "--model", testdata.Path(m.File))
			if code != 0 || stderr != "" {
				t.Fatalf("exit %d, stderr %q", code, stderr)
			}
			info, keys := decodeOne(t, stdout)

			if info.Version.String() != m.Metadata["GGUF.version"].(json.Number).String() {
				t.Errorf("version %s, manifest %v", info.Version, m.Metadata["GGUF.version"])
			}
			if n := m.Metadata["GGUF.kv_count"].(json.Number).String(); strconv.Itoa(len(info.Metadata)) != n || len(keys) != len(info.Metadata) {
				t.Errorf("%d metadata keys (%d printed), manifest %s", len(info.Metadata), len(keys), n)
			}
			for key, want := range m.Metadata {
				if strings.HasPrefix(key, "GGUF.") {
					continue
				}
				got, ok := info.Metadata[key]
				if !ok {
					t.Errorf("%s: missing", key)
					continue
				}
				if err := compareValue(got, want); err != "" {
					t.Errorf("%s: %s", key, err)
				}
			}

			if len(info.Tensors) != len(m.Tensors) {
				t.Fatalf("%d tensors, manifest %d", len(info.Tensors), len(m.Tensors))
			}
			var params, size int64
			for i, got := range info.Tensors {
				want := m.Tensors[i]
				if got.Name != want.Name || !strings.EqualFold(got.Type, want.Type) || !equalInts(got.Shape, want.Ne) {
					t.Errorf("tensor %d: %s %s %v, manifest %s %s %v", i, got.Name, got.Type, got.Shape, want.Name, want.Type, want.Ne)
				}
				dt, err := tensor.ParseDType(got.Type)
				if err != nil || dt.String() != got.Type {
					t.Errorf("%s: type %q is not ggml's name (%v)", got.Name, got.Type, err)
				}
				n := int64(1)
				for _, d := range got.Shape {
					n *= d
				}
				if rb, err := tensor.RowBytes(dt, n); err != nil || rb != got.Bytes {
					t.Errorf("%s: %d bytes, %s %v takes %d", got.Name, got.Bytes, got.Type, got.Shape, rb)
				}
				params += n
				size += got.Bytes
			}
			if info.Parameters != params {
				t.Errorf("parameters %d, tensors add up to %d", info.Parameters, params)
			}
			if params > 0 && math.Abs(info.BitsPerWeight-float64(size)*8/float64(params)) > 1e-9 {
				t.Errorf("bits per weight %g, want %g", info.BitsPerWeight, float64(size)*8/float64(params))
			}
		})
	}
}

// compareValue compares a value from --json with the manifest's: scalars
// exactly (a float as float32), arrays and long strings by their summary.
func compareValue(got, want any) string {
	mismatch := func() string { return "got " + jsonText(got) + ", manifest " + jsonText(want) }
	switch w := want.(type) {
	case bool:
		if got != w {
			return mismatch()
		}
	case json.Number:
		g, ok := got.(json.Number)
		if !ok {
			return mismatch()
		}
		if _, err := w.Int64(); err == nil {
			if g.String() != w.String() {
				return mismatch()
			}
			return ""
		}
		gf, _ := g.Float64()
		wf, _ := w.Float64()
		if float32(gf) != float32(wf) {
			return mismatch()
		}
	case string:
		if m := arraySummary.FindStringSubmatch(w); m != nil {
			n, _ := strconv.Atoi(m[1])
			switch g := got.(type) {
			case map[string]any:
				if g["type"] != "array" || g["len"].(json.Number).String() != m[1] || n <= 16 {
					return mismatch()
				}
			case []any:
				if len(g) != n || n > 16 {
					return mismatch()
				}
			default:
				return mismatch()
			}
			return ""
		}
		g, ok := got.(string)
		if m := stringSummary.FindStringSubmatch(w); m != nil {
			if !ok || strconv.Itoa(utf8.RuneCountInString(g)) != m[1] {
				return "a string of " + strconv.Itoa(utf8.RuneCountInString(g)) + " chars, manifest " + w
			}
			return ""
		}
		if !ok || g != w {
			return mismatch()
		}
	default:
		return "manifest value " + jsonText(want) + " not understood"
	}
	return ""
}

func jsonText(v any) string { b, _ := json.Marshal(v); return string(b) }

func equalInts(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestInfoText checks the human report on model A: header, summarized
// arrays, a cut chat template, the tensor table and the totals.
func TestInfoText(t *testing.T) {
	path := testdata.Path("models", "qwen3-tiny-q6k.gguf")
	code, stdout, stderr := run("info", "--model", path)
	if code != 0 || stderr != "" {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	tmpl, err := os.ReadFile(testdata.Path("templates", "qwen3.jinja"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"version 3",
		"family:      qwen3: rope NEOX (halves), q/k norm, no q/k/v bias, dense FFN",
		`general.architecture`, `"qwen3"`,
		`[array of 4096 string] ["!", "\"", "#", "$", "%", …]`,
		`[array of 3840 string]`,
		"(4116 bytes)",
		"qwen3.attention.layer_norm_rms_epsilon", "1e-06",
		"token_embd.weight", "q6_K", "[256 4096]", "860160",
		"tensors (46)",
		"parameters:  4983552",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if strings.Contains(stdout, strconv.Quote(string(tmpl))) || strings.Contains(stdout, "enable_thinking") {
		t.Error("the chat template is printed in full")
	}
	for _, line := range strings.Split(stdout, "\n") {
		if len(line) > 200 {
			t.Errorf("line of %d bytes: %.80s…", len(line), line)
		}
	}
}

// TestInfoOddValues: a file with NaN and infinite floats, nested and
// empty arrays, a short array and a 0-dimensional tensor still gives one
// valid JSON object, with the values written as documented.
func TestInfoOddValues(t *testing.T) {
	w := gguf.NewWriter()
	for _, kv := range []gguf.KV{
		{Key: "f.nan", Value: gguf.Float32(float32(math.NaN()))},
		{Key: "f.inf", Value: gguf.Float64(math.Inf(-1))},
		{Key: "a.short", Value: gguf.ArrayOf([]float32{1.5, float32(math.Inf(1))})},
		{Key: "a.long", Value: gguf.ArrayOf(make([]int16, 17))},
		{Key: "a.empty", Value: gguf.ArrayOf([]string{})},
		{Key: "a.nested", Value: gguf.ArrayOf([]*gguf.Array{gguf.ArrayOf([]bool{true}).Array(), gguf.ArrayOf(make([]uint8, 100)).Array()})},
		{Key: "s.html", Value: gguf.String("<a & b>")},
		{Key: "u64.max", Value: gguf.Uint64(math.MaxUint64)},
	} {
		if err := w.Set(kv.Key, kv.Value); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.AddTensor("scalar", tensor.F32, nil, make([]byte, 4)); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "odd.gguf")
	if err := w.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := run("info", "--json", "--model", path)
	if code != 0 || stderr != "" {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	info, keys := decodeOne(t, stdout)
	want := map[string]string{
		"f.nan":    `"NaN"`,
		"f.inf":    `"-Inf"`,
		"a.short":  `[1.5,"+Inf"]`,
		"a.long":   `{"elem":"int16","len":17,"type":"array"}`,
		"a.empty":  `[]`,
		"a.nested": `[[true],{"elem":"uint8","len":100,"type":"array"}]`,
		"s.html":   `"\u003ca \u0026 b\u003e"`, // as re-marshaled here
		"u64.max":  `18446744073709551615`,
	}
	for k, v := range want {
		if got := jsonText(info.Metadata[k]); got != v {
			t.Errorf("%s: %s, want %s", k, got, v)
		}
	}
	if strings.Join(keys, " ") != "f.nan f.inf a.short a.long a.empty a.nested s.html u64.max" {
		t.Errorf("keys not in file order: %v", keys)
	}
	if !strings.Contains(stdout, `"<a & b>"`) {
		t.Error("HTML characters escaped in the output")
	}
	if len(info.Tensors) != 1 || info.Tensors[0].Shape == nil || len(info.Tensors[0].Shape) != 0 || info.Parameters != 1 || info.BitsPerWeight != 32 {
		t.Errorf("tensors %+v, parameters %d, bits %g", info.Tensors, info.Parameters, info.BitsPerWeight)
	}
	if !strings.Contains(stdout, `"shape": []`) {
		t.Error("a 0-dimensional shape should print as []")
	}
	// The text report copes too.
	if code, stdout, _ := run("info", "--model", path); code != 0 || !strings.Contains(stdout, "NaN") || !strings.Contains(stdout, "[array of 100 uint8]") {
		t.Errorf("text report: exit %d\n%s", code, stdout)
	}
}

// TestInfoBadInput: broken files and bad arguments give a one-line
// message and a non-zero exit, never a stack trace.
func TestInfoBadInput(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	model, err := os.ReadFile(testdata.Path("models", "qwen3-tiny-q6k.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	// One tensor "t", f32-sized [8], of type 77, which ggml does not define.
	badType := []byte("GGUF\x03\x00\x00\x00" + "\x01\x00\x00\x00\x00\x00\x00\x00" + "\x00\x00\x00\x00\x00\x00\x00\x00" +
		"\x01\x00\x00\x00\x00\x00\x00\x00t" + "\x01\x00\x00\x00" + "\x08\x00\x00\x00\x00\x00\x00\x00" +
		"\x4d\x00\x00\x00" + "\x00\x00\x00\x00\x00\x00\x00\x00")
	badType = append(badType, make([]byte, 64)...)
	cases := []struct {
		name    string
		args    []string
		code    int
		mention string
	}{
		{"bad magic", []string{"--model", write("magic.gguf", []byte("this is not a model at all"))}, 1, "not a GGUF file"},
		{"empty", []string{"--model", write("empty.gguf", nil)}, 1, "not a GGUF file"},
		{"truncated model", []string{"--model", write("cut.gguf", model[:200000])}, 1, "outside the file"},
		{"header cut", []string{"--model", write("head.gguf", model[:100000])}, 1, "gguf:"},
		{"big-endian", []string{"--model", write("be.gguf", append([]byte("GGUF\x00\x00\x00\x03"), make([]byte, 16)...))}, 1, "big-endian"},
		{"garbage", []string{"--model", write("garbage.gguf", append([]byte("GGUF\x03\x00\x00\x00"), bytes.Repeat([]byte{0xff}, 100)...))}, 1, "exceeds"},
		{"unknown type, json", []string{"--json", "--model", write("badtype.gguf", badType)}, 1, "type 77"},
		{"missing file", []string{"--model", filepath.Join(dir, "nope.gguf")}, 1, "no such file"},
		{"directory", []string{"--model", dir}, 1, "not a regular file"},
		{"no model", []string{"--json"}, 2, "--model"},
		{"stray argument", []string{"--model", "x.gguf", "y.gguf"}, 2, "y.gguf"},
		{"unknown flag", []string{"--modle", "x.gguf"}, 2, "modle"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, stdout, stderr := run(append([]string{"info"}, c.args...)...)
			if code != c.code {
				t.Errorf("exit %d, want %d; stderr %q", code, c.code, stderr)
			}
			if stdout != "" {
				t.Errorf("stdout %q, want nothing", stdout)
			}
			if strings.Contains(stderr, "goroutine") || strings.Contains(stderr, "panic") {
				t.Errorf("stack trace:\n%s", stderr)
			}
			if !strings.Contains(stderr, c.mention) {
				t.Errorf("stderr %q does not mention %q", stderr, c.mention)
			}
			if c.code == 1 {
				if lines := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n"); len(lines) != 1 || !strings.HasPrefix(stderr, "gollm info: ") {
					t.Errorf("want one line starting \"gollm info: \", got %q", stderr)
				}
			}
		})
	}
	if code, stdout, stderr := run("info", "-h"); code != 0 || !strings.Contains(stdout+stderr, `{"type": "array", "elem": "string", "len": 151936}`) {
		t.Errorf("help: exit %d, it should document the array summary", code)
	}
}

// TestInfoActiveParameters: for a mixture of experts info counts the
// parameters one token uses besides the total, in text and JSON.
// qwen3moe-tiny: 4986368 in all; its 2 layers × 3 expert tensors × 8
// experts × 256·256 = 3145728 expert parameters, of which a token uses 2
// of 8 experts, so 3145728·6/8 = 2359296 are idle: 2627072 active. A
// dense model shows no active count.
func TestInfoActiveParameters(t *testing.T) {
	path := testdata.Path("models", "qwen3moe-tiny-q6k.gguf")
	code, stdout, stderr := run("info", "--model", path)
	if want := "active:      2627072 (2.63 M) per token: attention, router and 2 of 8 experts per layer\n"; code != 0 || !strings.Contains(stdout, want) {
		t.Errorf("exit %d, stderr %q, output lacks %q", code, stderr, want)
	}
	code, stdout, _ = run("info", "--model", path, "--json")
	var info struct {
		Params      int64 `json:"parameters"`
		Active      int64 `json:"active_parameters"`
		Experts     int   `json:"experts"`
		ExpertsUsed int   `json:"experts_used"`
	}
	if err := json.Unmarshal([]byte(stdout), &info); code != 0 || err != nil {
		t.Fatalf("--json: exit %d, %v", code, err)
	}
	if info.Params != 4986368 || info.Active != 2627072 || info.Experts != 8 || info.ExpertsUsed != 2 {
		t.Errorf("--json: %+v", info)
	}
	code, stdout, _ = run("info", "--model", testdata.Path("models", "qwen2-tiny-q6k.gguf"))
	if code != 0 || strings.Contains(stdout, "active:") {
		t.Errorf("a dense model: exit %d, output shows an active count", code)
	}
	code, stdout, _ = run("info", "--model", testdata.Path("models", "qwen2-tiny-q6k.gguf"), "--json")
	if code != 0 || strings.Contains(stdout, "active_parameters") {
		t.Errorf("a dense model --json: exit %d, shows active_parameters", code)
	}
}

// TestInfoFamily: info names the family gollm runs a file as, with its
// pieces, in text and JSON, and says so when it runs no such family.
func TestInfoFamily(t *testing.T) {
	for _, c := range []struct{ file, arch, pieces string }{
		{"llama-tiny-q6k.gguf", "llama", "rope NORM (adjacent pairs), no q/k norm, no q/k/v bias, rope_freqs when present, dense FFN"},
		{"qwen2-tiny-q6k.gguf", "qwen2", "rope NEOX (halves), no q/k norm, q/k/v bias, dense FFN"},
		{"qwen3moe-tiny-q6k.gguf", "qwen3moe", "rope NEOX (halves), q/k norm, no q/k/v bias, mixture-of-experts FFN (softmax router, top-k renormalised)"},
	} {
		path := testdata.Path("models", c.file)
		code, stdout, stderr := run("info", "--model", path)
		if want := "family:      " + c.arch + ": " + c.pieces + "\n"; code != 0 || !strings.Contains(stdout, want) {
			t.Errorf("%s: exit %d, stderr %q, output lacks %q", c.file, code, stderr, want)
		}
		code, stdout, _ = run("info", "--model", path, "--json")
		var info struct {
			Family struct {
				Arch      string `json:"architecture"`
				Supported bool   `json:"supported"`
				Pieces    string `json:"pieces"`
			} `json:"family"`
		}
		if err := json.Unmarshal([]byte(stdout), &info); code != 0 || err != nil {
			t.Fatalf("%s --json: exit %d, %v", c.file, code, err)
		}
		if info.Family.Arch != c.arch || !info.Family.Supported || info.Family.Pieces != c.pieces {
			t.Errorf("%s --json: family %+v", c.file, info.Family)
		}
	}
	dir := t.TempDir()
	w := gguf.NewWriter()
	if err := w.Set("general.architecture", gguf.String("gemma3")); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "gemma.gguf")
	if err := w.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	code, stdout, _ := run("info", "--model", path)
	if want := `family:      "gemma3", which gollm does not run (it runs llama, qwen2, qwen3, qwen3moe)`; code != 0 || !strings.Contains(stdout, want) {
		t.Errorf("unsupported architecture: exit %d, output lacks %q:\n%s", code, want, stdout)
	}
}
