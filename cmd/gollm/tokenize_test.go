package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/gollm/gollm/internal/testdata"
)

// tokenizeCase is one case of a tokenize.json golden.
type tokenizeCase struct {
	Text      string   `json:"text"`
	Special   []int32  `json:"ids_parse_special"`
	NoSpecial []int32  `json:"ids_no_parse_special"`
	PiecesHex []string `json:"pieces_hex_parse_special"`
}

func tokenizeCases(t *testing.T) []tokenizeCase {
	t.Helper()
	raw, err := os.ReadFile(testdata.Path("vocab", "qwen3.tokenize.json"))
	if err != nil {
		t.Fatal(err)
	}
	var g struct{ Cases []tokenizeCase }
	if err := json.Unmarshal(raw, &g); err != nil {
		t.Fatal(err)
	}
	// A handful covering plain text, special tokens, split UTF-8, the empty
	// string (each CLI run loads the 151936-token vocabulary).
	var picked []tokenizeCase
	for _, c := range g.Cases {
		if c.Text == "Hello world" || c.Text == "" || strings.Contains(c.Text, "Emoji") ||
			strings.HasPrefix(c.Text, "<|im_start|>user") || strings.HasPrefix(c.Text, "</s>") {
			picked = append(picked, c)
		}
	}
	if len(picked) != 5 {
		t.Fatalf("picked %d cases", len(picked))
	}
	return picked
}

func idsLine(ids []int32) string {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = strconv.Itoa(int(id))
	}
	return strings.Join(s, " ") + "\n"
}

func TestTokenizeCommand(t *testing.T) {
	model := testdata.Path("vocab", "qwen3.gguf")
	for _, c := range tokenizeCases(t) {
		// Default output: ids on one line.
		code, out, errOut := run("tokenize", "--model", model, "--text", c.Text)
		if code != 0 || out != idsLine(c.Special) {
			t.Fatalf("%q: code %d, out %q, stderr %q; want %q", c.Text, code, out, errOut, idsLine(c.Special))
		}
		// --no-special, from a file.
		path := filepath.Join(t.TempDir(), "in.txt")
		if err := os.WriteFile(path, []byte(c.Text), 0o644); err != nil {
			t.Fatal(err)
		}
		code, out, _ = run("tokenize", "--model", model, "--file", path, "--no-special")
		if code != 0 || out != idsLine(c.NoSpecial) {
			t.Fatalf("%q --no-special: code %d, out %q", c.Text, code, out)
		}
		// --json --pieces: one object, exact bytes in pieces_hex.
		code, out, _ = run("tokenize", "--model", model, "--text", c.Text, "--json", "--pieces")
		var obj struct {
			IDs       []int32  `json:"ids"`
			Pieces    []string `json:"pieces"`
			PiecesHex []string `json:"pieces_hex"`
		}
		dec := json.NewDecoder(strings.NewReader(out))
		if code != 0 || dec.Decode(&obj) != nil || dec.More() {
			t.Fatalf("%q --json: code %d, out %q", c.Text, code, out)
		}
		if idsLine(obj.IDs) != idsLine(c.Special) || strings.Join(obj.PiecesHex, ",") != strings.Join(c.PiecesHex, ",") ||
			len(obj.Pieces) != len(c.Special) || obj.IDs == nil {
			t.Fatalf("%q --json: %+v", c.Text, obj)
		}
		// --pieces as text: one quoted piece per line.
		code, out, _ = run("tokenize", "--model", model, "--text", c.Text, "--pieces")
		lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
		if code != 0 || (len(c.Special) > 0 && len(lines) != len(c.Special)) {
			t.Fatalf("%q --pieces: code %d, out %q", c.Text, code, out)
		}
	}
	// " 🚀" is three tokens that cut the rocket's four bytes.
	_, out, _ := run("tokenize", "--model", model, "--text", " 🚀", "--pieces")
	if out != "11162\t\" \\xf0\\x9f\"\n248\t\"\\x9a\"\n222\t\"\\x80\"\n" {
		t.Errorf("split character: %q", out)
	}
	_, out, _ = run("tokenize", "--model", model, "--text", " 🚀", "--pieces", "--json")
	if out != "{\"ids\":[11162,248,222],\"pieces\":[\" \uFFFD\",\"\uFFFD\",\"\uFFFD\"],\"pieces_hex\":[\"20f09f\",\"9a\",\"80\"]}\n" {
		t.Errorf("split character JSON: %q", out)
	}
	_, out, _ = run("tokenize", "--model", model, "--text", "", "--json")
	if out != `{"ids":[]}`+"\n" {
		t.Errorf("empty text JSON: %q", out)
	}
}

func TestTokenizeCommandErrors(t *testing.T) {
	model := testdata.Path("vocab", "qwen3.gguf")
	for _, c := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"--text", "x"}, 2, "--model FILE is required"},
		{[]string{"--model", model}, 2, "exactly one of --text and --file"},
		{[]string{"--model", model, "--text", "x", "--file", "y"}, 2, "exactly one of --text and --file"},
		{[]string{"--model", model, "--text", "x", "extra"}, 2, "unexpected argument"},
		{[]string{"--model", model, "--bogus"}, 2, "unknown flag: --bogus"},
		{[]string{"--model", model, "--file", "/nonexistent/file"}, 1, "no such file"},
		{[]string{"--model", "/nonexistent.gguf", "--text", "x"}, 1, "no such file"},
		{[]string{"--model", testdata.Path("chat", "qwen3.json"), "--text", "x"}, 1, "not a GGUF file"},
	} {
		code, out, errOut := run(append([]string{"tokenize"}, c.args...)...)
		if code != c.code || out != "" || !strings.Contains(errOut, c.msg) {
			t.Errorf("%v: code %d, stdout %q, stderr %q; want code %d and %q", c.args, code, out, errOut, c.code, c.msg)
		}
	}
}
