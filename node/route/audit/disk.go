package audit

import (
	"bytes"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"
)

// FS is the disk boundary of the audit trail: everything Log and Scan do
// to files goes through it. OSFS is the operating system's files; MemFS
// keeps them in memory, so that a simulation replays exactly and its
// files outlive a router that crashes.
type FS interface {
	// MkdirAll creates dir (mode 0700) and its parents if missing.
	MkdirAll(dir string) error
	// ReadDir returns the names of the entries of dir, in any order.
	ReadDir(dir string) ([]string, error)
	// Create creates a new file for appending (mode FileMode); it fails
	// if the file exists.
	Create(name string) (File, error)
	// Open opens a file for reading.
	Open(name string) (io.ReadSeekCloser, error)
	// Remove deletes a file; a reader that has it open keeps reading.
	Remove(name string) error
}

// File is an audit file open for appending.
type File interface {
	io.Writer
	Sync() error
	Close() error
}

// OSFS is FS on the operating system's files.
type OSFS struct{}

func (OSFS) MkdirAll(dir string) error { return os.MkdirAll(dir, auditDirMode) }

func (OSFS) ReadDir(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	names := make([]string, len(ents))
	for i, e := range ents {
		names[i] = e.Name()
	}
	return names, nil
}

func (OSFS) Create(name string) (File, error) {
	return os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL|os.O_APPEND, FileMode)
}

func (OSFS) Open(name string) (io.ReadSeekCloser, error) { return os.Open(name) }

func (OSFS) Remove(name string) error { return os.Remove(name) }

// MemFS is FS in memory. Its files survive the Log that wrote them (a
// router's crash), like files on a disk. The zero value is not usable:
// NewMemFS. Safe for concurrent use.
type MemFS struct {
	mu struct {
		sync.Mutex // guards the maps and every file's bytes
		dirs       map[string]bool
		files      map[string]*memFile
	}
}

// memFile is one file's bytes. Bytes are only appended, so a reader
// keeps a prefix of them without a copy.
type memFile struct{ b []byte }

// NewMemFS returns an empty MemFS.
func NewMemFS() *MemFS {
	m := &MemFS{}
	m.mu.dirs = map[string]bool{}
	m.mu.files = map[string]*memFile{}
	return m
}

func (m *MemFS) MkdirAll(dir string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for d := filepath.Clean(dir); !m.mu.dirs[d]; d = filepath.Dir(d) {
		m.mu.dirs[d] = true
	}
	return nil
}

func (m *MemFS) ReadDir(dir string) ([]string, error) {
	dir = filepath.Clean(dir)
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.mu.dirs[dir] {
		return nil, &fs.PathError{Op: "readdir", Path: dir, Err: fs.ErrNotExist}
	}
	var names []string
	for name := range m.mu.files {
		if filepath.Dir(name) == dir {
			names = append(names, filepath.Base(name))
		}
	}
	slices.Sort(names)
	return names, nil
}

func (m *MemFS) Create(name string) (File, error) {
	name = filepath.Clean(name)
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.mu.dirs[filepath.Dir(name)] {
		return nil, &fs.PathError{Op: "create", Path: name, Err: fs.ErrNotExist}
	}
	if m.mu.files[name] != nil {
		return nil, &fs.PathError{Op: "create", Path: name, Err: fs.ErrExist}
	}
	f := &memFile{}
	m.mu.files[name] = f
	return &memWriter{fs: m, f: f}, nil
}

func (m *MemFS) Open(name string) (io.ReadSeekCloser, error) {
	name = filepath.Clean(name)
	m.mu.Lock()
	defer m.mu.Unlock()
	f := m.mu.files[name]
	if f == nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	return memReader{bytes.NewReader(f.b[:len(f.b):len(f.b)])}, nil
}

func (m *MemFS) Remove(name string) error {
	name = filepath.Clean(name)
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.mu.files[name] == nil {
		return &fs.PathError{Op: "remove", Path: name, Err: fs.ErrNotExist}
	}
	delete(m.mu.files, name)
	return nil
}

// memWriter appends to one MemFS file.
type memWriter struct {
	fs     *MemFS
	f      *memFile
	closed bool // owned by the writer's one user
}

func (w *memWriter) Write(p []byte) (int, error) {
	if w.closed {
		return 0, fs.ErrClosed
	}
	w.fs.mu.Lock()
	w.f.b = append(w.f.b, p...)
	w.fs.mu.Unlock()
	return len(p), nil
}

func (w *memWriter) Sync() error { return nil }

func (w *memWriter) Close() error {
	if w.closed {
		return fs.ErrClosed
	}
	w.closed = true
	return nil
}

// memReader reads what a MemFS file held when it was opened.
type memReader struct{ *bytes.Reader }

func (memReader) Close() error { return nil }
