package lock

import (
	"sync/atomic"

	"fastcall/wire"
)

// RWLock is a handle on a process-shared reader/writer lock that lives in a
// caller-provided region. Each handle owns one holder slot of the region;
// all goroutines of a process should share one handle (Attach once per
// process and region). A handle must not be copied; use the pointer.
//
// The lock is not re-entrant: a goroutine that holds it (read or write) and
// asks for it again through the same handle, or through another handle of
// the same process, may wait forever (or until its timeout), exactly like
// sync.RWMutex. The owner of a write hold is the handle, not the goroutine:
// any goroutine of the process may Unlock it.
type RWLock struct {
	_ noCopy

	mem       []byte         // the region; kept so the words stay referenced
	state     *atomic.Uint32 // state word, futex word of sleeping lockers
	drainSeq  *atomic.Uint32 // futex word of a writer waiting for readers
	highWater *atomic.Uint32 // slots [0, highWater) may be in use

	slot        *atomic.Uint64 // this handle's slot word (read holds, identity)
	slotWaiters *atomic.Uint32 // this handle's sleeping goroutines (statistics)
	index       int            // this handle's slot index, -1 if none
	owner       uint32         // owner field value of this handle: index + 1
	detached    bool           // Detach was called; the handle is unusable
}

// noCopy makes go vet report copies of an RWLock.
type noCopy struct{}

func (*noCopy) Lock()   {}
func (*noCopy) Unlock() {}

// checkRegion verifies the length and alignment of a region.
func checkRegion(mem []byte) wire.Errno {
	if len(mem) < Size || !aligned8(mem) {
		return wire.EINVAL
	}
	return wire.OK
}

// Init formats a fresh lock into mem[:Size], overwriting whatever was there,
// and returns a handle on it. mem must be at least Size bytes and 8-byte
// aligned (wire.EINVAL otherwise). No process may be using a lock in mem
// while it is formatted. The handle takes a holder slot as Attach does.
func Init(mem []byte) (*RWLock, error) {
	if e := checkRegion(mem); e != wire.OK {
		return nil, e
	}
	clear(mem[:Size])
	word32(mem, offVersion).Store(Version)
	word32(mem, offSlotCount).Store(slotCount)
	word32(mem, offSlotSize).Store(slotSize)
	word32(mem, offMagic).Store(Magic) // last: a concurrent Attach sees all or nothing
	return attach(mem)
}

// Attach returns a handle on the lock formatted in mem[:Size]. A region that
// is too short or misaligned is wire.EINVAL; a region that does not hold a
// lock of this layout (magic, version, slot geometry) is wire.EPROTO. When
// every holder slot belongs to a live handle, Attach returns wire.ENOSPC
// (slots of dead processes are reclaimed first). Attach never panics on any
// content of mem.
func Attach(mem []byte) (*RWLock, error) {
	if e := checkRegion(mem); e != wire.OK {
		return nil, e
	}
	if e := checkLayout(mem); e != wire.OK {
		return nil, e
	}
	return attach(mem)
}

// checkLayout verifies that mem holds a lock of this layout version.
func checkLayout(mem []byte) wire.Errno {
	if word32(mem, offMagic).Load() != Magic ||
		word32(mem, offVersion).Load() != Version ||
		word32(mem, offSlotCount).Load() != slotCount ||
		word32(mem, offSlotSize).Load() != slotSize ||
		word32(mem, offHighWater).Load() > slotCount {
		return wire.EPROTO
	}
	return wire.OK
}

// attach builds a handle on a checked region and claims its slot.
func attach(mem []byte) (*RWLock, error) {
	l := &RWLock{
		mem:       mem[:Size:Size],
		state:     word32(mem, offState),
		drainSeq:  word32(mem, offDrainSeq),
		highWater: word32(mem, offHighWater),
		index:     -1,
	}
	if !supported {
		return l, nil
	}
	pid, start, e := selfIdentity()
	if e != wire.OK {
		return nil, e
	}
	if e := l.claimSlot(pid, start); e != wire.OK {
		return nil, e
	}
	return l, nil
}

