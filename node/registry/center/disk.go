package center

import (
	"io"
	"os"

	"fastcall/shm/fileowner"
)

// Disk is a center's boundary with its data directory: every file the
// center reads or writes there (the log, the snapshot, the epoch file and
// their scratch copies) goes through it, and nothing else of the center
// touches the file system. Production centers use OSDisk (Config.Disk
// nil); the simulation passes an in-memory disk on which a crash loses
// what was not synced (package center/memdisk).
//
// Durability is what a Disk must model: data written to a File is
// durable only once File.Sync returned nil, and a directory entry made by
// CreateFile or Rename only once a File from OpenDir of its directory was
// synced.
type Disk interface {
	// PrepareDir creates dir if it does not exist and checks that the
	// center may trust it: whoever may write a directory may remove,
	// rename or swap the files in it.
	PrepareDir(dir string) error
	// ReadFile returns the contents of the file at path if the center may
	// trust it (its own, written by nobody else); an error for which
	// os.IsNotExist holds if there is none.
	ReadFile(path string) ([]byte, error)
	// OpenFile opens the existing file at path, trusted, for reading and
	// writing from its start; an error for which os.IsNotExist holds if
	// there is none.
	OpenFile(path string) (File, error)
	// CreateFile creates path as a new file of mode perm, positioned at
	// its start, whatever was at path before (a scratch file left by a
	// crash, or one another user placed there) being removed first.
	CreateFile(path string, perm os.FileMode) (File, error)
	// Rename renames from to to, replacing to.
	Rename(from, to string) error
	// OpenDir opens the directory dir, to Sync its entries.
	OpenDir(dir string) (File, error)
}

// File is an open file of a Disk. Sync makes what was written durable.
type File interface {
	io.Reader
	io.Writer
	io.Seeker
	Truncate(size int64) error
	Sync() error
	Close() error
}

// OSDisk is the Disk of the host's file system; files are trusted as
// package shm/fileowner says.
type OSDisk struct{}

// PrepareDir creates dir (mode 0755) and checks it with fileowner.CheckDir.
func (OSDisk) PrepareDir(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return fileowner.CheckDir(dir)
}

// ReadFile reads the file at path opened with fileowner.OpenTrusted.
func (OSDisk) ReadFile(path string) ([]byte, error) {
	f, err := fileowner.OpenTrusted(path, os.O_RDONLY)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}

// OpenFile opens path with fileowner.OpenTrusted.
func (OSDisk) OpenFile(path string) (File, error) {
	f, err := fileowner.OpenTrusted(path, os.O_RDWR)
	if err != nil {
		return nil, err
	}
	return f, nil
}

// CreateFile creates path with fileowner.CreateFresh.
func (OSDisk) CreateFile(path string, perm os.FileMode) (File, error) {
	f, err := fileowner.CreateFresh(path, perm)
	if err != nil {
		return nil, err
	}
	return f, nil
}

// Rename is os.Rename.
func (OSDisk) Rename(from, to string) error { return os.Rename(from, to) }

// OpenDir opens dir read-only.
func (OSDisk) OpenDir(dir string) (File, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	return f, nil
}
