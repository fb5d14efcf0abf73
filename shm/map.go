package shm

import (
	"os"
	"runtime/debug"
	"sync"
	"sync/atomic"

	"fastcall/lock"
	"fastcall/wire"

	"golang.org/x/sys/unix"
)

// Map is an open shared-memory map. Every method takes the file's lock for
// its own duration; callbacks (View, Range, Prefix) run under the shared
// lock and must not retain the slices they are lent, nor call any method of
// a Map on the same file (the lock is not re-entrant: with a writer waiting,
// a nested read would wait forever).
//
// Generations: when another process (or this one) grows the file, the old
// file is marked superseded; the next operation of this Map notices it
// under the lock and reopens the path. A Grow that died after its rename
// and before that mark leaves its writer's mark on the old file (odd write
// sequence, owner-died flag); an operation that finds it under the shared
// lock compares the path's inode with the mapping's and reopens if they
// differ. Superseded mappings stay mapped until Close, so a goroutine
// still inside an old mapping never faults.
//
// Faults: a method that touches a page another process truncated away
// returns an error that unwraps to wire.EPROTO instead of dying of
// SIGBUS (fault.go); if the path names another file by then (a Grow
// elsewhere that could not mark the truncated file superseded), the next
// call reopens it.
type Map struct {
	path string
	opts Options
	cur  atomic.Pointer[mapping]

	// reopen guards old, the swap of cur and Grow.
	reopen struct {
		sync.Mutex
		old []*mapping
	}
}

// maxReopens bounds the reopen loop of one operation.
const maxReopens = 8

// Create makes a new map file of size bytes (rounded up to 4096, at least
// MinSize) at path, which must not exist (wire.EEXIST). The file appears at
// path only once it is completely formatted. opts.Mode must give neither
// group nor others write permission (wire.EINVAL): Open refuses such a
// file.
func Create(path string, size int64, opts Options) (*Map, error) {
	return create(path, size, opts, false)
}

// Replace is Create for a path that may name a file already: the new map
// is formatted under a scratch name made with O_EXCL and renamed over
// whatever the path names (a file Open refused as untrusted, wire.EPERM,
// or as not a map, wire.EPROTO). Processes that mapped the replaced file
// are not told: it is not marked superseded, since it may be another
// user's. A rename refused by the directory (a sticky directory and a file
// of another owner) is wire.EPERM, and the path is left as it was.
func Replace(path string, size int64, opts Options) (*Map, error) {
	return create(path, size, opts, true)
}

// create is Create and Replace; replace says whether the new file is
// renamed over the path (Replace) or linked to it (Create).
func create(path string, size int64, opts Options, replace bool) (*Map, error) {
	if !hostLittleEndian {
		return nil, wire.ENOSYS
	}
	o := opts.withDefaults()
	if o.ReadOnly || size < MinSize || o.check() != wire.OK {
		return nil, wire.EINVAL
	}
	m := &Map{path: o.resolve(path), opts: o}
	mp, tmp, err := createScratch(m.path, align(uint64(size), arenaAlign), o, 1)
	if err != nil {
		return nil, err
	}
	if replace {
		err = os.Rename(tmp, m.path)
	} else {
		err = os.Link(tmp, m.path)
	}
	if err != nil {
		mp.close()
		os.Remove(tmp)
		return nil, osErr(m.path, "put in place", err)
	}
	if !replace {
		os.Remove(tmp)
	}
	mp.r.path = m.path
	m.cur.Store(mp)
	return m, nil
}

// Open maps an existing map file. A file that is not a map, of another
// version, truncated or with a damaged header fails with an error that
// unwraps to wire.EPROTO. Open checks the header only; Verify checks the
// rest.
func Open(path string, opts Options) (*Map, error) {
	if !hostLittleEndian {
		return nil, wire.ENOSYS
	}
	o := opts.withDefaults()
	if e := o.check(); e != wire.OK {
		return nil, e
	}
	m := &Map{path: o.resolve(path), opts: o}
	mp, err := openMapping(m.path, o)
	if err != nil {
		return nil, err
	}
	m.cur.Store(mp)
	return m, nil
}

