//go:build unix

// The serve tests that run gollm serve as a child process (and set a
// socket option) are Unix-only, like the other child-process tests
// (cli_test.go).

package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gollm/gollm/internal/testdata"
)

// serveChild is a `gollm serve` child process; lines of its stderr come
// through a channel.
type serveChild struct {
	cmd   *exec.Cmd
	lines chan string
	url   string
	seen  []string // the lines waitFor has read
}

func startServe(t *testing.T, args ...string) *serveChild {
	t.Helper()
	cmd := exec.Command(os.Args[0], append([]string{"serve", "--port", "0"}, args...)...)
	cmd.Env = append(os.Environ(), "GOLLM_TEST_CLI=1", fmt.Sprintf("GOLLM_TEST_DATA_MIB=%d", childMemLimitMiB))
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &serveChild{cmd: cmd, lines: make(chan string, 1024)}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			c.lines <- sc.Text()
		}
		close(c.lines)
	}()
	c.url = strings.TrimPrefix(c.waitFor(t, "listening on "), "gollm serve: listening on ")
	c.waitFor(t, "gollm serve: ready")
	return c
}

// waitFor returns the first stderr line containing s (the child's own
// time limit is the test's: a hang fails it by the test timeout).
func (c *serveChild) waitFor(t *testing.T, s string) string {
	t.Helper()
	for line := range c.lines {
		c.seen = append(c.seen, line)
		if strings.Contains(line, s) {
			return line
		}
	}
	t.Fatalf("the server's stderr ended without %q", s)
	return ""
}

// TestServeDrain: SIGTERM while two streamed answers are under way: the
// server says it drains, /health turns 503, a new request gets 503 in
// OpenAI's shape, both answers finish with all their tokens and
// [DONE], and the process exits 0.
func TestServeDrain(t *testing.T) {
	c := startServe(t, "--model", testdata.Path("models", "qwen3-tiny-q6k.gguf"), "--parallel", "2", "--ctx", "4096")
	if code := httpGet(t, c.url+"/health"); code != 200 {
		t.Fatalf("health before the drain: %d", code)
	}
	// Two long answers; the first chunk of each shows it is under way.
	// They are not read further until the checks are done, and their
	// connections have a small receive buffer (4 KiB), so their handlers
	// soon block writing and stay in flight however fast the model is.
	body := `{"messages":[{"role":"user","content":"Tell me a long story."}],"max_tokens":1500,"temperature":0,"stream":true}`
	small := &http.Client{Transport: &http.Transport{DialContext: (&net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		var err error
		rc.Control(func(fd uintptr) { err = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
		return err
	}}).DialContext}}
	var streams []*bufio.Reader
	for range 2 {
		resp, err := small.Post(c.url+"/v1/chat/completions", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		rd := bufio.NewReader(resp.Body)
		if line, err := rd.ReadString('\n'); err != nil || !strings.HasPrefix(line, "data: {") {
			t.Fatalf("first line %q, %v", line, err)
		}
		streams = append(streams, rd)
	}
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	c.waitFor(t, "gollm serve: draining")
	if code := httpGet(t, c.url+"/health"); code != 503 {
		t.Errorf("health while draining: %d", code)
	}
	resp, err := http.Post(c.url+"/v1/chat/completions", "application/json",
		strings.NewReader(`{"messages":[{"role":"user","content":"hi"}],"max_tokens":2}`))
	if err != nil {
		t.Fatal(err)
	}
	refused, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 503 || !strings.Contains(string(refused), `"type":"unavailable_error"`) {
		t.Errorf("a new request while draining: %d %s", resp.StatusCode, refused)
	}
	for i, rd := range streams {
		rest, err := io.ReadAll(rd)
		if err != nil {
			t.Errorf("stream %d: %v", i, err)
		}
		s := string(rest)
		if !strings.HasSuffix(s, "data: [DONE]\n\n") || !strings.Contains(s, `"finish_reason":"length"`) {
			t.Errorf("stream %d did not finish: …%s", i, s[max(0, len(s)-300):])
		}
	}
	done := make(chan error, 1)
	go func() { done <- c.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("exit: %v", err)
		}
	case <-time.After(60 * time.Second): // a hang, not a timing check
		t.Fatal("the server did not exit after draining")
	}
	if c.cmd.ProcessState.ExitCode() != 0 {
		t.Errorf("exit code %d", c.cmd.ProcessState.ExitCode())
	}
}

func httpGet(t *testing.T, url string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// TestServeDemo: without --model, `gollm serve` serves the built-in
// demo model (synthesized into a temporary cache folder), says so, and
// answers a chat request under the demo's name.
func TestServeDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("synthesizes the demo model")
	}
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	t.Setenv("HOME", t.TempDir())
	c := startServe(t, "--parallel", "1", "--ctx", "512")
	resp, err := http.Post(c.url+"/v1/chat/completions", "application/json",
		strings.NewReader(`{"messages":[{"role":"user","content":"How much is 6+6?"}],"max_tokens":4}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"model":"demo-`) || !strings.Contains(string(body), `"completion_tokens":4`) {
		t.Errorf("%d %s", resp.StatusCode, body)
	}
	c.cmd.Process.Signal(syscall.SIGTERM)
	if err := c.cmd.Wait(); err != nil {
		t.Errorf("exit: %v", err)
	}
}
