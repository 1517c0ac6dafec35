package main

import (
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/spf13/pflag"
)

// Flags, GNU style, with the names llama.cpp users type from habit.
//
// Every command parses its flags with github.com/spf13/pflag: --name VALUE
// or --name=VALUE, and -h/--help. On top of it sit two small tables:
//
//   - shortFlags: one-letter short forms (-m FILE is --model FILE) and
//     llama.cpp's multi-letter single-dash names (-np 4 is --parallel 4,
//     -ngl is --gpu-layers, -sys is --system). pflag's short forms are one
//     letter, so args are rewritten to the long form before pflag sees
//     them (expandArgs); a command gets a short form only for a flag it
//     has.
//   - longAliases: llama.cpp's long names for flags gollm names otherwise
//     (--n-predict is --max-tokens, --ctx-size is --ctx, and in run
//     --parallel is --seq), resolved by pflag's normalize hook.
//
// A worked example: `gollm run -m q.gguf -np 4 -n 64 -c 2048 -p hi` is
// rewritten to `--model q.gguf --parallel 4 --max-tokens 64 --ctx 2048
// --prompt hi`, and pflag normalizes --parallel to run's --seq. Values are
// never rewritten: in `-p -m` the second token is the prompt "-m".
//
// Go-style single-dash long names from earlier versions (-model F) still
// work: a single-dash word that names one of the command's flags is read
// as that flag.

// shortFlags maps a single-dash form to the long flag it stands for.
var shortFlags = map[string]string{
	"m":   "model",
	"p":   "prompt",
	"n":   "max-tokens",
	"c":   "ctx",
	"t":   "threads",
	"s":   "seed",
	"v":   "verbose",
	"np":  "parallel",
	"ngl": "gpu-layers",
	"sys": "system",
	"b":   "batch-size",
	"o":   "out",
	"f":   "file",
}

// longAliases maps llama.cpp's long names to gollm's.
var longAliases = map[string]string{
	"n-predict":     "max-tokens",
	"ctx-size":      "ctx",
	"system-prompt": "system",
	"n-gpu-layers":  "gpu-layers",
	"batch":         "batch-size",
	"predict":       "max-tokens",
}

// newFlags makes a command's flag set: errors are returned, not printed
// (parseArgs words them), flags list in the order they are defined.
func newFlags(name string, stderr io.Writer) *pflag.FlagSet {
	fs := pflag.NewFlagSet("gollm "+name, pflag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.SortFlags = false
	fs.SetNormalizeFunc(func(_ *pflag.FlagSet, name string) pflag.NormalizedName {
		if long, ok := longAliases[name]; ok {
			return pflag.NormalizedName(long)
		}
		// run's sequence count is --seq; llama.cpp's (and gollm
		// serve's) is --parallel.
		if name == "parallel" && fs.Name() == "gollm run" {
			return "seq"
		}
		return pflag.NormalizedName(name)
	})
	return fs
}

// expandArgs rewrites short and single-dash forms to --long forms (see the
// comment at the top), leaving values and everything after "--" alone.
func expandArgs(fs *pflag.FlagSet, args []string) []string {
	out := make([]string, 0, len(args))
	takesValue := false // the previous token was a flag whose value follows
	for i, a := range args {
		if takesValue {
			out = append(out, a)
			takesValue = false
			continue
		}
		if a == "--" {
			return append(out, args[i:]...)
		}
		var name, value string
		hasValue := false
		switch {
		case strings.HasPrefix(a, "--"):
			name, value, hasValue = strings.Cut(a[2:], "=")
		case len(a) > 1 && a[0] == '-':
			name, value, hasValue = strings.Cut(a[1:], "=")
			long := name
			if l, ok := shortFlags[name]; ok && fs.Lookup(l) != nil {
				long = l
			}
			if fs.Lookup(long) != nil && (len(name) > 1 || long != name) {
				a = "--" + long
				if hasValue {
					a += "=" + value
				}
				name = long
			}
		default:
			out = append(out, a)
			continue
		}
		out = append(out, a)
		if f := fs.Lookup(name); f != nil && !hasValue && f.NoOptDefVal == "" {
			takesValue = true
		}
	}
	return out
}

// showShortForms marks, for the help, the short forms a command has; they
// are parsed by expandArgs, not by pflag (which takes one letter only),
// so they are set on the flags after definition, for display.
func showShortForms(fs *pflag.FlagSet) {
	for short, long := range shortFlags {
		if f := fs.Lookup(long); f != nil && len(short) == 1 && f.Shorthand == "" {
			f.Shorthand = short
		}
	}
}

// examples are the example lines of the commands whose help text has
// none of its own.
var examples = map[string]string{
	"gollm run":      "gollm run -m DeepSeek-R1-0528-Qwen3-8B-Q6_K.gguf --seq 2 -p \"What is 2+2?\" -p \"Name a color.\"",
	"gollm info":     "gollm info -m qwen3-0.6b.gguf",
	"gollm tokenize": "gollm tokenize -m qwen3-0.6b.gguf --text \"Hello, world\" --pieces",
	"gollm template": "gollm template -m qwen3-0.6b.gguf --input conversation.json",
	"gollm synth":    "gollm synth --preset qwen3-1.7b --type q4_k_m -o qwen3-1.7b-q4_k_m.gguf",
	"gollm bench":    "gollm bench -m qwen3-0.6b.gguf --seqs 1,2,4,8",
	"gollm serve":    "gollm serve -m Qwen3-8B-Q4_K_M.gguf -np 8 --port 8080",
	"gollm version":  "gollm version --json",
}

// printHelp is every command's help: its text (usage line, what it does,
// an example), then "Flags:" and the flags with their short forms and
// defaults, as pflag lays them out.
func printHelp(fs *pflag.FlagSet, text string) {
	showShortForms(fs)
	w := fs.Output()
	text = strings.TrimRight(strings.TrimSuffix(strings.TrimRight(text, "\n"), "Flags:"), "\n")
	if ex, ok := examples[fs.Name()]; ok && !strings.Contains(text, "\nExample") {
		text += "\n\nExample:\n  " + ex
	}
	fmt.Fprint(w, text+"\n\nFlags:\n")
	fmt.Fprint(w, fs.FlagUsages())
	var multi []string
	for short, long := range shortFlags {
		if f := fs.Lookup(long); len(short) > 1 && f != nil {
			multi = append(multi, "-"+short+" is --"+f.Name)
		}
	}
	slices.Sort(multi)
	if len(multi) > 0 {
		fmt.Fprintf(w, "\nllama.cpp's names work too: %s.\n", strings.Join(multi, ", "))
	}
}
