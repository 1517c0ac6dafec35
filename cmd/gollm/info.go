package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"unicode/utf8"

	"github.com/gollm/gollm/gguf"
	"github.com/gollm/gollm/model"
)

func init() {
	register(command{name: "info", summary: "show a GGUF file's metadata and tensors", run: runInfo})
}

const infoHelp = `Usage: gollm info --model FILE [--json]

Shows what a GGUF file holds: its version, the model family gollm runs it
as (from general.architecture: llama, qwen2, qwen3 or qwen3moe, with the
pieces that tell them apart), its metadata, the tensor table (name, type,
shape, offset, bytes), the total parameter count and the bits per weight
over all tensors, and for a mixture of experts (qwen3moe) the active
parameters: those one token uses (attention, router, norms, embedding
and LM head, and expert_used_count of expert_count experts per layer). Only the header is read, so this is instant
even on a large model.

Text output shortens long values: an array of more than 8 elements prints
as "[array of N type]" followed by its first 5 elements, and a string of
more than 64 characters (a chat template, say) is cut, with its full size
given in bytes. Shapes list ne0, the innermost dimension, first; offsets
count from the start of the tensor data section.

--json prints exactly one JSON object:

  {"version": 3,
   "family": {"architecture": "qwen3", "supported": true,
              "pieces": "rope NEOX (halves), q/k norm, no q/k/v bias, dense FFN"},
   "metadata": {"general.architecture": "qwen3", ...},
   "tensors": [{"name": "token_embd.weight", "type": "q6_K",
                "shape": [256, 4096], "offset": 0, "bytes": 860160}, ...],
   "parameters": 1234567, "bits_per_weight": 6.5625}

plus, for a mixture of experts, "active_parameters", "experts" and
"experts_used".

Metadata keys appear in file order with their values in full: numbers,
strings and booleans as themselves, and an array of up to 16 elements as a
JSON array. A longer array (a tokenizer vocabulary has 151936 entries) is
summarized as an object: {"type": "array", "elem": "string", "len": 151936}.
NaN and infinite floats, which JSON cannot hold, are written as the strings
"NaN", "+Inf" and "-Inf". Tensor "type" is ggml's name (f32, f16, q8_0,
q4_K, q6_K, ...).

Flags:
`

// Limits of what is shown in full.
const (
	textArrayMax  = 8  // text: longer arrays are summarized
	textArrayHead = 5  // text: elements shown of a summarized array
	textStringMax = 64 // text: characters of a string shown
	jsonArrayMax  = 16 // JSON: longer arrays are summarized
)

func runInfo(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("info", stderr)
	model := fs.String("model", "", "GGUF `file` to describe, or hf:REPO:QUANT (required)")
	asJSON := fs.Bool("json", false, "print one JSON object instead of text")
	fs.Usage = func() { printHelp(fs, infoHelp) }
	if err := parseArgs(fs, args); err != nil {
		return err
	}
	if *model == "" {
		return fmt.Errorf("%w: --model FILE is required (see gollm info -h)", errUsage)
	}

	path, err := modelPath(*model)
	if err != nil {
		return err
	}
	f, err := gguf.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()

	// Buffer the output, so a failure never leaves half a report behind.
	var out bytes.Buffer
	if *asJSON {
		err = writeInfoJSON(&out, f)
	} else {
		err = writeInfoText(&out, f, *model)
	}
	if err != nil {
		return err
	}
	_, err = stdout.Write(out.Bytes())
	return err
}

// totals is the parameter count and data size over all tensors.
func totals(f *gguf.File) (params, bytes int64) {
	for _, t := range f.Tensors() {
		params += t.Elements()
		bytes += t.Size
	}
	return params, bytes
}

// activeParameters is, for a mixture of experts gollm runs, the
// parameters one token uses (model.Parameters) and the expert counts; ok
// is false for a dense model or a file gollm cannot read.
func activeParameters(f *gguf.File) (active int64, experts, used int, ok bool) {
	cfg, err := model.ReadConfig(f)
	if err != nil || cfg.Experts == 0 {
		return 0, 0, 0, false
	}
	_, active, err = model.Parameters(f)
	return active, cfg.Experts, cfg.ExpertsUsed, err == nil
}

// bitsPerWeight is the average storage cost of one parameter (0 when the
// file has no tensors).
func bitsPerWeight(params, bytes int64) float64 {
	if params == 0 {
		return 0
	}
	return float64(bytes) * 8 / float64(params)
}

// ---- text ----

