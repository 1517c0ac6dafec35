package main

import (
	"bytes"
	"encoding/json"
	"runtime"
	"strings"
	"testing"

	"github.com/gollm/gollm/kernels"
)

// TestVersion: `gollm version` and `gollm --version` print the same
// report; --json has the kernels in use and the Go version.
func TestVersion(t *testing.T) {
	run := func(args ...string) string {
		var out, errb bytes.Buffer
		if code := runMain(args, &out, &errb); code != 0 || errb.Len() != 0 {
			t.Fatalf("gollm %s: exit %d, stderr %q", strings.Join(args, " "), code, errb.String())
		}
		return out.String()
	}
	text := run("version")
	if !strings.HasPrefix(text, "gollm ") || !strings.Contains(text, "kernels:  "+kernels.Active().Name) || !strings.Contains(text, runtime.Version()) {
		t.Errorf("gollm version:\n%s", text)
	}
	if got := run("--version"); got != text {
		t.Errorf("gollm --version:\n%s\nwant the same as gollm version:\n%s", got, text)
	}
	var r versionReport
	if err := json.Unmarshal([]byte(run("version", "--json")), &r); err != nil {
		t.Fatal(err)
	}
	if r.Kernels != kernels.Active().Name || r.Go != runtime.Version() || len(r.Available) == 0 || r.Platform != runtime.GOOS+"/"+runtime.GOARCH {
		t.Errorf("--json: %+v", r)
	}
	var out, errb bytes.Buffer
	if code := runMain([]string{"version", "extra"}, &out, &errb); code != 2 {
		t.Errorf("a stray argument: exit %d, want 2 (%s)", code, errb.String())
	}
}
