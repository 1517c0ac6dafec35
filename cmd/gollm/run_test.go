package main

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/gollm/gollm/internal/testdata"
)

func runJSON(t *testing.T, args ...string) runReport {
	t.Helper()
	code, out, errOut := run(args...)
	if code != 0 {
		t.Fatalf("gollm %s: exit %d: %s", strings.Join(args, " "), code, errOut)
	}
	var rep runReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("not one JSON object: %v\n%s", err, out)
	}
	return rep
}

// TestRunBatchInvariance: `gollm run --seq 4 --temp 0 --json` gives every
// sequence the same generated ids as its prompt run alone with --seq 1.
func TestRunBatchInvariance(t *testing.T) {
	prompts := []string{"Hi there, how are you?", "How much is 6+6?", "Name three colors.", "Tell me a story about a fox."}
	for _, name := range []string{"qwen3-tiny-q6k", "qwen3-tiny-mixed"} {
		model := testdata.Path("models", name+".gguf")
		args := []string{"run", "--model", model, "--seq", "4", "--temp", "0", "--json", "--max-tokens", "12", "--ctx", "2048"}
		for _, p := range prompts {
			args = append(args, "--prompt", p)
		}
		rep := runJSON(t, args...)
		if len(rep.Sequences) != 4 || rep.Steps == 0 || rep.MeanPerStep <= 1 {
			t.Fatalf("%s: report %+v", name, rep)
		}
		for i, p := range prompts {
			alone := runJSON(t, "run", "--model", model, "--seq", "1", "--temp", "0", "--json", "--max-tokens", "12", "--prompt", p)
			got, want := rep.Sequences[i], alone.Sequences[0]
			if got.Prompt != p || !slices.Equal(got.GeneratedIDs, want.GeneratedIDs) || !slices.Equal(got.PromptIDs, want.PromptIDs) {
				t.Errorf("%s prompt %d: batched %v, alone %v", name, i, got.GeneratedIDs, want.GeneratedIDs)
			}
			if len(got.GeneratedIDs) != 12 || got.TokensPerSec <= 0 {
				t.Errorf("%s prompt %d: %d tokens at %g tokens/s", name, i, len(got.GeneratedIDs), got.TokensPerSec)
			}
		}
	}
}

// TestRunDemo is the README's main command: `gollm run --seq 2` with the
// built-in demo model (synthesized into a temporary cache folder).
func TestRunDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("synthesizes the demo model")
	}
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	t.Setenv("HOME", t.TempDir())
	code, out, errOut := run("run", "--seq", "2", "--max-tokens", "16", "-v")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	// stdout is not a terminal here: the answers as blocks, the summary
	// on stderr (with -v), no token stream.
	for _, want := range []string{"--- sequence 1: Hi there, how are you? ---\n", "--- sequence 2: How much is 6+6? ---\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	for _, want := range []string{"random weights", "total: 32 tokens generated", "steps"} {
		if !strings.Contains(strings.ToLower(errOut), want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut)
		}
	}
	if strings.Contains(errOut, "[seq 1]") {
		t.Errorf("stderr streams tokens into a non-terminal:\n%s", errOut)
	}
}

// TestRunTrace: --trace prints each step's composition and KV blocks.
func TestRunTrace(t *testing.T) {
	model := testdata.Path("models", "qwen3-tiny-q6k.gguf")
	code, _, errOut := run("run", "--model", model, "--seq", "2", "--max-tokens", "10", "--temp", "0", "--trace", "--batch-size", "16")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	// The two chat prompts (about 35 tokens each) do not fit in one
	// 16-token step: some step must carry work of both sequences, later
	// ones one generated token of each, and none more than 16. (Which
	// sequence's prompt reaches the scheduler first depends on goroutine
	// timing.)
	both, gen := false, false
	for _, line := range strings.Split(errOut, "\n") {
		if !strings.HasPrefix(line, "step ") {
			continue
		}
		if strings.Contains(line, "seq 1: ") && strings.Contains(line, "seq 2: ") && strings.Contains(line, "(prompt ") {
			both = true
		}
		if strings.Contains(line, "seq 1: 1 (gen)") && strings.Contains(line, "seq 2: 1 (gen)") {
			gen = true
		}
		var step, tokens int
		if _, err := fmt.Sscanf(line, "step %d %d tokens", &step, &tokens); err != nil || tokens > 16 {
			t.Errorf("bad step line (or over the budget): %q", line)
		}
		if !strings.Contains(line, "blocks free") {
			t.Errorf("step line without KV blocks: %q", line)
		}
	}
	if !both || !gen {
		t.Errorf("expected a step with both prompts and one with both generating:\n%s", errOut)
	}
}

