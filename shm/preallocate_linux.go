package shm

import (
	"errors"

	"golang.org/x/sys/unix"
)

// preallocate reserves the file's pages so that a full tmpfs fails Create,
// or a writer's Open of a file with holes, with ENOSPC instead of killing
// a writer with SIGBUS on first touch. Pages that have memory already keep
// their contents.
func preallocate(fd int, size int64) error {
	err := unix.Fallocate(fd, 0, 0, size)
	if errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.ENOSYS) {
		return nil
	}
	return err
}

// fillHoles reserves the pages of a file of size bytes if it has holes
// (preallocate); a file without holes, as Create makes them, is only
// searched for one, which costs much less than preallocate's walk.
func fillHoles(fd int, size int64) error {
	if off, err := unix.Seek(fd, 0, unix.SEEK_HOLE); err == nil && off >= size {
		return nil
	}
	return preallocate(fd, size)
}
