package center

import (
	"encoding/binary"
	"os"
	"path/filepath"

	"fastcall/wire"
)

// A center's epoch (docs/REGISTRY.md, "Versions") grows by one at each
// start and is on disk before the center serves a call, whatever the
// fsync policy: the data directory's registry.epoch holds the last one
// used,
//
//	[0:8]   "FCREPO01"
//	[8:16]  u64 epoch (big-endian)
//
// written aside, synced and renamed in. A missing file starts at 1 (0 is
// the epoch of records upgraded from format 1); a damaged one is EPROTO.
// The epoch is also never below one plus the largest epoch of a record
// recovered from the log, so a lost epoch file cannot make the center
// reuse an epoch its records show.
const (
	epochName  = "registry.epoch"
	epochMagic = "FCREPO01"
	epochSize  = sizeMagic + 8
)

// nextEpoch reads the last epoch, writes the next one durably and
// returns it. floor is the largest epoch among the recovered records.
func nextEpoch(l *logFile, floor uint64) (uint64, error) {
	path := filepath.Join(l.dir, epochName)
	var last uint64
	b, err := l.disk.ReadFile(path)
	switch {
	case err == nil:
		if len(b) != epochSize || string(b[:sizeMagic]) != epochMagic {
			return 0, damaged(path, wire.EPROTO)
		}
		last = binary.BigEndian.Uint64(b[sizeMagic:])
	case !os.IsNotExist(err):
		return 0, err
	}
	next := max(last, floor) + 1
	buf := binary.BigEndian.AppendUint64([]byte(epochMagic), next)
	tmp := path + tmpExt
	f, err := l.disk.CreateFile(tmp, 0o644)
	if err != nil {
		return 0, err
	}
	_, err = f.Write(buf)
	if err == nil {
		err = l.syncFile(f)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, err
	}
	if err := l.disk.Rename(tmp, path); err != nil {
		return 0, err
	}
	if err := l.syncDir(); err != nil {
		return 0, err
	}
	return next, nil
}