func TestRunErrors(t *testing.T) {
	model := testdata.Path("models", "qwen3-tiny-q6k.gguf")
	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"run", "--model", model, "--seq", "0"}, 2, "--seq"},
		{[]string{"run", "--model", model, "--think", "maybe"}, 2, "--think"},
		{[]string{"run", "--model", model, "--top-p", "2"}, 2, "top-p"},
		{[]string{"run", "--model", "/nonexistent.gguf"}, 1, "no such file"},
		{[]string{"run", "--model", model, "--ctx", "8", "--max-tokens", "2"}, 1, "context size is 8"},
		{[]string{"logits", "--model", model}, 2, "exactly one"},
		{[]string{"logits", "--model", model, "--tokens", "1,x"}, 2, "not a token id"},
		{[]string{"logits", "--model", model, "--tokens", "1,99999"}, 1, "outside the vocabulary"},
	} {
		code, _, errOut := run(tc.args...)
		if code != tc.code || !strings.Contains(errOut, tc.msg) || strings.Contains(errOut, "goroutine") {
			t.Errorf("%v: exit %d, stderr %q; want exit %d mentioning %q", tc.args, code, errOut, tc.code, tc.msg)
		}
	}
}

// TestLogitsCLI checks `gollm logits` against the llama.cpp golden of the
// first prompt of model A: the printed top-K, --json, and --out/--all.
func TestLogitsCLI(t *testing.T) {
	var golden struct {
		Results []struct {
			IDs        []int32        `json:"ids"`
			TopKPerPos [][][2]float64 `json:"topk_per_position"`
		} `json:"results"`
	}
	data, err := os.ReadFile(testdata.Path("qwen3-tiny-q6k", "forward.json"))
	if err != nil {
		t.Fatal(err)
	}
	json.Unmarshal(data, &golden)
	g := golden.Results[0]
	var ids []string
	for _, id := range g.IDs {
		ids = append(ids, strconv.Itoa(int(id)))
	}
	model := testdata.Path("models", "qwen3-tiny-q6k.gguf")
	out := filepath.Join(t.TempDir(), "l.f32")
	code, stdout, errOut := run("logits", "--model", model, "--tokens", strings.Join(ids, ","), "--top", "5", "--json", "--out", out, "--all")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var res struct {
		Positions []struct {
			Index int `json:"index"`
			Top   []struct {
				ID    int32   `json:"id"`
				Logit float32 `json:"logit"`
			} `json:"top"`
		} `json:"positions"`
	}
	if err := json.Unmarshal([]byte(stdout), &res); err != nil {
		t.Fatal(err)
	}
	if len(res.Positions) != len(g.IDs) {
		t.Fatalf("%d positions, want %d", len(res.Positions), len(g.IDs))
	}
	// Position 0 matches llama.cpp to rounding (see model's tolerances).
	for k, e := range res.Positions[0].Top {
		ref := g.TopKPerPos[0][k]
		if e.ID != int32(ref[0]) || math.Abs(float64(e.Logit)-ref[1]) > 1e-4 {
			t.Errorf("position 0 rank %d: (%d, %g), llama.cpp (%g, %g)", k, e.ID, e.Logit, ref[0], ref[1])
		}
	}
	raw, err := os.ReadFile(out)
	if err != nil || len(raw) != len(g.IDs)*4096*4 {
		t.Fatalf("--out --all wrote %d bytes (%v), want %d", len(raw), err, len(g.IDs)*4096*4)
	}
	first := math.Float32frombits(binary.LittleEndian.Uint32(raw[4*int(res.Positions[0].Top[0].ID):]))
	if first != res.Positions[0].Top[0].Logit {
		t.Errorf("raw file and JSON disagree: %g vs %g", first, res.Positions[0].Top[0].Logit)
	}
}

