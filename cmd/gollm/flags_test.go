package main

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/gollm/gollm/internal/testdata"
)

// TestHelpFormat: every command's --help (and -h) is one format: the
// usage line, an example, then "Flags:" with the flags as pflag lists them
// (--long, the short form where there is one, defaults); an unknown flag
// is one line on stderr and exit code 2.
func TestHelpFormat(t *testing.T) {
	for name := range commands {
		t.Run(name, func(t *testing.T) {
			for _, h := range []string{"--help", "-h"} {
				var out, errb bytes.Buffer
				if code := runMain([]string{name, h}, &out, &errb); code != 0 {
					t.Fatalf("%s %s: exit %d", name, h, code)
				}
				help := errb.String()
				if !strings.HasPrefix(help, "Usage: gollm "+name) || !strings.Contains(help, "\nExample") ||
					!strings.Contains(help, "\nFlags:\n") || strings.Count(help, "\nFlags:") != 1 || strings.Contains(help, "Usage of") {
					t.Errorf("%s %s:\n%s", name, h, help)
				}
				flags := help[strings.Index(help, "\nFlags:\n"):]
				for _, line := range strings.Split(strings.TrimSpace(flags), "\n")[1:] {
					if line == "" || strings.HasPrefix(line, "llama.cpp's names") {
						break
					}
					if !strings.HasPrefix(strings.TrimSpace(line), "--") && !strings.HasPrefix(strings.TrimSpace(line), "-") {
						continue // a wrapped usage line
					}
					if !strings.Contains(line, "--") {
						t.Errorf("%s: flag line without a --long name: %q", name, line)
					}
				}
			}
			var out, errb bytes.Buffer
			code := runMain([]string{name, "--no-such-flag"}, &out, &errb)
			if lines := strings.Split(strings.TrimSpace(errb.String()), "\n"); code != 2 || len(lines) != 1 ||
				!strings.Contains(lines[0], "unknown flag: --no-such-flag") {
				t.Errorf("%s --no-such-flag: exit %d, stderr %q", name, code, errb.String())
			}
		})
	}
}

// TestAliases: every short form and llama.cpp name maps to its long flag
// (checked on a flag set with every long flag they name), values are never
// rewritten, and Go-style single-dash long names still work.
func TestAliases(t *testing.T) {
	fs := newFlags("test", &bytes.Buffer{})
	got := map[string]*string{}
	for _, long := range shortFlags {
		if got[long] == nil {
			got[long] = fs.String(long, "", "")
		}
	}
	for _, long := range longAliases {
		if got[long] == nil {
			got[long] = fs.String(long, "", "")
		}
	}
	check := func(args []string, long, want string) {
		t.Helper()
		for _, v := range got {
			*v = ""
		}
		if err := fs.Parse(expandArgs(fs, args)); err != nil {
			t.Fatalf("%q: %v", args, err)
		}
		if *got[long] != want {
			t.Errorf("%q: --%s = %q, want %q", args, long, *got[long], want)
		}
	}
	for short, long := range shortFlags {
		check([]string{"-" + short, "x1"}, long, "x1")
		check([]string{"-" + short + "=x2"}, long, "x2")
	}
	for alias, long := range longAliases {
		check([]string{"--" + alias, "y"}, long, "y")
	}
	check([]string{"-model", "z"}, "model", "z")        // Go-style, as before
	check([]string{"-p", "-m"}, "prompt", "-m")         // a value is a value
	check([]string{"--prompt", "-np"}, "prompt", "-np") // even one that looks like an alias
	check([]string{"-p", "a", "--", "-m"}, "prompt", "a")
	if fs.NArg() != 1 || fs.Arg(0) != "-m" {
		t.Errorf("after --: %q", fs.Args())
	}
	// run's --seq is llama.cpp's --parallel and -np.
	run := newFlags("run", &bytes.Buffer{})
	seq := run.Int("seq", 2, "")
	if err := run.Parse(expandArgs(run, []string{"-np", "5"})); err != nil || *seq != 5 {
		t.Errorf("run -np 5: seq %d, %v", *seq, err)
	}
	if f := run.Lookup("parallel"); f == nil || f.Name != "seq" {
		t.Errorf("run --parallel is not --seq: %+v", f)
	}
}

// TestRunShortForms: the same run with llama.cpp's short forms and with
// gollm's long flags gives the same answers.
func TestRunShortForms(t *testing.T) {
	model := testdata.Path("models", "qwen3-tiny-q6k.gguf")
	run := func(args ...string) runReport {
		var out, errb bytes.Buffer
		if code := runMain(args, &out, &errb); code != 0 {
			t.Fatalf("gollm %s: exit %d: %s", strings.Join(args, " "), code, errb.String())
		}
		var r runReport
		if err := json.Unmarshal(out.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		return r
	}
	short := run("run", "-m", model, "-np", "2", "-n", "3", "-c", "256", "-t", "1", "-s", "7", "-sys", "Be brief.", "-p", "hi", "-p", "yo", "--json")
	long := run("run", "--model", model, "--seq", "2", "--max-tokens", "3", "--ctx", "256", "--threads", "1", "--seed", "7", "--system", "Be brief.", "--prompt", "hi", "--prompt", "yo", "--json")
	ids := func(r runReport) [][]int32 {
		var out [][]int32
		for _, a := range r.Sequences {
			out = append(out, append(a.PromptIDs, a.GeneratedIDs...))
		}
		return out
	}
	if len(short.Sequences) != 2 || !reflect.DeepEqual(ids(short), ids(long)) || short.Seed != 7 {
		t.Errorf("short forms: %+v\nlong flags: %+v", short.Sequences, long.Sequences)
	}
}
