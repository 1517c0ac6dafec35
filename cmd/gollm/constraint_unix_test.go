//go:build unix

package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gollm/gollm/internal/testdata"
)

// TestChatConstrained: gollm chat --grammar, with piped lines, answers
// every turn inside the grammar; a bad grammar exits 2 before reading
// anything.
func TestChatConstrained(t *testing.T) {
	gbnf := filepath.Join(t.TempDir(), "yesno.gbnf")
	if err := os.WriteFile(gbnf, []byte("root ::= (\"yes\" | \"no\") \"!\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	chat := func(stdin string, args ...string) (int, string, string) {
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, os.Args[0], append([]string{"chat", "--model", testdata.Path("models", "qwen3-tiny-q6k.gguf"), "--temp", "1", "--seed", "3"}, args...)...)
		cmd.Env = append(os.Environ(), "GOLLM_TEST_CLI=1")
		cmd.Stdin = strings.NewReader(stdin)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		cmd.Run()
		if ctx.Err() != nil {
			t.Fatalf("gollm chat: still running after 90 s")
		}
		return cmd.ProcessState.ExitCode(), out.String(), errb.String()
	}
	code, out, errOut := chat("Yes or no?\nAnd now?\n", "--grammar", gbnf)
	if code != 0 || strings.Count(out, "yes!")+strings.Count(out, "no!") != 2 {
		t.Errorf("exit %d; stdout %q; stderr %q: want two answers, each yes! or no!", code, out, errOut)
	}
	code, _, errOut = chat("hi\n", "--grammar", gbnf, "--json-object")
	if code != 2 || !strings.Contains(errOut, "exclude each other") {
		t.Errorf("two constraints: exit %d, stderr %q", code, errOut)
	}
}
