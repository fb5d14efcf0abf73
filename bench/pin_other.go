//go:build !linux

package bench

import "syscall"

// pinTogether is pin_linux.go's: elsewhere the processes are not pinned.
func pinTogether(pid int) (unpin func(), err error) { return nil, syscall.ENOSYS }
