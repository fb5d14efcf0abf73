//go:build !linux

package shm

// preallocate is a no-op where fallocate is not available; the file is
// sized by ftruncate alone.
func preallocate(fd int, size int64) error { return nil }

// fillHoles is a no-op where fallocate is not available.
func fillHoles(fd int, size int64) error { return nil }
