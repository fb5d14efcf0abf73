//go:build linux

package lock

// futex(2) on a word of the shared region. The operations are the
// process-shared ones (FUTEX_WAIT and FUTEX_WAKE without
// FUTEX_PRIVATE_FLAG): the kernel keys the waiters by the backing page, so a
// waker in one process reaches a sleeper in another even when the two map
// the region at different addresses. The file imports unsafe only to pass
// the word's address and the timeout to the system call.

import (
	"sync/atomic"
	"time"
	"unsafe"

	"fastcall/wire"

	"golang.org/x/sys/unix"
)

// supported reports whether lock operations work on this platform.
const supported = true

// futex(2) operation numbers (linux/futex.h). No FUTEX_PRIVATE_FLAG: the
// word is shared between processes.
const (
	futexOpWait = 0
	futexOpWake = 1
)

// futexWait sleeps while *addr == val, for at most d (d > 0). It returns
// wire.ETIMEDOUT when d passed, wire.OK otherwise: woken, the word no longer
// held val, or a signal interrupted the sleep. Spurious returns are allowed;
// callers re-read the word.
func futexWait(addr *atomic.Uint32, val uint32, d time.Duration) wire.Errno {
	ts := unix.NsecToTimespec(int64(d))
	_, _, e := unix.Syscall6(unix.SYS_FUTEX, uintptr(unsafe.Pointer(addr)), futexOpWait,
		uintptr(val), uintptr(unsafe.Pointer(&ts)), 0, 0)
	if e == unix.ETIMEDOUT {
		return wire.ETIMEDOUT
	}
	return wire.OK
}

// futexWake wakes up to n sleepers on addr, in any process.
func futexWake(addr *atomic.Uint32, n int32) {
	unix.Syscall6(unix.SYS_FUTEX, uintptr(unsafe.Pointer(addr)), futexOpWake,
		uintptr(n), 0, 0, 0)
}
