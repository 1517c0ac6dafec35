package main

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"

	"github.com/gollm/gollm"
	"github.com/gollm/gollm/sample"
)

func init() {
	register(command{name: "logits", summary: "print the next-token logits of every position (a study and debugging tool)", run: logitsCmd})
}

const logitsHelp = `Usage: gollm logits --model FILE (--tokens 1,2,3 | --text TEXT) [--top K] [--all] [--out F.f32] [--json]

Evaluates the tokens (or the text, tokenized as gollm tokenize does) in
one sequence and prints the top K (token id, logit) pairs of the last
position, or writes raw float32 logits (--out; every position with --all)
for comparison with other engines (llama.cpp's llama-eval-callback,
Hugging Face).

Example:
  gollm logits -m qwen3-0.6b.gguf --text "The capital of France is" --top 5
`

func logitsCmd(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("logits", stderr)
	fs.Usage = func() { printHelp(fs, logitsHelp) }
	modelFlag := fs.String("model", "", "GGUF model file, or hf:REPO:QUANT (required)")
	tokens := fs.String("tokens", "", "comma-separated token ids, used as they are (no BOS, no template)")
	text := fs.String("text", "", "text to tokenize (special tokens parsed; BOS added if the model asks for it)")
	top := fs.Int("top", 10, "how many of the best (id, logit) pairs to print per position")
	all := fs.Bool("all", false, "with --out: write every position's logits, not just the last")
	out := fs.String("out", "", "write raw float32 little-endian logits to this file")
	jsonOut := fs.Bool("json", false, "print {\"positions\": [{\"index\", \"top\": [{\"id\", \"logit\"}]}]}")
	threads := threadsFlag(fs)
	exact := fs.Bool("exact", false, "compute in float32 instead of 8-bit activations")
	kvType := fs.String("kv-type", "f32", "KV cache element type: f32 or f16")
	var yarn yarnFlags
	yarn.register(fs)
	var gpu gpuFlags
	gpu.register(fs)
	if err := parseArgs(fs, args); err != nil {
		return err
	}
	if *modelFlag == "" {
		return fmt.Errorf("%w: --model is required", errUsage)
	}
	if (*tokens == "") == (*text == "") {
		return fmt.Errorf("%w: give exactly one of --tokens and --text", errUsage)
	}
	if err := checkRange("top", int64(*top), 0, maxTokensFlag); err != nil {
		return err
	}
	if err := checkThreads(*threads); err != nil {
		return err
	}
	if err := checkKVType(*kvType); err != nil {
		return err
	}
	rope, err := yarn.scaling()
	if err != nil {
		return err
	}
	mo := gollm.ModelOptions{Threads: *threads, Exact: *exact, RopeScaling: rope}
	if err := gpu.apply(&mo, stderr); err != nil {
		return err
	}
	path, err := modelPath(*modelFlag)
	if err != nil {
		return err
	}
	m, err := gollm.LoadModel(path, mo)
	if err != nil {
		return err
	}
	defer m.Close()
	var ids []int32
	if *tokens != "" {
		for _, f := range strings.Split(*tokens, ",") {
			v, err := strconv.ParseInt(strings.TrimSpace(f), 10, 32)
			if err != nil {
				return fmt.Errorf("%w: --tokens: %s is not a token id", errUsage, quote(f))
			}
			ids = append(ids, int32(v))
		}
	} else {
		ids = m.Tokenize(*text, true)
	}
	if len(ids) == 0 {
		return fmt.Errorf("%w: no tokens to evaluate", errUsage)
	}
	rows, err := gollm.Logits(context.Background(), m, ids, gollm.LogitsOptions{KVType: *kvType})
	if err != nil {
		return err
	}
	if *out != "" {
		sel := rows
		if !*all {
			sel = rows[len(rows)-1:]
		}
		if err := writeF32(*out, sel); err != nil {
			return err
		}
	}
	type entry struct {
		ID    int32   `json:"id"`
		Logit float32 `json:"logit"`
	}
	type position struct {
		Index int     `json:"index"`
		Token int32   `json:"token"`
		Top   []entry `json:"top"`
	}
	var positions []position
	for i, row := range rows {
		p := position{Index: i, Token: ids[i], Top: []entry{}}
		for _, e := range sample.TopK(row, *top) {
			p.Top = append(p.Top, entry{e.ID, e.Logit})
		}
		positions = append(positions, p)
	}
	if *jsonOut {
		enc := json.NewEncoder(stdout)
		enc.SetEscapeHTML(false)
		return enc.Encode(map[string]any{"positions": positions})
	}
	tok := m.Tokenizer()
	for _, p := range positions {
		fmt.Fprintf(stdout, "position %d, token %d %q:", p.Index, p.Token, tok.TokenPiece(p.Token))
		for _, e := range p.Top {
			fmt.Fprintf(stdout, "  %d %q %.4f", e.ID, tok.TokenPiece(e.ID), e.Logit)
		}
		fmt.Fprintln(stdout)
	}
	return nil
}

// writeF32 writes rows of float32 logits, position-major, little-endian.
func writeF32(path string, rows [][]float32) error {
	var buf []byte
	for _, r := range rows {
		for _, v := range r {
			buf = binary.LittleEndian.AppendUint32(buf, math.Float32bits(v))
		}
	}
	return os.WriteFile(path, buf, 0o644)
}
