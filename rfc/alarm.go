package rfc

import (
	"math"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// alarm is what the timer goroutine of a socket endpoint sleeps on: a
// kernel timer (a timerfd on Linux) that the goroutine waits for in the
// network poller, instead of a runtime timer.
//
// The difference is where the kernel arms its timer. While a runtime
// timer is pending, every time the process runs out of work it blocks in
// the poller with a timeout, and the kernel arms a timer for that
// timeout, and cancels it when a datagram wakes the process first: twice
// per call for a caller waiting for its reply. Retransmission timers are
// a few milliseconds out, earlier than the kernel's own next event, so
// each of those arms reprograms the processor's timer, which is costly in
// a virtual machine (bench/RESULTS.md, "Speed mechanisms"). An alarm is
// armed once per sleep of the timer goroutine, and the poller blocks
// without a timeout.
//
// set arms the alarm to fire after d (at once when d <= 0), replacing
// any earlier setting: it is the sleeper's own setting. armEarlier arms
// it to fire after d, for engine time at, unless a caller's setting made
// since the sleeper's last set fires no later than at, so that of
// concurrent callers the earliest wins. rearm replaces a caller's setting
// for engine time from with one for at, after d, and reports true, unless
// the alarm was set or kicked since that setting. kick makes the
// sleeper's current or next wait return at once: a kick between the
// sleeper's set and its wait is not lost (the sleeper calls takeKick
// after set and skips the wait). wait parks until the alarm fires and
// reports false once the alarm is closed. One goroutine waits and sets;
// armEarlier, rearm and kick may be called by any.
type alarm struct {
	mu     sync.Mutex // serializes settings: d, at, spec and the system call
	d      time.Duration
	at     int64     // engine time of a caller's setting since the sleeper's set: math.MaxInt64 for none, math.MinInt64 for a kick
	spec   alarmSpec // the system call's argument, kept here so that it is not allocated
	buf    [8]byte   // what a read of the kernel timer fills in; the waiter's
	raw    syscall.RawConn
	setF   func(fd uintptr)      // arms the kernel timer to a.d
	waitF  func(fd uintptr) bool // consumes an expiry, or reports none yet
	kicked atomic.Bool
	close  func() error
}

func (a *alarm) set(d time.Duration) { a.arm(d, math.MaxInt64) }

func (a *alarm) arm(d time.Duration, at int64) {
	a.mu.Lock()
	a.d, a.at = d, at
	_ = a.raw.Control(a.setF)
	a.mu.Unlock()
}

func (a *alarm) armEarlier(at int64, d time.Duration) {
	a.mu.Lock()
	if at < a.at {
		a.d, a.at = d, at
		_ = a.raw.Control(a.setF)
	}
	a.mu.Unlock()
}

func (a *alarm) rearm(from, at int64, d time.Duration) bool {
	a.mu.Lock()
	ok := a.at == from
	if ok {
		a.d, a.at = d, at
		_ = a.raw.Control(a.setF)
	}
	a.mu.Unlock()
	return ok
}

func (a *alarm) kick() {
	a.kicked.Store(true)
	a.arm(0, math.MinInt64)
}

// mark is kick for a waiter known to be awake: it will call takeKick
// before it waits, so the kernel timer need not be touched.
func (a *alarm) mark() { a.kicked.Store(true) }

// takeKick reports whether a kick came since the last takeKick.
func (a *alarm) takeKick() bool { return a.kicked.Swap(false) }

func (a *alarm) wait() bool { return a.raw.Read(a.waitF) == nil }