// Detach gives the handle's slot back. The handle must hold nothing
// (wire.EBUSY otherwise, and the handle stays attached) and must not be used
// afterwards: lock operations on it return wire.EINVAL. A process that exits
// without Detach loses nothing: its slot is reclaimed as a dead holder's.
func (l *RWLock) Detach() error {
	if l.index < 0 || l.detached {
		l.detached = true
		return nil
	}
	w := l.slot.Load()
	if w&slotCountMask != 0 || l.state.Load()&stateOwnerMask == l.owner {
		return wire.EBUSY
	}
	if !l.slot.CompareAndSwap(w, w&slotGenMask) {
		return wire.EBUSY
	}
	l.detached = true
	return nil
}

// unusable returns the error of a lock operation on a handle that cannot
// operate: wire.ENOSYS off Linux, wire.EINVAL after Detach.
func (l *RWLock) unusable() error {
	if !supported {
		return wire.ENOSYS
	}
	return wire.EINVAL
}

// slotWord returns the word of slot i.
func (l *RWLock) slotWord(i int) *atomic.Uint64 {
	return word64(l.mem, headerSize+i*slotSize+slotOffWord)
}

// slotStart returns the start-time word of slot i.
func (l *RWLock) slotStart(i int) *atomic.Uint64 {
	return word64(l.mem, headerSize+i*slotSize+slotOffStart)
}

// slotExec returns the program word of slot i.
func (l *RWLock) slotExec(i int) *atomic.Uint64 {
	return word64(l.mem, headerSize+i*slotSize+slotOffExec)
}

// slotWaitersWord returns the waiter counter of slot i.
func (l *RWLock) slotWaitersWord(i int) *atomic.Uint32 {
	return word32(l.mem, headerSize+i*slotSize+slotOffWaiters)
}

// counter64 returns one of the u64 counters of the header.
func (l *RWLock) counter64(off int) *atomic.Uint64 {
	return word64(l.mem, off)
}

// claimSlot takes a free slot for this handle and records the process
// identity in it: the slot word goes free -> claiming (pid) by CAS, the start
// time is stored, then the word goes claiming -> active. A claimer that dies
// in between leaves a claiming slot that holds nothing and is freed once its
// pid is gone. When no slot is free, slots of dead processes are reclaimed
// and the search repeated once.
func (l *RWLock) claimSlot(pid int, start uint64) wire.Errno {
	for pass := 0; pass < 2; pass++ {
		for i := 0; i < slotCount; i++ {
			w := l.slotWord(i)
			old := w.Load()
			if old&^slotGenMask != 0 {
				continue // claiming, active, or holds counts
			}
			// Raise the high-water mark before the slot can hold anything,
			// so a writer that scans [0, highWater) cannot miss it.
			l.raiseHighWater(uint32(i + 1))
			gen := (old + 1<<slotGenShift) & slotGenMask
			if !w.CompareAndSwap(old, gen|slotClaiming|uint64(pid)) {
				continue
			}
			l.slotStart(i).Store(start)
			l.slotExec(i).Store(execWord(gen, selfExec()))
			l.slotWaitersWord(i).Store(0)
			w.Store(gen | slotActive | uint64(pid))
			l.index = i
			l.owner = uint32(i + 1)
			l.slot = w
			l.slotWaiters = l.slotWaitersWord(i)
			return wire.OK
		}
		if pass == 0 {
			l.reclaimDeadSlots()
		}
	}
	return wire.ENOSPC
}

// raiseHighWater makes the high-water mark at least n.
func (l *RWLock) raiseHighWater(n uint32) {
	for {
		h := l.highWater.Load()
		if h >= n || l.highWater.CompareAndSwap(h, n) {
			return
		}
	}
}

// strayUnlock counts an Unlock or RUnlock that found nothing to release.
func (l *RWLock) strayUnlock() {
	word32(l.mem, offStrayUnlocks).Add(1)
}