// Path returns the file path of the map.
func (m *Map) Path() string { return m.path }

// Close unmaps every mapping of m and releases its lock slots. It must not
// run concurrently with other methods of m; afterwards they return
// wire.ECLOSED.
func (m *Map) Close() error {
	mp := m.cur.Swap(nil)
	if mp == nil {
		return wire.ECLOSED
	}
	m.reopen.Lock()
	old := m.reopen.old
	m.reopen.old = nil
	m.reopen.Unlock()
	err := mp.close()
	for _, o := range old {
		o.close()
	}
	return err
}

// rlock returns the current mapping with a read hold taken, reopening the
// path if the mapping was superseded.
func (m *Map) rlock() (*mapping, error) {
	for try := 0; try < maxReopens; try++ {
		mp := m.cur.Load()
		if mp == nil {
			return nil, wire.ECLOSED
		}
		var err error
		if m.opts.Timeout > 0 {
			err = mp.lk.RLockTimeout(m.opts.Timeout)
		} else {
			err = mp.lk.RLock()
		}
		if err != nil {
			return nil, err
		}
		if !mp.r.superseded() && !m.replacedAfterDeath(mp) {
			return mp, nil
		}
		mp.lk.RUnlock()
		if err := m.reopenFrom(mp); err != nil {
			return nil, err
		}
	}
	return nil, wire.EAGAIN
}

// replacedAfterDeath is called with a read hold on mp. It reports whether
// a writer died inside mp (the write sequence is odd although the caller
// holds the lock shared, or the lock's owner-died flag is set) and the
// path now names another file: a Grow that died between its rename and
// marking mp superseded. Only a writer's recovery marks mp then, and a
// read-only Map never recovers, so readers look at the path themselves.
// The path is stat'ed only while a dead writer's mark is on mp.
func (m *Map) replacedAfterDeath(mp *mapping) bool {
	if !mp.interrupted() {
		return false
	}
	var st unix.Stat_t
	return unix.Stat(m.path, &st) == nil && uint64(st.Ino) != mp.ino
}

// lockWrite takes mp's write hold and makes the write sequence odd. A hold
// inherited from a dead writer is repaired first (Verify, Repair,
// MarkConsistent); a file that cannot be repaired gives wire.EPROTO and no
// hold. The hold is released with unlockWrite.
func (m *Map) lockWrite(mp *mapping) error {
	var err error
	if m.opts.Timeout > 0 {
		err = mp.lk.LockTimeout(m.opts.Timeout)
	} else {
		err = mp.lk.Lock()
	}
	if err != nil && err != wire.EOWNERDEAD {
		return err
	}
	mp.r.beginWriteLocked()
	if err == wire.EOWNERDEAD {
		if err = mp.unlockOnFault(func() error { return m.recoverLocked(mp) }); err != nil {
			mp.unlockWrite()
		}
	}
	return err
}

// wlock returns the current mapping with the write hold taken, reopening
// the path if the mapping was superseded.
func (m *Map) wlock() (*mapping, error) { return m.wlockReopen(false) }

// wlockHeld is wlock for a caller that holds m.reopen: it reopens in place.
func (m *Map) wlockHeld() (*mapping, error) { return m.wlockReopen(true) }

// wlockReopen is wlock; held says whether the caller holds m.reopen.
func (m *Map) wlockReopen(held bool) (*mapping, error) {
	if m.opts.ReadOnly {
		return nil, wire.EINVAL
	}
	for try := 0; try < maxReopens; try++ {
		mp := m.cur.Load()
		if mp == nil {
			return nil, wire.ECLOSED
		}
		if err := m.lockWrite(mp); err != nil {
			return nil, err
		}
		if !mp.r.superseded() {
			return mp, nil
		}
		mp.unlockWrite()
		var err error
		if held {
			err = m.reopenLocked(mp)
		} else {
			err = m.reopenFrom(mp)
		}
		if err != nil {
			return nil, err
		}
	}
	return nil, wire.EAGAIN
}

