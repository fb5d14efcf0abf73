//go:build !linux

package center

import (
	"os"

	"fastcall/wire"
)

// aioSync is the Linux AIO fsync (aiosync_linux.go); elsewhere there is
// none and the log fsyncs directly.
type aioSync struct{}

func newAIOSync() (*aioSync, error) { return nil, wire.ENOSYS }

func (a *aioSync) sync(f *os.File) error { return errAIOUnsupported }

func (a *aioSync) close() {}
