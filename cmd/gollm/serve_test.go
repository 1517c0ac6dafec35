package main

import (
	"os"
	"strings"
	"testing"

	"github.com/gollm/gollm/internal/testdata"
)

// TestServeBadFlags: every bad flag is one line on stderr and exit code 2,
// before anything is loaded or bound.
func TestServeBadFlags(t *testing.T) {
	model := testdata.Path("models", "qwen3-tiny-q6k.gguf")
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"--port", "70000"}, "--port must be between 0 and 65535"},
		{[]string{"--parallel", "0"}, "--parallel must be between 1"},
		{[]string{"--queue", "-1"}, "--queue must be between 0"},
		{[]string{"--ctx", "-5"}, "--ctx must be between 0"},
		{[]string{"--timeout", "-1s"}, "--timeout must be between 0"},
		{[]string{"--drain-timeout", "100h"}, "--drain-timeout must be between 0"},
		{[]string{"--timeout", "soon"}, "invalid value"},
		{[]string{"--reasoning-format", "html"}, "--reasoning-format is deepseek"},
		{[]string{"--log-format", "xml"}, "--log-format is text or json"},
		{[]string{"--api-key", ""}, "--api-key is empty"},
		{[]string{"--api-key", "two words"}, "white space"},
		{[]string{"--host", ""}, "--host is empty"},
		{[]string{"--kv-type", "q4"}, "--kv-type is f16 or f32"},
		{[]string{"--threads", "-3"}, "--threads must be between"},
		{[]string{"--max-body-mib", "0"}, "--max-body-mib must be between 1"},
		{[]string{"stray"}, "unexpected argument"},
		{[]string{"--bogus"}, "unknown flag: --bogus"},
	}
	for _, c := range cases {
		var out, errb strings.Builder
		code := runMain(append([]string{"serve", "--model", model}, c.args...), &out, &errb)
		if code != 2 || !strings.Contains(errb.String(), c.want) || strings.Count(errb.String(), "\n") != 1 {
			t.Errorf("serve %v: exit %d, stderr %q; want 2 and %q", c.args, code, errb.String(), c.want)
		}
	}
}

// TestServeKeys: --api-key is repeatable, @FILE reads one key per line
// (blank lines and # comments skipped), GOLLM_API_KEY adds one; a file
// without a key is a usage error.
func TestServeKeys(t *testing.T) {
	dir := t.TempDir()
	file := dir + "/keys"
	if err := os.WriteFile(file, []byte("# the team's keys\nk-file-1\n\n  k-file-2  \n"), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := dir + "/empty"
	os.WriteFile(empty, []byte("# none\n\n"), 0o600)
	t.Setenv("GOLLM_API_KEY", "k-env")
	f := serveFlags{host: "127.0.0.1", port: 8080, parallel: 1, batchSize: 512, kvType: "f16", reasoning: "deepseek",
		logFormat: "text", maxBodyMiB: 8, keys: multiFlag{"k-flag", "@" + file}}
	keys, err := f.check()
	if err != nil || strings.Join(keys, ",") != "k-flag,k-file-1,k-file-2,k-env" {
		t.Errorf("keys %q, %v", keys, err)
	}
	f.keys = multiFlag{"@" + empty}
	if _, err := f.check(); err == nil || !strings.Contains(err.Error(), "no key") {
		t.Errorf("a file without keys: %v", err)
	}
}