// recoverLocked repairs mp after its previous writer died, and marks mp
// superseded if that writer was a Grow that had already renamed the new
// file over the path.
func (m *Map) recoverLocked(mp *mapping) error {
	if err := mp.r.repairLocked(); err != nil {
		return err
	}
	mp.lk.MarkConsistent()
	var st unix.Stat_t
	if unix.Stat(m.path, &st) == nil && !mp.r.superseded() {
		if uint64(st.Ino) != mp.ino {
			mp.r.setHdr(hdrGenOff, mp.r.generation()|genSuperseded)
		}
	}
	return nil
}

// reopenFrom replaces the superseded mapping old by a fresh open of the
// path, unless another goroutine already did.
func (m *Map) reopenFrom(old *mapping) error {
	m.reopen.Lock()
	defer m.reopen.Unlock()
	if m.cur.Load() != old {
		return nil
	}
	return m.reopenLocked(old)
}

// reopenLocked replaces the superseded mapping old with the file now at
// the path; m.reopen is held.
func (m *Map) reopenLocked(old *mapping) error {
	mp, err := m.openNext(old)
	if err != nil {
		return err
	}
	m.reopen.old = append(m.reopen.old, old)
	m.cur.Store(mp)
	return nil
}

// openNext opens the file that superseded old at the path. Finding old
// itself there means its superseded flag is damaged: wire.EPROTO.
func (m *Map) openNext(old *mapping) (*mapping, error) {
	mp, err := openMapping(m.path, m.opts)
	if err != nil {
		return nil, err
	}
	if mp.ino == old.ino {
		mp.close()
		return nil, old.r.corrupt(hdrGenOff, "superseded flag set on the current file")
	}
	return mp, nil
}

// Get copies the value of key into dst and returns its length. It returns
// wire.ENOENT if key is absent, and wire.EMSGSIZE with the length needed if
// dst is too short (dst then holds nothing of the value; it is unchanged
// unless a write raced with the call). Get allocates nothing.
//
// Where seqReads allows it, Get first reads without the lock and keeps the
// answer only if no writer was inside meanwhile (seqread.go); otherwise it
// takes the shared lock.
func (m *Map) Get(key, dst []byte) (n int, err error) {
	// catchFault written out: a deferred closure costs less than a
	// deferred call with arguments, which goes through a wrapper.
	prev := guard()
	defer func() {
		debug.SetPanicOnFault(prev)
		if p := recover(); p != nil {
			err = m.faultError(p)
		}
	}()
	if mp := m.cur.Load(); seqReads && mp != nil {
		n, e := mp.r.getSeq(key, dst)
		if e == errSeqMoved {
			// A write moved the sequence during the attempt: one more.
			n, e = mp.r.getSeq(key, dst)
		}
		if e == wire.OK {
			return n, nil
		}
		if e != errSeqMoved && e != errSeqBusy {
			return n, e
		}
	}
	return m.getLocked(key, dst)
}

// getLocked is Get under the shared lock: where there is no lock-free
// read, after two attempts at it that writes moved, and at once when a
// writer is inside, died inside, or the file was superseded.
func (m *Map) getLocked(key, dst []byte) (int, error) {
	mp, err := m.rlock()
	if err != nil {
		return 0, err
	}
	defer mp.lk.RUnlock()
	return mp.r.getInto(key, dst, keyHash(key))
}

// View calls fn with the value of key, lent from the mapping under the
// shared lock: fn must not retain val or write to it.
func (m *Map) View(key []byte, fn func(val []byte)) (err error) {
	defer m.catchFault(guard(), &err)
	mp, err := m.rlock()
	if err != nil {
		return err
	}
	defer mp.lk.RUnlock()
	v, err := mp.r.lookup(key)
	if err != nil {
		return err
	}
	fn(v)
	return nil
}

// Range calls fn for every key k with from <= k < to in byte order (to nil:
// no upper bound), until fn returns false. Keys and values are lent as in
// View. The whole walk holds the shared lock.
func (m *Map) Range(from, to []byte, fn func(key, val []byte) bool) error {
	return m.scan(from, to, false, fn)
}

// Prefix calls fn, in order, for every key that starts with prefix, as
// Range does.
func (m *Map) Prefix(prefix []byte, fn func(key, val []byte) bool) error {
	return m.scan(prefix, nil, true, fn)
}

