//go:build linux

package lock

import (
	"fastcall/wire"
	"testing"
	"time"
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
