package main

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/spf13/pflag"

	"github.com/gollm/gollm/gguf"
	"github.com/gollm/gollm/tokenizer"
)

func init() {
	register(command{name: "tokenize", summary: "turn text into token ids with a model's tokenizer", run: runTokenize})
}

const tokenizeHelp = `Usage: gollm tokenize --model FILE (--text TEXT | --file PATH) [--no-special] [--add-special] [--pieces] [--json]

Tokenizes text with the tokenizer stored in a GGUF file, exactly as
llama.cpp does, and prints the token ids on one line, separated by spaces.

Special tokens written in the text (<|im_start|>, <|im_end|>, ...) become
their single ids; --no-special spells them out as ordinary text instead.
User-defined tokens such as <think> are matched either way, as in llama.cpp.
--add-special adds BOS/EOS where the vocabulary asks for them (Qwen3 asks
for neither).

--pieces prints one token per line instead: the id, a tab, and the token's
text as a Go-quoted string. A token can hold part of a UTF-8 character (an
emoji is often split over several tokens); such bytes show as \xNN escapes.

--json prints exactly one JSON object: {"ids": [...]}, and with --pieces
also "pieces", the text of each token, and "pieces_hex", its exact bytes in
hex. JSON strings cannot hold invalid UTF-8, so in "pieces" each run of
bytes that do not form a valid character is written as one U+FFFD;
"pieces_hex" is exact (the convention of the tokenize.json goldens).

Flags:
`

func runTokenize(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("tokenize", stderr)
	model := fs.String("model", "", "GGUF `file` whose tokenizer to use, or hf:REPO:QUANT (required)")
	text := fs.String("text", "", "the `text` to tokenize")
	file := fs.String("file", "", "read the text to tokenize from this `path`")
	noSpecial := fs.Bool("no-special", false, "treat special token text as ordinary text")
	addSpecial := fs.Bool("add-special", false, "add BOS/EOS if the vocabulary asks for them")
	pieces := fs.Bool("pieces", false, "show each token's text")
	asJSON := fs.Bool("json", false, "print one JSON object")
	fs.Usage = func() { printHelp(fs, tokenizeHelp) }
	if err := parseArgs(fs, args); err != nil {
		return err
	}
	textSet, fileSet := false, false
	fs.Visit(func(f *pflag.Flag) {
		textSet = textSet || f.Name == "text"
		fileSet = fileSet || f.Name == "file"
	})
	switch {
	case *model == "":
		return fmt.Errorf("%w: --model FILE is required (see gollm tokenize -h)", errUsage)
	case textSet == fileSet:
		return fmt.Errorf("%w: give exactly one of --text and --file (see gollm tokenize -h)", errUsage)
	}
	input := *text
	if fileSet {
		data, err := readInput("file", *file)
		if err != nil {
			return err
		}
		input = string(data)
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
	tok, err := tokenizer.Load(f)
	if err != nil {
		return err
	}
	ids := tok.Tokenize(input, *addSpecial, !*noSpecial)

	var out bytes.Buffer
	switch {
	case *asJSON:
		obj := struct {
			IDs       []int32  `json:"ids"`
			Pieces    []string `json:"pieces,omitempty"`
			PiecesHex []string `json:"pieces_hex,omitempty"`
		}{IDs: ids}
		if obj.IDs == nil {
			obj.IDs = []int32{}
		}
		if *pieces {
			obj.Pieces, obj.PiecesHex = []string{}, []string{}
			for _, id := range ids {
				p := tok.TokenPiece(id)
				obj.Pieces = append(obj.Pieces, strings.ToValidUTF8(string(p), "\uFFFD"))
				obj.PiecesHex = append(obj.PiecesHex, hex.EncodeToString(p))
			}
		}
		enc := json.NewEncoder(&out)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(obj); err != nil {
			return err
		}
	case *pieces:
		for _, id := range ids {
			fmt.Fprintf(&out, "%d\t%s\n", id, strconv.Quote(string(tok.TokenPiece(id))))
		}
	default:
		for i, id := range ids {
			if i > 0 {
				out.WriteByte(' ')
			}
			out.WriteString(strconv.Itoa(int(id)))
		}
		out.WriteByte('\n')
	}
	_, err = stdout.Write(out.Bytes())
	return err
}
