package lock

import (
	"time"

	"fastcall/wire"
)

// slotCountDec added to a slot word removes one read hold.
const slotCountDec = ^uint64(slotCountOne - 1)

// RLock takes a read hold, waiting as long as needed. It returns nil, or
// wire.ENOSPC when this handle already has MaxReadHolds holds, wire.ENOSYS
// off Linux and wire.EINVAL after Detach.
//
// Readers proceed even when the owner-died flag is set: a dead writer's hold
// is reclaimed by whoever waits for it, and the flag stays set for the next
// writer, who must repair.
//
// Fast path: one atomic add on this handle's slot and one load of the state
// word. A waiting or holding writer sends new readers to the slow path
// (writer preference).
func (l *RWLock) RLock() error {
	return l.rlock(0, false)
}

// RLockTimeout is RLock bounded by d. It returns wire.ETIMEDOUT when a live
// writer still holds or waits for the lock after d; nothing is reclaimed from
// live holders. d <= 0 tries once without sleeping.
func (l *RWLock) RLockTimeout(d time.Duration) error {
	return l.rlock(d, true)
}

// rlock is RLock and RLockTimeout; timed says whether d applies.
func (l *RWLock) rlock(d time.Duration, timed bool) error {
	if !supported || l.detached {
		return l.unusable()
	}
	w := l.slot.Add(slotCountOne)
	if w>>slotCountShift > MaxReadHolds {
		l.readerLeave()
		return wire.ENOSPC
	}
	if l.state.Load()&stateOwnerMask == 0 {
		return nil
	}
	return l.rlockSlow(d, timed)
}

// rlockSlow is entered with a tentative read hold that met a writer: the
// hold is given back, then the reader waits for the writer to go.
func (l *RWLock) rlockSlow(d time.Duration, timed bool) error {
	l.readerLeave()
	var w waiter
	w.start(d, timed)
	for {
		s := l.state.Load()
		if s&stateOwnerMask == 0 {
			l.slot.Add(slotCountOne)
			if l.state.Load()&stateOwnerMask == 0 {
				return nil
			}
			l.readerLeave()
			continue
		}
		if e := l.waitState(&w, s); e != wire.OK {
			return e
		}
	}
}

// RUnlock drops one read hold of this handle. An RUnlock with no hold to
// drop (a bug, or holds dropped by ForceUnlock) changes nothing and is
// counted in Stats.StrayUnlocks.
//
// Fast path: one atomic add on this handle's slot and one load of the state
// word; a system call only when this was the handle's last hold and a writer
// sleeps waiting for readers to leave.
func (l *RWLock) RUnlock() {
	if !supported || l.detached {
		return
	}
	w := l.slot.Add(slotCountDec)
	if w>>slotCountShift > MaxReadHolds {
		// The count wrapped below zero: undo. The count field sits at the
		// top of the word, so the identity bits were never touched.
		l.slot.Add(slotCountOne)
		l.strayUnlock()
		return
	}
	if w&slotCountMask == 0 && l.state.Load()&stateDraining != 0 {
		l.wakeDrainer()
	}
}

// readerLeave drops a tentative read hold and wakes a draining writer.
func (l *RWLock) readerLeave() {
	w := l.slot.Add(slotCountDec)
	if w&slotCountMask == 0 && l.state.Load()&stateDraining != 0 {
		l.wakeDrainer()
	}
}

// wakeDrainer tells a writer that waits for readers that a slot emptied.
// The sequence bump makes the writer's FUTEX_WAIT fail if it has not slept
// yet, so the wake-up cannot be lost.
func (l *RWLock) wakeDrainer() {
	l.drainSeq.Add(1)
	futexWake(l.drainSeq, 1)
}
