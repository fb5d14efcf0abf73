package shm

import (
	"strconv"

	"fastcall/wire"
)

// FileError reports a malformed or corrupted file: what is wrong and where.
// It carries an error number (wire.EPROTO for bad files) and unwraps to it,
// so errors.Is(err, wire.EPROTO) and wire.AsErrno(err) both work.
type FileError struct {
	Path   string     // file path, "" for an in-memory region
	Off    uint64     // byte offset of the problem in the file
	Reason string     // what is wrong, e.g. "bad magic"
	No     wire.Errno // error number, normally wire.EPROTO
}

func (e *FileError) Error() string {
	s := "shm: "
	if e.Path != "" {
		s += e.Path + ": "
	}
	return s + e.Reason + " at offset " + utoa(e.Off) + ": " + e.No.Error()
}

// Unwrap returns the error number.
func (e *FileError) Unwrap() error { return e.No }

// Errno returns the error number (see wire.AsErrno).
func (e *FileError) Errno() wire.Errno { return e.No }

func (r *region) corrupt(off uint64, reason string) error {
	return &FileError{Path: r.path, Off: off, Reason: reason, No: wire.EPROTO}
}

// utoa formats v in decimal.
func utoa(v uint64) string { return strconv.FormatUint(v, 10) }
