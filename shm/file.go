package shm

import (
	"errors"
	"os"
	"strconv"
	"sync/atomic"

	"fastcall/lock"
	"fastcall/shm/fileowner"
	"fastcall/wire"

	"golang.org/x/sys/unix"
)

// mapping is one open file: its region, its lock handle and the resources
// to release. A mapping is immutable after openMapping/createMapping and is
// shared by the goroutines of its Map.
type mapping struct {
	r       *region
	lk      *lock.RWLock
	f       *os.File
	lockMem []byte // separate writable lock mapping of a read-only Map; nil otherwise
	ino     uint64
}

func init() {
	if lockSize != lock.Size || lock.Size > lockRegionSize {
		panic("shm: lockSize differs from lock.Size")
	}
}

// osErr turns an operating system error into a FileError with a number.
func osErr(path, what string, err error) error {
	no := wire.EINVAL
	switch {
	case errors.Is(err, os.ErrNotExist):
		no = wire.ENOENT
	case errors.Is(err, os.ErrExist):
		no = wire.EEXIST
	case errors.Is(err, os.ErrPermission):
		no = wire.EPERM
	case errors.Is(err, unix.ENOSPC):
		no = wire.ENOSPC
	}
	return &FileError{Path: path, Reason: what + ": " + err.Error(), No: no}
}

