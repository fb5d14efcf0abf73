package center

import (
	"encoding/binary"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"

	"fastcall/node/registry"
	"fastcall/node/registry/sdk"
	"fastcall/wire"

	"github.com/cespare/xxhash/v2"
)

// Persistence (docs/REGISTRY.md, "Persistence"). A center's data
// directory holds two files:
//
//	registry.snap  the store at some moment, written whole and renamed in
//	registry.log   every record applied since, appended
//
// Both are a file header and then frames. A frame is
//
//	[0:4]   body length n (u32, big-endian)
//	[4:12]  xxhash64 of bytes [0:4] followed by the body (big-endian)
//	[12:12+n] body: u16 key length, key, record (sdk format)
//
// Recovery loads the snapshot (which must be whole: header, frames, then a
// trailer repeating the frame count) and replays the log; versions decide,
// so replaying a record the snapshot already holds changes nothing. The
// first log frame that is short, too long or fails its checksum ends the
// log if no frame that passes its checksum starts after it (a torn
// tail): it and everything after it are cut off (truncated) and never
// applied. If one does, the log was damaged in the middle and the center
// refuses to start (EPROTO naming the log and the offset), cutting
// nothing: the frames after the damage may hold acknowledged writes.
// The log and the directory are then fsynced before the log is taken
// for durable: what was read may have been only in the page cache.
//
// The magic names the record format of the frames: "...02" files hold
// format 2 records (sdk.RecFormat). Files of format 1 ("...01") are
// upgraded as they are read (sdk.UpgradeRecord) and the center then
// rewrites the store at once with a snapshot, which also replaces the
// log (logFile.upgraded); a file with any other magic is refused.
const (
	// LogName and SnapshotName are the files of the log and the
	// snapshot in the data directory (docs/REGISTRY.md).
	LogName      = "registry.log"
	SnapshotName = "registry.snap"
	tmpExt       = ".tmp"

	// fileMode is the mode of the snapshot and the log: the center's own
	// data, readable and writable by its uid only.
	fileMode = 0o600

	logMagic     = "FCRLOG02"
	snapMagic    = "FCRSNP02"
	logMagicV1   = "FCRLOG01" // format 1 records: upgraded when read
	snapMagicV1  = "FCRSNP01"
	snapEndMagic = "FCRSNPOK"
	sizeMagic    = 8
	logHdrSize   = sizeMagic
	sizeCount    = 8
	snapHdrSize  = sizeMagic + sizeCount
	snapEndSize  = sizeMagic + sizeCount

	offFrameLen  = 0
	sizeFrameLen = 4
	offFrameSum  = offFrameLen + sizeFrameLen
	sizeFrameSum = 8
	frameHdrSize = offFrameSum + sizeFrameSum // 12
	sizeKeyLen   = 2
	maxFrameBody = sizeKeyLen + wire.MaxDatagram
)

// FsyncPolicy says when a center's log reaches the disk.
type FsyncPolicy uint8

const (
	// FsyncAlways (the default) syncs the log before a write is
	// acknowledged: a client's write once it is synced here and at the
	// other center (the two fsyncs run at the same time), a replica of
	// the other center's write before registry.CallLogSync answers. Concurrent
	// writers share one fsync (group commit).
	FsyncAlways FsyncPolicy = iota
	// FsyncInterval syncs every Config.FsyncEvery: an acknowledged write
	// may be lost if the machine (not just the process) fails within it.
	FsyncInterval
	// FsyncNever leaves it to the operating system.
	FsyncNever
)

func (p FsyncPolicy) String() string {
	switch p {
	case FsyncAlways:
		return "always"
	case FsyncInterval:
		return "interval"
	case FsyncNever:
		return "never"
	}
	return "?"
}

