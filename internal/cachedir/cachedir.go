// Package cachedir is gollm's per-user cache directory and the rules that
// keep what is in it the user's own: the demo model and the models that
// `gollm pull` downloads both live there, and both are loaded without
// further checks, so a file another user could have planted or changed
// must be refused.
//
// The directory is gollm under os.UserCacheDir ($XDG_CACHE_HOME or
// $HOME/.cache on Linux), or, when neither is set, gollm-<uid> under the
// temporary directory. Every directory in it is made with mode 0700 and
// must be a real directory (not a symlink) owned by the user and
// writable by no one else; every file must be a regular file (not a
// symlink) owned by the user and writable by no one else.
package cachedir

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Dir returns the cache directory, made if needed and checked.
func Dir() (string, error) {
	base, err := os.UserCacheDir()
	name := "gollm"
	if err != nil || base == "" {
		// No cache directory of the user's: a directory of the user's
		// own in the shared temporary directory (never a shared one).
		base, name = os.TempDir(), fmt.Sprintf("gollm-%d", os.Getuid())
	}
	if err := os.MkdirAll(base, 0o700); err != nil {
		return "", fmt.Errorf("cache directory: %w", err)
	}
	dir := filepath.Join(base, name)
	return dir, MkdirOwned(dir)
}

// MkdirOwned makes the directory dir with mode 0700 if it is missing (its
// parent must exist), then checks it as CheckOwned does.
func MkdirOwned(dir string) error {
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("cache directory: %w", err)
	}
	st, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("cache directory: %w", err)
	}
	return CheckOwned(dir, st, true)
}

// CheckFile checks the file at path as CheckOwned does; a missing file
// is returned as an error wrapping fs.ErrNotExist.
func CheckFile(path string) (fs.FileInfo, error) {
	st, err := os.Lstat(path)
	if err != nil {
		return nil, err
	}
	return st, CheckOwned(path, st, false)
}

// CheckOwned refuses what another user could have put or changed: a
// symlink, the wrong kind of file (a directory when isDir, else a
// regular file), another owner, group or world write permission. The
// error says what to remove.
func CheckOwned(path string, st fs.FileInfo, isDir bool) error {
	kind, want, wrongKind := "file", st.Mode().IsRegular(), "it is not a regular file"
	if isDir {
		kind, want, wrongKind = "directory", st.IsDir(), "it is not a directory"
	}
	refuse := func(why string) error {
		return fmt.Errorf("refusing the cache %s %s: %s (remove it, or set XDG_CACHE_HOME to a directory of your own)", kind, path, why)
	}
	switch {
	case st.Mode()&fs.ModeSymlink != 0:
		return refuse("it is a symbolic link")
	case !want:
		return refuse(wrongKind)
	}
	if why := notOwned(st); why != "" {
		return refuse(why)
	}
	return nil
}
