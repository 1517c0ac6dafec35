//go:build amd64 && !purego && !linux

package kernels

import "errors"

// requestAMX: only the Linux way of enabling the tiles is implemented.
func requestAMX() error { return errors.New("kernels: AMX tiles are only enabled on Linux") }
