// Package fileowner owns the rule by which a process decides whether it may
// trust a file that another local user could have made or changed: the file
// is a regular file owned by the process's effective uid, and neither its
// group nor others may write it. docs/RFCD.md ("Files the node trusts")
// states the rule and who applies it.
package fileowner

import (
	"os"
	"strconv"

	"fastcall/wire"

	"golang.org/x/sys/unix"
)

// GroupOtherWrite are the permission bits that let another user write a
// file; a trusted file has none of them.
const GroupOtherWrite = 0o022

// Error is a file refused by the rule. It unwraps to wire.EPERM.
type Error struct {
	Path   string
	Reason string // "owned by uid 65534, not 0", "mode 0666 lets group or others write it", ...
}

func (e *Error) Error() string { return e.Path + ": untrusted file: " + e.Reason }

// Unwrap returns wire.EPERM.
func (e *Error) Unwrap() error { return wire.EPERM }

// Errno returns wire.EPERM (see wire.AsErrno).
func (e *Error) Errno() wire.Errno { return wire.EPERM }

// Reason returns why a process of effective uid euid must not trust a file
// of status st, or "" if it may. The file must be regular, owned by euid
// (or, with rootToo, by root) and give neither group nor others write
// permission.
func Reason(st *unix.Stat_t, euid int, rootToo bool) string {
	mode := uint32(st.Mode)
	if mode&unix.S_IFMT != unix.S_IFREG {
		return "not a regular file"
	}
	if int(st.Uid) != euid && !(rootToo && st.Uid == 0) {
		return "owned by uid " + strconv.FormatUint(uint64(st.Uid), 10) + ", not " + strconv.Itoa(euid)
	}
	if mode&GroupOtherWrite != 0 {
		return "mode " + octal(mode&0o7777) + " lets group or others write it"
	}
	return ""
}

// Check applies Reason to the open file f, with this process's effective
// uid. It returns nil, an *Error, or the error of fstat.
func Check(f *os.File, rootToo bool) error {
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return &os.PathError{Op: "fstat", Path: f.Name(), Err: err}
	}
	if r := Reason(&st, unix.Geteuid(), rootToo); r != "" {
		return &Error{Path: f.Name(), Reason: r}
	}
	return nil
}

// DirReason returns why a process of effective uid euid must not trust
// the files in a directory of status st, or "" if it may: the directory
// must be owned by euid or root, and give neither group nor others write
// permission unless its sticky bit is set (then they cannot remove or
// rename another's files in it).
func DirReason(st *unix.Stat_t, euid int) string {
	mode := uint32(st.Mode)
	if mode&unix.S_IFMT != unix.S_IFDIR {
		return "not a directory"
	}
	if int(st.Uid) != euid && st.Uid != 0 {
		return "directory owned by uid " + strconv.FormatUint(uint64(st.Uid), 10) + ", not " + strconv.Itoa(euid)
	}
	if mode&GroupOtherWrite != 0 && mode&unix.S_ISVTX == 0 {
		return "directory mode " + octal(mode&0o7777) + " lets group or others write it"
	}
	return ""
}

// CheckDir applies DirReason to the directory at path (a symbolic link is
// followed), with this process's effective uid. It returns nil, an
// *Error, or the error of stat.
func CheckDir(path string) error {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return &os.PathError{Op: "stat", Path: path, Err: err}
	}
	if r := DirReason(&st, unix.Geteuid()); r != "" {
		return &Error{Path: path, Reason: r}
	}
	return nil
}

// OpenTrusted opens path with flag (no O_CREATE) without following a
// symbolic link in its last element and without blocking on a FIFO, and
// returns it only if Check accepts it (rootToo false). A refused file is
// closed and the *Error returned.
func OpenTrusted(path string, flag int) (*os.File, error) {
	// O_NONBLOCK: a FIFO at the path is refused by Check, not waited on.
	f, err := os.OpenFile(path, flag|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		if pe, ok := err.(*os.PathError); ok && pe.Err == unix.ELOOP {
			return nil, &Error{Path: path, Reason: "a symbolic link"}
		}
		return nil, err
	}
	if err := Check(f, false); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// CreateFresh creates path as a new file of mode perm, which must give
// neither group nor others write permission (wire.EINVAL otherwise).
// Whatever is at path (a scratch file left by a crash, or a file another
// user placed there) is removed first, and the file is created with
// O_EXCL|O_NOFOLLOW: the file returned was made by this call and is owned
// by this process. If the old entry cannot be removed (a sticky directory
// and another owner), the create fails with the os.ErrExist error.
// Callers write the file and rename it into place.
func CreateFresh(path string, perm os.FileMode) (*os.File, error) {
	if perm&GroupOtherWrite != 0 {
		return nil, wire.EINVAL
	}
	if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
		return nil, err
	}
	return os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, perm.Perm())
}

// octal formats a mode as four octal digits.
func octal(m uint32) string {
	b := [4]byte{}
	for i := 3; i >= 0; i-- {
		b[i] = byte('0' + m&7)
		m >>= 3
	}
	return string(b[:])
}
