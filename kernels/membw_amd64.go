//go:build !purego

package kernels

// StreamRead reads every byte of b and returns a checksum: a yardstick
// for memory bandwidth (BenchmarkMemBandwidth, gollm bench), using the
// widest plain loads, so only the memory system limits it.
func StreamRead(b []byte) uint64 {
	if len(b) < 128 {
		return streamReadGo(b)
	}
	return streamReadAVX2(b[:len(b)/128*128]) + streamReadGo(b[len(b)/128*128:])
}

//go:noescape
func streamReadAVX2(b []byte) uint64
