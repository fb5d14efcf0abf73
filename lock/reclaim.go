package lock

// Reclaiming the holds of dead processes. docs/LOCK.md gives the crash-point
// argument; in short:
//
//   - A writer is named in the state word by the same CAS that takes the
//     lock, so there is no moment at which the lock is held by nobody known.
//     The name is a slot index; the slot holds pid and start time, recorded
//     before the slot could be used. A slot is freed only after the state
//     word no longer names it.
//   - A reader's holds are counted only in its own slot; the state word has
//     no reader count. The slot word is changed by single atomic adds, so at
//     any crash point it holds exactly the holds (tentative ones included)
//     of its process, and reclaiming is one CAS of that word to free.
//   - Every reclaiming CAS compares the whole word (with a generation or a
//     write sequence inside), so a reclaimer that stalled cannot clear a
//     hold that a newer holder took in the same place. The writer hold of a
//     dead slot is cleared only while the slot still holds the exact word
//     that was judged dead (generation included), read after the state
//     word: a newer holder of the same slot index keeps its write hold.

// liveness is the answer of a holder check.
type liveness uint8

const (
	livenessUnknown liveness = iota // could not tell; treated as alive
	livenessAlive                   // the recorded process runs
	livenessDead                    // gone, a zombie, the pid was reused, or the program replaced by exec
)

// slotLiveness checks the process recorded in slot word w of slot i. A free
// slot is dead (it names nobody); a claiming slot has no start time yet and
// is checked by pid only.
func (l *RWLock) slotLiveness(i int, w uint64) liveness {
	pid := int(w & slotPidMask)
	switch w & slotStateMask {
	case slotActive:
		start, exec := l.slotStart(i).Load(), l.slotExec(i).Load()
		if l.slotWord(i).Load()&^slotCountMask != w&^slotCountMask {
			return livenessAlive // the slot changed hands meanwhile: look again later
		}
		if exec != execWord(w&slotGenMask, exec) {
			exec = 0 // written by an earlier claim: the program is not known
		}
		return processLiveness(pid, start, exec&execStackMask, true)
	case slotClaiming:
		return processLiveness(pid, 0, 0, false)
	default:
		return livenessDead
	}
}

// checkWriter checks the writer named in state s and, if its process is
// dead, clears its hold.
func (l *RWLock) checkWriter(s uint32) {
	owner := s & stateOwnerMask
	if owner == 0 || owner == l.owner || int(owner) > slotCount {
		if int(owner) > slotCount {
			l.reclaimWriter(s) // names no slot: corrupt, clear it
		}
		return
	}
	i := int(owner - 1)
	w := l.slotWord(i).Load()
	if w&slotStateMask == slotFree {
		l.reclaimWriter(s) // names a free slot: corrupt, clear it
		return
	}
	if l.slotLiveness(i, w) == livenessDead {
		l.reclaimSlot(i, w)
	}
}

// reclaimWriter clears the writer hold recorded in s, if the state word
// still records the same acquisition (same owner, same write sequence).
// Unless the writer died while still draining readers (it never returned
// from Lock, so it wrote nothing), the owner-died flag is set. Sleepers are
// woken.
func (l *RWLock) reclaimWriter(s uint32) {
	const ident = stateOwnerMask | ^uint32(stateSeqOne-1)
	for {
		cur := l.state.Load()
		if cur&ident != s&ident {
			return
		}
		ns := cur &^ (stateOwnerMask | stateDraining | stateWaiters)
		if cur&stateDraining == 0 {
			ns |= stateOwnerDied
		}
		if l.state.CompareAndSwap(cur, ns) {
			l.counter64(offReclaimedW).Add(1)
			if cur&stateWaiters != 0 {
				futexWake(l.state, wakeAll)
			}
			return
		}
	}
}

// reclaimDeadReaders frees the slots that hold read holds and belong to
// dead processes. Called by a writer whose wait for readers timed out.
func (l *RWLock) reclaimDeadReaders() {
	hw := int(l.highWater.Load())
	if hw > slotCount {
		hw = slotCount
	}
	for i := 0; i < hw; i++ {
		w := l.slotWord(i).Load()
		if w&slotCountMask == 0 || i == l.index {
			continue
		}
		if l.slotLiveness(i, w) == livenessDead {
			l.reclaimSlot(i, w)
		}
	}
}

// reclaimDeadSlots frees every non-free slot of a dead process. Called when
// no slot is free.
func (l *RWLock) reclaimDeadSlots() {
	for i := 0; i < slotCount; i++ {
		w := l.slotWord(i).Load()
		if w&slotStateMask == slotFree || i == l.index {
			continue
		}
		if l.slotLiveness(i, w) == livenessDead {
			l.reclaimSlot(i, w)
		}
	}
}

// reclaimSlot frees slot i, last seen as w, whose process is dead. If the
// state word names the slot as writer, that hold is cleared first, so that a
// freed slot is never named by the state word. The slot is freed by one CAS
// from w: if anything changed meanwhile, the slot is left alone.
//
// The writer hold is cleared only while slot i still holds exactly w,
// checked after the state word was read: a claim of the slot changes its
// generation, so a state word read before that check names an acquisition
// of the dead process (or of nobody), and reclaimWriter's CAS on owner and
// write sequence fails if a new holder of the slot has taken the lock since.
// A reclaimer that stalled after judging w dead therefore never clears the
// hold of a live process that took slot i in the meantime.
func (l *RWLock) reclaimSlot(i int, w uint64) {
	for {
		s := l.state.Load()
		if s&stateOwnerMask != uint32(i+1) {
			break
		}
		if l.slotWord(i).Load() != w {
			return // the slot changed since it was judged: not ours to clear
		}
		l.reclaimWriter(s)
	}
	if l.slotWord(i).CompareAndSwap(w, w&slotGenMask) {
		l.counter64(offReclaimedS).Add(1)
		l.counter64(offReclaimedR).Add(w >> slotCountShift)
		if w>>slotCountShift != 0 && l.state.Load()&stateDraining != 0 {
			l.wakeDrainer()
		}
	}
}

// ForceUnlock forcibly drops every hold: the writer's (setting the
// owner-died flag) and every slot's read holds, then wakes all sleepers.
//
// UNSAFE. It is meant for an operator who knows that a holder is wedged but
// alive (a dead holder is reclaimed without it). The holders it removes are
// still running: they may keep reading or writing the protected data with
// no lock, and their later Unlock or RUnlock is counted as stray (or, if
// another hold was taken in the meantime by the same handle, drops that
// one). Use it only when the holders are known to be stopped for good.
func (l *RWLock) ForceUnlock() {
	if !supported {
		return
	}
	for {
		s := l.state.Load()
		ns := s &^ (stateOwnerMask | stateDraining | stateWaiters)
		if s&stateOwnerMask != 0 {
			ns |= stateOwnerDied
		}
		if l.state.CompareAndSwap(s, ns) {
			if s&stateWaiters != 0 {
				futexWake(l.state, wakeAll)
			}
			break
		}
	}
	for i := 0; i < slotCount; i++ {
		sw := l.slotWord(i)
		for {
			w := sw.Load()
			if w&slotCountMask == 0 || sw.CompareAndSwap(w, w&^slotCountMask) {
				break
			}
		}
	}
	l.counter64(offForced).Add(1)
	l.drainSeq.Add(1)
	futexWake(l.drainSeq, wakeAll)
}
