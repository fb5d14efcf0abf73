package shm

import (
	"runtime/debug"

	"fastcall/lock"
	"fastcall/wire"

	"golang.org/x/sys/unix"
)

// Faults on the mapping (docs/SHM.md, "Bad files"). Every check of the
// file keeps reads and writes inside the mapping, but a local process
// that truncates the file after it was mapped takes the pages past the
// new end away, and the next access to one of them raises SIGBUS, which
// the Go runtime makes a fatal error. So every method of Map that
// touches the mapping runs with debug.SetPanicOnFault(true): the runtime
// turns such a fault into a panic of the faulting goroutine, and the
// method's deferred catchFault, which restores the goroutine's previous
// setting, recovers it into an EPROTO FileError naming the file and the
// offset. A panic that is not a fault at an address inside one of the
// Map's mappings (a bug of ours, a fault of a View or Range callback
// elsewhere) goes on.
//
// Holds taken before the fault are released on the way out: read holds
// by deferred RUnlocks, write holds by unlockOnFault, which leaves the
// write sequence odd (the write did not complete).

// faultPanic is the panic value of a fault with SetPanicOnFault set: the
// runtime's error carries the faulting address.
type faultPanic interface{ Addr() uintptr }

// guard starts a method's watch for faults: defer m.catchFault(guard(), &err).
func guard() bool { return debug.SetPanicOnFault(true) }

// catchFault ends a method's watch for faults: it restores the previous
// setting prev and turns a fault inside m's mappings into *err.
func (m *Map) catchFault(prev bool, err *error) {
	debug.SetPanicOnFault(prev)
	if p := recover(); p != nil {
		*err = m.faultError(p)
	}
}

// faultError returns the error for the panic p recovered in a method of
// m, or passes p on if it is not a fault inside m's mappings.
func (m *Map) faultError(p any) error {
	off := faultOffset(p, m.mappedOffset)
	m.reopenAfterFault()
	return &FileError{Path: m.path, Off: off, Reason: "fault: file truncated after it was mapped", No: wire.EPROTO}
}

// reopenAfterFault reopens the path after a fault if the current
// mapping's file is no longer there: a Grow elsewhere renamed a new file
// over it, and the old file was truncated before that Grow could mark it
// superseded, so no call of m could ever read the mark. The call that
// faulted fails; the next one uses the new file. A failed reopen leaves
// m as it was. m.reopen is not held here (see mappedOffset).
func (m *Map) reopenAfterFault() {
	mp := m.cur.Load()
	if mp == nil {
		return
	}
	var st unix.Stat_t
	if unix.Stat(m.path, &st) != nil || uint64(st.Ino) == mp.ino {
		return
	}
	m.reopenFrom(mp)
}

// faultOffset returns the file offset of the fault p, as offset finds it
// in the mappings it knows, or passes p on if it is no fault or the
// address is in none of them.
func faultOffset(p any, offset func(uintptr) (uint64, bool)) uint64 {
	f, ok := p.(faultPanic)
	if !ok {
		panic(p)
	}
	off, ok := offset(f.Addr())
	if !ok {
		panic(p)
	}
	return off
}

// mappedOffset returns the file offset of address a if it lies inside
// one of m's mappings, current or superseded.
func (m *Map) mappedOffset(a uintptr) (uint64, bool) {
	if mp := m.cur.Load(); mp != nil {
		if off, ok := mp.offsetOf(a); ok {
			return off, true
		}
	}
	// The fault may be in a superseded mapping that a goroutine was
	// still inside. m.reopen is not held here: every method releases it
	// by a deferred call, which ran before this one.
	m.reopen.Lock()
	defer m.reopen.Unlock()
	for _, mp := range m.reopen.old {
		if off, ok := mp.offsetOf(a); ok {
			return off, true
		}
	}
	return 0, false
}

// offsetOf returns the file offset of address a if it lies inside mp's
// mapping or its separate lock mapping.
func (mp *mapping) offsetOf(a uintptr) (uint64, bool) {
	if mp.r != nil {
		if off, ok := addrIn(mp.r.mem, a); ok {
			return off, true
		}
	}
	if off, ok := addrIn(mp.lockMem, a); ok {
		return lockRegionOff + off, true
	}
	return 0, false
}

// catchOwnFault runs fn, which touches mp's mappings while mp is no Map's
// yet: Create, Replace and Grow format and fill a new file in it, Open
// checks the header and the lock of the file it mapped. A local process
// may truncate the file meanwhile (a scratch file's name is no secret, and
// Open's size may be stale by the time it reads); the fault is then fn's
// failure, an EPROTO FileError naming path, the offset and what was being
// done to the file, not the death of the process. Any other panic goes
// on.
func (mp *mapping) catchOwnFault(path, doing string, fn func() error) (err error) {
	defer func(prev bool) {
		debug.SetPanicOnFault(prev)
		if p := recover(); p != nil {
			off := faultOffset(p, mp.offsetOf)
			err = &FileError{Path: path, Off: off, Reason: "fault: file truncated while it was " + doing, No: wire.EPROTO}
		}
	}(debug.SetPanicOnFault(true))
	return fn()
}

// unlockOnFault runs fn, which a caller runs with mp's write hold. If fn
// faults, it releases the hold (and passes the panic on) without making
// the write sequence even: the write stopped part way, and readers and
// Verify must see it as interrupted. A write hold left behind would stop
// every process's writers and readers of the file.
func (mp *mapping) unlockOnFault(fn func() error) error {
	done := false
	defer func() {
		if !done {
			mp.lk.Unlock()
		}
	}()
	err := fn()
	done = true
	return err
}

// detachLock releases lk's slot in the lock page. A fault there (the page
// truncated away) leaves nothing to release: the handle is dropped, and
// the mapping is unmapped as usual.
func detachLock(lk *lock.RWLock) {
	defer func(prev bool) {
		debug.SetPanicOnFault(prev)
		if p := recover(); p != nil {
			if _, ok := p.(faultPanic); !ok {
				panic(p)
			}
		}
	}(debug.SetPanicOnFault(true))
	lk.Detach()
}
