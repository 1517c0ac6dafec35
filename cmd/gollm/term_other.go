//go:build !windows

package main

import "os"

// enableEscapes: Unix terminals take ANSI escapes as they are.
func enableEscapes(*os.File) bool { return true }
