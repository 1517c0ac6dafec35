//go:build purego || !amd64

package kernels

// StreamRead reads every byte of b and returns a checksum: a yardstick
// for memory bandwidth (BenchmarkMemBandwidth, gollm bench).
func StreamRead(b []byte) uint64 { return streamReadGo(b) }
