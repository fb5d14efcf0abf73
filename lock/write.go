package lock

import (
	"time"

	"fastcall/wire"
)

// Lock takes the write hold, waiting as long as needed. It returns nil, or
// wire.EOWNERDEAD: the caller HOLDS the write lock, but a previous writer
// died holding it (or was removed by ForceUnlock), so the protected data may
// be half-updated. The caller verifies or repairs it, then calls
// MarkConsistent before Unlock; a writer that unlocks without
// MarkConsistent leaves the flag set and the next writer gets
// wire.EOWNERDEAD again. Lock also returns wire.ENOSYS off Linux and
// wire.EINVAL after Detach.
//
// Writers are preferred: once a writer has set its owner field, new readers
// wait, so a stream of readers cannot starve it. Writers can starve readers.
//
// Fast path: a load and a CAS of the state word, then a scan of the
// in-use slots' words for read holds (normally one or two words).
func (l *RWLock) Lock() error {
	return l.lock(0, false)
}

// LockTimeout is Lock bounded by d. It returns wire.ETIMEDOUT when live
// holders keep the lock past d; nothing is taken from live holders. A writer
// that timed out while waiting for readers gives up its claim before
// returning. d <= 0 tries once without sleeping.
func (l *RWLock) LockTimeout(d time.Duration) error {
	return l.lock(d, true)
}

// lock is Lock and LockTimeout; timed says whether d applies.
func (l *RWLock) lock(d time.Duration, timed bool) error {
	if !supported || l.detached {
		return l.unusable()
	}
	s := l.state.Load()
	if s&stateOwnerMask == 0 {
		ns := (s + stateSeqOne) | l.owner
		if l.state.CompareAndSwap(s, ns) {
			if l.readHolds() == 0 {
				if ns&stateOwnerDied != 0 {
					return wire.EOWNERDEAD
				}
				return nil
			}
			var w waiter
			w.start(d, timed)
			return l.drain(&w)
		}
	}
	var w waiter
	w.start(d, timed)
	return l.lockSlow(&w)
}

// lockSlow waits until the state word names no writer, then claims it and
// drains the readers.
func (l *RWLock) lockSlow(w *waiter) error {
	for {
		s := l.state.Load()
		if s&stateOwnerMask == 0 {
			if l.state.CompareAndSwap(s, (s+stateSeqOne)|l.owner) {
				return l.drain(w)
			}
			continue
		}
		if e := l.waitState(w, s); e != wire.OK {
			return e
		}
	}
}

// drain is entered with this handle named as the writer in the state word;
// it waits until no slot holds a read hold. The draining bit marks the wait:
// readers that leave wake the writer, and a writer that dies while the bit
// is set never returned from Lock, so its death does not set the owner-died
// flag. On timeout the claim is given up.
func (l *RWLock) drain(w *waiter) error {
	if l.readHolds() != 0 {
		l.setStateBits(stateDraining)
		for {
			seq := l.drainSeq.Load()
			if l.state.Load()&stateOwnerMask != l.owner {
				// ForceUnlock took the claim away: start over.
				return l.lockSlow(w)
			}
			if l.readHolds() == 0 {
				break
			}
			if e := l.waitDrain(w, seq); e != wire.OK {
				l.release()
				return e
			}
		}
		l.clearStateBits(stateDraining)
	}
	if l.state.Load()&stateOwnerDied != 0 {
		return wire.EOWNERDEAD
	}
	return nil
}

// readHolds returns the read holds found in the in-use slots. The scan is
// not a snapshot; it only needs to see zero after the owner field was set,
// which, with readers adding to their slot before they look at the state
// word, proves no reader is inside.
func (l *RWLock) readHolds() uint64 {
	hw := int(l.highWater.Load())
	if hw > slotCount {
		hw = slotCount
	}
	var n uint64
	for i := 0; i < hw; i++ {
		n |= l.slotWord(i).Load() & slotCountMask
	}
	return n
}

// setStateBits sets bits in the state word while this handle is the writer.
func (l *RWLock) setStateBits(bits uint32) {
	for {
		s := l.state.Load()
		if s&stateOwnerMask != l.owner || l.state.CompareAndSwap(s, s|bits) {
			return
		}
	}
}

// clearStateBits clears bits in the state word while this handle is the
// writer.
func (l *RWLock) clearStateBits(bits uint32) {
	for {
		s := l.state.Load()
		if s&stateOwnerMask != l.owner || l.state.CompareAndSwap(s, s&^bits) {
			return
		}
	}
}

// Unlock drops the write hold of this handle. The owner-died flag is kept
// unless MarkConsistent cleared it. An Unlock by a handle that is not the
// writer (a bug, or a hold removed by ForceUnlock) changes nothing and is
// counted in Stats.StrayUnlocks.
//
// Fast path: a load and a CAS of the state word; FUTEX_WAKE only when the
// waiters bit says someone sleeps.
func (l *RWLock) Unlock() {
	if !supported || l.detached {
		return
	}
	if !l.release() {
		l.strayUnlock()
	}
}

// release clears this handle's write hold and wakes the sleepers. It
// reports whether this handle was the writer.
func (l *RWLock) release() bool {
	for {
		s := l.state.Load()
		if s&stateOwnerMask != l.owner {
			return false
		}
		if l.state.CompareAndSwap(s, s&^(stateOwnerMask|stateDraining|stateWaiters)) {
			if s&stateWaiters != 0 {
				futexWake(l.state, wakeAll)
			}
			return true
		}
	}
}

// MarkConsistent clears the owner-died flag after the caller repaired the
// protected data. It is valid only while this handle holds the write lock;
// otherwise it does nothing.
func (l *RWLock) MarkConsistent() {
	if !supported || l.detached {
		return
	}
	for {
		s := l.state.Load()
		if s&stateOwnerMask != l.owner || s&stateOwnerDied == 0 {
			return
		}
		if l.state.CompareAndSwap(s, s&^stateOwnerDied) {
			return
		}
	}
}

// NeedsRepair reports whether the owner-died flag is set: a writer died
// holding the lock (or was forced out) and no writer has called
// MarkConsistent since.
func (l *RWLock) NeedsRepair() bool {
	return l.state.Load()&stateOwnerDied != 0
}
