//go:build linux

package lock

import (
	"testing"
	"time"

	"fastcall/wire"
)

// A writer that waits for the read hold of a dead process reclaims it even
// while live readers keep arriving. Each arriving reader meets the writer,
// gives its tentative hold back and wakes the draining writer: a writer
// that checked the readers' liveness only after a sleep of full length was
// woken before every such sleep ended, never reclaimed the dead hold, and
// kept every reader out behind it for as long as readers arrived.
func TestDeadReaderAmidReaderChurn(t *testing.T) {
	mem, l, _ := deadHolder(t, "holdread")

	// A live reader polls the lock until the writer is through.
	churn := attachT(t, mem)
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			if churn.RLockTimeout(0) == nil {
				churn.RUnlock()
			}
		}
	}()
	err := l.LockTimeout(waitDeadline)
	close(stop)
	<-done
	if err != nil {
		t.Fatalf("writer behind a dead reader, readers arriving: %v (stats %+v)", err, l.Stats())
	}
	l.Unlock()
	if s := l.Stats(); s.ReclaimedReadHolds != 1 || s.OwnerDied {
		t.Fatalf("stats: %+v", s)
	}
}

// The same, with the wake-ups made certain: before each of the draining
// writer's sleeps the drain sequence moves, as when a reader leaves, so no
// sleep runs its full length. The dead reader's hold must still be
// reclaimed.
func TestDrainWokenReclaimsDeadReader(t *testing.T) {
	_, l, _ := deadHolder(t, "holdread")

	// Claim the lock as Lock does and start draining.
	s := l.state.Load()
	if !l.state.CompareAndSwap(s, (s+stateSeqOne)|l.owner) {
		t.Fatalf("state %#x: lock not free", s)
	}
	l.setStateBits(stateDraining)
	var w waiter
	w.start(0, false)
	end := time.Now().Add(waitDeadline)
	for l.readHolds() != 0 {
		if time.Now().After(end) {
			t.Fatalf("dead reader's hold not reclaimed in %v of wake-ups: %+v", waitDeadline, l.Stats())
		}
		seq := l.drainSeq.Load()
		l.wakeDrainer() // a reader left meanwhile
		if e := l.waitDrain(&w, seq); e != wire.OK {
			t.Fatalf("waitDrain: %v", e)
		}
	}
	l.clearStateBits(stateDraining)
	l.Unlock()
	if st := l.Stats(); st.ReclaimedReadHolds != 1 {
		t.Fatalf("stats: %+v", st)
	}
}

// A reclaimer that judged a slot's process dead and then stalled must not
// clear the write hold of a live process that took the same slot since.
// The interleaving is forced with the internal calls a waiter makes:
// R1 reads the slot and judges it dead; R2 reclaims the slot; a new handle
// takes the freed slot and write-locks; R1 resumes its reclaim.
func TestStalledReclaimSparesNewWriter(t *testing.T) {
	mem, r1 := newRegion(t)
	r2 := attachT(t, mem)
	const slot = 2 // the next free slot: r1 has 0, r2 has 1
	pid, start, e := selfIdentity()
	if e != wire.OK {
		t.Fatalf("selfIdentity: %v", e)
	}
	// A dead writer: this pid with a wrong start time (a reused pid).
	plantHolder(mem, slot, pid, start+1, 0, true)

	// R1 judges the slot's process dead, then stalls.
	w := r1.slotWord(slot).Load()
	if r1.slotLiveness(slot, w) != livenessDead {
		t.Fatalf("planted holder not judged dead")
	}
	// R2 reclaims the slot.
	r2.reclaimSlot(slot, w)
	if r2.slotWord(slot).Load()&^slotGenMask != 0 {
		t.Fatalf("slot %d not freed by R2", slot)
	}
	// A live process takes the freed slot and write-locks.
	q := attachT(t, mem)
	if q.index != slot {
		t.Fatalf("new handle took slot %d, want %d", q.index, slot)
	}
	if err := q.LockTimeout(0); err != nil && err != wire.EOWNERDEAD {
		t.Fatalf("new writer Lock: %v", err)
	}
	q.MarkConsistent()
	// R1 resumes its reclaim of the dead process it saw in the slot.
	r1.reclaimSlot(slot, w)

	s := r1.state.Load()
	if s&stateOwnerMask != q.owner {
		t.Fatalf("live writer's hold cleared by a stale reclaim: state %#x", s)
	}
	if s&stateOwnerDied != 0 {
		t.Fatalf("owner-died set on a live writer's hold: state %#x", s)
	}
	if err := r2.LockTimeout(0); wire.AsErrno(err) != wire.ETIMEDOUT {
		if err == nil || err == wire.EOWNERDEAD {
			r2.Unlock()
		}
		t.Fatalf("second writer admitted while the first holds the lock: %v", err)
	}
	q.Unlock()
	if got := r2.Stats().ReclaimedWriters; got != 1 {
		t.Fatalf("ReclaimedWriters %d, want 1", got)
	}
}
