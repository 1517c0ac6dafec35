//go:build unix

package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/gollm/gollm/internal/testdata"
)

// transcript collects what a child writes to its pseudo-terminal, and
// lets the test wait for a piece of it.
type transcript struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	changed chan struct{} // closed and replaced at every write
	done    chan struct{} // closed when the terminal is closed
}

func newTranscript(f *os.File) *transcript {
	tr := &transcript{changed: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(tr.done)
		p := make([]byte, 4096)
		for {
			n, err := f.Read(p)
			tr.mu.Lock()
			tr.buf.Write(p[:n])
			close(tr.changed)
			tr.changed = make(chan struct{})
			tr.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	return tr
}

// waitFor waits until the transcript, from offset from on, contains s,
// and returns the offset just past it. The deadline only keeps a broken
// chat from hanging the test.
func (tr *transcript) waitFor(t *testing.T, ctx context.Context, from int, s string) int {
	t.Helper()
	for {
		tr.mu.Lock()
		text, changed := tr.buf.String(), tr.changed
		tr.mu.Unlock()
		if i := strings.Index(text[min(from, len(text)):], s); i >= 0 {
			return min(from, len(text)) + i + len(s)
		}
		select {
		case <-changed:
		case <-tr.done:
			t.Fatalf("the chat ended before %q; transcript:\n%s", s, visible(text, true))
		case <-ctx.Done():
			t.Fatalf("no %q after 90 s; transcript:\n%s", s, visible(text, true))
		}
	}
}

// TestChatTerminal runs gollm chat under a pseudo-terminal as a person
// would: a turn that Ctrl-C stops half way (the chat goes on), a whole
// turn, /save, /reset, /load, /stats, and Ctrl-D to end.
func TestChatTerminal(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	saved := filepath.Join(t.TempDir(), "conversation.json")
	cmd := exec.CommandContext(ctx, os.Args[0], "chat", "--model", testdata.Path("models", "qwen3-tiny-q6k.gguf"),
		"--temp", "0", "--max-tokens", "2000", "--ctx", "8192")
	cmd.Env = append(os.Environ(), "GOLLM_TEST_CLI=1")
	tty, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 40, Cols: 120})
	if err != nil {
		t.Fatal(err)
	}
	defer tty.Close()
	tr := newTranscript(tty)
	type_ := func(s string) {
		if _, err := tty.Write([]byte(s)); err != nil {
			t.Fatal(err)
		}
	}

	at := tr.waitFor(t, ctx, 0, "> ")
	// A 2000-token answer: Ctrl-C as soon as its first text shows.
	type_("Tell me a long story\r")
	at = tr.waitFor(t, ctx, at, "\n") // the end of the echoed line
	at = tr.waitFor(t, ctx, at, " ")  // the answer has begun
	type_("\x03")
	at = tr.waitFor(t, ctx, at, "[stopped]")
	at = tr.waitFor(t, ctx, at, "> ")

	type_("Hello again\r")
	at = tr.waitFor(t, ctx, at, "[length]")
	at = tr.waitFor(t, ctx, at, "> ")
	type_("/save " + saved + "\r")
	at = tr.waitFor(t, ctx, at, "(saved 2 messages to ")
	type_("/reset\r")
	at = tr.waitFor(t, ctx, at, "(conversation cleared)")
	type_("/stats\r")
	at = tr.waitFor(t, ctx, at, "(conversation: 0 messages")
	type_("/load " + saved + "\r")
	at = tr.waitFor(t, ctx, at, "(loaded 2 messages from ")
	type_("/stats\r")
	at = tr.waitFor(t, ctx, at, "(conversation: 2 messages")
	tr.waitFor(t, ctx, at, "> ")
	type_("\x04") // Ctrl-D on an empty line
	if err := cmd.Wait(); err != nil {
		t.Fatalf("gollm chat: %v; transcript:\n%s", err, visible(tr.buf.String(), true))
	}

	data, err := os.ReadFile(saved)
	if err != nil {
		t.Fatal(err)
	}
	msgs, err := loadConversation(saved)
	if err != nil || len(msgs) != 2 || msgs[0].Role != "user" || msgs[0].Content != "Hello again" || msgs[1].Role != "assistant" {
		t.Errorf("saved conversation (%v):\n%s", err, data)
	}
	if strings.Contains(string(data), "long story") {
		t.Errorf("the stopped turn was saved:\n%s", data)
	}
}

// TestProgressOnTerminal: loading a model draws a progress bar on a
// terminal, and nothing when stderr is a pipe or with --quiet.
func TestProgressOnTerminal(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	args := []string{"run", "-m", testdata.Path("models", "qwen3-tiny-mixed.gguf"), "-n", "1", "-p", "hi", "--seq", "1"}
	onTerminal := func(extra ...string) string {
		cmd := exec.CommandContext(ctx, os.Args[0], append(args, extra...)...)
		cmd.Env = append(os.Environ(), "GOLLM_TEST_CLI=1")
		tty, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 40, Cols: 120})
		if err != nil {
			t.Fatal(err)
		}
		defer tty.Close()
		tr := newTranscript(tty)
		if err := cmd.Wait(); err != nil {
			t.Fatalf("gollm run: %v", err)
		}
		tty.Close()
		<-tr.done
		tr.mu.Lock()
		defer tr.mu.Unlock()
		return tr.buf.String()
	}
	if out := onTerminal(); !strings.Contains(out, "loading") || !strings.Contains(out, "%") {
		t.Errorf("no loading bar on a terminal:\n%s", visible(out, true))
	}
	if out := onTerminal("--quiet"); strings.Contains(out, "loading") {
		t.Errorf("a bar with --quiet:\n%s", visible(out, true))
	}
	if r := runChild(t, args...); r.code != 0 || strings.Contains(r.stderr, "loading") || strings.Contains(r.stdout, "loading") {
		t.Errorf("piped: exit %d, stderr %q", r.code, r.stderr)
	}
}

// TestChatEveryFamily: gollm chat, its input piped, holds a two-turn
// conversation with each family's fixture.
func TestChatEveryFamily(t *testing.T) {
	for _, name := range []string{"qwen3-tiny-q6k", "llama-tiny-q6k", "qwen2-tiny-q6k", "qwen3moe-tiny-q6k"} {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, os.Args[0], "chat", "-m", testdata.Path("models", name+".gguf"), "--temp", "0", "-n", "4")
			cmd.Env = append(os.Environ(), "GOLLM_TEST_CLI=1")
			cmd.Stdin = strings.NewReader("Hello\nAnd again\n/stats\n")
			out, err := cmd.CombinedOutput()
			if err != nil || strings.Count(string(out), "[length]") != 2 || !strings.Contains(string(out), "(conversation: 4 messages") {
				t.Errorf("gollm chat: %v\n%s", err, out)
			}
		})
	}
}
