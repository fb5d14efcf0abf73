package lock

// Stats is a snapshot of a lock's state and counters. The fields are read
// one by one, not atomically as a whole.
type Stats struct {
	Version    uint32 // layout version of the region
	Slots      int    // holder slot capacity
	SlotsInUse int    // slots claimed by handles (live or not yet reclaimed)

	ReadHolds uint64 // read holds over all slots, tentative ones included
	Readers   int    // slots with at least one read hold
	Writer    bool   // a writer holds the lock or waits for readers to leave
	WriterPID int    // pid of that writer, 0 if none
	Draining  bool   // the writer waits for readers to leave
	OwnerDied bool   // the owner-died flag (NeedsRepair)
	Waiters   uint32 // goroutines sleeping, over all slots in use; a process that died asleep stays counted until its slot is reclaimed
	WriteSeq  uint32 // write acquisitions, modulo 1<<22

	ReclaimedWriters   uint64 // write holds of dead processes cleared
	ReclaimedReadHolds uint64 // read holds of dead processes dropped
	ReclaimedSlots     uint64 // slots of dead processes freed
	ForcedUnlocks      uint64 // ForceUnlock calls
	StrayUnlocks       uint32 // Unlock/RUnlock calls that found nothing to drop
}

// Stats returns a snapshot of the lock.
func (l *RWLock) Stats() Stats {
	s := l.state.Load()
	st := Stats{
		Version:            word32(l.mem, offVersion).Load(),
		Slots:              slotCount,
		Draining:           s&stateDraining != 0,
		OwnerDied:          s&stateOwnerDied != 0,
		WriteSeq:           s >> stateSeqShift,
		ReclaimedWriters:   l.counter64(offReclaimedW).Load(),
		ReclaimedReadHolds: l.counter64(offReclaimedR).Load(),
		ReclaimedSlots:     l.counter64(offReclaimedS).Load(),
		ForcedUnlocks:      l.counter64(offForced).Load(),
		StrayUnlocks:       word32(l.mem, offStrayUnlocks).Load(),
	}
	if owner := s & stateOwnerMask; owner != 0 {
		st.Writer = true
		if int(owner) <= slotCount {
			st.WriterPID = int(l.slotWord(int(owner-1)).Load() & slotPidMask)
		}
	}
	for i := 0; i < slotCount; i++ {
		w := l.slotWord(i).Load()
		if w&slotStateMask == slotFree {
			continue
		}
		st.SlotsInUse++
		if n := w >> slotCountShift; n != 0 {
			st.ReadHolds += n
			st.Readers++
		}
		st.Waiters += l.slotWaitersWord(i).Load()
	}
	return st
}
