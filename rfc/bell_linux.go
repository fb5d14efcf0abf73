//go:build linux

package rfc

import (
	"os"

	"golang.org/x/sys/unix"
)

// newBellFile returns a nonblocking eventfd as a pollable file, for the
// endpoint's doorbell (bell.go).
func newBellFile() (*os.File, error) {
	fd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), "rfc-bell"), nil
}

// bellOne is what ring writes: the eventfd adds it to its counter.
var bellOne = [8]byte{1}

func bellRing(fd uintptr) bool {
	unix.Write(int(fd), bellOne[:])
	return true
}
