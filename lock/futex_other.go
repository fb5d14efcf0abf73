//go:build !linux

package lock

// futex(2) is Linux only. On other platforms the region can be formatted and
// attached, but every lock operation returns wire.ENOSYS.

import (
	"sync/atomic"
	"time"

	"fastcall/wire"
)

// supported reports whether lock operations work on this platform.
const supported = false

// futexWait is not available: it returns wire.ENOSYS.
func futexWait(addr *atomic.Uint32, val uint32, d time.Duration) wire.Errno {
	return wire.ENOSYS
}

// futexWake is not available: it does nothing.
func futexWake(addr *atomic.Uint32, n int32) {}
