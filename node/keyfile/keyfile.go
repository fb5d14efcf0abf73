// Package keyfile reads cluster keys from files and refuses files that
// other users could read.
package keyfile

import (
	"bytes"
	"fmt"
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

// Write creates path with mode 0600 holding key.
func Write(path string, key []byte) error {
	return os.WriteFile(path, key, 0o600)
}
