// Package memdisk is an in-memory center.Disk for the simulation
// (docs/SIMULATION.md): a machine's disk that a crash takes back to what
// was synced. Every operation completes at once under one mutex and
// starts no goroutine, so a center on it blocks only where it would block
// on its own locks, and a simulated run replays.
//
// The model: a file's contents are durable up to its last File.Sync; a
// directory entry (a file created, or a rename) is durable once a File
// of its directory from OpenDir was synced. Crash drops every write and
// every entry that was not durable, and fails every file and every Disk
// handed out before it (the crashed process's): the restarted center
// takes a new one with Boot.
//
// It is test infrastructure; production code never imports it.
package memdisk

import (
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"fastcall/node/registry/center"
)

// Disk is one machine's in-memory disk. The zero value is not usable:
// call New.
type Disk struct {
	mu      sync.Mutex
	boot    uint64            // current boot; handles of older boots fail
	names   map[string]*inode // directory entries as the running process sees them
	durable map[string]*inode // directory entries that survive a crash
	dirs    map[string]bool   // directories made (durable at once)
}

// inode is a file's contents: what the process sees, and what is durable.
type inode struct {
	data   []byte
	synced []byte
}

// New returns an empty disk.
func New() *Disk {
	return &Disk{names: map[string]*inode{}, durable: map[string]*inode{}, dirs: map[string]bool{}}
}

// Boot returns the disk as one run of a center sees it (Config.Disk); it
// fails (fs.ErrClosed) from the next Crash on.
func (d *Disk) Boot() center.Disk {
	d.mu.Lock()
	defer d.mu.Unlock()
	return &view{d: d, boot: d.boot}
}

// Crash takes the disk back to what was durable and ends the current
// boot.
func (d *Disk) Crash() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.boot++
	d.names = make(map[string]*inode, len(d.durable))
	for p, n := range d.durable {
		d.names[p] = n
	}
	seen := map[*inode]bool{}
	for _, n := range d.names {
		if !seen[n] {
			seen[n] = true
			n.data = append([]byte(nil), n.synced...)
		}
	}
}

// view is a Disk for one boot.
type view struct {
	d    *Disk
	boot uint64
}

// lock takes the disk's lock and reports whether v's boot is current;
// the caller unlocks.
func (v *view) lock() bool {
	v.d.mu.Lock()
	return v.boot == v.d.boot
}

func notExist(op, path string) error { return &fs.PathError{Op: op, Path: path, Err: fs.ErrNotExist} }

func closed(op, path string) error { return &fs.PathError{Op: op, Path: path, Err: fs.ErrClosed} }

func (v *view) PrepareDir(dir string) error {
	defer v.d.mu.Unlock()
	if !v.lock() {
		return closed("mkdir", dir)
	}
	v.d.dirs[filepath.Clean(dir)] = true
	return nil
}

// openLocked returns the file at path; the disk's lock is held.
func (v *view) openLocked(path string) (*inode, error) {
	if v.boot != v.d.boot {
		return nil, closed("open", path)
	}
	if n := v.d.names[filepath.Clean(path)]; n != nil {
		return n, nil
	}
	return nil, notExist("open", path)
}

func (v *view) ReadFile(path string) ([]byte, error) {
	v.d.mu.Lock()
	defer v.d.mu.Unlock()
	n, err := v.openLocked(path)
	if err != nil {
		return nil, err
	}
	return append([]byte(nil), n.data...), nil
}

func (v *view) OpenFile(path string) (center.File, error) {
	v.d.mu.Lock()
	defer v.d.mu.Unlock()
	n, err := v.openLocked(path)
	if err != nil {
		return nil, err
	}
	return &file{v: v, n: n, path: path}, nil
}

func (v *view) CreateFile(path string, _ os.FileMode) (center.File, error) {
	defer v.d.mu.Unlock()
	if !v.lock() {
		return nil, closed("open", path)
	}
	n := &inode{}
	v.d.names[filepath.Clean(path)] = n
	return &file{v: v, n: n, path: path}, nil
}

func (v *view) Rename(from, to string) error {
	defer v.d.mu.Unlock()
	if !v.lock() {
		return closed("rename", from)
	}
	from, to = filepath.Clean(from), filepath.Clean(to)
	n := v.d.names[from]
	if n == nil {
		return notExist("rename", from)
	}
	delete(v.d.names, from)
	v.d.names[to] = n
	return nil
}

func (v *view) OpenDir(dir string) (center.File, error) {
	defer v.d.mu.Unlock()
	if !v.lock() {
		return nil, closed("open", dir)
	}
	dir = filepath.Clean(dir)
	if !v.d.dirs[dir] {
		return nil, notExist("open", dir)
	}
	return &file{v: v, path: dir, dir: true}, nil
}

// file is an open file of a view, or with dir an open directory.
type file struct {
	v    *view
	n    *inode
	path string
	dir  bool
	off  int64
	shut bool
}

// lock is view.lock, and also fails once f is closed.
func (f *file) lock(op string) error {
	if !f.v.lock() {
		return closed(op, f.path)
	}
	if f.shut {
		return closed(op, f.path)
	}
	return nil
}

func (f *file) Read(b []byte) (int, error) {
	defer f.v.d.mu.Unlock()
	if err := f.lock("read"); err != nil || f.dir {
		return 0, err
	}
	if f.off >= int64(len(f.n.data)) {
		return 0, io.EOF
	}
	n := copy(b, f.n.data[f.off:])
	f.off += int64(n)
	return n, nil
}

func (f *file) Write(b []byte) (int, error) {
	defer f.v.d.mu.Unlock()
	if err := f.lock("write"); err != nil {
		return 0, err
	}
	if end := f.off + int64(len(b)); end > int64(len(f.n.data)) {
		f.n.data = append(f.n.data, make([]byte, end-int64(len(f.n.data)))...)
	}
	copy(f.n.data[f.off:], b)
	f.off += int64(len(b))
	return len(b), nil
}

func (f *file) Seek(off int64, whence int) (int64, error) {
	defer f.v.d.mu.Unlock()
	if err := f.lock("seek"); err != nil {
		return 0, err
	}
	switch whence {
	case io.SeekCurrent:
		off += f.off
	case io.SeekEnd:
		off += int64(len(f.n.data))
	}
	if off < 0 {
		return 0, &fs.PathError{Op: "seek", Path: f.path, Err: fs.ErrInvalid}
	}
	f.off = off
	return off, nil
}

func (f *file) Truncate(size int64) error {
	defer f.v.d.mu.Unlock()
	if err := f.lock("truncate"); err != nil {
		return err
	}
	if size < int64(len(f.n.data)) {
		f.n.data = f.n.data[:size]
	} else {
		f.n.data = append(f.n.data, make([]byte, size-int64(len(f.n.data)))...)
	}
	return nil
}

// Sync makes the file's contents durable, or, for a directory, its
// entries: every name under it then survives a crash as it is now.
func (f *file) Sync() error {
	defer f.v.d.mu.Unlock()
	if err := f.lock("sync"); err != nil {
		return err
	}
	if !f.dir {
		f.n.synced = append(f.n.synced[:0], f.n.data...)
		return nil
	}
	d := f.v.d
	in := func(p string) bool { return filepath.Dir(p) == f.path }
	for p := range d.durable {
		if in(p) && d.names[p] == nil {
			delete(d.durable, p)
		}
	}
	for p, n := range d.names {
		if in(p) {
			d.durable[p] = n
		}
	}
	return nil
}

func (f *file) Close() error {
	defer f.v.d.mu.Unlock()
	if err := f.lock("close"); err != nil {
		return err
	}
	f.shut = true
	return nil
}
