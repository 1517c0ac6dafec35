// Package sysmem tells how much memory the machine has, so that options
// asking for more (a 1e12-token KV cache) fail with a clear error instead
// of a fatal out-of-memory.
package sysmem

// Total is the machine's physical memory in bytes, and whether it is
// known on this system.
func Total() (int64, bool) { return total() }
