// Package keyfile reads cluster keys from files and refuses files that
// other users could read.
package keyfile

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"fastcall/wire"
)

// Read returns the key held in path: the file's bytes with one trailing
// newline removed. It refuses a file that is readable or writable by group
// or others, a non-regular file, and a key shorter than wire.MinKeyLen.
func Read(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("key file %s: not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("key file %s: mode %04o lets group or others read it; chmod 600 it", path, perm)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	b = bytes.TrimSuffix(b, []byte("\n"))
	if len(b) < wire.MinKeyLen {
		return nil, fmt.Errorf("key file %s: key of %d bytes, need at least %d", path, len(b), wire.MinKeyLen)
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
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, nil
	case err == nil && len(bytes.TrimSpace(b)) == 0:
		return nil, nil
	}
	return Read(path)
}

// Write creates path with mode 0600 holding key.
func Write(path string, key []byte) error {
	return os.WriteFile(path, key, 0o600)
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
