//go:build unix

package main

import (
	"encoding/json"
	"regexp"
	"strings"
	"syscall"
	"testing"

	"github.com/gollm/gollm/internal/testdata"
)

// TestGPUNotice is the rule of gpuFlags: a CPU-only run of run, bench,
// logits and serve prints no "no GPU used" notice by default (nor with
// --gpu none); it appears with --gpu auto given explicitly, and with -v.
// CUDA_VISIBLE_DEVICES is emptied so that the children find no GPU even
// on a machine with one (the driver then reports no device).
func TestGPUNotice(t *testing.T) {
	t.Setenv("CUDA_VISIBLE_DEVICES", "")
	model := testdata.Path("models", "qwen3-tiny-q6k.gguf")
	commands := map[string][]string{
		"run":    {"run", "--model", model, "--seq", "1", "--max-tokens", "1", "--prompt", "hi"},
		"logits": {"logits", "--model", model, "--tokens", "1,2", "--top", "1"},
		"bench": {"bench", "--model", model, "--pp", "4", "--tg", "1", "--seqs", "1", "--prompt-len", "2", "--batch-tg", "1",
			"--reps", "1", "--bw-mib", "1", "--threads", "1", "--no-sequential"},
		"serve": {"--model", model, "--parallel", "1", "--ctx", "256"}, // startServe adds "serve"
	}
	for _, name := range []string{"run", "logits", "bench", "serve"} {
		for _, v := range []struct {
			flags  []string
			notice bool
		}{
			{nil, false},
			{[]string{"--gpu", "none"}, false},
			{[]string{"--gpu", "auto"}, true},
			{[]string{"-v"}, true},
			{[]string{"--verbose"}, true},
		} {
			args := append(append([]string(nil), commands[name]...), v.flags...)
			var stderr string
			if name == "serve" {
				c := startServe(t, args...) // returns once it is ready: the load is over
				stderr = strings.Join(c.seen, "\n")
				c.cmd.Process.Signal(syscall.SIGTERM)
				c.cmd.Wait()
			} else {
				r := runChild(t, args...)
				if r.code != 0 {
					t.Fatalf("gollm %s %v: exit %d: %s", name, v.flags, r.code, r.stderr)
				}
				stderr = r.stderr
			}
			if got := strings.Contains(stderr, "no GPU used"); got != v.notice {
				t.Errorf("gollm %s %v: GPU notice shown %v, want %v; stderr:\n%s", name, v.flags, got, v.notice, stderr)
			}
		}
	}
}

// TestRunPiped: with stdout a pipe (as in `gollm run | less`), each answer
// is plain text in a block under a "--- sequence N: prompt ---" header,
// the same text as --json gives. stderr holds nothing at all: no token
// stream (a quoted line per token), no GPU notice, no summary (that is
// -v's).
func TestRunPiped(t *testing.T) {
	args := []string{"run", "--model", testdata.Path("models", "qwen3-tiny-q6k.gguf"), "--seq", "2", "--temp", "0",
		"--max-tokens", "6", "--prompt", "Hi there, how are you?", "--prompt", "How much is\n6+6?"}
	r := runChild(t, args...)
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	j := runChild(t, append(args, "--json")...)
	var rep runReport
	if err := json.Unmarshal([]byte(j.stdout), &rep); err != nil || len(rep.Sequences) != 2 {
		t.Fatalf("--json: %v\n%s", err, j.stdout)
	}
	want := ""
	for i, a := range rep.Sequences {
		if i > 0 {
			want += "\n"
		}
		prompt := []string{"Hi there, how are you?", "How much is 6+6?"}[i] // one line in the header
		want += "--- sequence " + string(rune('1'+i)) + ": " + prompt + " ---\n" + strings.TrimSpace(a.Answer) + "\n[length]\n"
	}
	if r.stdout != want {
		t.Errorf("stdout:\n%s\nwant:\n%s", r.stdout, want)
	}
	if strings.Contains(r.stderr, "[seq ") || regexp.MustCompile(`(?m)^\[.*\] ".*"$`).MatchString(r.stderr) {
		t.Errorf("stderr holds a token stream:\n%s", r.stderr)
	}
	if r.stderr != "" {
		t.Errorf("stderr of a successful piped run: %q, want nothing", r.stderr)
	}
	// -v adds the summary on stderr; stdout is the same.
	v := runChild(t, append(args, "-v")...)
	if v.stdout != r.stdout || !strings.Contains(v.stderr, "── summary") || !strings.Contains(v.stderr, "prompt 2 on sequence 2: ") {
		t.Errorf("-v: stdout %q, stderr lacks the summary:\n%s", v.stdout, v.stderr)
	}
}

// TestWorkersFollowGOMAXPROCS: with no --threads, the CPU backend runs
// GOMAXPROCS workers (as Go sets it from a container's CPU limit), not
// one per core of the machine.
func TestWorkersFollowGOMAXPROCS(t *testing.T) {
	t.Setenv("GOMAXPROCS", "3")
	r := runChild(t, "run", "--model", testdata.Path("models", "qwen3-tiny-q6k.gguf"), "--seq", "1", "--max-tokens", "1",
		"--gpu", "none", "--json")
	var rep runReport
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil || r.code != 0 {
		t.Fatalf("exit %d, %v: %s", r.code, err, r.stderr)
	}
	if !strings.HasPrefix(rep.Backend, "cpu (3 threads") {
		t.Errorf("backend %q with GOMAXPROCS=3, want 3 threads", rep.Backend)
	}
}
