// Command gollm runs Llama 3.x, Mistral, Qwen2.5, Qwen3 and Qwen3-MoE GGUF models on
// the CPU, and shows what happens inside: `gollm run` answers several chats in one batch,
// `gollm info` lists a file, `gollm logits` prints next-token scores, and
// `gollm bench` measures speed; `gollm pull` downloads a model from Hugging
// Face, which `--model hf:REPO:QUANT` then names. Run `gollm help` for the
// list.
//
// Exit codes, in every command: 0 on success (and for -h); 2 for a usage
// error — an unknown command or flag, a stray argument, a value out of
// range — reported in one line on stderr, before anything is loaded; 1
// for any other failure (a file that cannot be read, a model the machine
// cannot hold), also one line. Model files must be regular files (a
// symlink to one is fine); text inputs (--file, --input, --prompts-file)
// are read up to 64 MiB, from pipes too. Errors quote at most 80
// characters of what was given, with its length.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sort"

	"github.com/spf13/pflag"
)

// command is one subcommand. Each lives in its own file and registers
// itself from init, so files can be added without touching this one.
type command struct {
	name    string
	summary string
	run     func(args []string, stdout, stderr io.Writer) error
}

var commands = map[string]command{}

func register(c command) { commands[c.name] = c }

// errUsage marks an error caused by bad arguments: exit code 2. (The
// message says where the help is; the flag list is not printed.)
var errUsage = errors.New("usage")

func main() { os.Exit(runMain(os.Args[1:], os.Stdout, os.Stderr)) }

// runMain is main without the process exit, so tests can drive the CLI.
func runMain(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(stdout)
		return 0
	}
	if args[0] == "--version" || args[0] == "-version" {
		args = append([]string{"version"}, args[1:]...)
	}
	c, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "gollm: unknown command %q\n\n", args[0])
		usage(stderr)
		return 2
	}
	err := c.run(args[1:], stdout, stderr)
	switch {
	case err == nil:
		return 0
	case errors.Is(err, pflag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		fmt.Fprintf(stderr, "gollm %s: %v\n", c.name, err)
		return 2
	default:
		fmt.Fprintf(stderr, "gollm %s: %v\n", c.name, err)
		return 1
	}
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "gollm: a pure-Go LLM inference engine for GGUF models")
	fmt.Fprintln(w, "\nUsage: gollm <command> [flags]\n\nCommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(w, "\nRun `gollm <command> -h` for a command's flags.")
}