// logFile is a center's append-only log and its snapshot. append and
// snapshot are called with the center's store lock held (so frames go out
// in apply order); syncTo and whenSynced are called without it.
//
// Lock order: syncMu, then mu, then wait.
type logFile struct {
	disk   Disk
	dir    string
	policy FsyncPolicy
	// incarnation names this opening of the log (random, never 0): a log
	// position is meaningful only within one incarnation. The other
	// center quotes it back in registry.CallLogSync, so that a position handed
	// out before a restart is never taken for one of the new log.
	incarnation uint64
	// syncFile makes a file durable: logFile.fsync. Every fsync of the
	// log, the snapshot and the directory goes through it. Guarded by
	// syncMu (tests replace it).
	syncFile func(f File) error

	mu struct { // guards the file handle and the write offset
		sync.Mutex
		f    File
		size int64 // bytes in the log file
		gen  uint64
		buf  []byte
	}
	// end is mu's (gen, size), readable without mu (registry.CallLogSync checks a
	// position against it on the reader goroutine).
	endGen  atomic.Uint64
	endSize atomic.Int64

	syncMu sync.Mutex    // held during an fsync and while the log file is replaced
	wait   syncState     // what is durable, and who waits for it (logsync.go)
	kick   chan struct{} // wakes the log syncer; capacity 1
	failed atomic.Bool   // wait.err is set: appends are refused

	tornBytes int64 // cut off the log's tail at recovery
	recovered int   // frames applied at recovery (snapshot + log)
	upgraded  bool  // a file held format 1 records: the store must be rewritten
}

// frameSum is the checksum of a frame: its length field then its body.
func frameSum(lenField, body []byte) uint64 {
	var d xxhash.Digest
	d.Reset()
	d.Write(lenField)
	d.Write(body)
	return d.Sum64()
}

// appendFrame appends a frame for (key, rec) to dst.
func appendFrame(dst []byte, key string, rec []byte) []byte {
	n := sizeKeyLen + len(key) + len(rec)
	start := len(dst)
	dst = binary.BigEndian.AppendUint32(dst, uint32(n))
	dst = append(dst, make([]byte, sizeFrameSum)...)
	body := len(dst)
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(key)))
	dst = append(dst, key...)
	dst = append(dst, rec...)
	binary.BigEndian.PutUint64(dst[start+offFrameSum:], frameSum(dst[start:start+sizeFrameLen], dst[body:]))
	return dst
}

// nextFrame decodes the frame at b[off:]. It returns the key, the record
// (views into b) and the offset after the frame, or next < 0 when the
// frame is short, oversized, malformed or fails its checksum.
func nextFrame(b []byte, off int) (key, rec []byte, next int) {
	if len(b)-off < frameHdrSize {
		return nil, nil, -1
	}
	n := int(binary.BigEndian.Uint32(b[off+offFrameLen:]))
	if n < sizeKeyLen || n > maxFrameBody || len(b)-off-frameHdrSize < n {
		return nil, nil, -1
	}
	body := b[off+frameHdrSize : off+frameHdrSize+n]
	if frameSum(b[off:off+sizeFrameLen], body) != binary.BigEndian.Uint64(b[off+offFrameSum:]) {
		return nil, nil, -1
	}
	k := int(binary.BigEndian.Uint16(body))
	if sizeKeyLen+k > n {
		return nil, nil, -1
	}
	return body[sizeKeyLen : sizeKeyLen+k], body[sizeKeyLen+k:], off + frameHdrSize + n
}

// upgradeApply returns apply behind the upgrade of format 1 records; a
// record that does not upgrade is dropped, as apply drops a malformed
// one.
func upgradeApply(apply func(key string, rec []byte)) func(key string, rec []byte) {
	return func(key string, rec []byte) {
		if r, e := sdk.UpgradeRecord(rec); e == wire.OK {
			apply(key, r)
		}
	}
}

