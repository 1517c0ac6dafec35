//go:build amd64 && !purego

package kernels

import (
	"syscall"
)

// requestAMX asks Linux for the AMX tile data state (ARCH_REQ_XCOMP_PERM
// for XFEATURE_XTILEDATA, kernel 5.16 and later). The permission holds
// for the whole process.
func requestAMX() error {
	const archReqXCompPerm, xfeatureXTileData = 0x1023, 18
	if _, _, e := syscall.RawSyscall(syscall.SYS_ARCH_PRCTL, archReqXCompPerm, xfeatureXTileData, 0); e != 0 {
		return e
	}
	return nil
}
