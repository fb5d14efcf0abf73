package lock

import (
	"runtime"
	"sync/atomic"
	"time"

	"fastcall/wire"
)

// Blocking. A locker that cannot get in first yields a few times (holders in
// the same process usually leave quickly), then sleeps with FUTEX_WAIT on the
// state word (or, for a writer waiting for readers, on the drain sequence).
// Every sleep is bounded by LivenessPoll so that a sleeper wakes up to check
// whether the holders it waits for are still alive. The check runs after a
// sleep that ran its full length, and also once LivenessPoll has passed
// since the last one however the sleeps ended: readers that meet a draining
// writer wake it, and a steady stream of them would otherwise cut every
// sleep short and keep a dead reader's hold, and the writer, in place.
const (
	// LivenessPoll is the longest a waiter sleeps before it checks that
	// the holders it waits for are alive.
	LivenessPoll = 20 * time.Millisecond

	// spinLimit is the number of yields before the first sleep.
	spinLimit = 4

	// wakeAll is the FUTEX_WAKE count that wakes every sleeper.
	wakeAll = 1<<31 - 1
)

// waiter carries the deadline and the spin budget of one blocking call.
type waiter struct {
	timed    bool
	deadline time.Time
	spins    int
	checkAt  time.Time // the holders are checked at the first wake-up past this; zero before the first sleep
}

// start arms the waiter: with timed, the call fails d from now.
func (w *waiter) start(d time.Duration, timed bool) {
	w.timed = timed
	if timed {
		w.deadline = time.Now().Add(d)
	}
}

// checkDue reports whether the holders waited for must be checked after a
// sleep: it ran its full length, or LivenessPoll has passed since the
// first sleep or the last check.
func (w *waiter) checkDue(full bool) bool {
	now := time.Now()
	if w.checkAt.IsZero() {
		w.checkAt = now.Add(LivenessPoll)
	}
	if !full && now.Before(w.checkAt) {
		return false
	}
	w.checkAt = now.Add(LivenessPoll)
	return true
}

// next returns how long the next sleep may last, or wire.ETIMEDOUT when the
// deadline has passed.
func (w *waiter) next() (time.Duration, wire.Errno) {
	if !w.timed {
		return sleepLength(0, false)
	}
	return sleepLength(time.Until(w.deadline), true)
}

// sleepLength is the timeout arithmetic of a waiter: an untimed waiter
// sleeps LivenessPoll; a timed one sleeps the smaller of LivenessPoll and
// what remains, and fails with wire.ETIMEDOUT once nothing remains.
func sleepLength(remaining time.Duration, timed bool) (time.Duration, wire.Errno) {
	switch {
	case !timed:
		return LivenessPoll, wire.OK
	case remaining <= 0:
		return 0, wire.ETIMEDOUT
	case remaining < LivenessPoll:
		return remaining, wire.OK
	default:
		return LivenessPoll, wire.OK
	}
}

// round begins one round of a blocking wait: it returns how long the
// round may sleep, or no sleep (0) and what the wait returns at once:
// wire.ETIMEDOUT when the deadline has passed, wire.OK after a yield (the
// caller looks at the lock again).
func (w *waiter) round() (time.Duration, wire.Errno) {
	sleep, e := w.next()
	if e != wire.OK || w.spin() {
		return 0, e
	}
	return sleep, wire.OK
}

// spin yields the processor while the waiter has spins left and reports
// whether it did.
func (w *waiter) spin() bool {
	if w.spins >= spinLimit {
		return false
	}
	w.spins++
	runtime.Gosched()
	return true
}

// waitState waits for the state word to change from s, which names a
// writer. It records the sleeper in the waiters bit first, so the releasing
// writer knows to wake. It returns wire.OK to make the caller re-read the
// state, or wire.ETIMEDOUT. A sleep after which a check is due (checkDue)
// checks the writer's liveness and reclaims the hold of a dead one.
func (l *RWLock) waitState(w *waiter, s uint32) wire.Errno {
	sleep, e := w.round()
	if sleep == 0 {
		return e
	}
	if s&stateWaiters == 0 {
		if !l.state.CompareAndSwap(s, s|stateWaiters) {
			return wire.OK
		}
		s |= stateWaiters
	}
	if w.checkDue(l.sleep(l.state, s, sleep)) {
		l.checkWriter(s)
	}
	return wire.OK
}

// waitDrain waits for a read hold to go, as the writer that holds the
// state word. seq is the drain sequence read before the readers were
// counted. It returns wire.OK to make the caller recount, or
// wire.ETIMEDOUT. A sleep after which a check is due (checkDue) checks the
// liveness of the processes that hold read holds and reclaims the dead
// ones: readers that come and go wake this sleep, so a check that waited
// for a full-length sleep could wait forever.
func (l *RWLock) waitDrain(w *waiter, seq uint32) wire.Errno {
	sleep, e := w.round()
	if sleep == 0 {
		return e
	}
	if w.checkDue(l.sleep(l.drainSeq, seq, sleep)) {
		l.reclaimDeadReaders()
	}
	return wire.OK
}

// sleep sleeps on word while it holds val, for at most d, counted among
// the handle's sleepers, and reports whether the sleep ran its full length
// (then the holders waited for must be checked; checkDue).
func (l *RWLock) sleep(word *atomic.Uint32, val uint32, d time.Duration) bool {
	l.slotWaiters.Add(1)
	r := futexWait(word, val, d)
	l.slotWaiters.Add(^uint32(0))
	return r == wire.ETIMEDOUT
}
