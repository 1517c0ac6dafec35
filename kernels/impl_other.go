//go:build purego || !amd64

package kernels

// archImpls: no SIMD implementations on this platform (or with the purego
// build tag): only the plain-Go reference runs.
func archImpls() []*Impl { return nil }