// scan is Range and Prefix: the reader's scan under the shared lock, a
// fault in the mapping turned into an error.
func (m *Map) scan(from, to []byte, prefix bool, fn func(key, val []byte) bool) (err error) {
	defer m.catchFault(guard(), &err)
	mp, err := m.rlock()
	if err != nil {
		return err
	}
	defer mp.lk.RUnlock()
	return mp.r.scan(from, to, prefix, fn)
}

// Len returns the number of keys.
func (m *Map) Len() (n int, err error) {
	defer m.catchFault(guard(), &err)
	mp, err := m.rlock()
	if err != nil {
		return 0, err
	}
	defer mp.lk.RUnlock()
	return int(mp.r.hdr(hdrNodesOff)), nil
}

// Put inserts key with value val, or replaces its value. When it returns
// nil the value is in the shared mapping, visible to every reader and safe
// from the death of any process. wire.ENOSPC (arena or index full) and
// wire.EINVAL (key empty or longer than MaxKeyLen, value longer than
// MaxValueLen) leave the map unchanged.
func (m *Map) Put(key, val []byte) (err error) {
	defer m.catchFault(guard(), &err)
	mp, err := m.wlock()
	if err != nil {
		return err
	}
	err = mp.unlockOnFault(func() error { return mp.r.putLocked(key, val) })
	mp.unlockWrite()
	return err
}

// Delete removes key; wire.ENOENT if it is absent. Its space is reused.
func (m *Map) Delete(key []byte) (err error) {
	defer m.catchFault(guard(), &err)
	mp, err := m.wlock()
	if err != nil {
		return err
	}
	err = mp.unlockOnFault(func() error { return mp.r.deleteLocked(key) })
	mp.unlockWrite()
	return err
}

// Verify checks the whole file under the shared lock and returns nil or an
// error that unwraps to wire.EPROTO, naming the offset of the first
// problem. It accepts the residue of an interrupted writer (see verify.go),
// which the next writer repairs, only while the file shows that a writer
// was interrupted (interrupted); otherwise no writer will repair it, and
// the same residue is reported. It never panics and never reads outside
// the mapping.
func (m *Map) Verify() (err error) {
	defer m.catchFault(guard(), &err)
	mp, err := m.rlock()
	if err != nil {
		return err
	}
	defer mp.lk.RUnlock()
	return mp.r.verify(!mp.interrupted())
}

// interrupted reports, under a hold of mp's lock, whether a writer may have
// left residue in mp since its last repair: the write sequence is odd (a
// writer died between its first and last store), or the owner-died flag is
// set (a writer died holding the lock, or a repair failed). A writer that
// finishes, and every repair that succeeds, leaves neither.
func (mp *mapping) interrupted() bool {
	return mp.r.hdr(hdrWriteSeqOff)&1 != 0 || mp.lk.NeedsRepair()
}

// Repair takes the write lock and repairs the file whatever the lock says,
// then checks it strictly. Writers repair on their own after a crash; this
// is for operators and tests.
func (m *Map) Repair() (err error) {
	defer m.catchFault(guard(), &err)
	mp, err := m.wlock()
	if err != nil {
		return err
	}
	err = mp.unlockOnFault(func() error {
		if err := mp.r.repairLocked(); err != nil {
			return err
		}
		mp.lk.MarkConsistent()
		return nil
	})
	mp.unlockWrite()
	return err
}

// Stats is a snapshot of a map file. Fields are read one by one.
type Stats struct {
	Generation uint64 // bumped by every Grow
	FileSize   uint64
	ArenaSize  uint64
	UsedBytes  uint64 // in allocated blocks: nodes, external values, head
	FreeBytes  uint64 // in blocks on the free lists
	TailBytes  uint64 // never allocated yet (above the bump pointer)
	Nodes      uint64 // keys
	Levels     int    // skiplist levels in use
	IndexSlots uint64 // room per buffer: the most the index can grow to
	IndexInUse uint64 // slots the active buffer uses, sized to the keys
	IndexLive  uint64
	IndexTombs uint64
	Writes     uint64 // completed Put and Delete calls
	Repairs    uint64 // repairs after a dead writer (or Repair calls)
	Lock       lock.Stats
}

