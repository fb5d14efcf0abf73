package shm

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"runtime/debug"
	"syscall"
	"testing"

	"fastcall/shm/fileowner/fileownertest"
	"fastcall/wire"

	"golang.org/x/sys/unix"
)

// TestOpenRefusesUntrusted plants valid map files that another user owns,
// or that group or others may write, or a symbolic link, and checks that
// Open refuses each one with wire.EPERM, for writing and for reading, and
// that Replace puts a file of this process's own in their place.
func TestOpenRefusesUntrusted(t *testing.T) {
	fileownertest.RequireRoot(t)
	dir := testDir(t)
	plant := func(t *testing.T, name string, uid int, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		m, err := Create(p, MinSize, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if err := m.Put([]byte("svc/db"), []byte("6.6.6.6:5432")); err != nil {
			t.Fatal(err)
		}
		m.Close()
		if err := os.Chown(p, uid, uid); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name    string
		uid     int
		mode    os.FileMode
		readOK  bool // a reader (ReadOnly) may open it
		writeOK bool // a writer may open it
	}{
		{"own-0600", 0, 0o600, true, true},
		{"own-0644", 0, 0o644, true, true},
		{"other-uid-0600", fileownertest.HostileUID, 0o600, false, false},
		{"other-uid-0644", fileownertest.HostileUID, 0o644, false, false},
		{"own-group-write", 0, 0o620, false, false},
		{"own-other-write", 0, 0o602, false, false},
		{"own-0666", 0, 0o666, false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := plant(t, tc.name, tc.uid, tc.mode)
			for _, ro := range []bool{false, true} {
				m, err := Open(p, Options{ReadOnly: ro})
				want := tc.writeOK
				if ro {
					want = tc.readOK
				}
				if want {
					if err != nil {
						t.Fatalf("read-only %v: %v", ro, err)
					}
					m.Close()
					continue
				}
				if err == nil {
					m.Close()
					t.Fatalf("read-only %v: untrusted file opened", ro)
				}
				if !errors.Is(err, wire.EPERM) || wire.AsErrno(err) != wire.EPERM {
					t.Fatalf("read-only %v: %v, want EPERM", ro, err)
				}
			}
		})
	}
	t.Run("symlink", func(t *testing.T) {
		target := plant(t, "target", 0, 0o600)
		link := filepath.Join(dir, "link")
		if err := os.Symlink(target, link); err != nil {
			t.Fatal(err)
		}
		for _, ro := range []bool{false, true} {
			if m, err := Open(link, Options{ReadOnly: ro}); wire.AsErrno(err) != wire.EPERM {
				if err == nil {
					m.Close()
				}
				t.Fatalf("read-only %v: %v, want EPERM", ro, err)
			}
		}
	})
	t.Run("replace", func(t *testing.T) {
		p := plant(t, "replace", fileownertest.HostileUID, 0o666)
		m, err := Replace(p, MinSize, Options{Mode: 0o644})
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if uid := st.Sys().(*syscall.Stat_t).Uid; uid != 0 || st.Mode().Perm() != 0o644 {
			t.Fatalf("replaced file: uid %d mode %v", uid, st.Mode())
		}
		if _, err := m.Get([]byte("svc/db"), make([]byte, 64)); wire.AsErrno(err) != wire.ENOENT {
			t.Fatalf("planted record in the replacement: %v", err)
		}
		r, err := Open(p, Options{ReadOnly: true})
		if err != nil {
			t.Fatalf("reader of the replacement: %v", err)
		}
		r.Close()
	})
	t.Run("create-mode", func(t *testing.T) {
		for _, mode := range []os.FileMode{0o620, 0o602, 0o666} {
			if m, err := Create(filepath.Join(dir, "mode"), MinSize, Options{Mode: mode}); wire.AsErrno(err) != wire.EINVAL {
				if err == nil {
					m.Close()
				}
				t.Fatalf("Create mode %v: %v, want EINVAL", mode, err)
			}
		}
	})
}

// A map file that did not come from Create may have holes: pages with no
// memory behind them (a file written sparsely, or truncated larger). On a
// full tmpfs the first store to such a page raises SIGBUS, which kills the
// process. Open reserves the pages it maps writable, so that a full tmpfs
// fails Open with ENOSPC instead, as it fails Create.
func TestOpenSparseFileOnFullTmpfs(t *testing.T) {
	fileownertest.RequireRoot(t)
	img := goodImage(t)
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=1m"); err != nil {
		t.Skipf("cannot mount a small tmpfs: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })

	// The image with its zero pages left as holes.
	p := filepath.Join(dir, "m")
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	zero := make([]byte, arenaAlign)
	for off := 0; off < len(img); off += arenaAlign {
		if pg := img[off : off+arenaAlign]; !bytes.Equal(pg, zero) {
			if _, err := f.WriteAt(pg, int64(off)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := f.Truncate(int64(len(img))); err != nil {
		t.Fatal(err)
	}
	f.Close()
	// Fill the tmpfs.
	fill, err := os.Create(filepath.Join(dir, "fill"))
	if err != nil {
		t.Fatal(err)
	}
	for err == nil {
		_, err = fill.Write(zero)
	}
	fill.Close()

	if _, err := Open(p, Options{}); !errors.Is(err, wire.ENOSPC) {
		t.Fatalf("Open of a file with holes on a full tmpfs: %v, want ENOSPC", err)
	}
	// A reader stores only to the lock page, which is no hole.
	r, err := Open(p, Options{ReadOnly: true})
	if err != nil {
		t.Fatalf("read-only Open: %v", err)
	}
	r.Close()
	os.Remove(filepath.Join(dir, "fill"))
	m, err := Open(p, Options{})
	if err != nil {
		t.Fatalf("Open with room: %v", err)
	}
	defer m.Close()
	// Faults become panics here, so that the test sees them.
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if e := recover(); e != nil {
			t.Fatalf("Put faulted on a page of the file: %v", e)
		}
	}()
	for i := 0; i < 100; i++ {
		if err := m.Put([]byte{'k', byte(i)}, make([]byte, 200)); err != nil {
			t.Fatalf("Put %d: %v", i, err)
		}
	}
}