// openLog recovers the store from dir (creating the directory and an
// empty log if needed) through apply, cuts a torn log tail, and returns
// the log open for appending. A damaged snapshot, or a log damaged
// before a frame that is whole, is EPROTO: the center refuses to start
// rather than run on partial data. Files of record
// format 1 are upgraded as they are read and upgraded is set: the caller
// writes a snapshot before it appends anything.
func openLog(disk Disk, ids registry.IDSource, dir string, policy FsyncPolicy, apply func(key string, rec []byte)) (*logFile, error) {
	// Whoever may write the directory may remove, rename or swap either
	// file between two starts, whatever the files' own owner and mode.
	if err := disk.PrepareDir(dir); err != nil {
		return nil, err
	}
	l := &logFile{disk: disk, dir: dir, policy: policy, incarnation: ids(), kick: make(chan struct{}, 1)}
	l.syncFile = l.fsync
	if b, err := disk.ReadFile(filepath.Join(dir, SnapshotName)); err == nil {
		snapApply := apply
		if len(b) >= sizeMagic && string(b[:sizeMagic]) == snapMagicV1 {
			snapApply, l.upgraded = upgradeApply(apply), true
		}
		n, err := loadSnapshot(b, snapApply)
		if err != nil {
			return nil, damaged(filepath.Join(dir, SnapshotName), err)
		}
		l.recovered += n
	} else if !os.IsNotExist(err) {
		return nil, err
	}
	path := filepath.Join(dir, LogName)
	f, err := disk.OpenFile(path)
	if err != nil && !os.IsNotExist(err) {
		return nil, err
	}
	var b []byte
	if f != nil {
		if b, err = io.ReadAll(f); err != nil {
			f.Close()
			return nil, err
		}
	}
	logApply := apply
	switch {
	case len(b) < logHdrSize || string(b[:sizeMagic]) == logMagic:
	case string(b[:sizeMagic]) == logMagicV1:
		logApply, l.upgraded = upgradeApply(apply), true
	default:
		// A whole header of another format: refuse rather than take the
		// log for one cut while it was created.
		f.Close()
		return nil, damaged(path, wire.EPROTO)
	}
	if len(b) < logHdrSize {
		if f != nil {
			f.Close()
		}
		if len(b) != 0 {
			// A header that never made it whole: the log was being
			// created. Nothing in it was acknowledged.
			l.tornBytes = int64(len(b))
		}
		if err := l.newLogFileLocked(); err != nil {
			return nil, err
		}
		return l, nil
	}
	off := logHdrSize
	for off < len(b) {
		k, rec, next := nextFrame(b, off)
		if next < 0 {
			break
		}
		logApply(string(k), append([]byte(nil), rec...))
		l.recovered++
		off = next
	}
	if off < len(b) {
		if goodFrameAfter(b, off) {
			// Not a torn tail: a whole frame follows the bad one, and
			// frames reach the disk in order, so the bad frame was
			// written whole and damaged since, and the frames after it
			// may hold acknowledged writes. Refuse rather than cut them.
			f.Close()
			return nil, &damagedFile{path: path, off: int64(off), e: wire.EPROTO}
		}
		l.tornBytes = int64(len(b) - off)
		if err := f.Truncate(int64(off)); err != nil {
			f.Close()
			return nil, err
		}
	}
	// What was read may be only in the page cache: the previous process
	// died after appending frames whose fsync never returned, or after
	// renaming in a log (or a snapshot) whose directory fsync failed.
	// Its records are in the store from now on, answered to reads and
	// to retries of the operations that made them as durable: make them
	// so before anything is served.
	if err := l.syncFile(f); err != nil {
		f.Close()
		return nil, err
	}
	if err := l.syncDir(); err != nil {
		f.Close()
		return nil, err
	}
	if _, err := f.Seek(int64(off), 0); err != nil {
		f.Close()
		return nil, err
	}
	l.mu.f = f
	l.mu.size = int64(off)
	l.mu.gen = 1
	l.setEndLocked()
	l.wait.gen, l.wait.synced = 1, int64(off)
	return l, nil
}

