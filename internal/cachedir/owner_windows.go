//go:build windows

package cachedir

import "io/fs"

// notOwned has nothing to check on Windows: Go reports no owner there,
// and mode bits are made up (a directory is always 0777). The cache lives
// under %LocalAppData% (os.UserCacheDir), whose ACL admits only the user,
// SYSTEM and administrators; symlinks are still refused by the caller.
func notOwned(fs.FileInfo) string { return "" }
