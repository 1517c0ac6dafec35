package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/gollm/gollm/backend/cuda"
	"github.com/gollm/gollm/kernels"
)

func init() {
	register(command{name: "version", summary: "show gollm's version, build and the kernels and GPU it finds", run: runVersion})
}

const versionHelp = `Usage: gollm version [--json]    (also: gollm --version)

Prints what a bug report needs: the module version and the commit it was
built from, the Go version and platform, the kernel implementation this
CPU gets (and the others it could run), and the GPUs the CUDA driver
reports, if any.

`

// versionReport is what `gollm version --json` prints.
type versionReport struct {
	Version   string   `json:"version"`          // module version: "v0.3.0", or "(devel)" for a build from a checkout
	Commit    string   `json:"commit,omitempty"` // vcs.revision
	Modified  bool     `json:"modified"`         // built from a checkout with uncommitted changes
	Time      string   `json:"commit_time,omitempty"`
	Go        string   `json:"go"`
	Platform  string   `json:"platform"`          // GOOS/GOARCH
	CPUs      int      `json:"cpus"`              // GOMAXPROCS: the workers gollm starts by default
	Kernels   string   `json:"kernels"`           // the implementation in use
	Available []string `json:"kernels_available"` // every implementation this CPU can run, worst to best
	GPU       []string `json:"gpus"`              // as the driver reports them
	GPUNote   string   `json:"gpu_note,omitempty"`
}

func runVersion(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("version", stderr)
	asJSON := fs.Bool("json", false, "print one JSON object")
	fs.Usage = func() { printHelp(fs, versionHelp) }
	if err := parseArgs(fs, args); err != nil {
		return err
	}
	r := buildReport()
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	}
	commit := r.Commit
	if commit == "" {
		commit = "unknown"
	} else if r.Modified {
		commit += " (modified)"
	}
	fmt.Fprintf(stdout, "gollm %s\n", r.Version)
	fmt.Fprintf(stdout, "commit:   %s\n", commit)
	fmt.Fprintf(stdout, "go:       %s %s, %d CPUs\n", r.Go, r.Platform, r.CPUs)
	fmt.Fprintf(stdout, "kernels:  %s (available: %s)\n", r.Kernels, strings.Join(r.Available, ", "))
	if len(r.GPU) == 0 {
		fmt.Fprintf(stdout, "gpu:      none (%s)\n", r.GPUNote)
	} else {
		fmt.Fprintf(stdout, "gpu:      %s\n", strings.Join(r.GPU, "; "))
		if r.GPUNote != "" {
			fmt.Fprintf(stdout, "          %s\n", r.GPUNote)
		}
	}
	return nil
}

// buildReport gathers the version from the binary's build information
// (`go install …@v0.3.0` records v0.3.0; a build in a checkout records
// "(devel)" and the VCS revision), and probes the CPU and the GPU.
func buildReport() versionReport {
	r := versionReport{Version: "(devel)", Go: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH,
		CPUs: runtime.GOMAXPROCS(0), Kernels: kernels.Active().Name}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if v := bi.Main.Version; v != "" {
			r.Version = v
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				r.Commit = s.Value
			case "vcs.modified":
				r.Modified = s.Value == "true"
			case "vcs.time":
				r.Time = s.Value
			}
		}
	}
	for _, im := range kernels.Implementations() {
		r.Available = append(r.Available, im.Name)
	}
	info, err := cuda.Probe()
	switch {
	case errors.Is(err, cuda.ErrNoDriver):
		r.GPUNote = "no CUDA driver"
	case err != nil:
		r.GPUNote = err.Error()
	default:
		for _, d := range info.Devices {
			s := d.String()
			if !d.Supported() {
				s += " (too old for gollm's kernels: compute capability 8.0 or later)"
			}
			r.GPU = append(r.GPU, s)
		}
		r.GPUNote = "CUDA driver " + info.Driver()
	}
	return r
}
