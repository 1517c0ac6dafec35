package gguf

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/gollm/gollm/internal/testdata"
	"github.com/gollm/gollm/tensor"
)

// sentinels are the errors a parse failure must wrap (at least one).
var sentinels = []error{
	ErrBadMagic, ErrBigEndian, ErrVersion, ErrTruncated, ErrCountTooLarge, ErrNameTooLong,
	ErrEmptyName, ErrBadValueType, ErrBadBool, ErrNestingTooDeep, ErrDuplicateKey,
	ErrDuplicateTensor, ErrBadAlignment, ErrTooManyDims, ErrBadShape, ErrOverflow,
	ErrUnknownType, ErrBlockMismatch, ErrMisaligned, ErrOutOfBounds, ErrOverlap,
}

// FuzzOpen fuzzes the parser that Open runs on the mapped file. Parsing
// may not panic or allocate without bound; every error must wrap a
// sentinel; and a file that parses must survive being rewritten by the
// Writer and parsed again unchanged.
//
// The body calls Parse on the bytes rather than writing each input to a
// file for Open, which would cost 2.5 times the executions;
// TestOpenMatchesParse checks that Open and Parse agree on every seed.
//
// Run it with go test -fuzz=FuzzOpen -fuzztime=2m ./gguf. On a busy
// 2-core machine the fuzzer may spend long stretches minimizing each new
// input (up to 60 s each); -fuzzminimizetime=1s keeps it fuzzing.
func FuzzOpen(f *testing.F) {
	for _, seed := range fuzzSeeds(f) {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		parsed, err := Parse(data)
		if err != nil {
			wrapped := false
			for _, s := range sentinels {
				wrapped = wrapped || errors.Is(err, s)
			}
			if !wrapped {
				t.Fatalf("error %q wraps no sentinel", err)
			}
			return
		}
		checkParsed(t, parsed, data)

		// Rewrite with the Writer and parse again: the Writer must accept
		// whatever the reader accepted, and the content must not change.
		w := NewWriter()
		for _, kv := range parsed.KVs() {
			if err := w.Set(kv.Key, kv.Value); err != nil {
				t.Fatalf("Writer refused key %q: %v", kv.Key, err)
			}
		}
		for _, ti := range parsed.Tensors() {
			tt, _ := parsed.Tensor(ti.Name)
			if err := w.AddTensor(ti.Name, ti.Type, ti.Shape, tt.Data); err != nil {
				t.Fatalf("Writer refused tensor %q: %v", ti.Name, err)
			}
		}
		var buf bytes.Buffer
		if _, err := w.WriteTo(&buf); err != nil {
			t.Fatalf("Writer: %v", err)
		}
		again, err := Parse(buf.Bytes())
		if err != nil {
			t.Fatalf("the Writer's output does not parse: %v", err)
		}
		if !sameContent(t, parsed, again) {
			t.Fatal("content changed through the Writer")
		}
	})
}

// TestOpenMatchesParse writes every fuzz seed, and every input saved in
// testdata/fuzz/FuzzOpen, to a file and checks that Open gives what Parse
// gives: the same error (after the path prefix), or the same content.
func TestOpenMatchesParse(t *testing.T) {
	inputs := fuzzSeeds(t)
	saved, _ := filepath.Glob(filepath.Join("testdata", "fuzz", "FuzzOpen", "*"))
	for _, p := range saved {
		if data, err := readCorpusFile(p); err == nil {
			inputs = append(inputs, data)
		} else {
			t.Errorf("%s: %v", p, err)
		}
	}
	path := filepath.Join(t.TempDir(), "input.gguf")
	for i, data := range inputs {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		parsed, perr := Parse(data)
		opened, oerr := Open(path)
		switch {
		case (perr == nil) != (oerr == nil):
			t.Errorf("input %d: Parse error %v, Open error %v", i, perr, oerr)
		case perr != nil:
			if got := strings.TrimPrefix(oerr.Error(), path+": "); got != perr.Error() {
				t.Errorf("input %d: Open error %q, Parse error %q", i, got, perr)
			}
		default:
			if !sameContent(t, parsed, opened) {
				t.Errorf("input %d: Parse and Open disagree", i)
			}
			opened.Close()
		}
	}
}

// readCorpusFile decodes a file of the fuzzer's corpus format holding
// one []byte value ("go test fuzz v1" then []byte("...")).
func readCorpusFile(path string) ([]byte, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	lines := strings.SplitN(strings.TrimSpace(string(raw)), "\n", 2)
	if len(lines) != 2 || lines[0] != "go test fuzz v1" {
		return nil, fmt.Errorf("not a fuzz corpus file")
	}
	body := strings.TrimSuffix(strings.TrimPrefix(lines[1], "[]byte("), ")")
	s, err := strconv.Unquote(body)
	if err != nil {
		return nil, err
	}
	return []byte(s), nil
}

