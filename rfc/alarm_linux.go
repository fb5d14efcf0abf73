//go:build linux

package rfc

import (
	"math"
	"os"

	"golang.org/x/sys/unix"
)

// newAlarm returns an alarm on a nonblocking timerfd of the monotonic
// clock, or nil where the kernel gives none (the timer goroutine then
// sleeps on a runtime timer).
func newAlarm() *alarm {
	fd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC)
	if err != nil {
		return nil
	}
	f := os.NewFile(uintptr(fd), "rfc-alarm")
	raw, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil
	}
	a := &alarm{raw: raw, close: f.Close, at: math.MaxInt64}
	a.setF = a.settime
	a.waitF = a.read
	return a
}

// alarmSpec is the argument of timerfd_settime.
type alarmSpec = unix.ItimerSpec

// settime arms the timerfd to a.d from now; a zero it_value would disarm
// it, so "at once" is one nanosecond.
func (a *alarm) settime(fd uintptr) {
	d := int64(a.d)
	if d < 1 {
		d = 1
	}
	a.spec = unix.ItimerSpec{Value: unix.NsecToTimespec(d)}
	_ = unix.TimerfdSettime(int(fd), 0, &a.spec, nil)
}

// read consumes the timerfd's expiries: true if it had fired, false
// (park in the poller) if not yet.
func (a *alarm) read(fd uintptr) bool {
	for {
		_, err := unix.Read(int(fd), a.buf[:])
		if err == unix.EINTR {
			continue
		}
		return err != unix.EAGAIN
	}
}
