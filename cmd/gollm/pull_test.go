//go:build unix

package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/gollm/gollm/internal/hub/hubtest"
	"github.com/gollm/gollm/internal/testdata"
)

// pullEnv points the cache at a temporary directory and the hub at a
// fake one holding Qwen/Qwen3-Tiny-GGUF (a real tiny model as Q6_K, and
// a Q8_0 that is only bytes).
func pullEnv(t *testing.T) (*hubtest.Hub, []byte) {
	t.Helper()
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	t.Setenv("HOME", t.TempDir())
	model, err := os.ReadFile(testdata.Path("models", "qwen3-tiny-q6k.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	f := hubtest.New(t, "Qwen/Qwen3-Tiny-GGUF")
	f.Add("README.md", []byte("# tiny\n"))
	f.Add("Qwen3-Tiny-Q6_K.gguf", model)
	f.Add("Qwen3-Tiny-Q8_0.gguf", hubtest.GGUFBytes(20_000, 3))
	t.Setenv("GOLLM_HF_ENDPOINT", f.HubServer.URL)
	t.Setenv("HF_TOKEN", "")
	return f, model
}

// TestPullRunOffline: pull prints the path on stdout and plain lines
// (no progress redraws) on a piped stderr; ls lists the model; run uses
// it by hf:REPO:QUANT with the hub gone; an uncached one names gollm
// pull; rm removes it.
func TestPullRunOffline(t *testing.T) {
	f, model := pullEnv(t)
	code, out, errOut := run("pull", "Qwen/Qwen3-Tiny-GGUF:Q6_K")
	if code != 0 {
		t.Fatalf("pull: exit %d: %s", code, errOut)
	}
	path := strings.TrimSpace(out)
	if got, _ := os.ReadFile(path); string(got) != string(model) {
		t.Fatalf("pulled file %s differs", path)
	}
	if filepath.Base(path) != "Qwen3-Tiny-Q6_K.gguf" || !strings.Contains(path, filepath.Join("gollm", "models", "hf", "Qwen", "Qwen3-Tiny-GGUF")) {
		t.Errorf("path %s", path)
	}
	if strings.Contains(errOut, "\r") || !strings.Contains(errOut, "verified") || !strings.Contains(errOut, "gollm run --model hf:Qwen/Qwen3-Tiny-GGUF:Q6_K") {
		t.Errorf("piped stderr:\n%q", errOut)
	}
	code, out, errOut = run("pull", "--quiet", "hf:Qwen/Qwen3-Tiny-GGUF:q6_k")
	if code != 0 || strings.TrimSpace(out) != path || errOut != "" {
		t.Errorf("quiet second pull: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if served, gets := f.Stats(); served != int64(len(model)) || gets != 1 {
		t.Errorf("served %d bytes in %d GETs, want %d in 1", served, gets, len(model))
	}

	code, out, _ = run("ls")
	if code != 0 || !strings.Contains(out, "REPO") || !regexp.MustCompile(`Qwen/Qwen3-Tiny-GGUF +Q6_K +4\.0 MiB +Qwen3-Tiny-Q6_K\.gguf`).MatchString(out) {
		t.Errorf("ls: exit %d:\n%s", code, out)
	}

	f.Close() // offline from here on
	code, out, errOut = run("run", "--model", "hf:Qwen/Qwen3-Tiny-GGUF:Q6_K", "--seq", "1", "--max-tokens", "2", "--temp", "0", "--prompt", "hi")
	if code != 0 || !strings.HasPrefix(out, "--- sequence 1: hi ---\n") { // stdout is not a terminal: the piped form
		t.Fatalf("offline run: exit %d:\n%s\n%s", code, out, errOut)
	}
	// Every command that reads a model takes the reference.
	for _, cmd := range [][]string{
		{"info", "--model", "hf:Qwen/Qwen3-Tiny-GGUF:Q6_K"},
		{"tokenize", "--model", "hf:Qwen/Qwen3-Tiny-GGUF:Q6_K", "--text", "hi"},
		{"logits", "--model", "hf:Qwen/Qwen3-Tiny-GGUF:Q6_K", "--text", "hi", "--top", "2"},
	} {
		if code, out, errOut := run(cmd...); code != 0 || out == "" {
			t.Errorf("offline %s: exit %d:\n%s\n%s", cmd[0], code, out, errOut)
		}
	}
	for _, cmd := range [][]string{
		{"run", "--model", "hf:Qwen/Qwen3-Tiny-GGUF:Q8_0", "--seq", "1"},
		{"serve", "--model", "hf:Qwen/Qwen3-Tiny-GGUF:Q8_0", "--port", "0"},
		{"info", "--model", "hf:Qwen/Qwen3-Tiny-GGUF:Q8_0"},
		{"bench", "--model", "hf:Qwen/Qwen3-Tiny-GGUF:Q8_0"},
	} {
		code, _, errOut = run(cmd...)
		if code != 1 || !strings.Contains(errOut, "get it with: gollm pull Qwen/Qwen3-Tiny-GGUF:Q8_0") {
			t.Errorf("%s of an uncached model: exit %d: %s", cmd[0], code, errOut)
		}
	}

	code, out, errOut = run("rm", "Qwen/Qwen3-Tiny-GGUF:Q6_K")
	if code != 0 || !strings.Contains(out, "removed "+path) {
		t.Fatalf("rm: exit %d: %s%s", code, out, errOut)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("the file is still there: %v", err)
	}
	code, out, errOut = run("ls")
	if code != 0 || out != "" || !strings.Contains(errOut, "no models") {
		t.Errorf("ls after rm: exit %d: %q %q", code, out, errOut)
	}
	if code, _, errOut = run("rm", "Qwen/Qwen3-Tiny-GGUF:Q6_K"); code != 1 || !strings.Contains(errOut, "not in the model cache") {
		t.Errorf("rm twice: exit %d: %s", code, errOut)
	}
}

// TestPullErrors: usage errors are exit 2 with one line; a quantization
// the repository lacks, a wrong checksum and a hub that is gone are exit
// 1 naming what there is.
func TestPullErrors(t *testing.T) {
	f, _ := pullEnv(t)
	for _, args := range [][]string{
		{"pull"},
		{"pull", "a/b", "c/d"},
		{"pull", "../x"},
		{"pull", "a/b:../../x"},
		{"pull", "--sha256", "zz", "a/b"},
		{"pull", "--endpoint", "ftp://x", "a/b"},
		{"pull", "--nope", "a/b"},
		{"pull", "https://h/x.bin"},
		{"ls", "extra"},
		{"rm"},
		{"rm", "a"},
		{"run", "--model", "hf:bad"},
		{"serve", "--model", "hf:a/b/c"},
	} {
		code, out, errOut := run(args...)
		if code != 2 || out != "" || strings.Count(errOut, "\n") != 1 {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want exit 2 and one line", args, code, out, errOut)
		}
	}
	code, _, errOut := run("pull", "Qwen/Qwen3-Tiny-GGUF:Q2_K")
	if code != 1 || !strings.Contains(errOut, "available: Q6_K, Q8_0") || strings.Count(errOut, "\n") != 2 {
		t.Errorf("unknown quantization: exit %d: %s", code, errOut)
	}
	f.BadSHA["Qwen3-Tiny-Q8_0.gguf"] = strings.Repeat("0", 64)
	code, out, errOut := run("pull", "--quiet", "Qwen/Qwen3-Tiny-GGUF:Q8_0")
	if code != 1 || out != "" || !strings.Contains(errOut, "checksum mismatch") {
		t.Errorf("wrong checksum: exit %d: %q %s", code, out, errOut)
	}
	if code, out, _ := run("ls"); out != "" {
		t.Errorf("ls after a mismatch: exit %d: %s", code, out)
	}
	f.Close()
	if code, _, errOut := run("pull", "--quiet", "Qwen/Qwen3-Tiny-GGUF:Q8_0"); code != 1 || !strings.Contains(errOut, "connection refused") {
		t.Errorf("hub gone: exit %d: %s", code, errOut)
	}
}

// TestProgressLine: the terminal progress line redraws in place (\r,
// erase line) and ends with a newline; the last update always draws.
func TestProgressLine(t *testing.T) {
	var b strings.Builder
	p := &progressLine{w: &b, name: "a/b:Q8_0"}
	p.update(2048, 4096)
	p.update(4096, 4096)
	p.end()
	want := "\r\x1b[2Kpulling a/b:Q8_0:  50.0% of 4.0 KiB\r\x1b[2Kpulling a/b:Q8_0: 100.0% of 4.0 KiB\n"
	if b.String() != want {
		t.Errorf("got %q\nwant %q", b.String(), want)
	}
	if sizeText(5027783488) != "4.7 GiB" || sizeText(1000) != "1000 B" {
		t.Errorf("sizeText: %s, %s", sizeText(5027783488), sizeText(1000))
	}
}
