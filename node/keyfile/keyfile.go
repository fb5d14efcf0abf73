// Package keyfile reads cluster keys from files and refuses files that
// other users could read, write or have made.
package keyfile

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"
	"syscall"

	"fastcall/shm/fileowner"
	"fastcall/wire"
)

// groupOtherRead are the permission bits that let another user read a key.
const groupOtherRead = 0o044

// MaxKeyLen bounds a key read from a file. A cluster key is a few dozen
// random bytes; a larger file is a wrong path (a log, an image), read
// whole into memory before this bound, and taken for the key.
const MaxKeyLen = 4096

// Read returns the key held in path: the file's bytes with one trailing
// newline removed. It refuses a file that is not owned by the process's
// effective uid or that group or others may write (an error that unwraps to
// wire.EPERM, from fileowner), a file that group or others may read, a
// non-regular file, a key shorter than wire.MinKeyLen and one longer than
// MaxKeyLen (reading no more than that). The checks are
// made on the open file, so the bytes read are those of the file checked.
//
// A symbolic link at path is followed only if the effective uid or root
// owns it: a link another user made in a shared directory would choose
// which of this user's files is read as the key.
func Read(path string) ([]byte, error) {
	if fi, err := os.Lstat(path); err == nil && fi.Mode()&os.ModeSymlink != 0 {
		if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Geteuid() && st.Uid != 0 {
			return nil, fmt.Errorf("key file: %w", &fileowner.Error{Path: path,
				Reason: "a symbolic link owned by uid " + strconv.FormatUint(uint64(st.Uid), 10)})
		}
	}
	// O_NONBLOCK: a FIFO at the path must be refused, not waited on.
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if err := fileowner.Check(f, false); err != nil {
		return nil, fmt.Errorf("key file: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if perm := fi.Mode().Perm(); perm&groupOtherRead != 0 {
		return nil, fmt.Errorf("key file %s: mode %04o lets group or others read it; chmod 600 it", path, perm)
	}
	// One byte past the longest key and its newline tells a longer file.
	b, err := io.ReadAll(io.LimitReader(f, MaxKeyLen+2))
	if err != nil {
		return nil, err
	}
	b = bytes.TrimSuffix(b, []byte("\n"))
	if len(b) < wire.MinKeyLen {
		return nil, fmt.Errorf("key file %s: key of %d bytes, need at least %d", path, len(b), wire.MinKeyLen)
	}
	if len(b) > MaxKeyLen {
		return nil, fmt.Errorf("key file %s: more than %d bytes; a key is a few dozen random bytes (head -c 32 /dev/urandom)", path, MaxKeyLen)
	}
	return b, nil
}

// ReadPrev returns the previous key of a rotation held in path. A path
// that is empty, a file that does not exist and a file that is empty (or
// only white space) mean no previous key: nil, and no error. Otherwise it
// is Read.
func ReadPrev(path string) ([]byte, error) {
	if path == "" {
		return nil, nil
	}
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err == nil && fi.Mode().IsRegular() && fi.Size() <= MaxKeyLen+1 {
		// A regular file is read whole here only to see whether it is
		// empty; Read makes every check on the file it opens.
		if b, err := os.ReadFile(path); err == nil && len(bytes.TrimSpace(b)) == 0 {
			return nil, nil
		}
	}
	return Read(path)
}

// Write puts a new file of mode 0600 holding key at path: it is written
// under path+".tmp", created afresh (fileowner.CreateFresh), and renamed
// over path, so a file that already was at path, whoever made it, is
// replaced, never written into.
func Write(path string, key []byte) error {
	tmp := path + ".tmp"
	f, err := fileowner.CreateFresh(tmp, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(key)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}

// ID names a key in logs without revealing it: the first 4 bytes of its
// SHA-256, in hex. "none" for no key.
func ID(key []byte) string {
	if len(key) == 0 {
		return "none"
	}
	sum := sha256.Sum256(key)
	return hex.EncodeToString(sum[:4])
}