func writeInfoText(w io.Writer, f *gguf.File, path string) error {
	fmt.Fprintf(w, "file:        %s (%d bytes)\n", path, f.Bytes())
	fmt.Fprintf(w, "GGUF:        version %d, alignment %d, tensor data at offset %d\n", f.Version, f.Alignment, f.DataOffset)
	if fam := familyOf(f); fam != nil {
		if fam.Supported {
			fmt.Fprintf(w, "family:      %s: %s\n", fam.Arch, fam.Pieces)
		} else {
			fmt.Fprintf(w, "family:      %q, which gollm does not run (it runs %s)\n", fam.Arch, strings.Join(model.SupportedArchitectures, ", "))
		}
	}

	fmt.Fprintf(w, "\nmetadata (%d keys):\n", len(f.KVs()))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, kv := range f.KVs() {
		typ := kv.Value.Type.String()
		if a := kv.Value.Array(); a != nil {
			typ = "[]" + a.Elem.String()
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", kv.Key, typ, textValue(kv.Value))
	}
	tw.Flush()

	fmt.Fprintf(w, "\ntensors (%d):\n", len(f.Tensors()))
	if len(f.Tensors()) > 0 {
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintf(tw, "  name\ttype\tshape (ne0 first)\toffset\tbytes\n")
		for _, t := range f.Tensors() {
			fmt.Fprintf(tw, "  %s\t%s\t%v\t%d\t%d\n", t.Name, t.Type, t.Shape, t.Offset, t.Size)
		}
		tw.Flush()
	}

	params, size := totals(f)
	fmt.Fprintf(w, "\nparameters:  %d (%s)\n", params, humanCount(params))
	if active, experts, used, ok := activeParameters(f); ok {
		fmt.Fprintf(w, "active:      %d (%s) per token: attention, router and %d of %d experts per layer\n", active, humanCount(active), used, experts)
	}
	fmt.Fprintf(w, "tensor data: %d bytes, %.4g bits per weight\n", size, bitsPerWeight(params, size))
	if len(f.Tensors()) > 0 {
		fmt.Fprintf(w, "by type:     %s\n", typeMix(f))
	}
	return nil
}

// typeMix lists the tensor types with their tensor and parameter counts,
// most parameters first: "q6_K 45 tensors 1.9 M params, f32 ...".
func typeMix(f *gguf.File) string {
	type mix struct {
		name            string
		tensors, params int64
	}
	byType := map[string]*mix{}
	for _, t := range f.Tensors() {
		m := byType[t.Type.String()]
		if m == nil {
			m = &mix{name: t.Type.String()}
			byType[m.name] = m
		}
		m.tensors++
		m.params += t.Elements()
	}
	list := make([]*mix, 0, len(byType))
	for _, m := range byType {
		list = append(list, m)
	}
	sort.Slice(list, func(i, j int) bool {
		if list[i].params != list[j].params {
			return list[i].params > list[j].params
		}
		return list[i].name < list[j].name
	})
	parts := make([]string, len(list))
	for i, m := range list {
		parts[i] = fmt.Sprintf("%s %d tensors %s params", m.name, m.tensors, humanCount(m.params))
	}
	return strings.Join(parts, ", ")
}

// humanCount writes 1234567 as "1.23 M".
func humanCount(n int64) string {
	switch {
	case n >= 1e9:
		return fmt.Sprintf("%.2f B", float64(n)/1e9)
	case n >= 1e6:
		return fmt.Sprintf("%.2f M", float64(n)/1e6)
	case n >= 1e3:
		return fmt.Sprintf("%.2f K", float64(n)/1e3)
	}
	return strconv.FormatInt(n, 10)
}

// textValue formats a metadata value for the text report.
func textValue(v gguf.Value) string {
	if a := v.Array(); a != nil {
		return textArray(a)
	}
	return textScalar(v.Any())
}

func textScalar(x any) string {
	switch x := x.(type) {
	case string:
		return quoteShort(x)
	case float32:
		return strconv.FormatFloat(float64(x), 'g', -1, 32)
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	}
	return fmt.Sprint(x)
}

// quoteShort quotes s, cut to textStringMax characters.
func quoteShort(s string) string {
	if utf8.RuneCountInString(s) <= textStringMax {
		return strconv.Quote(s)
	}
	cut := s
	for i := range s { // i: byte offset of each rune
		if utf8.RuneCountInString(s[:i]) == textStringMax {
			cut = s[:i]
			break
		}
	}
	return fmt.Sprintf("%s… (%d bytes)", strconv.Quote(cut), len(s))
}

// textArray shows a short array in full and a long one as a summary with
// its first elements. Inner arrays are always summarized.
func textArray(a *gguf.Array) string {
	n := a.Len()
	shown := n
	if n > textArrayMax {
		shown = textArrayHead
	}
	parts := make([]string, 0, shown+1)
	for i := range shown {
		parts = append(parts, textElem(a, i))
	}
	if shown < n {
		parts = append(parts, "…")
		return fmt.Sprintf("[array of %d %s] [%s]", n, a.Elem, strings.Join(parts, ", "))
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

func textElem(a *gguf.Array, i int) string {
	if inner, ok := a.Values.([]*gguf.Array); ok {
		return fmt.Sprintf("[array of %d %s]", inner[i].Len(), inner[i].Elem)
	}
	return textScalar(elemAt(a, i))
}

// elemAt returns element i of a scalar array as a Go value.
func elemAt(a *gguf.Array, i int) any {
	switch s := a.Values.(type) {
	case []uint8:
		return s[i]
	case []int8:
		return s[i]
	case []uint16:
		return s[i]
	case []int16:
		return s[i]
	case []uint32:
		return s[i]
	case []int32:
		return s[i]
	case []float32:
		return s[i]
	case []bool:
		return s[i]
	case []string:
		return s[i]
	case []uint64:
		return s[i]
	case []int64:
		return s[i]
	case []float64:
		return s[i]
	case []*gguf.Array:
		return s[i]
	}
	return nil
}

// ---- JSON ----

// infoJSON is the object --json prints.
type infoJSON struct {
	Version       uint32       `json:"version"`
	Family        *familyJSON  `json:"family,omitempty"` // absent without general.architecture
	Metadata      jsonMetadata `json:"metadata"`
	Tensors       []tensorJSON `json:"tensors"`
	Parameters    int64        `json:"parameters"`
	BitsPerWeight float64      `json:"bits_per_weight"`
	// A mixture of experts: the parameters one token uses (attention,
	// router, expert_used_count of expert_count experts per layer).
	ActiveParameters int64 `json:"active_parameters,omitempty"`
	Experts          int   `json:"experts,omitempty"`
	ExpertsUsed      int   `json:"experts_used,omitempty"`
}

// familyJSON is the model family of a file (see model.DescribeFamily).
type familyJSON struct {
	Arch      string `json:"architecture"`
	Supported bool   `json:"supported"`
	Pieces    string `json:"pieces,omitempty"`
}

// familyOf reads general.architecture; nil when the file has none.
func familyOf(f *gguf.File) *familyJSON {
	arch, err := f.String("general.architecture")
	if err != nil {
		return nil
	}
	pieces, ok := model.DescribeFamily(arch)
	return &familyJSON{Arch: arch, Supported: ok, Pieces: pieces}
}

type tensorJSON struct {
	Name   string  `json:"name"`
	Type   string  `json:"type"`  // ggml's name, e.g. "q6_K"
	Shape  []int64 `json:"shape"` // ne0 first
	Offset uint64  `json:"offset"`
	Bytes  int64   `json:"bytes"`
}

// jsonMetadata marshals as an object with the keys in file order (a Go
// map would sort them).
type jsonMetadata []gguf.KV

func (m jsonMetadata) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, kv := range m {
		if i > 0 {
			b.WriteByte(',')
		}
		if err := marshalTo(&b, kv.Key); err != nil {
			return nil, err
		}
		b.WriteByte(':')
		var val any
		if a := kv.Value.Array(); a != nil {
			val = jsonArray(a)
		} else {
			val = jsonScalar(kv.Value.Any())
		}
		if err := marshalTo(&b, val); err != nil {
			return nil, fmt.Errorf("metadata %q: %w", kv.Key, err)
		}
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// marshalTo appends v's JSON to b, leaving <, > and & as they are (chat
// templates are full of them; json.Marshal would write \u003c).
func marshalTo(b *bytes.Buffer, v any) error {
	enc := json.NewEncoder(b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return err
	}
	b.Truncate(b.Len() - 1) // Encode ends with a newline
	return nil
}

// jsonScalar maps a scalar to what encoding/json can write: floats that
// JSON cannot hold become strings.
func jsonScalar(x any) any {
	var f float64
	switch v := x.(type) {
	case float32:
		f = float64(v)
	case float64:
		f = v
	default:
		return x
	}
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "+Inf"
	case math.IsInf(f, -1):
		return "-Inf"
	}
	return x // a float32 stays float32, so it prints at float32 precision
}

// jsonArray is a short array's elements, or a long array's summary.
func jsonArray(a *gguf.Array) any {
	n := a.Len()
	if n > jsonArrayMax {
		return struct {
			Type string `json:"type"`
			Elem string `json:"elem"`
			Len  int    `json:"len"`
		}{"array", a.Elem.String(), n}
	}
	out := make([]any, n)
	for i := range out {
		if inner, ok := elemAt(a, i).(*gguf.Array); ok {
			out[i] = jsonArray(inner)
		} else {
			out[i] = jsonScalar(elemAt(a, i))
		}
	}
	return out
}

func writeInfoJSON(w io.Writer, f *gguf.File) error {
	params, size := totals(f)
	info := infoJSON{
		Version:       f.Version,
		Family:        familyOf(f),
		Metadata:      f.KVs(),
		Tensors:       make([]tensorJSON, len(f.Tensors())),
		Parameters:    params,
		BitsPerWeight: bitsPerWeight(params, size),
	}
	if active, experts, used, ok := activeParameters(f); ok {
		info.ActiveParameters, info.Experts, info.ExpertsUsed = active, experts, used
	}
	for i, t := range f.Tensors() {
		info.Tensors[i] = tensorJSON{
			Name:   t.Name,
			Type:   t.Type.String(),
			Shape:  append([]int64{}, t.Shape...), // [] rather than null for a 0-d tensor
			Offset: t.Offset,
			Bytes:  t.Size,
		}
	}
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(info)
}
