package kernels

import (
	"bytes"
	"os"
	"testing"

	"github.com/gollm/gollm/kernels/internal/amxgen"
)

// TestAMXGenerated checks that amx_amd64.s is exactly what its generator,
// kernels/internal/amxgen, writes: the file is never edited by hand.
func TestAMXGenerated(t *testing.T) {
	const file = "amx_amd64.s"
	got, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	want := amxgen.Source()
	if bytes.Equal(got, want) {
		return
	}
	gl, wl := bytes.Split(got, []byte("\n")), bytes.Split(want, []byte("\n"))
	i := 0
	for i < len(gl) && i < len(wl) && bytes.Equal(gl[i], wl[i]) {
		i++
	}
	line := func(ls [][]byte) string {
		if i < len(ls) {
			return string(ls[i])
		}
		return "(end of file)"
	}
	t.Fatalf("kernels/%s is not what kernels/internal/amxgen generates: first difference at line %d\n"+
		"     file: %q\ngenerated: %q\n"+
		"Edit kernels/internal/amxgen (never the .s file) and run: go generate ./kernels",
		file, i+1, line(gl), line(wl))
}
