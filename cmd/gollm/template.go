package main

import (
	"fmt"
	"io"

	"github.com/gollm/gollm/chat"
	"github.com/gollm/gollm/gguf"
)

func init() {
	register(command{name: "template", summary: "render a conversation with a model's chat template", run: runTemplate})
}

const templateHelp = `Usage: gollm template --model FILE --input REQUEST.json

Renders a conversation with the chat template stored in a GGUF file
(tokenizer.chat_template), exactly as Hugging Face's apply_chat_template
does, and writes the prompt text to stdout with nothing added (no final
newline unless the template writes one).

The request is JSON in the shape of the chat golden cases:

  {"messages": [{"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Hi!"}],
   "add_generation_prompt": true,
   "options": {"enable_thinking": false, "tools": [...]}}

Messages may carry "reasoning_content" and "tool_calls"
({"type": "function", "function": {"name": ..., "arguments": {...}}}).
Each key of "options" becomes a template variable ("tools" is the tool
list). bos_token and eos_token are the texts of the file's BOS and EOS
tokens. A template that fails (raise_exception, or a Python type error such
as adding a dict to a string) is an error.

Flags:
`

func runTemplate(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("template", stderr)
	model := fs.String("model", "", "GGUF `file` whose chat template to use, or hf:REPO:QUANT (required)")
	input := fs.String("input", "", "`path` of the JSON request (required)")
	fs.Usage = func() { printHelp(fs, templateHelp) }
	if err := parseArgs(fs, args); err != nil {
		return err
	}
	switch {
	case *model == "":
		return fmt.Errorf("%w: --model FILE is required (see gollm template -h)", errUsage)
	case *input == "":
		return fmt.Errorf("%w: --input REQUEST.json is required (see gollm template -h)", errUsage)
	}
	data, err := readInput("input", *input)
	if err != nil {
		return err
	}
	req, err := chat.ParseRequest(data)
	if err != nil {
		return fmt.Errorf("%s: %w", *input, err)
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
	tpl, err := chat.FromGGUF(f)
	if err != nil {
		return err
	}
	text, err := tpl.Render(req.Messages, req.Options)
	if err != nil {
		return err
	}
	_, err = io.WriteString(stdout, text)
	return err
}
