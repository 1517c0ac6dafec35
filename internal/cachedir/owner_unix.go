//go:build unix

package cachedir

import (
	"fmt"
	"io/fs"
	"os"
	"syscall"
)

// notOwned says why another user could have put or changed the file st
// describes (group or world write permission, another owner), or "".
func notOwned(st fs.FileInfo) string {
	if st.Mode().Perm()&0o022 != 0 {
		return fmt.Sprintf("others may write to it (mode %v)", st.Mode().Perm())
	}
	if sys, ok := st.Sys().(*syscall.Stat_t); ok && int(sys.Uid) != os.Getuid() {
		return fmt.Sprintf("it belongs to uid %d, not to you (uid %d)", sys.Uid, os.Getuid())
	}
	return ""
}
