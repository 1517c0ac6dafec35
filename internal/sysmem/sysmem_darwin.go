package sysmem

import "golang.org/x/sys/unix"

func total() (int64, bool) {
	n, err := unix.SysctlUint64("hw.memsize")
	return int64(n), err == nil
}