// checkParsed checks the invariants of a File that parsed.
func checkParsed(t *testing.T, f *File, data []byte) {
	t.Helper()
	if f.Alignment < 1 || f.Alignment&(f.Alignment-1) != 0 || f.DataOffset > int64(len(data)) || f.DataOffset < 0 {
		t.Fatalf("alignment %d, data offset %d of %d bytes", f.Alignment, f.DataOffset, len(data))
	}
	for _, kv := range f.KVs() {
		// The accessors must not panic on any value.
		f.String(kv.Key)
		f.Int(kv.Key)
		f.Uint(kv.Key)
		f.Float(kv.Key)
		f.Bool(kv.Key)
		f.Strings(kv.Key)
		f.Ints(kv.Key)
		f.Floats(kv.Key)
		_ = kv.Value.Any()
	}
	for _, ti := range f.Tensors() {
		tt, err := f.Tensor(ti.Name)
		if err != nil {
			t.Fatal(err)
		}
		if int64(len(tt.Data)) != ti.Size || ti.Size <= 0 || len(ti.Shape) > MaxDims {
			t.Fatalf("%+v: %d data bytes", ti, len(tt.Data))
		}
		if size, err := tensor.RowBytes(ti.Type, ti.Elements()); err != nil || size != ti.Size {
			t.Fatalf("%+v: size %d by tensor.RowBytes (%v)", ti, size, err)
		}
	}
}

// sameContent reports whether two files hold the same metadata (bit for
// bit, so NaNs compare equal) and the same tensors and tensor bytes.
func sameContent(t *testing.T, a, b *File) bool {
	t.Helper()
	if len(a.KVs()) != len(b.KVs()) || len(a.Tensors()) != len(b.Tensors()) || a.Alignment != b.Alignment {
		return false
	}
	for i, kv := range a.KVs() {
		other := b.KVs()[i]
		if kv.Key != other.Key || kv.Value.Type != other.Value.Type || !bytes.Equal(encodeValue(kv.Value), encodeValue(other.Value)) {
			t.Logf("key %d: %q %v vs %q %v", i, kv.Key, kv.Value.Any(), other.Key, other.Value.Any())
			return false
		}
	}
	for i, ti := range a.Tensors() {
		oi := b.Tensors()[i]
		if ti.Name != oi.Name || ti.Type != oi.Type || ti.Size != oi.Size || len(ti.Shape) != len(oi.Shape) {
			return false
		}
		for j := range ti.Shape {
			if ti.Shape[j] != oi.Shape[j] {
				return false
			}
		}
		x, _ := a.Tensor(ti.Name)
		y, _ := b.Tensor(ti.Name)
		if !bytes.Equal(x.Data, y.Data) {
			return false
		}
	}
	return true
}

func encodeValue(v Value) []byte {
	var buf bytes.Buffer
	e := encoder{w: &buf}
	e.value(v)
	return buf.Bytes()
}

// fuzzSeeds are the starting corpus: the hand-made valid and corrupt
// files, a Writer file with every value type, the first 4 KiB of each
// fixture model and vocab file, and "mini" copies of the fixtures
// (arrays cut to 16 elements, one tensor of each type cut to its first
// row) that are valid files of a few KiB with the fixtures' real metadata.
func fuzzSeeds(tb testing.TB) [][]byte {
	seeds := [][]byte{validRaw()}
	for _, c := range corruptCases() {
		if len(c.data) <= 4<<10 { // not the 64 KiB key: big seeds slow the fuzzer down
			seeds = append(seeds, c.data)
		}
	}
	w := NewWriter()
	for _, kv := range everyValue() {
		w.Set(kv.Key, kv.Value)
	}
	w.AddTensor("t", tensor.Q8_0, []int64{32}, make([]byte, 34))
	var buf bytes.Buffer
	if _, err := w.WriteTo(&buf); err != nil {
		tb.Fatal(err)
	}
	seeds = append(seeds, buf.Bytes())

	for _, name := range []string{"models/qwen3-tiny-q6k.gguf", "models/qwen3-tiny-mixed.gguf", "vocab/qwen3.gguf", "vocab/deepseek-r1-qwen3.gguf"} {
		f, err := Open(testdata.Path(strings.Split(name, "/")...))
		if err != nil {
			tb.Fatal(err)
		}
		header := f.data[:min(f.DataOffset, 4<<10)] // small inputs fuzz faster
		mini := miniCopy(tb, f)
		if _, err := Parse(mini); err != nil {
			tb.Fatalf("mini copy of %s: %v", name, err)
		}
		seeds = append(seeds, bytes.Clone(header), mini)
		f.Close()
	}
	return seeds
}

// miniCopy rewrites f small: arrays keep their first 16 elements, and of
// the tensors only the first of each type is kept, cut to its first row.
func miniCopy(tb testing.TB, f *File) []byte {
	w := NewWriter()
	for _, kv := range f.KVs() {
		v := kv.Value
		if a := v.Array(); a != nil && a.Len() > 16 {
			switch s := a.Values.(type) {
			case []string:
				v = ArrayOf(s[:16])
			case []int32:
				v = ArrayOf(s[:16])
			}
		}
		if err := w.Set(kv.Key, v); err != nil {
			tb.Fatal(err)
		}
	}
	seen := map[tensor.DType]bool{}
	for _, ti := range f.Tensors() {
		if seen[ti.Type] {
			continue
		}
		seen[ti.Type] = true
		row, err := tensor.RowBytes(ti.Type, ti.Shape[0])
		if err != nil {
			tb.Fatal(err)
		}
		shape := append([]int64{ti.Shape[0]}, make([]int64, len(ti.Shape)-1)...)
		for i := 1; i < len(shape); i++ {
			shape[i] = 1
		}
		t, _ := f.Tensor(ti.Name)
		if err := w.AddTensor(ti.Name, ti.Type, shape, bytes.Clone(t.Data[:row])); err != nil {
			tb.Fatal(err)
		}
	}
	var buf bytes.Buffer
	if _, err := w.WriteTo(&buf); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}