func TestTailFitting(t *testing.T) {
	for _, tc := range []struct {
		in   string
		cols int
		want string
	}{
		{"hello", 10, "hello"},
		{"hello world", 6, "…world"},
		{"日本語テキスト", 7, "…キスト"},
		{"ab日本", 4, "…本"},
	} {
		if got := tailFitting(tc.in, tc.cols); got != tc.want || displayWidth(got) > tc.cols {
			t.Errorf("tailFitting(%q, %d) = %q (width %d), want %q", tc.in, tc.cols, got, displayWidth(got), tc.want)
		}
	}
}

// TestRunConstrained: --json-schema, --grammar and --json-object
// constrain every answer (two sequences, sampled at temperature 1), and
// bad constraint flags exit 2 with the grammar's error.
func TestRunConstrained(t *testing.T) {
	model := testdata.Path("models", "qwen3-tiny-q6k.gguf")
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	schema := write("color.json", `{"type": "object", "properties": {"color": {"enum": ["red", "green", "blue"]}, "n": {"type": "integer", "minimum": 0, "maximum": 9}},
		"required": ["color", "n"], "additionalProperties": false}`)
	gbnf := write("yesno.gbnf", "root ::= (\"yes\" | \"no\") \"!\"\n")
	base := []string{"run", "--model", model, "--seq", "2", "--temp", "1", "--seed", "5", "--json", "--max-tokens", "64",
		"--prompt", "Pick a color.", "--prompt", "Yes or no?"}
	rep := runJSON(t, append(base, "--json-schema", schema)...)
	for _, a := range rep.Sequences {
		var v struct {
			Color string `json:"color"`
			N     *int   `json:"n"`
		}
		dec := json.NewDecoder(strings.NewReader(a.Answer))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&v); err != nil || !slices.Contains([]string{"red", "green", "blue"}, v.Color) || v.N == nil || *v.N > 9 || a.Finish != "eog" {
			t.Errorf("--json-schema: %q (%s): %v", a.Answer, a.Finish, err)
		}
	}
	rep = runJSON(t, append(base, "--grammar", gbnf)...)
	for _, a := range rep.Sequences {
		if a.Answer != "yes!" && a.Answer != "no!" || a.Finish != "eog" {
			t.Errorf("--grammar: %q (%s)", a.Answer, a.Finish)
		}
	}
	rep = runJSON(t, append(base, "--json-object", "--max-tokens", "8")...)
	for _, a := range rep.Sequences {
		if !strings.HasPrefix(a.Answer, "{") {
			t.Errorf("--json-object: %q", a.Answer)
		}
	}
	badSchema := write("bad.json", `{"type": "object", "properties": {"n": {"type": "integer", "multipleOf": 2}}}`)
	badGBNF := write("bad.gbnf", "root ::= \"a\" (b\n")
	for _, tc := range []struct {
		args []string
		msg  string
	}{
		{[]string{"--json-schema", schema, "--grammar", gbnf}, "exclude each other"},
		{[]string{"--json-object", "--grammar", gbnf}, "exclude each other"},
		{[]string{"--json-schema", badSchema}, `schema at /properties/n: "multipleOf"`},
		{[]string{"--grammar", badGBNF}, "grammar:2:1: expected ) to close the group opened at 1:14"},
		{[]string{"--grammar", filepath.Join(dir, "missing.gbnf")}, "no such file"},
		{[]string{"--json-schema", dir}, "is a directory"},
	} {
		code, out, errOut := run(append([]string{"run", "--model", model}, tc.args...)...)
		if code != 2 || out != "" || !strings.Contains(errOut, tc.msg) {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want exit 2 mentioning %q", tc.args, code, out, errOut, tc.msg)
		}
	}
}
