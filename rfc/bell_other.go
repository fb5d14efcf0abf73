//go:build !linux

package rfc

import (
	"errors"
	"os"
)

// newBellFile: there is no doorbell here; sole callers park on their
// channel like the others.
func newBellFile() (*os.File, error) { return nil, errors.ErrUnsupported }

func bellRing(fd uintptr) bool { return true }
