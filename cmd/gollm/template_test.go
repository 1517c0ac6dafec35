package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gollm/gollm/internal/testdata"
)

// TestTemplateCommand renders every chat golden case through the CLI with
// the template stored in the matching vocab file.
func TestTemplateCommand(t *testing.T) {
	for _, c := range []struct{ golden, model string }{
		{"qwen3.json", "qwen3.gguf"},
		{"deepseek-r1-qwen3.json", "deepseek-r1-qwen3.gguf"},
	} {
		raw, err := os.ReadFile(testdata.Path("chat", c.golden))
		if err != nil {
			t.Fatal(err)
		}
		var g struct{ Cases []json.RawMessage }
		if err := json.Unmarshal(raw, &g); err != nil {
			t.Fatal(err)
		}
		model := testdata.Path("vocab", c.model)
		dir := t.TempDir()
		for i, caseJSON := range g.Cases {
			var want struct {
				Name     string
				Expected *string
				Error    *string
			}
			if err := json.Unmarshal(caseJSON, &want); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, "case.json")
			if err := os.WriteFile(path, caseJSON, 0o644); err != nil {
				t.Fatal(err)
			}
			code, out, errOut := run("template", "--model", model, "--input", path)
			switch {
			case want.Error != nil:
				if code != 1 || out != "" || !strings.Contains(errOut, "can only concatenate str") {
					t.Errorf("%s case %d (%s): code %d, out %q, stderr %q", c.golden, i, want.Name, code, out, errOut)
				}
			case code != 0 || out != *want.Expected:
				t.Errorf("%s case %d (%s): code %d, stderr %q\n got  %q\n want %q", c.golden, i, want.Name, code, errOut, out, *want.Expected)
			}
		}
	}
}

func TestTemplateCommandErrors(t *testing.T) {
	model := testdata.Path("vocab", "qwen3.gguf")
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, []byte(`{"messages": "hi"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	good := filepath.Join(dir, "good.json")
	if err := os.WriteFile(good, []byte(`{"messages": []}`), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"--input", good}, 2, "--model FILE is required"},
		{[]string{"--model", model}, 2, "--input REQUEST.json is required"},
		{[]string{"--model", model, "--input", good, "x"}, 2, "unexpected argument"},
		{[]string{"--model", model, "--input", bad}, 1, `"messages" must be a list`},
		{[]string{"--model", model, "--input", "/nonexistent.json"}, 1, "no such file"},
		// An empty conversation: Qwen3's template reads messages[0] and fails.
		{[]string{"--model", model, "--input", good}, 1, "template"},
	} {
		code, out, errOut := run(append([]string{"template"}, c.args...)...)
		if code != c.code || out != "" || !strings.Contains(errOut, c.msg) {
			t.Errorf("%v: code %d, stdout %q, stderr %q; want code %d and %q", c.args, code, out, errOut, c.code, c.msg)
		}
	}
}