// Stats returns a snapshot of the map.
func (m *Map) Stats() (_ Stats, err error) {
	defer m.catchFault(guard(), &err)
	mp, err := m.rlock()
	if err != nil {
		return Stats{}, err
	}
	defer mp.lk.RUnlock()
	r := mp.r
	_, mask := r.activeIndex()
	s := Stats{
		Generation: r.generation() & genMask,
		FileSize:   r.fileSize,
		ArenaSize:  r.arenaEnd - r.arenaOff,
		UsedBytes:  r.hdr(hdrUsedOff),
		FreeBytes:  r.hdr(hdrFreeBytesOff),
		Nodes:      r.hdr(hdrNodesOff),
		IndexSlots: r.slots,
		IndexInUse: mask + 1,
		IndexLive:  r.hdr(hdrIndexLiveOff),
		IndexTombs: r.hdr(hdrIndexTombsOff),
		Writes:     r.hdr(hdrWritesOff),
		Repairs:    r.hdr(hdrRepairsOff),
		Lock:       mp.lk.Stats(),
	}
	if top := r.hdr(hdrBumpOff); top <= r.arenaEnd {
		s.TailBytes = r.arenaEnd - top
	}
	for i := maxLevel - 1; i >= 0; i-- {
		if r.next(r.head(), uint64(i)) != 0 {
			s.Levels = i + 1
			break
		}
	}
	return s, nil
}

// Grow copies the map into a new file of newSize bytes and renames it over
// the path. Readers and writers of the old file (in any process) notice the
// superseded flag at their next operation and reopen the path; until then
// the old file stays intact and readable. newSize must exceed the current
// size (wire.EINVAL). A Grow that dies before the rename leaves the old file
// current and a scratch file "<path>.tmp.<pid>.<n>" behind. A Grow that dies
// after the rename and before marking the old file leaves the old file with
// a dead writer's mark; every Map's next operation under the shared lock
// finds the mark, sees another inode at the path and reopens it. A fault
// in marking the old file (truncated by a local process) is EPROTO with
// the new file already current.
func (m *Map) Grow(newSize int64) (err error) {
	defer m.catchFault(guard(), &err)
	m.reopen.Lock()
	defer m.reopen.Unlock()
	mp, err := m.wlockHeld()
	if err != nil {
		return err
	}
	err = mp.unlockOnFault(func() error { return m.growLocked(mp, newSize) })
	mp.unlockWrite()
	return err
}

// growLocked is Grow with m.reopen and mp's write hold held.
func (m *Map) growLocked(mp *mapping, newSize int64) error {
	size := align(uint64(newSize), arenaAlign)
	if newSize <= 0 || size <= mp.r.fileSize {
		return wire.EINVAL
	}
	nm, tmp, err := createScratch(m.path, size, m.opts, (mp.r.generation()&genMask)+1)
	if err != nil {
		return err
	}
	// Until the rename the scratch file is this Grow's alone, but a
	// local process may still truncate it: a fault in nm fails the Grow
	// (EPROTO) and the old file stays current. Every failure drops the
	// scratch, a fault in mp too (catchFault's, on the way out).
	kept := false
	defer func() {
		if !kept {
			nm.close()
			os.Remove(tmp)
		}
	}()
	err = nm.catchOwnFault(tmp, "filled", func() error {
		var putErr error
		err := mp.r.scan(nil, nil, false, func(k, v []byte) bool {
			putErr = nm.r.putLocked(k, v)
			return putErr == nil
		})
		if err == nil {
			err = putErr
		}
		return err
	})
	if err == nil {
		err = os.Rename(tmp, m.path)
	}
	if err != nil {
		return err
	}
	// The new file is the path's now: nm becomes current before the
	// old file is marked, since a local process may have truncated the
	// old file and the mark fault (EPROTO on the way out); nm must not
	// be left unowned then, nor mp current.
	kept = true
	nm.r.path = m.path
	m.reopen.old = append(m.reopen.old, mp)
	m.cur.Store(nm)
	mp.r.setHdr(hdrGenOff, mp.r.generation()|genSuperseded)
	return nil
}
