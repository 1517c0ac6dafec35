package cuda

import (
	_ "embed"
	"strings"
)

// The kernels, compiled from kernels.cu to PTX for compute capability 8.0
// and committed, so that building gollm needs no CUDA toolkit. After
// changing kernels.cu, run `go generate ./backend/cuda` (needs nvcc: on
// Debian, the non-free nvidia-cuda-toolkit package) and commit both files.
//
// -fmad=false: no fused multiply-add, so that the float operations round
// like the CPU reference (see kernels.cu, "Numerics").

//go:generate nvcc -ptx -arch=compute_80 -fmad=false -o kernels_sm80.ptx kernels.cu

//go:embed kernels_sm80.ptx
var ptxSource string

// ptxTarget describes the embedded PTX from its header, e.g.
// "PTX 7.8 for sm_80".
func ptxTarget() string {
	version, target := "?", "?"
	for _, line := range strings.Split(ptxSource, "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == ".version" {
			version = f[1]
		}
		if len(f) >= 2 && f[0] == ".target" {
			target = strings.TrimSuffix(f[1], ",")
		}
	}
	return "PTX " + version + " for " + target
}