// goodFrameAfter reports whether a frame that parses and passes its
// checksum starts anywhere after the bad frame at b[bad:]. The bad
// frame's length field may itself be what is damaged, so every offset
// is tried, not only the one it names.
func goodFrameAfter(b []byte, bad int) bool {
	for p := bad + 1; len(b)-p >= frameHdrSize; p++ {
		if _, _, next := nextFrame(b, p); next >= 0 {
			return true
		}
	}
	return false
}

// damagedFile is a file of the data directory the center refuses to
// start on: its error number (EPROTO) for callers, its path (and, for
// damage inside the log, the offset of the first bad frame) for the
// operator.
type damagedFile struct {
	path string
	off  int64 // offset of the damage; < 0: not known
	e    wire.Errno
}

func (d *damagedFile) Error() string {
	if d.off < 0 {
		return d.path + ": damaged: " + d.e.Error()
	}
	return d.path + ": damaged at offset " + strconv.FormatInt(d.off, 10) + ": " + d.e.Error()
}

func (d *damagedFile) Errno() wire.Errno { return d.e }
func (d *damagedFile) Unwrap() error     { return d.e }

// damaged names path on an error number err; other errors (those of
// the file system name their path already) pass unchanged.
func damaged(path string, err error) error {
	if e, ok := err.(wire.Errno); ok {
		return &damagedFile{path: path, off: -1, e: e}
	}
	return err
}

// loadSnapshot applies every frame of a snapshot image.
func loadSnapshot(b []byte, apply func(key string, rec []byte)) (int, error) {
	if len(b) < snapHdrSize+snapEndSize || string(b[:sizeMagic]) != snapMagic && string(b[:sizeMagic]) != snapMagicV1 ||
		string(b[len(b)-snapEndSize:len(b)-sizeCount]) != snapEndMagic {
		return 0, wire.EPROTO
	}
	count := binary.BigEndian.Uint64(b[sizeMagic:])
	if binary.BigEndian.Uint64(b[len(b)-sizeCount:]) != count {
		return 0, wire.EPROTO
	}
	body := b[:len(b)-snapEndSize]
	off, n := snapHdrSize, uint64(0)
	for off < len(body) {
		k, rec, next := nextFrame(body, off)
		if next < 0 {
			return 0, wire.EPROTO
		}
		apply(string(k), append([]byte(nil), rec...))
		n++
		off = next
	}
	if n != count {
		return 0, wire.EPROTO
	}
	return int(n), nil
}

// newLogFileLocked replaces the log with an empty one (header only),
// written aside and renamed in. l.mu is held or l is not yet shared.
func (l *logFile) newLogFileLocked() error {
	path := filepath.Join(l.dir, LogName)
	tmp := path + tmpExt
	f, err := l.disk.CreateFile(tmp, fileMode)
	if err != nil {
		return err
	}
	if _, err := f.Write([]byte(logMagic)); err != nil {
		f.Close()
		return err
	}
	if err := l.syncFile(f); err != nil {
		f.Close()
		return err
	}
	if err := l.disk.Rename(tmp, path); err != nil {
		f.Close()
		return err
	}
	// From here the log's name is the new file's: appends go to it
	// whatever the directory's fsync says, never to the old file, which
	// no name holds any more.
	if l.mu.f != nil {
		l.mu.f.Close()
	}
	l.mu.f = f
	l.mu.size = logHdrSize
	l.mu.gen++
	l.setEndLocked()
	if err := l.syncDir(); err != nil {
		// The old log's frames are in the snapshot that replaced it
		// (or it was empty): durable. Whether the new name is on disk
		// is not known, so appends are refused until a snapshot
		// rewrites the store.
		l.syncedUpTo(logPos{gen: l.mu.gen}, nil, false)
		l.syncedUpTo(logPos{}, err, false)
		return err
	}
	// Every frame of the old log is in the snapshot that replaced it, or
	// the log was empty: all of it is durable, whatever fsync failed
	// before.
	l.syncedUpTo(logPos{gen: l.mu.gen, off: logHdrSize}, nil, true)
	return nil
}