// createMapping makes a new file at path (which must not exist), formats
// an empty map of size bytes into it and maps it read-write. A mode that
// lets group or others write is wire.EINVAL: openMapping would refuse the
// file.
func createMapping(path string, size uint64, o Options, gen uint64) (*mapping, error) {
	l, ok := computeLayout(size, uint64(o.IndexSlots))
	if !ok || o.Mode.Perm()&fileowner.GroupOtherWrite != 0 {
		return nil, wire.EINVAL
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, o.Mode.Perm())
	if err != nil {
		return nil, osErr(path, "create", err)
	}
	fail := func(e error) (*mapping, error) {
		f.Close()
		os.Remove(path)
		return nil, e
	}
	if err := f.Chmod(o.Mode.Perm()); err != nil {
		return fail(osErr(path, "chmod", err))
	}
	if err := preallocate(int(f.Fd()), int64(size)); err != nil {
		return fail(osErr(path, "fallocate", err))
	}
	if err := f.Truncate(int64(size)); err != nil {
		return fail(osErr(path, "truncate", err))
	}
	mem, err := unix.Mmap(int(f.Fd()), 0, int(size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return fail(osErr(path, "mmap", err))
	}
	mp := &mapping{r: &region{mem: mem}, f: f}
	err = mp.catchOwnFault(path, "formatted", func() error {
		mp.r = formatRegion(mem, l, gen)
		var err error
		mp.lk, err = lock.Init(mem[lockRegionOff : lockRegionOff+lockRegionSize])
		return err
	})
	if err != nil {
		unix.Munmap(mem)
		return fail(err)
	}
	mp.r.path = path
	mp.ino = inode(f)
	return mp, nil
}

func inode(f *os.File) uint64 {
	var st unix.Stat_t
	if unix.Fstat(int(f.Fd()), &st) != nil {
		return 0
	}
	return uint64(st.Ino)
}

// openMapping maps an existing file and validates its owner and mode, its
// header and its lock. The file is opened without following a symbolic
// link; a writer (o.ReadOnly false) accepts only a file owned by the
// effective uid, a reader one owned by the effective uid or by root, and
// neither a file that group or others may write (fileowner.Reason):
// wire.EPERM otherwise. Another user's file could hold anything, and its
// owner could rewrite it under every reader.
func openMapping(path string, o Options) (*mapping, error) {
	f, err := os.OpenFile(path, os.O_RDWR|unix.O_NOFOLLOW, 0)
	if err != nil {
		if errors.Is(err, unix.ELOOP) {
			return nil, &FileError{Path: path, Reason: "untrusted file: a symbolic link", No: wire.EPERM}
		}
		return nil, osErr(path, "open", err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		f.Close()
		return nil, osErr(path, "stat", err)
	}
	if why := fileowner.Reason(&st, unix.Geteuid(), o.ReadOnly); why != "" {
		f.Close()
		return nil, &FileError{Path: path, Reason: "untrusted file: " + why, No: wire.EPERM}
	}
	if st.Size < hdrSize || st.Size > 1<<44 {
		f.Close()
		return nil, &FileError{Path: path, Off: uint64(st.Size), Reason: "file too short or too long", No: wire.EPROTO}
	}
	size := int(st.Size)
	if !o.ReadOnly {
		// A file Create did not make may have holes; a store to one on a
		// full tmpfs is SIGBUS. Readers store only to the lock page, which
		// a valid file never leaves a hole (it holds the lock's magic).
		if err := fillHoles(int(f.Fd()), st.Size); err != nil {
			f.Close()
			return nil, osErr(path, "fallocate", err)
		}
	}
	mp := &mapping{f: f, ino: uint64(st.Ino)}
	prot := unix.PROT_READ | unix.PROT_WRITE
	split := o.ReadOnly && os.Getpagesize() <= lockRegionOff && lockRegionOff%os.Getpagesize() == 0
	if split {
		prot = unix.PROT_READ
	}
	mem, err := unix.Mmap(int(f.Fd()), 0, size, prot, unix.MAP_SHARED)
	if err != nil {
		f.Close()
		return nil, osErr(path, "mmap", err)
	}
	mp.r = &region{mem: mem}
	// The size read above may be stale: the reads below fault if the
	// file was truncated since.
	err = mp.catchOwnFault(path, "opened", func() error {
		r, err := attachRegion(mem, path)
		if err != nil {
			return err
		}
		mp.r = r
		lockMem := mem[lockRegionOff : lockRegionOff+lockRegionSize]
		if split {
			mp.lockMem, err = unix.Mmap(int(f.Fd()), lockRegionOff, lockRegionSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
			if err != nil {
				return osErr(path, "mmap lock", err)
			}
			lockMem = mp.lockMem
		}
		if mp.lk, err = lock.Attach(lockMem); err != nil {
			if wire.AsErrno(err) == wire.EPROTO {
				return &FileError{Path: path, Off: lockRegionOff, Reason: "bad lock region", No: wire.EPROTO}
			}
			return err
		}
		return nil
	})
	if err != nil {
		mp.close()
		return nil, err
	}
	return mp, nil
}

// unlockWrite makes the write sequence even and releases the write hold
// that Map.lockWrite took.
func (mp *mapping) unlockWrite() {
	mp.r.endWriteLocked()
	mp.lk.Unlock()
}

// close releases the lock slot, the mappings and the file.
func (mp *mapping) close() error {
	if mp.lk != nil {
		detachLock(mp.lk)
		mp.lk = nil
	}
	if mp.lockMem != nil {
		unix.Munmap(mp.lockMem)
		mp.lockMem = nil
	}
	if mp.r != nil && mp.r.mem != nil {
		unix.Munmap(mp.r.mem)
		mp.r.mem = nil
	}
	return mp.f.Close()
}

// scratchSeq numbers the scratch files this process makes.
var scratchSeq atomic.Uint64

// scratchTries bounds the names createScratch tries. A name that is taken
// holds a scratch file that a process which had this pid before left when
// it died in Create or Grow (pids are reused), or a file another user
// placed there.
const scratchTries = 16

// createScratch is createMapping under a scratch name next to path that
// no file has yet; it returns the name too.
func createScratch(path string, size uint64, o Options, gen uint64) (*mapping, string, error) {
	var err error
	for i := 0; i < scratchTries; i++ {
		tmp := tempPath(path, scratchSeq.Add(1))
		var mp *mapping
		if mp, err = createMapping(tmp, size, o, gen); wire.AsErrno(err) != wire.EEXIST {
			return mp, tmp, err
		}
	}
	return nil, "", err
}

// tempPath names a scratch file next to path; seq makes it unique within
// this process.
func tempPath(path string, seq uint64) string {
	return path + ".tmp." + strconv.Itoa(os.Getpid()) + "." + strconv.FormatUint(seq, 10)
}
