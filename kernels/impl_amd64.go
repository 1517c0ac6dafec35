//go:build !purego

package kernels

// archImpls lists the SIMD implementations this amd64 CPU can run, worst
// to best.
func archImpls() []*Impl { return nil }