// setEndLocked publishes the write position; l.mu is held.
func (l *logFile) setEndLocked() {
	l.endGen.Store(l.mu.gen)
	l.endSize.Store(l.mu.size)
}

// fsync makes f durable.
func (l *logFile) fsync(f File) error { return f.Sync() }

// syncDir makes the directory's entries durable (after a rename).
func (l *logFile) syncDir() error {
	d, err := l.disk.OpenDir(l.dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return l.syncFile(d)
}

// append writes one frame and returns the log position after it, for
// syncTo. After a failed write or fsync it refuses (EFAULT) until a
// snapshot has rewritten the store: a frame written in part, or dropped
// from the page cache by a failed fsync that a later one would not
// report, would end the log at recovery, taking every frame after it.
func (l *logFile) append(key string, rec []byte) (logPos, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.mu.f == nil {
		return logPos{}, wire.ECLOSED
	}
	if l.failed.Load() {
		return logPos{}, wire.EFAULT
	}
	l.mu.buf = appendFrame(l.mu.buf[:0], key, rec)
	n, err := l.mu.f.Write(l.mu.buf)
	l.mu.size += int64(n)
	l.setEndLocked()
	if err != nil {
		l.syncedUpTo(logPos{}, err, false)
		return logPos{}, err
	}
	return logPos{gen: l.mu.gen, off: l.mu.size}, nil
}

// logPos is a position in a generation of the log file. Generations
// start at 1 and grow with each snapshot; the zero logPos is "nothing to
// sync".
type logPos struct {
	gen uint64
	off int64
}

// end returns the position after the last frame appended.
func (l *logFile) end() logPos {
	l.mu.Lock()
	defer l.mu.Unlock()
	return logPos{gen: l.mu.gen, off: l.mu.size}
}

// size returns the bytes in the current log file.
func (l *logFile) size() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.mu.size
}

// snapshot writes every entry that each yields to a new snapshot, renames
// it in and starts an empty log. The caller holds the store lock, so no
// frame is appended meanwhile; a crash at any point leaves either the old
// snapshot and the whole log, or the new snapshot and a log whose frames
// it already holds.
func (l *logFile) snapshot(each func(fn func(key string, rec []byte))) error {
	path := filepath.Join(l.dir, SnapshotName)
	tmp := path + tmpExt
	buf := make([]byte, snapHdrSize, 1<<16)
	copy(buf, snapMagic)
	var count uint64
	each(func(key string, rec []byte) {
		buf = appendFrame(buf, key, rec)
		count++
	})
	binary.BigEndian.PutUint64(buf[sizeMagic:], count)
	buf = append(buf, snapEndMagic...)
	buf = binary.BigEndian.AppendUint64(buf, count)
	f, err := l.disk.CreateFile(tmp, fileMode)
	if err != nil {
		return err
	}
	if _, err := f.Write(buf); err != nil {
		f.Close()
		return err
	}
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	if err := l.syncFile(f); err != nil {
		f.Close()
		return err
	}
	f.Close()
	if err := l.disk.Rename(tmp, path); err != nil {
		return err
	}
	if err := l.syncDir(); err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.newLogFileLocked()
}

// close closes the log file after a final sync and answers every
// remaining waiter: OK if the final sync covered it, ECLOSED otherwise.
func (l *logFile) close() error {
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.mu.f == nil {
		return nil
	}
	err := l.syncFile(l.mu.f)
	if cerr := l.mu.f.Close(); err == nil {
		err = cerr
	}
	l.mu.f = nil
	l.syncedUpTo(logPos{gen: l.mu.gen, off: l.mu.size}, err, false)
	l.shut()
	return err
}
